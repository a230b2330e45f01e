import Foundation
import Hummingbird
import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import ServiceLifecycle
import Wire

/// The inference gateway: the HTTP application and its link to the coordinator, run
/// together under swift-service-lifecycle (SIGTERM finishes requests in flight, then
/// stops).
public final class Gateway: Sendable {
    public let link: CoordinatorLink
    public let metrics: GatewayMetrics
    let host: String
    let port: Int
    let logger: Logger
    private let boundPort = NIOLockedValueBox<Int?>(nil)

    public init(listenHost: String, listenPort: Int, link: CoordinatorLink.Settings, logger: Logger = Logger(label: "tower.gateway")) throws {
        metrics = GatewayMetrics()
        self.link = try CoordinatorLink(settings: link, state: ServingState(), group: MultiThreadedEventLoopGroup.singleton, metrics: metrics, logger: logger)
        host = listenHost
        port = listenPort
        self.logger = logger
    }

    /// The port the HTTP listener bound (when asked for port 0), once it runs.
    public var port_: Int? { boundPort.withLockedValue { $0 } }

    /// The services to run in one ServiceGroup: the HTTP server and the coordinator link.
    public func services() -> [any Service] {
        let router = GatewayRouter.make(link: link, metrics: metrics)
        let bound = boundPort
        let log = logger
        let (link, metrics) = (link, metrics)
        let app = Application(router: router,
                              server: .http1(configuration: .init(additionalChannelHandlers: [PrecomputedFastPath(link: link, metrics: metrics)])),
                              configuration: .init(address: .hostname(host, port: port), serverName: "tower-gateway"),
                              onServerRunning: { channel in
                                  let p = channel.localAddress?.port
                                  bound.withLockedValue { $0 = p }
                                  log.notice("gateway listening", metadata: ["address": "\(channel.localAddress.map { "\($0)" } ?? "?")"])
                              }, logger: logger)
        return [link, app]
    }
}
