import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif

/// Errors talking to an optional external endpoint (vision, chat, TTS). Callers in Media
/// treat every one of them as "use the local fallback"; they are typed so logs say why.
public enum EndpointError: Error, Equatable, CustomStringConvertible {
    case timedOut(seconds: Double)
    case status(Int)
    case transport(String)
    case badResponse(String)

    public var description: String {
        switch self {
        case .timedOut(let s): return "no answer within \(s) s"
        case .status(let c): return "HTTP status \(c)"
        case .transport(let m): return "connection failed: \(m)"
        case .badResponse(let m): return "unexpected response: \(m)"
        }
    }
}

/// POSTs JSON and returns the response body, with a hard deadline: the call returns within
/// `timeout` (plus scheduling slack) whether the server refuses, hangs or trickles.
enum HTTPJSON {
    static func post(_ url: URL, json: Data, headers: [String: String] = [:], timeout: Double) async throws -> Data {
        var request = URLRequest(url: url, timeoutInterval: timeout)
        request.httpMethod = "POST"
        request.httpBody = json
        request.setValue("application/json", forHTTPHeaderField: "Content-Type")
        for (k, v) in headers { request.setValue(v, forHTTPHeaderField: k) }
        let config = URLSessionConfiguration.ephemeral
        config.timeoutIntervalForRequest = timeout
        config.timeoutIntervalForResource = timeout
        let session = URLSession(configuration: config)
        defer { session.finishTasksAndInvalidate() }

        let gate = OnceGate()
        return try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Data, Error>) in
            let task = session.dataTask(with: request) { data, response, error in
                let result: Result<Data, Error>
                if let error {
                    let ns = error as NSError
                    result = .failure(ns.code == NSURLErrorTimedOut ? EndpointError.timedOut(seconds: timeout)
                                                                    : EndpointError.transport(ns.localizedDescription))
                } else if let http = response as? HTTPURLResponse, !(200..<300).contains(http.statusCode) {
                    result = .failure(EndpointError.status(http.statusCode))
                } else {
                    result = .success(data ?? Data())
                }
                if gate.claim() { continuation.resume(with: result) }
            }
            task.resume()
            // URLSession's own timeout resets on every received byte; this one does not.
            DispatchQueue.global().asyncAfter(deadline: .now() + timeout) {
                if gate.claim() {
                    task.cancel()
                    continuation.resume(throwing: EndpointError.timedOut(seconds: timeout))
                }
            }
        }
    }
}

/// Lets exactly one of several racing completions through.
final class OnceGate: @unchecked Sendable {
    private let lock = NSLock()
    private var done = false
    func claim() -> Bool { lock.lock(); defer { lock.unlock() }; if done { return false }; done = true; return true }
}

/// A bearer token that never prints: its description is redacted, so it can sit in a
/// config struct that is logged or interpolated without leaking.
public struct SecretToken: Sendable, Equatable, CustomStringConvertible, CustomDebugStringConvertible {
    let value: String
    public init(_ value: String) { self.value = value }
    public var description: String { "<redacted>" }
    public var debugDescription: String { "<redacted>" }
}
