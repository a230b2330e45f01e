import Foundation
import Logging
import NIOCore
import NIOHTTP1
import NIOPosix
import NIOSSL
import Learning
import Wire

/// A read-only JSON API over HTTPS for dashboards and scripts, authenticated like the
/// cluster port (mutual TLS against the cluster CA) and permitted by the same
/// ``Permissions`` table: each route is the wire request it mirrors. Bodies are decoded,
/// documented JSON (``APIResources``), described by the OpenAPI document the API serves.
///
/// Routes (GET), with the wire request each mirrors:
///   /api/v1/jobs?limit=N                      recent jobs, N ≤ 1000 (ListJobs)
///   /api/v1/jobs/{id}                         one job (GetJob)
///   /api/v1/workers                           connected workers (ListWorkers)
///   /api/v1/experiments                       experiments and their run counts (ListExperiments)
///   /api/v1/experiments/{name}/runs?sort=M&order=asc|desc   runs, best first by M (ListRuns)
///   /api/v1/models                            registered models and aliases (ListModels)
///   /api/v1/models/{name}                     versions, aliases, every decision (GetModel)
///   /api/v1/openapi.json                      the OpenAPI 3.1 document (any cluster certificate)
public enum HTTPSAPI {
    static func bind(host: String, port: Int, group: EventLoopGroup, ssl: NIOSSLContext, core: ClusterCore, revocations: RevocationList,
                     limiter: ConnectionLimiter, logger: Logger) async throws -> Channel {
        try await ServerBootstrap(group: group)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { channel in
                limiter.secure(channel, tls: ssl, authentication: .tlsHandshake).flatMap {
                    channel.pipeline.configureHTTPServerPipeline()
                }.flatMap {
                    channel.pipeline.addHandler(APIHandler(core: core, revocations: revocations, logger: logger))
                }
            }
            .bind(host: host, port: port).get()
    }

    /// The most jobs one `GET /api/v1/jobs?limit=N` returns; larger limits are clamped.
    public static let maxLimit = ClusterStore.maxListedJobs
    public static let defaultLimit = 50

    /// What a path asks for: a wire request (answered and permitted as on the cluster
    /// port), or the API's own description, which any cluster certificate may read.
    enum Route: Equatable {
        case wire(WireEnvelope.OneOf_Body)
        case openAPI

        /// The wire request whose permission this route needs; nil = any cluster certificate.
        var permission: WireEnvelope.OneOf_Body? {
            if case let .wire(body) = self { return body }
            return nil
        }
    }

    /// The router: a plain function from a path to what it asks for, so the API is
    /// answered by the same code and checked against the same ``Permissions`` table as
    /// the cluster port.
    static func route(for path: String, query: [String: String]) throws -> Route {
        let parts = path.split(separator: "/").map { String($0).removingPercentEncoding ?? String($0) }
        guard parts.count >= 3, parts[0] == "api", parts[1] == "v1" else {
            throw WireError.notFound(what: "\(path); routes live under /api/v1/ (the list: /api/v1/openapi.json)")
        }
        switch Array(parts.dropFirst(2)) {
        case ["openapi.json"]:
            return .openAPI
        case let list where list.count == 3 && list[0] == "experiments" && list[2] == "runs":
            let sort = query["sort"] ?? ""
            let ascending: Bool
            switch query["order"] {
            case nil, "": ascending = !sort.isEmpty && MetricName.lowerIsBetter(sort)
            case "asc": ascending = true
            case "desc": ascending = false
            case let other?: throw WireError.invalidArgument("order must be asc or desc, got \"\(other)\"; leave it out for best first")
            }
            let count = try limit(query["limit"])
            return .wire(.listRuns(.with { $0.experiment = list[1]; $0.sortBy = sort; $0.ascending = ascending; $0.limit = UInt32(count) }))
        default:
            return .wire(try request(for: path, query: query))
        }
    }

    /// The wire request a path mirrors.
    static func request(for path: String, query: [String: String]) throws -> WireEnvelope.OneOf_Body {
        let parts = path.split(separator: "/").map { String($0).removingPercentEncoding ?? String($0) }
        guard parts.count >= 3, parts[0] == "api", parts[1] == "v1" else {
            throw WireError.notFound(what: "\(path); routes live under /api/v1/")
        }
        switch Array(parts.dropFirst(2)) {
        case ["jobs"]:
            let count = try limit(query["limit"])
            return .listJobs(.with { $0.limit = UInt32(count) })
        case let list where list.count == 2 && list[0] == "jobs":
            return .getJob(.with { $0.jobID = list[1] })
        case ["workers"]:
            return .listWorkers(WireListWorkers())
        case ["experiments"]:
            return .listExperiments(WireListExperiments())
        case ["models"]:
            return .listModels(WireListModels())
        case let list where list.count == 2 && list[0] == "models":
            return .getModel(.with { $0.name = list[1] })
        default:
            throw WireError.notFound(what: "\(path); the routes are listed in /api/v1/openapi.json")
        }
    }

    /// `limit` as given, defaulting to 50 and clamped to ``maxLimit`` so one request
    /// cannot make the coordinator load its whole history.
    static func limit(_ text: String?) throws -> Int {
        guard let text, !text.isEmpty else { return defaultLimit }
        guard let value = Int(text), value >= 1 else {
            throw WireError.invalidArgument("limit must be a whole number from 1 to \(maxLimit), got \"\(text)\"")
        }
        return min(value, maxLimit)
    }

    /// Answers a route that ``route(for:query:)`` produced, as the JSON the API serves.
    static func answer(_ route: Route, core: ClusterCore) -> EventLoopFuture<JSONValue> {
        let resources = APIResources(kinds: core.planners.descriptors)
        switch route {
        case .openAPI:
            return core.loop.makeSucceededFuture(OpenAPIDocument.make(resources: resources))
        case let .wire(request):
            switch request {
            case let .listJobs(list):
                return core.listJobs(limit: Int(list.limit)).map { ["jobs": .array($0.jobs.map(resources.job.render))] }
            case let .getJob(get):
                return core.summary(of: get.jobID).map(resources.job.render)
            case .listWorkers:
                return core.workers().map { ["workers": .array($0.workers.map(APIResources.worker.render))] }
            case .listExperiments:
                return core.registry.experiments().map { ["experiments": .array($0.experiments.map(APIResources.experiment.render))] }
            case let .listRuns(runs):
                return core.registry.runs(runs).map {
                    APIResources.runsPage.render(.init(experiment: runs.experiment, sort: runs.sortBy, ascending: runs.ascending, total: $0.total, runs: $0.runs))
                }
            case .listModels:
                return core.registry.models().map { ["models": .array($0.models.map(APIResources.modelSummary.render))] }
            case let .getModel(get):
                return core.registry.model(get.name).map(APIResources.modelDetail.render)
            default:
                return core.loop.makeFailedFuture(WireError.notFound(what: "\(Permissions.name(of: request)) has no API route"))
            }
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
        guard head.method == .GET else {
            return respond(context: context, status: .methodNotAllowed, body: Self.errorJSON("the API is read-only: use GET"))
        }
        let (path, query) = Self.target(head.uri)
        let route: HTTPSAPI.Route
        do {
            route = try HTTPSAPI.route(for: path, query: query)
        } catch {
            return respond(context: context, status: Self.status(for: error), body: Self.errorJSON("\(error)"))
        }
        if let request = route.permission, !Permissions.allowed(request, for: peer.role) {
            let refusal = WireError.forbidden(role: peer.role.rawValue, message: "a \(peer.role.rawValue) certificate may not send \(Permissions.name(of: request)), which \(head.uri) answers")
            return respond(context: context, status: .forbidden, body: Self.errorJSON("\(refusal)"))
        }
        let bound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
        HTTPSAPI.answer(route, core: core).hop(to: context.eventLoop).whenComplete { result in
            let (handler, context) = bound.value
            switch result {
            case let .success(json):
                handler.respond(context: context, status: .ok, body: json.text())
            case let .failure(error):
                // Worded as the cluster port words it, so the CLI and the API say the same.
                let shown: Error = (error as? RegistryError)?.wire ?? error
                handler.respond(context: context, status: Self.status(for: shown), body: Self.errorJSON(String(describing: shown)))
            }
        }
    }

    static func status(for error: Error) -> HTTPResponseStatus {
        switch error as? WireError {
        case .notFound?: return .notFound
        case .invalidArgument?: return .badRequest
        case .forbidden?: return .forbidden
        default: return .internalServerError
        }
    }

    /// The path (still percent-encoded: the router decodes each segment once, so `%2F`
    /// stays inside its segment) and the query of a request target. An origin-form target
    /// is split by hand: `URLComponents` would read `//api/...` as a host name.
    static func target(_ uri: String) -> (path: String, query: [String: String]) {
        var path = uri
        var queryText: Substring = ""
        if let mark = uri.firstIndex(of: "?") {
            path = String(uri[..<mark])
            queryText = uri[uri.index(after: mark)...]
        }
        if !path.hasPrefix("/") {
            // Absolute form (`https://host/api/...`) or `*`.
            path = URLComponents(string: path)?.percentEncodedPath ?? path
        }
        var query: [String: String] = [:]
        for item in URLComponents(string: "?" + queryText)?.queryItems ?? [] { query[item.name] = item.value ?? "" }
        return (path, query)
    }

    /// `{"error": message}`, with every character JSON requires escaped (a path can carry
    /// quotes, backslashes and percent-encoded control characters into the message).
    static func errorJSON(_ message: String) -> String {
        var escaped = ""
        for scalar in message.unicodeScalars {
            switch scalar {
            case "\"": escaped += "\\\""
            case "\\": escaped += "\\\\"
            case "\n": escaped += "\\n"
            case "\r": escaped += "\\r"
            case "\t": escaped += "\\t"
            case _ where scalar.value < 0x20: escaped += String(format: "\\u%04x", scalar.value)
            default: escaped.unicodeScalars.append(scalar)
            }
        }
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
