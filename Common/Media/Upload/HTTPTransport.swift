import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif

/// One HTTP answer, reduced to what the protocols read.
struct HTTPAnswer: Sendable {
    var status: Int
    /// Header names lower-cased; HTTP header names are case-insensitive.
    var headers: [String: String]
    var body: Data

    func header(_ name: String) -> String? { headers[name.lowercased()] }
}

/// The request never got an answer: the connection failed, dropped or timed out. The
/// description names only the URLError code — a URLError's user info carries the URL,
/// and a Graph API URL can carry the access token in its query.
struct TransportFailure: Error, CustomStringConvertible {
    var code: Int
    var description: String { "connection failed (URLError \(code))" }
}

/// The thin I/O shell under both clients: sends a request, returns status, headers and
/// body, never follows redirects (a 308 is YouTube's "resume incomplete", and following
/// any redirect could carry the Authorization header to another host).
final class HTTPTransport: Sendable {
    private let session: URLSession

    init(timeout: TimeInterval) {
        let configuration = URLSessionConfiguration.ephemeral
        configuration.timeoutIntervalForRequest = timeout
        configuration.httpCookieStorage = nil
        configuration.urlCache = nil
        configuration.requestCachePolicy = .reloadIgnoringLocalCacheData
        session = URLSession(configuration: configuration, delegate: RefuseRedirects(), delegateQueue: nil)
    }

    deinit {
        session.finishTasksAndInvalidate()
    }

    /// Every request asks for its own connection. libcurl retries a request whose
    /// reused keep-alive connection died, and that retry cannot rewind the body
    /// FoundationNetworking hands it: it sends the head and stalls until the timeout
    /// (seen against the fake server when it drops a connection mid-chunk). A fresh
    /// connection per request turns a drop into an immediate error, which the clients
    /// answer by asking the server what it holds. One handshake per multi-MiB chunk or
    /// per poll every few seconds costs little.
    private static func ownConnection(_ request: URLRequest) -> URLRequest {
        var request = request
        request.setValue("close", forHTTPHeaderField: "Connection")
        return request
    }

    /// Sends `request`. Bodies go as `httpBody` Data only: FoundationNetworking's other
    /// body kinds misbehave on Linux — a stream body is sent chunked whatever
    /// Content-Length says (servers refuse both together), and a file body
    /// (`upload(for:fromFile:)`) pauses the transfer while it reads ahead, so a
    /// connection dropped during a pause trips a `try!` inside FoundationNetworking that
    /// ends the process. Both were seen against the fake server.
    func send(_ request: URLRequest) async throws -> HTTPAnswer {
        let request = Self.ownConnection(request)
        let data: Data
        let response: URLResponse
        do {
            (data, response) = try await session.data(for: request)
        } catch let error as URLError {
            if error.code == .cancelled, Task.isCancelled { throw CancellationError() }
            throw TransportFailure(code: error.code.rawValue)
        } catch is CancellationError {
            throw CancellationError()
        } catch {
            throw TransportFailure(code: (error as NSError).code)
        }
        return Self.answer(data: data, response: response)
    }

    private static func answer(data: Data, response: URLResponse) -> HTTPAnswer {
        guard let http = response as? HTTPURLResponse else {
            return HTTPAnswer(status: 0, headers: [:], body: data)
        }
        var headers: [String: String] = [:]
        for (name, value) in http.allHeaderFields {
            if let name = name as? String, let value = value as? String {
                headers[name.lowercased()] = value
            }
        }
        return HTTPAnswer(status: http.statusCode, headers: headers, body: data)
    }
}

private final class RefuseRedirects: NSObject, URLSessionTaskDelegate, Sendable {
    func urlSession(_ session: URLSession, task: URLSessionTask, willPerformHTTPRedirection response: HTTPURLResponse,
                    newRequest request: URLRequest, completionHandler: @escaping (URLRequest?) -> Void) {
        completionHandler(nil)
    }
}
