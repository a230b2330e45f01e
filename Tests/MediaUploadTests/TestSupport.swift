import Crypto
import Foundation
import Logging
import NIOConcurrencyHelpers
@testable import MediaUpload

/// The token every test configures: only unreserved characters, so it reads the same
/// in a header, a query and a form body, and a leak cannot hide behind percent-encoding.
let secretToken = "ya29.SECRET-TOKEN-0123456789abcdef"

/// Collects every log line (message and metadata) a client writes.
final class LogCapture: @unchecked Sendable {
    private let lock = NIOLock()
    private var lines: [String] = []

    var all: [String] { lock.withLock { lines } }
    func append(_ line: String) { lock.withLock { lines.append(line) } }

    func logger(_ label: String) -> Logger {
        Logger(label: label) { _ in CapturingHandler(capture: self) }
    }
}

struct CapturingHandler: LogHandler {
    let capture: LogCapture
    var metadata: Logger.Metadata = [:]
    var logLevel: Logger.Level = .trace

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    func log(event: LogEvent) {
        let merged = metadata.merging(event.metadata ?? [:]) { $1 }
        let fields = merged.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: " ")
        capture.append("\(event.level) \(event.message) \(fields)")
    }
}

/// Records the waits a `Backoff` asks for instead of waiting.
final class SleepRecorder: @unchecked Sendable {
    private let lock = NIOLock()
    private var waits: [Duration] = []

    var all: [Duration] { lock.withLock { waits } }

    func backoff(initial: Duration = .milliseconds(100), maxAttempts: Int = 4) -> Backoff {
        Backoff(initial: initial, multiplier: 2, maximum: .seconds(10), maxAttempts: maxAttempts) { [self] d in
            lock.withLock { waits.append(d) }
        }
    }
}

/// A file of `size` pseudo-random bytes (deterministic per seed, so a misplaced chunk
/// changes the hash); removed by the caller.
func makeVideo(size: Int, seed: UInt64 = 42) throws -> URL {
    var state = seed
    var bytes = [UInt8](repeating: 0, count: size)
    for i in 0..<size {
        state = state &* 6364136223846793005 &+ 1442695040888963407
        bytes[i] = UInt8(truncatingIfNeeded: state >> 33)
    }
    let url = FileManager.default.temporaryDirectory.appendingPathComponent("short-\(UUID().uuidString).mp4")
    try Data(bytes).write(to: url)
    return url
}

func sha256(_ bytes: some Sequence<UInt8>) -> String {
    SHA256.hash(data: Array(bytes)).map { String(format: "%02x", $0) }.joined()
}

func sha256(file: URL) throws -> String {
    sha256(try Data(contentsOf: file))
}

/// Whether `request` carries the token anywhere but the places it belongs: the
/// `Authorization` header and an `access_token` field of the query or form body.
func leaksToken(_ request: FakeSocialServer.Recorded) -> Bool {
    let allowed = { (text: String) in
        text.replacingOccurrences(of: "access_token=\(secretToken)", with: "access_token=<ok>")
    }
    let headers = request.headers.filter { $0.0.lowercased() != "authorization" }.map { "\($0.0): \($0.1)" }
    if (headers + [request.method, allowed(request.uri)]).contains(where: { $0.contains(secretToken) }) { return true }
    // Video bodies are megabytes of binary: search bytes first, decode only on a hit.
    guard Data(request.body).range(of: Data(secretToken.utf8)) != nil else { return false }
    return allowed(String(decoding: request.body, as: UTF8.self)).contains(secretToken)
}

let kiB = 1024
let miB = 1024 * 1024
