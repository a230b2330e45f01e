import Foundation
import Logging
import NIOCore
import NIOPosix
import NIOSSL
import Wire

/// A running coordinator: the store and blob store under the data directory, the
/// ``ClusterCore``, the TLS listener for workers and operators, and the metrics endpoint.
public final class CoordinatorService: @unchecked Sendable {
    public let settings: CoordinatorSettings
    public let core: ClusterCore
    public let group: EventLoopGroup
    private let ownsGroup: Bool
    private var channel: Channel?
    private var metricsChannel: Channel?
    private var apiChannel: Channel?
    private let logger: Logger
    private let sslContext: NIOSSLContext
    private let revocations: RevocationList

    /// Opens the data directory and loads the certificate; nothing listens yet.
    public init(settings: CoordinatorSettings, planners: JobPlanners? = nil, group: EventLoopGroup? = nil, logger: Logger = Logger(label: "tower.coordinator")) throws {
        try settings.validate()
        self.settings = settings
        self.logger = logger
        let identity = try TLSIdentity(certificate: settings.certificate, key: settings.privateKey, ca: settings.ca)
        guard identity.role == .coordinator else {
            throw IdentityError.unreadable(path: settings.certificate, reason: "this certificate was issued for role \(identity.role?.rawValue ?? "none"), the coordinator needs one issued with --role coordinator")
        }
        sslContext = try identity.makeServerContext()
        revocations = RevocationList(directory: settings.revocationDirectory, logger: logger)
        // Said at startup too, not only when the first peer is refused.
        do { _ = try revocations.checkRevoked(serial: "") } catch {
            logger.error("revocation index unreadable: refusing every peer but the coordinator until it is fixed", metadata: ["error": "\(error)"])
        }
        let data = URL(fileURLWithPath: settings.dataDirectory)
        try FileManager.default.createDirectory(at: data, withIntermediateDirectories: true)
        let store = try ClusterStore(path: data.appendingPathComponent("tower.sqlite").path, durability: settings.durability)
        let blobs = try BlobStore(root: data.appendingPathComponent("blobs"))
        ownsGroup = group == nil
        self.group = group ?? MultiThreadedEventLoopGroup(numberOfThreads: System.coreCount)
        core = ClusterCore(loop: self.group.next(), store: store, blobs: blobs, planners: planners ?? settings.planners, settings: settings, logger: logger)
    }

    /// The port the cluster listener is bound to (useful with port 0).
    public var port: Int? { channel?.localAddress?.port }
    public var metricsPort: Int? { metricsChannel?.localAddress?.port }
    public var apiPort: Int? { apiChannel?.localAddress?.port }

    /// Resumes unfinished jobs and starts listening.
    public func start() async throws {
        try core.start()
        let core = self.core, ssl = sslContext, revocations = self.revocations, logger = self.logger
        let maxFrame = settings.maxFrameBytes
        do {
            channel = try await ServerBootstrap(group: group)
                .serverChannelOption(.backlog, value: 256)
                .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
                .childChannelOption(.socketOption(.tcp_nodelay), value: 1)
                .childChannelOption(.socketOption(.so_keepalive), value: 1)
                .childChannelInitializer { channel in
                    channel.eventLoop.makeCompletedFuture {
                        let sync = channel.pipeline.syncOperations
                        try sync.addHandler(NIOSSLServerHandler(context: ssl))
                        try sync.addHandlers(WireFraming.handlers(maxFrameBytes: maxFrame))
                        try sync.addHandler(ServerSessionHandler(core: core, revocations: revocations, logger: logger))
                    }
                }
                .bind(host: settings.listenHost, port: settings.listenPort).get()
        } catch {
            throw ConfigError.cannotListen(service: "the cluster port", address: "\(settings.listenHost):\(settings.listenPort)", reason: "\(error)", flag: "--listen")
        }
        if !settings.metricsListen.isEmpty {
            let (host, port) = try CoordinatorSettings.parseHostPort(settings.metricsListen, key: "metrics_listen")
            do {
                metricsChannel = try await MetricsEndpoint.bind(host: host, port: port, group: group)
            } catch {
                throw ConfigError.cannotListen(service: "metrics", address: settings.metricsListen, reason: "\(error)", flag: "--metrics-listen")
            }
        }
        if !settings.apiListen.isEmpty {
            let (host, port) = try CoordinatorSettings.parseHostPort(settings.apiListen, key: "api_listen")
            do {
                apiChannel = try await HTTPSAPI.bind(host: host, port: port, group: group, ssl: ssl, core: core, revocations: revocations, logger: logger)
            } catch {
                throw ConfigError.cannotListen(service: "the API", address: settings.apiListen, reason: "\(error)", flag: "--api-listen")
            }
        }
        logger.info("coordinator listening", metadata: [
            "address": "\(settings.listenHost):\(self.port ?? settings.listenPort)",
            "data": "\(settings.dataDirectory)",
            "metrics": "\(settings.metricsListen.isEmpty ? "off" : "\(metricsChannel?.localAddress?.description ?? "")")",
            "api": "\(apiChannel?.localAddress?.description ?? "off")",
        ])
    }

    /// Stops accepting connections, flushes the store, closes everything.
    public func shutdown() async {
        try? await channel?.close()
        try? await metricsChannel?.close()
        try? await apiChannel?.close()
        core.stop()
        if ownsGroup { try? await group.shutdownGracefully() }
    }

    /// Runs until the listener closes.
    public func waitUntilClosed() async throws {
        try await channel?.closeFuture.get()
    }
}
