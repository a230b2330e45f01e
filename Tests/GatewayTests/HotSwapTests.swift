import Foundation
import Testing
import Wire
@testable import CoordinatorKit

/// A plain HTTP/1.1 keep-alive client on a blocking socket: the load test needs many
/// requests per second from a few threads, more than URLSession gives on Linux.
final class KeepAliveClient {
    private let fd: Int32
    private var buffer: [UInt8] = []

    init(port: Int) throws {
        fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_port = in_port_t(UInt16(port).bigEndian)
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        let ok = withUnsafePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
        guard ok == 0 else { close(fd); throw WireError.unreachable("connect: \(String(cString: strerror(errno)))") }
        var one: Int32 = 1
        setsockopt(fd, Int32(IPPROTO_TCP), TCP_NODELAY, &one, socklen_t(MemoryLayout<Int32>.size))
        // A gateway that stops answering fails the test instead of hanging it.
        var timeout = timeval(tv_sec: 10, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
    }

    deinit { close(fd) }

    /// (status, body) of one GET on the kept-alive connection.
    func get(_ path: String) throws -> (Int, String) {
        let request = Array("GET \(path) HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".utf8)
        guard request.withUnsafeBytes({ send(fd, $0.baseAddress, $0.count, 0) }) == request.count else { throw WireError.connectionClosed }
        // Headers, then Content-Length bytes of body.
        var headerEnd: Int?
        while headerEnd == nil {
            try fill()
            headerEnd = find(Array("\r\n\r\n".utf8))
        }
        let head = String(decoding: buffer[..<headerEnd!], as: UTF8.self)
        let status = Int(head.split(separator: " ").dropFirst().first ?? "") ?? 0
        let length = head.split(separator: "\r\n").first { $0.lowercased().hasPrefix("content-length:") }
            .flatMap { Int($0.split(separator: ":")[1].trimmingCharacters(in: .whitespaces)) } ?? 0
        let start = headerEnd! + 4
        while buffer.count < start + length { try fill() }
        let body = String(decoding: buffer[start..<(start + length)], as: UTF8.self)
        buffer.removeFirst(start + length)
        return (status, body)
    }

    private func fill() throws {
        var chunk = [UInt8](repeating: 0, count: 65536)
        let n = chunk.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
        guard n > 0 else { throw WireError.connectionClosed }
        buffer.append(contentsOf: chunk[..<n])
    }

    private func find(_ needle: [UInt8]) -> Int? {
        guard buffer.count >= needle.count else { return nil }
        for i in 0...(buffer.count - needle.count) where buffer[i] == needle[0] && Array(buffer[i..<(i + needle.count)]) == needle { return i }
        return nil
    }
}

@Suite(.serialized, .timeLimit(.minutes(6))) struct HotSwapTests {
    /// Ten promotions while clients send 100,000 requests: none fails, each names a version
    /// that was champion during its request (allowing the gateway the time it takes to hear
    /// of a promotion, measured as the largest gap seen), and no client sees versions go back.
    @Test func tenPromotionsUnderLoadFailNoRequestAndVersionsOnlyMoveForward() async throws {
        let t = try await GatewayTestCluster()
        try await t.startGateway(refresh: .seconds(30))
        try await t.waitReady(version: 1)
        let port = t.gateway!.port_!
        let clients = 4, perClient = 25_000
        let clock = ContinuousClock()
        let origin = clock.now
        struct Sample { var start: Duration; var end: Duration; var status: Int; var version: Int }

        let promotions = Task { () -> [(version: Int, at: Duration)] in
            var moves: [(Int, Duration)] = [(1, .zero)]
            for _ in 0..<10 {
                try await Task.sleep(for: .milliseconds(400))
                let v = try t.promoteNewVersion()
                moves.append((v, clock.now - origin))
            }
            return moves
        }
        let samples = try await withThrowingTaskGroup(of: [Sample].self) { group in
            for c in 0..<clients {
                group.addTask {
                    // Blocking sockets on threads of their own: on the cooperative pool they
                    // would starve the gateway's own request handlers.
                    try await onThread {
                        let client = try KeepAliveClient(port: port)
                        var out: [Sample] = []
                        out.reserveCapacity(perClient)
                        for i in 0..<perClient {
                            let start = clock.now - origin
                            let (status, body) = try client.get("/v1/recommendations?user_id=\(1 + (c * perClient + i) % 60)&k=3")
                            let end = clock.now - origin
                            var version = -1
                            if let r = body.range(of: "\"model_version\":") {
                                version = Int(body[r.upperBound...].prefix { $0.isNumber }) ?? -1
                            }
                            out.append(Sample(start: start, end: end, status: status, version: version))
                        }
                        return out
                    }
                }
            }
            var all: [[Sample]] = []
            for try await s in group { all.append(s) }
            return all
        }
        let moves = try await promotions.value
        let flat = samples.flatMap { $0 }
        #expect(flat.count == clients * perClient)
        #expect(flat.filter { $0.status != 200 }.count == 0)
        #expect(Set(flat.map(\.version)).isSuperset(of: [1]))
        // Every promotion was served before the load ended, or the test proves nothing.
        #expect(moves.count == 11)
        #expect(flat.contains { $0.version == 11 }, "the last version was never served: the load ended too early")
        // No client ever goes back to an older version.
        for s in samples {
            let versions = s.map(\.version)
            #expect(zip(versions, versions.dropFirst()).allSatisfy { $0 <= $1 }, "a client saw a version go back")
        }
        // A version is served only after it became champion, and not long after the next
        // one did (the propagation of one alias move to the gateway).
        let lag = Duration.seconds(2)
        for s in flat {
            let became = moves.first { $0.version == s.version }!.at
            let replaced = moves.first { $0.version == s.version + 1 }?.at
            #expect(becameBefore(became, s.end), "v\(s.version) served before it was promoted")
            if let replaced { #expect(s.start < replaced + lag, "v\(s.version) served \(s.start - replaced) after v\(s.version + 1) was promoted") }
        }
        await t.stop()
    }

    func becameBefore(_ a: Duration, _ b: Duration) -> Bool { a <= b }
}

/// Runs blocking work on a new thread and awaits its result.
func onThread<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
    try await withCheckedThrowingContinuation { continuation in
        let thread = Thread { continuation.resume(with: Result(catching: body)) }
        thread.start()
    }
}
