import Foundation
import Logging
import NIOCore
import NIOHTTP1
import NIOPosix
import NIOSSL
import SwiftProtobuf
import Wire

/// A read-only JSON API over HTTPS for dashboards and scripts, authenticated like the
/// cluster port (mutual TLS against the cluster CA; operator or gateway certificates).
/// Bodies are the protocol's own messages in protobuf's canonical JSON mapping, so the
/// API and the wire never drift apart.
///
/// Routes (GET):
///   /api/v1/jobs                              recent jobs
///   /api/v1/jobs/{id}                         one job
///   /api/v1/workers                           connected workers
///   /api/v1/experiments/{name}/runs?sort=M    runs with params, metrics, tags, curves of M
///   /api/v1/models                            registered models and aliases
///   /api/v1/models/{name}                     versions, aliases, every decision
enum HTTPSAPI {
    static func bind(host: String, port: Int, group: EventLoopGroup, ssl: NIOSSLContext, core: ClusterCore, revocations: RevocationList,
                     limiter: ConnectionLimiter, logger: Logger) async throws -> Channel {
        try await ServerBootstrap(group: group)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { channel in
                let address = channel.remoteAddress?.ipAddress ?? "?"
                guard limiter.admit(channel, address: address) else { return channel.close() }
                return channel.eventLoop.makeCompletedFuture {
                    let sync = channel.pipeline.syncOperations
                    try sync.addHandler(ConnectionAbort.handler())
                    try sync.addHandler(NIOSSLServerHandler(context: ssl))
                    try sync.addHandler(ConnectionGuard(limiter: limiter, authentication: .tlsHandshake, address: address, logger: logger))
                }.flatMap {
                    channel.pipeline.configureHTTPServerPipeline()
                }.flatMap {
                    channel.pipeline.addHandler(APIHandler(core: core, revocations: revocations, logger: logger))
                }
            }
            .bind(host: host, port: port).get()
    }

    /// The router: a plain function from a path to the message it answers with.
    static func route(_ path: String, query: [String: String], core: ClusterCore) -> EventLoopFuture<any SwiftProtobuf.Message> {
        let parts = path.split(separator: "/").map { String($0).removingPercentEncoding ?? String($0) }
        guard parts.count >= 3, parts[0] == "api", parts[1] == "v1" else {
            return core.loop.makeFailedFuture(WireError.notFound(what: "\(path); routes live under /api/v1/"))
        }
        switch Array(parts.dropFirst(2)) {
        case ["jobs"]:
            return core.listJobs(limit: Int(query["limit"] ?? "") ?? 50).map { $0 }
        case let list where list.count == 2 && list[0] == "jobs":
            return core.summary(of: list[1]).map { $0 }
        case ["workers"]:
            return core.workers().map { $0 }
        case let list where list.count == 3 && list[0] == "experiments" && list[2] == "runs":
            let request = WireListRuns.with { $0.experiment = list[1]; $0.sortBy = query["sort"] ?? ""; $0.ascending = query["order"] == "asc" }
            return core.registry.runs(request).map { $0 }
        case ["models"]:
            return core.registry.models().map { $0 }
        case let list where list.count == 2 && list[0] == "models":
            return core.registry.model(list[1]).map { $0 }
        default:
            return core.loop.makeFailedFuture(WireError.notFound(what: path))
        }
    }
}

final class APIHandler: ChannelInboundHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    private let core: ClusterCore
    private let revocations: RevocationList
    private let logger: Logger
    private var head: HTTPRequestHead?

    init(core: ClusterCore, revocations: RevocationList, logger: Logger) {
        self.core = core
        self.revocations = revocations
        self.logger = logger
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case let .head(h): head = h
        case .body: break
        case .end:
            guard let head else { return }
            self.head = nil
            handle(context: context, head: head)
        }
    }

    private func handle(context: ChannelHandlerContext, head: HTTPRequestHead) {
        let peer: PeerIdentity
        do {
            peer = try revocations.authenticate(context.pipeline.syncOperations)
        } catch {
            return respond(context: context, status: .unauthorized, body: Self.errorJSON("\(error)"))
        }
        guard peer.role == .operator || peer.role == .gateway else {
            return respond(context: context, status: .forbidden, body: Self.errorJSON("a \(peer.role.rawValue) certificate may not read the API"))
        }
        guard head.method == .GET else {
            return respond(context: context, status: .methodNotAllowed, body: Self.errorJSON("the API is read-only: use GET"))
        }
        let components = URLComponents(string: head.uri)
        var query: [String: String] = [:]
        for item in components?.queryItems ?? [] { query[item.name] = item.value ?? "" }
        let bound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
        HTTPSAPI.route(components?.path ?? head.uri, query: query, core: core).hop(to: context.eventLoop).whenComplete { result in
            let (handler, context) = bound.value
            switch result {
            case let .success(message):
                var options = JSONEncodingOptions()
                options.preserveProtoFieldNames = true
                let json = (try? message.jsonString(options: options)) ?? "{}"
                handler.respond(context: context, status: .ok, body: json)
            case let .failure(error):
                let status: HTTPResponseStatus
                switch error as? WireError {
                case .notFound?: status = .notFound
                case .invalidArgument?: status = .badRequest
                default: status = (error is RegistryError) ? .notFound : .internalServerError
                }
                handler.respond(context: context, status: status, body: Self.errorJSON(String(describing: error)))
            }
        }
    }

    static func errorJSON(_ message: String) -> String {
        let escaped = message.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"")
        return "{\"error\": \"\(escaped)\"}"
    }

    private func respond(context: ChannelHandlerContext, status: HTTPResponseStatus, body: String) {
        var headers = HTTPHeaders()
        headers.add(name: "Content-Type", value: "application/json")
        headers.add(name: "Content-Length", value: "\(body.utf8.count)")
        context.write(wrapOutboundOut(.head(HTTPResponseHead(version: .http1_1, status: status, headers: headers))), promise: nil)
        context.write(wrapOutboundOut(.body(.byteBuffer(ByteBuffer(string: body)))), promise: nil)
        context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
    }
}
