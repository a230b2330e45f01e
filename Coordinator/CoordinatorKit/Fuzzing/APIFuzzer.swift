import Foundation
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import NIOSSL
import Wire

/// Sends random HTTP requests to a running coordinator's HTTPS API with valid client
/// certificates of each role: random paths (valid prefixes with random segments,
/// percent-encoding, `..`, very long), methods (valid and garbage), headers (huge,
/// duplicated, invalid), query strings and bodies. Requests are raw bytes on a TLS
/// connection, so malformed ones reach the server as written.
///
/// Every request must get an HTTP status within the timeout, never a 5xx, and every JSON
/// body must parse. For well-formed requests the script also states the exact status the
/// API's routes promise (HTTPSAPI's doc comment); for malformed ones, a 4xx.
public enum APIFuzzer {
    public enum Expected: Equatable, Sendable, CustomStringConvertible {
        /// A well-formed request: the status the routes promise.
        case status(Int)
        /// A malformed request: refused with a 4xx.
        case clientError
        /// Well-formed, but the outcome depends on how lenient the HTTP parser is (bare LF,
        /// huge or non-ASCII headers, odd query strings): any status but a 5xx.
        case anyStatus

        public var description: String {
            switch self {
            case let .status(s): return "\(s)"
            case .clientError: return "a 4xx"
            case .anyStatus: return "any status below 500"
            }
        }
    }

    public struct Request: Equatable, Sendable {
        public var peer: Int
        public var bytes: [UInt8]
        public var expect: Expected
        public var summary: String
    }

    public struct Options: Sendable {
        public var requests: Int
        public var concurrency: Int
        public var seed: UInt64
        public var timeout: Duration

        public init(requests: Int, concurrency: Int = 4, seed: UInt64 = 0x70E7, timeout: Duration = .seconds(15)) {
            self.requests = requests
            self.concurrency = concurrency
            self.seed = seed
            self.timeout = timeout
        }
    }

    public struct Stats: Sendable, CustomStringConvertible {
        public var requests = 0
        public var bytesSent = 0
        public var byRole: [String: Int] = [:]
        public var statuses: [Int: Int] = [:]
        /// Well-formed requests whose status the routes promise exactly.
        public var exact = 0
        /// No status within the timeout.
        public var hangs = 0
        /// The connection ended before a status line arrived.
        public var noStatus = 0
        public var serverErrors = 0
        /// A status other than the one promised.
        public var mismatches = 0
        public var invalidJSON = 0
        public var connectFailures = 0
        public var problems: [String] = []

        mutating func problem(_ text: String) { if problems.count < 30 { problems.append(text) } }

        public init() {}

        public mutating func merge(_ o: Stats) {
            requests += o.requests; bytesSent += o.bytesSent
            byRole.merge(o.byRole, uniquingKeysWith: +); statuses.merge(o.statuses, uniquingKeysWith: +)
            exact += o.exact; hangs += o.hangs; noStatus += o.noStatus; serverErrors += o.serverErrors
            mismatches += o.mismatches; invalidJSON += o.invalidJSON; connectFailures += o.connectFailures
            for p in o.problems { problem(p) }
        }

        public var description: String {
            var lines = [
                "\(requests) requests (\(byRole.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: " "))), \(bytesSent) bytes; \(exact) with an exact promised status",
                "statuses: \(statuses.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: " "))",
                "\(hangs) hangs, \(noStatus) without status, \(serverErrors) server errors, \(mismatches) mismatches, \(invalidJSON) invalid JSON bodies, \(connectFailures) failed to connect",
            ]
            lines += problems.map { "  problem: \($0)" }
            return lines.joined(separator: "\n")
        }
    }

    // MARK: Requests

    /// The request number `index` makes, for `roles` (the certificates' roles in order).
    public static func request(seed: UInt64, index: Int, roles: [ClusterRole]) -> Request {
        var rng = FuzzRandom(seed: seed ^ (UInt64(index) &* 0xD6E8_FEB8_6659_FD93))
        let peer = rng.below(roles.count)
        let role = roles[peer]
        // Malformed: must be refused with a 4xx. Unpredictable: any status but a 5xx.
        var malformed = false
        var predictable = true
        var notes: [String] = []

        // Method.
        var method = "GET"
        switch rng.below(10) {
        case 0, 1: method = rng.pick(["POST", "PUT", "DELETE", "HEAD", "OPTIONS", "PATCH"])
        case 2:
            malformed = true
            method = rng.pick(["GETT", "get", "G ET", "", "\u{0}GET", String(repeating: "A", count: 5000), "BREW", "POSTGET"])
        default: break
        }

        // Path: a route, a route with random segments, or noise.
        var segments: [String] = []
        var cleanSegments: [String] = []  // what the route sees, when clean
        var prefix = "/api/v1"
        switch rng.below(10) {
        case 0: prefix = rng.pick(["", "/api", "/api/v2", "/API/v1", "/api/v1/..", "/."])
        case 1:
            prefix = rng.pick(["*", "api/v1", "/api/v1/%ZZ", "/api/v1/%", "/api/v1/\u{7F}", "/api/v1/a b", "/api/v1/日本"])
        default: break
        }
        let route = rng.pick(["jobs", "jobs/*", "workers", "experiments", "experiments/*/runs", "openapi.json", "models", "models/*", "*", "*/*", "jobs/*/*", "models/*/*/*"])
        for part in route.split(separator: "/") {
            if part == "*" {
                let raw = segment(&rng)
                segments.append(raw)
                cleanSegments.append(raw)
            } else {
                segments.append(String(part))
                cleanSegments.append(String(part))
            }
        }
        var path = prefix + "/" + segments.joined(separator: "/")
        if rng.chance(8) { path = path.replacingOccurrences(of: "/", with: "//") }
        if prefix.hasPrefix("*") || prefix.hasPrefix("api") || prefix.contains("%") || prefix.contains(" ") || prefix.contains("\u{7F}") || prefix.contains("日") {
            malformed = true
        }
        if rng.chance(12) && !malformed {
            // The absolute form a proxy would send: the same route.
            path = "https://localhost" + path
        }
        if rng.chance(20) {
            malformed = true
            path += "/" + String(repeating: "a/", count: 2000 + rng.below(40_000))
        }

        // Query.
        var limit: String?
        var query = ""
        switch rng.below(8) {
        case 0, 1:
            let value = rng.pick(["", "0", "1", "-5", "1000", "5000", "99999999999999999999", "many", "%31", "+7", "1.5"])
            query = "?limit=\(value)"
            limit = value == "%31" ? "1" : value
        case 2: query = "?sort=\(rng.pick(["valid_auc", "", "x%20y"]))&order=\(rng.pick(["asc", "desc", ""]))"
        case 3: predictable = false; query = rng.pick(["?limit=1&limit=many", "?&&==&", "?%ZZ=1", "?limit", "?" + String(repeating: "q=1&", count: 500 + rng.below(5000)), "?\u{0}"])
        default: break
        }

        // Version.
        var version = "HTTP/1.1"
        switch rng.below(12) {
        case 0: version = "HTTP/1.0"
        case 1: malformed = true; version = rng.pick(["HTTP/2.0", "HTTP/9.9", "HTTP/1.1 ", "http/1.1", "", "HTTP/1.1\u{0}", "HTTP/11"])
        default: break
        }

        // Headers.
        var headers: [String] = []
        if !rng.chance(10) { headers.append("Host: localhost") }
        var bodyBytes: [UInt8] = []
        for _ in 0..<rng.below(4) {
            switch rng.below(12) {
            case 0: headers.append("X-Fuzz: " + String(repeating: "h", count: 1024 + rng.below(16 * 1024)))
            case 1: headers.append("Accept: application/json"); headers.append("Accept: text/html")
            case 2: headers.append("Connection: " + rng.pick(["close", "keep-alive", "upgrade", "garbage"]))
            case 3: headers.append("Expect: 100-continue")
            case 4: malformed = true; headers.append(rng.pick(["Bad Header: x", "NoColon", ": empty-name", "X-Null: a\u{0}b", "X-Bin: \u{1}\u{2}\u{7F}", " folded: continuation"]))
            case 5: predictable = false; headers.append("X-Huge: " + String(repeating: "H", count: (256 << 10) + rng.below(1 << 20)))
            case 6: predictable = false; headers += (0..<(100 + rng.below(3000))).map { "X-Many-\($0): \($0)" }
            case 7: malformed = true; headers.append("Content-Length: " + rng.pick(["-1", "abc", "99999999999999999999999", "1, 2"]))
            case 8: malformed = true; headers.append("Content-Length: 3"); headers.append("Content-Length: 4"); bodyBytes = Array("abcd".utf8)
            case 9: predictable = false; headers.append("X-Unicode: " + rng.pick(FuzzRandom.oddScalars.filter { $0 != "\n" && $0 != "\r\n" && $0 != "\u{0}" }))
            case 10:
                let agent = rng.string().filter { $0.isASCII && !$0.isNewline && $0 != "\u{0}" && $0 != "\t" }
                // Megabyte headers are refused by the HTTP parser (400): legal, not promised.
                if agent.utf8.count > 64 << 10 { predictable = false }
                headers.append("User-Agent: " + agent)
            default: headers.append("Cookie: a=1"); headers.append("Cookie: b=2")
            }
        }

        // Body: none, sized, chunked, or chunked garbage.
        var body: [UInt8] = []
        if bodyBytes.isEmpty {
            switch rng.below(8) {
            case 0:
                body = rng.bytes(rng.chance(10) ? (1 << 20) + rng.below(1 << 20) : rng.below(4096))
                headers.append("Content-Length: \(body.count)")
            case 1:
                let chunks = (0..<(1 + rng.below(4))).map { _ in rng.bytes(1 + rng.below(2048)) }
                headers.append("Transfer-Encoding: chunked")
                for chunk in chunks { body += Array("\(String(chunk.count, radix: 16))\r\n".utf8) + chunk + Array("\r\n".utf8) }
                body += Array("0\r\n\r\n".utf8)
            case 2:
                malformed = true
                headers.append("Transfer-Encoding: chunked")
                // Each is complete as bytes go, so the server has all it needs to refuse it.
                body = Array(rng.pick(["zz\r\nabc\r\n0\r\n\r\n", "1\r\nab\r\n0\r\n\r\n", "-1\r\n\r\n"]).utf8)
            default: break
            }
        } else {
            body = bodyBytes
        }

        var text = "\(method) \(path)\(query) \(version)\r\n" + headers.map { $0 + "\r\n" }.joined() + "\r\n"
        if rng.chance(15) {
            predictable = false
            text = text.replacingOccurrences(of: "\r\n", with: "\n")
        }
        // A request head past the HTTP parser's size limit is refused (400): legal, so
        // only "no 5xx" is promised for it.
        if text.utf8.count > 64 << 10 { predictable = false }
        let bytes = Array(text.utf8) + body
        if method == "HEAD" { notes.append("HEAD") }

        let expect: Expected
        if malformed {
            expect = .clientError
        } else if predictable {
            expect = .status(promisedStatus(method: method, prefix: prefix, segments: cleanSegments, limit: limit, role: role))
        } else {
            expect = .anyStatus
        }
        let summary = "\(role.rawValue) \(method.prefix(16)) \(path.prefix(120))\(query.prefix(40)) \(version) [\(headers.count) headers, \(body.count) body bytes\(notes.isEmpty ? "" : ", " + notes.joined(separator: ","))]"
        return Request(peer: peer, bytes: bytes, expect: expect, summary: summary)
    }

    /// One non-empty path segment as sent. Percent-encoding never splits or empties a
    /// segment (an encoded `/` is a character of its segment), so the route's shape is
    /// known whatever the segment holds.
    static func segment(_ rng: inout FuzzRandom) -> String {
        let safe = Array("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_~")
        switch rng.below(8) {
        case 0, 1, 2: return String((0..<(1 + rng.below(20))).map { _ in safe[rng.below(safe.count)] })
        case 3:
            let encoded = ["%41", "%20", "%e2%82%ac", "%22", "%0A", "%5C", "%00", "%3C", "%7F", "%1b"]
            return "x" + (0..<(1 + rng.below(3))).map { _ in rng.pick(encoded) }.joined()
        case 4: return rng.pick(["..", "."])
        case 5: return String(repeating: "s", count: 4096 + rng.below(60_000))
        case 6: return rng.pick(["%2F", "%2e%2e", "%25", "%ZZ", "%", "a%2Fb", "%252F", "%ff%fe"])
        default: return rng.pick(["match", "job-x", "fuzz", "runs"])
        }
    }

    /// The status HTTPSAPI's routes promise a well-formed request: 405 for anything but
    /// GET, 404 outside the routes, 400 for a `limit` that is not a whole number ≥ 1, 403
    /// for a role the wire protocol does not let send the request the route mirrors, then
    /// 200 for lists and 404 for single things (this fuzzer's coordinator has no job,
    /// model or experiment by the random names it asks for); the API's own document is
    /// open to every cluster certificate.
    static func promisedStatus(method: String, prefix: String, segments: [String], limit: String?, role: ClusterRole) -> Int {
        guard method == "GET" else { return 405 }
        let parts = (prefix.split(separator: "/").map(String.init) + segments).filter { !$0.isEmpty }
        guard parts.count >= 3, parts[0] == "api", parts[1] == "v1" else { return 404 }
        let route = Array(parts.dropFirst(2))
        let isOperator = role == .operator
        let readsModels = role == .operator || role == .gateway
        switch route.count {
        case 1 where route[0] == "jobs":
            if let limit, !limit.isEmpty, (Int(limit) ?? 0) < 1 { return 400 }
            return isOperator ? 200 : 403
        case 1 where route[0] == "workers": return isOperator ? 200 : 403
        case 1 where route[0] == "models": return readsModels ? 200 : 403
        case 2 where route[0] == "jobs": return isOperator ? 404 : 403
        case 2 where route[0] == "models": return readsModels ? 404 : 403
        case 1 where route[0] == "experiments": return isOperator ? 200 : 403
        case 1 where route[0] == "openapi.json": return 200
        case 3 where route[0] == "experiments" && route[2] == "runs": return isOperator ? 404 : 403
        default: return 404
        }
    }

    // MARK: Running

    public static func run(host: String, port: Int, identities: [TLSIdentity], options: Options,
                           group: EventLoopGroup = MultiThreadedEventLoopGroup.singleton) async throws -> Stats {
        let roles = identities.map { $0.role ?? .operator }
        let contexts = try identities.map { try $0.makeClientContext() }
        let counter = NIOLockedValueBox(0)
        return await withTaskGroup(of: Stats.self) { tasks in
            for _ in 0..<max(1, options.concurrency) {
                tasks.addTask {
                    var stats = Stats()
                    while true {
                        let index = counter.withLockedValue { n -> Int? in
                            guard n < options.requests else { return nil }
                            defer { n += 1 }
                            return n
                        }
                        guard let index else { break }
                        let request = Self.request(seed: options.seed, index: index, roles: roles)
                        let response = await send(request.bytes, host: host, port: port, context: contexts[request.peer], timeout: options.timeout,
                                                  isHead: request.summary.contains(", HEAD]"), group: group)
                        stats.requests += 1
                        stats.bytesSent += request.bytes.count
                        stats.byRole[roles[request.peer].rawValue, default: 0] += 1
                        check(request, response, index: index, into: &stats)
                    }
                    return stats
                }
            }
            var total = Stats()
            for await s in tasks { total.merge(s) }
            return total
        }
    }

    static func check(_ request: Request, _ response: Response, index: Int, into stats: inout Stats) {
        let label = "request \(index) \(request.summary)"
        switch response {
        case let .failedToConnect(error):
            stats.connectFailures += 1
            stats.problem("\(label): could not connect: \(error)")
        case .timedOut:
            stats.hangs += 1
            stats.problem("\(label): no status within the timeout")
        case let .closed(error):
            stats.noStatus += 1
            stats.problem("\(label): closed without a status (\(error ?? "clean close"))")
        case let .status(status, contentType, body):
            stats.statuses[status, default: 0] += 1
            if status >= 500 {
                stats.serverErrors += 1
                stats.problem("\(label): \(status) \(String(decoding: body.prefix(300), as: UTF8.self))")
            }
            switch request.expect {
            case let .status(expected):
                stats.exact += 1
                if status != expected {
                    stats.mismatches += 1
                    stats.problem("\(label): status \(status), promised \(expected): \(String(decoding: body.prefix(300), as: UTF8.self))")
                }
            case .clientError:
                if !(400..<500).contains(status) {
                    stats.mismatches += 1
                    stats.problem("\(label): status \(status) for a malformed request, expected a 4xx")
                }
            case .anyStatus:
                break
            }
            if contentType?.lowercased().hasPrefix("application/json") == true, !body.isEmpty,
               (try? JSONSerialization.jsonObject(with: Data(body), options: [.fragmentsAllowed])) == nil {
                stats.invalidJSON += 1
                stats.problem("\(label): body is not JSON: \(String(decoding: body.prefix(300), as: UTF8.self).debugDescription)")
            }
        }
    }

    public enum Response: Sendable {
        case status(Int, contentType: String?, body: [UInt8])
        case timedOut
        case closed(String?)
        case failedToConnect(String)
    }

    /// One GET with a client certificate: the status and body (for checks after a run).
    public static func get(_ path: String, host: String, port: Int, identity: TLSIdentity, timeout: Duration = .seconds(15),
                           group: EventLoopGroup = MultiThreadedEventLoopGroup.singleton) async throws -> Response {
        let request = Array("GET \(path) HTTP/1.1\r\nHost: localhost\r\n\r\n".utf8)
        return await send(request, host: host, port: port, context: try identity.makeClientContext(), timeout: timeout, isHead: false, group: group)
    }

    /// Sends `bytes` on a new TLS connection and reads one response, bounded by `timeout`.
    static func send(_ bytes: [UInt8], host: String, port: Int, context: NIOSSLContext, timeout: Duration, isHead: Bool,
                     group: EventLoopGroup) async -> Response {
        let reader = RawHTTPReader()
        let channel: Channel
        do {
            channel = try await ClientBootstrap(group: group)
                .connectTimeout(.seconds(10))
                .channelInitializer { channel in
                    channel.eventLoop.makeCompletedFuture {
                        try channel.pipeline.syncOperations.addHandler(try NIOSSLClientHandler(context: context, serverHostname: nil))
                        try channel.pipeline.syncOperations.addHandler(reader)
                    }
                }
                .connect(host: host, port: port).get()
        } catch {
            return .failedToConnect("\(error)")
        }
        defer { channel.close(promise: nil) }
        // The server may answer (400) and close before it read everything: a failed
        // write is not a failure, a missing status is.
        try? await channel.writeAndFlush(ByteBuffer(bytes: bytes))
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            if let response = reader.response(isHead: isHead) { return response }
            try? await Task.sleep(for: .milliseconds(5))
        }
        return reader.response(isHead: isHead, final: true) ?? .timedOut
    }
}

/// Collects a response's bytes and says when one full response (status, headers, body by
/// Content-Length) or the end of the connection has arrived.
final class RawHTTPReader: ChannelInboundHandler, @unchecked Sendable {
    typealias InboundIn = ByteBuffer
    private let lock = NIOLock()
    private var bytes: [UInt8] = []
    private var closed = false
    private var error: String?

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let buffer = unwrapInboundIn(data)
        lock.withLock { bytes += buffer.readableBytesView }
    }

    func channelInactive(context: ChannelHandlerContext) { lock.withLock { closed = true } }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        lock.withLock { self.error = "\(error)" }
        context.close(promise: nil)
    }

    /// The response once complete (or once the connection ended); nil while waiting.
    /// With `final`, whatever status arrived, even if its body is short.
    func response(isHead: Bool, final: Bool = false) -> APIFuzzer.Response? {
        lock.withLock {
            let crlf: [UInt8] = [13, 10, 13, 10]
            guard let end = (0..<max(0, bytes.count - 3)).first(where: { bytes[$0..<($0 + 4)].elementsEqual(crlf) }) else {
                return closed ? .closed(error) : nil
            }
            let head = String(decoding: bytes[..<end], as: UTF8.self)
            let lines = head.components(separatedBy: "\r\n")
            let statusParts = lines[0].split(separator: " ")
            guard statusParts.count >= 2, statusParts[0].hasPrefix("HTTP/"), let status = Int(statusParts[1]) else {
                return .closed("not an HTTP response: \(lines[0].prefix(80))")
            }
            var contentType: String?
            var length = 0
            for line in lines.dropFirst() {
                let pair = line.split(separator: ":", maxSplits: 1).map { $0.trimmingCharacters(in: .whitespaces) }
                guard pair.count == 2 else { continue }
                if pair[0].lowercased() == "content-length" { length = Int(pair[1]) ?? 0 }
                if pair[0].lowercased() == "content-type" { contentType = pair[1] }
            }
            let body = Array(bytes[(end + 4)...])
            if isHead || body.count >= length || closed || final {
                return .status(status, contentType: contentType, body: Array(body.prefix(isHead ? 0 : length)))
            }
            return nil
        }
    }
}
