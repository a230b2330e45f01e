import Foundation
import Hummingbird
import Learning
import NIOCore
import NIOPosix
import Wire

/// The gateway's HTTP API, as plain functions on a Hummingbird router.
///
/// Every error is JSON `{"error": "...", "field": "..."}` (field when one is to blame) with
/// the status that says whose fault it is: 400 bad input, 404 unknown user, 413 body over
/// the limit, 503 nothing to serve yet (or the event queue is full).
public enum GatewayRouter {
    public static let maxBodyBytes = 64 * 1024
    public static let maxEventsPerBatch = 1000

    public static func make(link: CoordinatorLink, metrics: GatewayMetrics) -> Router<BasicRequestContext> {
        let router = Router(context: BasicRequestContext.self)
        router.add(middleware: RequestMetrics(metrics: metrics))
        router.get("/healthz") { _, _ in json(["status": "ok"]) }
        router.get("/readyz") { _, _ -> Response in
            guard let s = link.state.snapshot else {
                return json(["status": "not ready", "reason": "no champion model and listings loaded yet"], status: .serviceUnavailable)
            }
            return json(["status": "ready", "model": s.modelName, "version": String(s.modelVersion)])
        }
        router.get("/metrics") { _, _ in
            Response(status: .ok, headers: [.contentType: "text/plain; version=0.0.4"], body: .init(byteBuffer: ByteBuffer(string: metrics.exposition())))
        }
        router.get("/v1/recommendations") { request, _ in try await recommendationsForUser(request, link: link) }
        router.post("/v1/recommendations") { request, _ in try await recommendationsForProfile(request, link: link) }
        router.post("/v1/events") { request, _ in try await events(request, link: link) }
        UserApp.routes(router, link: link)
        return router
    }

    // MARK: Recommendations

    struct RecommendationsResponse: Encodable {
        var user_id: Int?
        var model: String
        var model_version: Int
        var source: String
        var items: [RecommendationItem]
    }

    static func recommendationsForUser(_ request: Request, link: CoordinatorLink) async throws -> Response {
        let query = request.uri.queryParameters
        guard let text = query["user_id"].map(String.init), let user = Int(text), user > 0 else {
            return error("user_id is required and must be a positive integer", field: "user_id", status: .badRequest)
        }
        let k: Int
        switch parseK(query["k"].map(String.init)) {
        case let .success(value): k = value
        case let .failure(e): return e.response
        }
        guard let snapshot = link.state.snapshot else { return notReady() }
        guard let profile = snapshot.usersByID[user] else {
            return error("unknown user \(user)", field: "user_id", status: .notFound)
        }
        if let stored = await link.precomputed(user: user, snapshot: snapshot), k <= stored.items.count {
            return precomputedResponse(user: user, k: k, stored: stored, snapshot: snapshot)
        }
        return json(RecommendationsResponse(user_id: user, model: snapshot.modelName, model_version: snapshot.modelVersion,
                                            source: "live", items: try await live(profile, k: k, filter: CandidateFilter(), snapshot: snapshot)))
    }

    /// The bytes `json(RecommendationsResponse(...))` gives for stored recommendations (keys
    /// sorted), assembled from items encoded when they were cached: the precomputed path is
    /// the one that must be cheap, so per request only the envelope is written.
    static func precomputedResponse(user: Int, k: Int, stored: ServingState.CachedRecommendations, snapshot: ServingSnapshot) -> Response {
        Response(status: .ok, headers: [.contentType: "application/json"],
                 body: .init(byteBuffer: precomputedBody(user: user, k: k, stored: stored, snapshot: snapshot, allocator: ByteBufferAllocator())))
    }

    static func precomputedBody(user: Int, k: Int, stored: ServingState.CachedRecommendations, snapshot: ServingSnapshot,
                                allocator: ByteBufferAllocator) -> ByteBuffer {
        let items = stored.encoded.prefix(k)
        var body = allocator.buffer(capacity: items.reduce(160) { $0 + $1.readableBytes + 1 })
        body.writeString(#"{"items":["#)
        for (i, item) in items.enumerated() {
            if i > 0 { body.writeString(",") }
            body.writeImmutableBuffer(item)
        }
        body.writeString(#"],"model":\#(snapshot.modelNameJSON),"model_version":\#(snapshot.modelVersion),"source":"precomputed","user_id":\#(user)}"#)
        return body
    }

    /// An ad-hoc profile: what someone tells the product about themselves.
    struct Profile: Decodable {
        var budget: Double
        var region: String
        var household_size: Int?
        var risk_appetite: Double?
        var age: Int?
        var income: Double?
        var has_children: Bool?
        var max_commute_min: Double?
        var investment_horizon_years: Int?
        var prefers_new_build: Bool?
        var k: Int?
        var region_only: Bool?
        var budget_ceiling: Double?
    }

    static func recommendationsForProfile(_ request: Request, link: CoordinatorLink) async throws -> Response {
        var request = request
        let body: ByteBuffer
        do { body = try await request.collectBody(upTo: maxBodyBytes) }
        catch is NIOTooManyBytesError { return tooLarge() }
        let p: Profile
        switch decode(Profile.self, body) {
        case let .success(value): p = value
        case let .failure(e): return e.response
        }
        guard p.budget.isFinite, p.budget > 0 else { return error("budget must be a positive number (million KRW)", field: "budget", status: .badRequest) }
        guard DemoMarket.region(named: p.region) != nil else {
            return error("unknown region \"\(p.region)\"; one of " + DemoMarket.regions.map(\.name).joined(separator: ", "), field: "region", status: .badRequest)
        }
        let household = p.household_size ?? 2
        guard (1...20).contains(household) else { return error("household_size must be from 1 to 20", field: "household_size", status: .badRequest) }
        let risk = p.risk_appetite ?? 0.5
        guard risk.isFinite, (0...1).contains(risk) else { return error("risk_appetite must be from 0 to 1", field: "risk_appetite", status: .badRequest) }
        if let ceiling = p.budget_ceiling, !(ceiling.isFinite && ceiling > 0) {
            return error("budget_ceiling must be a positive number", field: "budget_ceiling", status: .badRequest)
        }
        let k: Int
        switch parseK(p.k.map(String.init)) {
        case let .success(value): k = value
        case let .failure(e): return e.response
        }
        guard let snapshot = link.state.snapshot else { return notReady() }
        let user = MarketUser(id: 0, age: p.age ?? 40, income: p.income ?? p.budget / 10, householdSize: household,
                              hasChildren: p.has_children ?? (household >= 3), maxCommuteMin: p.max_commute_min ?? 45, riskAppetite: risk,
                              investmentHorizonYears: p.investment_horizon_years ?? 10, prefersNewBuild: p.prefers_new_build ?? false,
                              preferredRegion: p.region, budget: p.budget)
        let filter = CandidateFilter(budgetCeiling: p.budget_ceiling ?? 1.2, regionOnly: p.region_only ?? false)
        return json(RecommendationsResponse(user_id: nil, model: snapshot.modelName, model_version: snapshot.modelVersion, source: "live",
                                            items: try await live(user, k: k, filter: filter, snapshot: snapshot)))
    }

    /// Live scoring runs on NIO's thread pool (a thread per core), not on the task serving
    /// the connection: the pool takes work first come, first served, so with more
    /// connections than cores a request waits for those before it only. On Swift's
    /// cooperative pool later requests overtook earlier ones: at 8 connections on 2 cores
    /// the p99 was 6× the median (150 ms against 25 ms).
    static func live(_ user: MarketUser, k: Int, filter: CandidateFilter, snapshot: ServingSnapshot) async throws -> [RecommendationItem] {
        try await NIOThreadPool.singleton.runIfActive { scoreLive(user, k: k, filter: filter, snapshot: snapshot) }
    }

    static func scoreLive(_ user: MarketUser, k: Int, filter: CandidateFilter, snapshot: ServingSnapshot) -> [RecommendationItem] {
        var recommender = snapshot.recommender
        recommender.k = k
        recommender.filter = filter
        return recommender.recommend(user).items.map {
            RecommendationItem(listing_id: $0.listingID, score: $0.score, rank: $0.rank, reasons: $0.reasons.map(\.phrase),
                               listing: snapshot.listingsByID[$0.listingID])
        }
    }

    static func parseK(_ text: String?) -> Result<Int, APIError> {
        guard let text else { return .success(10) }
        guard let k = Int(text), (1...100).contains(k) else {
            return .failure(APIError(message: "k must be an integer from 1 to 100", field: "k", status: .badRequest))
        }
        return .success(k)
    }

    // MARK: Events

    struct EventIn: Decodable {
        var event_id: String
        var user_id: Int
        var listing_id: Int
        var type: String
        /// RFC 3339; default now.
        var time: String?
    }

    struct EventsIn: Decodable { var events: [EventIn] }

    struct EventsAccepted: Encodable {
        var accepted: Int
        var delivered: Bool
        var duplicates: Int
        var queued: Int
    }

    static func events(_ request: Request, link: CoordinatorLink) async throws -> Response {
        var request = request
        let body: ByteBuffer
        do { body = try await request.collectBody(upTo: maxBodyBytes) }
        catch is NIOTooManyBytesError { return tooLarge() }
        let batch: EventsIn
        switch decode(EventsIn.self, body) {
        case let .success(value): batch = value
        case let .failure(e): return e.response
        }
        guard !batch.events.isEmpty, batch.events.count <= maxEventsPerBatch else {
            return error("send 1 to \(maxEventsPerBatch) events per request", field: "events", status: .badRequest)
        }
        let snapshot = link.state.snapshot
        var wire: [WireFeedbackEvent] = []
        for (i, e) in batch.events.enumerated() {
            guard FeedbackEventType(rawValue: e.type) != nil else {
                return error("events[\(i)].type \"\(e.type)\" is not one of impression, click, save, contract", field: "events[\(i)].type", status: .badRequest)
            }
            guard !e.event_id.isEmpty, e.event_id.utf8.count <= 128 else {
                return error("events[\(i)].event_id must be 1 to 128 bytes", field: "events[\(i)].event_id", status: .badRequest)
            }
            var time = Date().timeIntervalSince1970
            if let t = e.time {
                guard let parsed = Timestamp.parse(t) else {
                    return error("events[\(i)].time \"\(t)\" is not an RFC 3339 time", field: "events[\(i)].time", status: .badRequest)
                }
                time = parsed
            }
            if let snapshot {
                guard snapshot.usersByID[e.user_id] != nil else {
                    return error("events[\(i)]: unknown user \(e.user_id)", field: "events[\(i)].user_id", status: .notFound)
                }
                guard snapshot.listingsByID[e.listing_id] != nil else {
                    return error("events[\(i)]: unknown or inactive listing \(e.listing_id)", field: "events[\(i)].listing_id", status: .notFound)
                }
            }
            guard e.user_id > 0, e.user_id <= Int(Int32.max), e.listing_id > 0, e.listing_id <= Int(Int32.max) else {
                return error("events[\(i)]: ids must be from 1 to \(Int32.max)", field: "events[\(i)]", status: .badRequest)
            }
            wire.append(.with {
                $0.eventID = e.event_id
                $0.userID = UInt64(e.user_id)
                $0.listingID = UInt64(e.listing_id)
                $0.type = e.type
                $0.eventTimeMs = Int64(time * 1000)
            })
        }
        do {
            switch try await link.submit(wire) {
            case let .delivered(_, duplicates):
                return json(EventsAccepted(accepted: wire.count, delivered: true, duplicates: duplicates, queued: 0), status: .accepted)
            case let .queued(n):
                return json(EventsAccepted(accepted: wire.count, delivered: false, duplicates: 0, queued: n), status: .accepted)
            }
        } catch let e as EventQueue.QueueError {
            return error(e.description, field: nil, status: .serviceUnavailable)
        } catch let WireError.remote(code, message) {
            return error(message, field: nil, status: code == .notFound ? .notFound : .badRequest)
        }
    }

    // MARK: Helpers

    struct APIError: Error {
        var message: String
        var field: String?
        var status: HTTPResponse.Status
        var response: Response { GatewayRouter.error(message, field: field, status: status) }
    }

    /// Decodes JSON, turning decoding failures into a 400 that names the field.
    static func decode<T: Decodable>(_ type: T.Type, _ body: ByteBuffer) -> Result<T, APIError> {
        do {
            return .success(try JSONDecoder().decode(T.self, from: Data(buffer: body)))
        } catch let DecodingError.keyNotFound(key, context) {
            let path = (context.codingPath + [key]).map(fieldName).joined(separator: ".")
            return .failure(APIError(message: "\(path) is required", field: path, status: .badRequest))
        } catch let DecodingError.typeMismatch(expected, context) {
            let path = context.codingPath.map(fieldName).joined(separator: ".")
            return .failure(APIError(message: "\(path) must be \(describe(expected))", field: path, status: .badRequest))
        } catch let DecodingError.valueNotFound(expected, context) {
            let path = context.codingPath.map(fieldName).joined(separator: ".")
            return .failure(APIError(message: "\(path) must be \(describe(expected)), not null", field: path, status: .badRequest))
        } catch {
            return .failure(APIError(message: "the body is not valid JSON", field: nil, status: .badRequest))
        }
    }

    static func fieldName(_ key: any CodingKey) -> String {
        key.intValue.map { "[\($0)]" } ?? key.stringValue
    }

    static func describe(_ type: Any.Type) -> String {
        switch type {
        case is Double.Type, is Int.Type: return "a number"
        case is String.Type: return "a string"
        case is Bool.Type: return "true or false"
        default: return "\(type)"
        }
    }

    static func json<T: Encodable>(_ value: T, status: HTTPResponse.Status = .ok) -> Response {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        let data = (try? encoder.encode(value)) ?? Data("{}".utf8)
        return Response(status: status, headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(bytes: data)))
    }

    static func error(_ message: String, field: String?, status: HTTPResponse.Status) -> Response {
        var body = ["error": message]
        if let field { body["field"] = field }
        return json(body, status: status)
    }

    static func notReady() -> Response {
        error("no champion model is loaded yet: the coordinator has no champion of the served model, or is unreachable since the gateway started; see /readyz",
              field: nil, status: .serviceUnavailable)
    }

    static func tooLarge() -> Response {
        error("the body is larger than \(maxBodyBytes) bytes", field: nil, status: .contentTooLarge)
    }
}

/// Counts requests and their latency by route (the router's pattern, so ids never become
/// labels) and status.
struct RequestMetrics<Context: RequestContext>: RouterMiddleware {
    let metrics: GatewayMetrics

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        let start = DispatchTime.now().uptimeNanoseconds
        do {
            let response = try await next(request, context)
            metrics.request(route: context.endpointPath ?? "other", status: Int(response.status.code),
                            nanoseconds: Int64(DispatchTime.now().uptimeNanoseconds - start))
            return response
        } catch {
            let status = (error as? any HTTPResponseError)?.status.code ?? 500
            metrics.request(route: context.endpointPath ?? "other", status: Int(status), nanoseconds: Int64(DispatchTime.now().uptimeNanoseconds - start))
            throw error
        }
    }
}
