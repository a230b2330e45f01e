import Dispatch
import Hummingbird
import NIOCore
import NIOHTTPTypes

/// Answers `GET /v1/recommendations?user_id=N[&k=K]` from the cache of stored
/// recommendations right on the connection's event loop, in front of Hummingbird.
///
/// A stored answer is a few hundred bytes copied from memory, yet through the router it
/// cost a hop from the event loop to a Swift task and back, which was most of its price:
/// the precomputed path ran no faster than `/healthz`. Only requests this handler is sure
/// to answer exactly as the router would — a known user, a stored list at least `k` long,
/// a query of just `user_id` and `k` in plain digits, no `Connection: close` — are
/// answered here; everything else (errors, live scoring, other routes) goes on to the
/// router unchanged, so behaviour is the router's in every case this cannot settle.
///
/// Responses stay in request order on a pipelining connection: while a request passed to
/// the router has not been answered, later ones are passed on too.
final class PrecomputedFastPath: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPRequestPart
    typealias InboundOut = HTTPRequestPart
    typealias OutboundIn = HTTPResponsePart
    typealias OutboundOut = HTTPResponsePart

    static let route = "/v1/recommendations"

    private let link: CoordinatorLink
    private let metrics: GatewayMetrics
    /// Requests passed to the router whose response has not been written yet.
    private var routerRequests = 0
    private enum Current {
        case none
        /// Passing the current request's parts to the router.
        case passing
        /// Answering the current request here once its end arrives.
        case answering(ByteBuffer, started: UInt64)
    }
    private var current = Current.none

    init(link: CoordinatorLink, metrics: GatewayMetrics) {
        self.link = link
        self.metrics = metrics
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let part = unwrapInboundIn(data)
        switch (part, current) {
        case let (.head(head), _):
            let started = DispatchTime.now().uptimeNanoseconds
            if routerRequests == 0, let body = answer(head, allocator: context.channel.allocator) {
                current = .answering(body, started: started)
            } else {
                current = .passing
                routerRequests += 1
                context.fireChannelRead(data)
            }
        case (.body, .answering):
            break  // A GET's body means nothing; the router would not read it either.
        case let (.end, .answering(body, started)):
            current = .none
            var head = HTTPResponse(status: .ok)
            head.headerFields[.contentType] = "application/json"
            head.headerFields[.contentLength] = String(body.readableBytes)
            context.write(wrapOutboundOut(.head(head)), promise: nil)
            context.write(wrapOutboundOut(.body(body)), promise: nil)
            context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
            metrics.request(route: Self.route, status: 200, nanoseconds: Int64(DispatchTime.now().uptimeNanoseconds - started))
        case (.end, _):
            current = .none
            context.fireChannelRead(data)
        default:
            context.fireChannelRead(data)
        }
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        if case .end = unwrapOutboundIn(data), routerRequests > 0 { routerRequests -= 1 }
        context.write(data, promise: promise)
    }

    /// The body the router would send for this request, when it is a stored answer.
    private func answer(_ head: HTTPRequest, allocator: ByteBufferAllocator) -> ByteBuffer? {
        guard head.method == .get, head.headerFields[.connection] == nil, let path = head.path,
              let query = Self.query(path) else { return nil }
        guard let snapshot = link.state.snapshot, snapshot.usersByID[query.user] != nil, let job = snapshot.scoreJob,
              let stored = link.state.cached(job: job, user: query.user), query.k <= stored.items.count else { return nil }
        return GatewayRouter.precomputedBody(user: query.user, k: query.k, stored: stored, snapshot: snapshot, allocator: allocator)
    }

    /// `user_id` and `k` from `/v1/recommendations?user_id=N[&k=K]` (either order), when
    /// the query holds nothing else and both are plain digits in range; nil otherwise.
    static func query(_ path: String) -> (user: Int, k: Int)? {
        var utf8 = Substring(path).utf8
        let prefix = "\(route)?".utf8
        guard utf8.starts(with: prefix) else { return nil }
        utf8 = utf8.dropFirst(prefix.count)
        var user: Int?, k: Int?
        for pair in utf8.split(separator: UInt8(ascii: "&"), omittingEmptySubsequences: false) {
            guard let equals = pair.firstIndex(of: UInt8(ascii: "=")) else { return nil }
            let name = pair[..<equals], digits = pair[pair.index(after: equals)...]
            guard !digits.isEmpty, digits.count <= 9, digits.allSatisfy({ $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9") }) else { return nil }
            let value = digits.reduce(0) { $0 * 10 + Int($1 - UInt8(ascii: "0")) }
            if name.elementsEqual("user_id".utf8), user == nil { user = value }
            else if name.elementsEqual("k".utf8), k == nil { k = value }
            else { return nil }
        }
        guard let user, user > 0 else { return nil }
        let count = k ?? 10
        guard (1...100).contains(count) else { return nil }
        return (user, count)
    }
}
