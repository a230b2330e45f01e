import Metrics
import NIOCore
import NIOHTTP1
import NIOPosix
import Prometheus

/// The Prometheus text exposition of one process's metrics, each metric preceded by the
/// `# HELP` line its catalog gives. swift-metrics has no place for help text, so each
/// process keeps a catalog (metric name → what it counts) beside its registry; the
/// coordinator and the worker share this code and differ only in their catalogs.
public struct PrometheusExposition: Sendable {
    public let registry: PrometheusCollectorRegistry
    public let help: [String: String]

    public init(registry: PrometheusCollectorRegistry, catalog: KeyValuePairs<String, String>) {
        self.registry = registry
        self.help = Dictionary(catalog.map { ($0.key, $0.value) }) { first, _ in first }
    }

    /// Installs `registry` as swift-metrics' backend. Call once per process, before the
    /// first Counter/Gauge/Timer is created.
    public func bootstrapMetricsSystem() {
        MetricsSystem.bootstrap(PrometheusMetricsFactory(registry: registry))
    }

    /// Every metric of the registry in Prometheus text format, with its `# HELP` line.
    public func text() -> String {
        var buffer: [UInt8] = []
        registry.emit(into: &buffer)
        var lines: [Substring] = []
        for line in String(decoding: buffer, as: UTF8.self).split(separator: "\n", omittingEmptySubsequences: false) {
            if line.hasPrefix("# TYPE "), let name = line.dropFirst(7).split(separator: " ").first, let text = help[String(name)] {
                lines.append("# HELP \(name) \(text)")
            }
            lines.append(line)
        }
        return lines.joined(separator: "\n")
    }
}

/// A minimal HTTP/1.1 listener that answers `GET /metrics` (Prometheus text format) and
/// `GET /healthz`, anything else 404. It speaks plaintext, so callers bind it to loopback
/// or a private network.
public enum MetricsEndpoint {
    /// Listens on `host:port` (port 0: any free port; read it from the channel's local
    /// address) until the returned channel is closed.
    public static func bind(host: String, port: Int, group: EventLoopGroup,
                            exposition: @escaping @Sendable () -> String) async throws -> Channel {
        try await ServerBootstrap(group: group)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { channel in
                channel.pipeline.configureHTTPServerPipeline().flatMap {
                    channel.pipeline.addHandler(MetricsHandler(exposition: exposition))
                }
            }
            .bind(host: host, port: port).get()
    }
}

/// Answers each request once its end arrives; one request at a time per connection.
final class MetricsHandler: ChannelInboundHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    private let exposition: @Sendable () -> String
    private var path = ""

    init(exposition: @escaping @Sendable () -> String) { self.exposition = exposition }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case let .head(head):
            path = head.uri
        case .body:
            break
        case .end:
            let (status, body): (HTTPResponseStatus, String)
            switch path {
            case "/metrics": (status, body) = (.ok, exposition())
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
