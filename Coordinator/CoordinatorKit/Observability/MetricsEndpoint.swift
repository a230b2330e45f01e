import Metrics
import NIOCore
import NIOHTTP1
import NIOPosix
import Prometheus

/// The process-wide Prometheus registry. `bootstrap()` installs it as swift-metrics'
/// backend once; every Counter/Gauge/Timer created afterwards lands here.
public enum TowerMetrics {
    public static let registry = PrometheusCollectorRegistry()
    private static let once: Void = {
        MetricsSystem.bootstrap(PrometheusMetricsFactory(registry: registry))
    }()
    public static func bootstrap() { _ = once }

    /// The Prometheus text exposition of every metric.
    public static func exposition() -> String {
        var buffer: [UInt8] = []
        registry.emit(into: &buffer)
        return String(decoding: buffer, as: UTF8.self)
    }
}

/// A minimal HTTP/1.1 listener that answers `GET /metrics` (Prometheus text format) and
/// `GET /healthz`. It speaks plaintext, so it binds to loopback by default.
enum MetricsEndpoint {
    static func bind(host: String, port: Int, group: EventLoopGroup) async throws -> Channel {
        try await ServerBootstrap(group: group)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { channel in
                channel.pipeline.configureHTTPServerPipeline().flatMap {
                    channel.pipeline.addHandler(MetricsHandler())
                }
            }
            .bind(host: host, port: port).get()
    }
}

final class MetricsHandler: ChannelInboundHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    private var path = ""

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case let .head(head):
            path = head.uri
        case .body:
            break
        case .end:
            let (status, body): (HTTPResponseStatus, String)
            switch path {
            case "/metrics": (status, body) = (.ok, TowerMetrics.exposition())
            case "/healthz": (status, body) = (.ok, "ok\n")
            default: (status, body) = (.notFound, "try /metrics or /healthz\n")
            }
            var headers = HTTPHeaders()
            headers.add(name: "Content-Type", value: path == "/metrics" ? "text/plain; version=0.0.4" : "text/plain")
            headers.add(name: "Content-Length", value: "\(body.utf8.count)")
            context.write(wrapOutboundOut(.head(HTTPResponseHead(version: .http1_1, status: status, headers: headers))), promise: nil)
            context.write(wrapOutboundOut(.body(.byteBuffer(ByteBuffer(string: body)))), promise: nil)
            context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
        }
    }
}
