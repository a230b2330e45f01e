import Foundation
import NIOConcurrencyHelpers
import NIOCore
import NIOHTTP1
import NIOPosix

/// A local stand-in for the YouTube upload API, the Graph API and the rupload host,
/// speaking HTTP/1.1 on loopback. It keeps the state a real server keeps (sessions and
/// the bytes they hold, containers and their status) strictly enough that a client that
/// resumes from the wrong byte is refused, and it records every request so tests can
/// assert the protocol. Faults are scripted per request number, so each test says
/// exactly which exchange fails and how.
final class FakeSocialServer {
    /// One request as the server saw it.
    struct Recorded {
        var method: String
        var uri: String
        var headers: [(String, String)]
        var body: [UInt8]
        /// True when the server dropped the connection while this request's body arrived.
        var dropped = false

        var path: String { String(uri.split(separator: "?", maxSplits: 1).first ?? "") }
        func header(_ name: String) -> String? {
            headers.first { $0.0.lowercased() == name.lowercased() }?.1
        }
        /// Everything a token could leak into, as one string.
        var fullText: String {
            ([method, uri] + headers.map { "\($0.0): \($0.1)" } + [String(decoding: body, as: UTF8.self)]).joined(separator: "\n")
        }
    }

    /// What happens to the n-th YouTube upload PUT that carries bytes (1-based, counted
    /// over all sessions, retries included).
    enum ChunkFault {
        /// Keep the first `afterBytes` bytes of the chunk, then close the connection unanswered.
        case dropConnection(afterBytes: Int)
        /// Keep only the first `bytes` bytes and answer 308 with the Range that says so.
        case acceptPartially(bytes: Int)
        /// Answer with this status (e.g. 503) and keep nothing.
        case status(Int)
        /// Forget the session; this and every later request on it get 404.
        case expireSession
    }

    struct YouTubeScript {
        /// Consumed one per session-start POST: status, error reason, message.
        var startFailures: [(status: Int, reason: String?, message: String)] = []
        var chunkFaults: [Int: ChunkFault] = [:]
    }

    struct InstagramScript {
        /// Consumed one per status poll; the last one repeats.
        var statuses: [String] = ["FINISHED"]
        var errorText = "Error: Media upload has failed with error code 2207026."
        var quotaUsage = 0
        var quotaTotal = 50
        /// The first upload POST keeps this many bytes, then the connection drops.
        var dropUploadAfter: Int?
        /// Whether a GET on the upload URI reports the offset the host holds.
        var reportsOffset = true
    }

    struct YouTubeSession {
        var total: Int
        var metadata: [String: Any]
        var bytes: [UInt8] = []
        var videoID: String?
    }

    struct Container {
        var caption: String
        var fileSize: Int?
        var bytes: [UInt8] = []
        var published = false
    }

    final class State {
        var baseURL = ""
        var requests: [Recorded] = []
        var youTube = YouTubeScript()
        var instagram = InstagramScript()
        var sessions: [String: YouTubeSession] = [:]
        var expiredSessions: Set<String> = []
        var sessionsStarted = 0
        var chunkPuts = 0
        var containers: [String: Container] = [:]
        var polls = 0
        var uploadPosts = 0
        var publishedMedia: [String] = []
    }

    let token: String
    let userID = "17841400000000001"
    let version = "v21.0"
    private let lock = NIOLock()
    private let state = State()
    private let group: MultiThreadedEventLoopGroup
    private var channel: Channel?
    private(set) var port = 0

    init(token: String) throws {
        self.token = token
        group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let bootstrap = ServerBootstrap(group: group)
            .serverChannelOption(ChannelOptions.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { [self] channel in
                channel.pipeline.configureHTTPServerPipeline(withErrorHandling: true).flatMap {
                    channel.pipeline.addHandler(ExchangeHandler(server: self))
                }
            }
        let channel = try bootstrap.bind(host: "127.0.0.1", port: 0).wait()
        self.channel = channel
        port = channel.localAddress!.port!
        withState { $0.baseURL = "http://127.0.0.1:\(port)" }
    }

    func shutdown() {
        try? channel?.close().wait()
        try? group.syncShutdownGracefully()
    }

    var baseURL: URL { URL(string: "http://127.0.0.1:\(port)")! }
    var graphBaseURL: URL { URL(string: "http://127.0.0.1:\(port)/\(version)")! }

    func withState<T>(_ body: (State) throws -> T) rethrows -> T {
        try lock.withLock { try body(state) }
    }

    var requests: [Recorded] { withState { $0.requests } }

    // MARK: Handling

    /// Decides, when a request's head arrives, whether its body must be cut short.
    /// Returns the number of body bytes to keep before dropping the connection.
    fileprivate func dropPoint(for head: HTTPRequestHead) -> Int? {
        withState { s in
            let path = head.uri.split(separator: "?").first.map(String.init) ?? ""
            if head.method == .PUT, path == "/upload/youtube/v3/videos",
               let range = head.headers.first(name: "content-range"), !range.contains("*") {
                s.chunkPuts += 1
                if case .dropConnection(let keep)? = s.youTube.chunkFaults[s.chunkPuts] { return keep }
                return nil
            }
            if head.method == .POST, path.hasPrefix("/ig-api-upload/") {
                s.uploadPosts += 1
                if s.uploadPosts == 1, let keep = s.instagram.dropUploadAfter { return keep }
            }
            return nil
        }
    }

    /// Keeps what a dropped request delivered, as a real server commits what it received.
    fileprivate func commitDropped(_ head: HTTPRequestHead, body: [UInt8]) {
        withState { s in
            s.requests.append(Recorded(method: head.method.rawValue, uri: head.uri,
                                       headers: head.headers.map { ($0.name, $0.value) }, body: body, dropped: true))
            let path = head.uri.split(separator: "?").first.map(String.init) ?? ""
            if path == "/upload/youtube/v3/videos", let id = Self.query(head.uri)["upload_id"] {
                s.sessions[id]?.bytes.append(contentsOf: body)
            } else if let id = path.split(separator: "/").last.map(String.init) {
                if head.headers.first(name: "offset") == "0" { s.containers[id]?.bytes = [] }
                s.containers[id]?.bytes.append(contentsOf: body)
            }
        }
    }

    typealias Reply = (status: HTTPResponseStatus, headers: [(String, String)], body: [UInt8])

    fileprivate func handle(_ head: HTTPRequestHead, body: [UInt8]) -> Reply {
        withState { s in
            let recorded = Recorded(method: head.method.rawValue, uri: head.uri,
                                    headers: head.headers.map { ($0.name, $0.value) }, body: body)
            s.requests.append(recorded)
            let path = recorded.path
            if path == "/upload/youtube/v3/videos" {
                return youTube(s, recorded)
            }
            if path.hasPrefix("/ig-api-upload/") {
                return rupload(s, recorded)
            }
            if path.hasPrefix("/\(version)/") {
                return graph(s, recorded)
            }
            return Self.json(.notFound, ["error": ["message": "no route \(path)"]])
        }
    }

    // MARK: YouTube

    private func youTube(_ s: State, _ r: Recorded) -> Reply {
        guard r.header("authorization") == "Bearer \(token)" else {
            return Self.googleError(401, reason: "authError", message: "Invalid Credentials")
        }
        let query = Self.query(r.uri)
        if r.method == "POST" {
            guard query["uploadType"] == "resumable", query["part"] == "snippet,status",
                  let total = r.header("x-upload-content-length").flatMap(Int.init), total > 0,
                  r.header("x-upload-content-type") == "video/mp4",
                  let metadata = (try? JSONSerialization.jsonObject(with: Data(r.body))) as? [String: Any]
            else { return Self.googleError(400, reason: "badRequest", message: "malformed session start") }
            if !s.youTube.startFailures.isEmpty {
                let failure = s.youTube.startFailures.removeFirst()
                return Self.googleError(failure.status, reason: failure.reason, message: failure.message)
            }
            s.sessionsStarted += 1
            let id = "session\(s.sessionsStarted)"
            s.sessions[id] = YouTubeSession(total: total, metadata: metadata)
            let location = "\(s.baseURL)/upload/youtube/v3/videos?uploadType=resumable&upload_id=\(id)"
            return (.ok, [("Location", location), ("Content-Length", "0")], [])
        }
        guard r.method == "PUT", let id = query["upload_id"] else {
            return Self.googleError(405, reason: "methodNotAllowed", message: "unsupported")
        }
        guard var session = s.sessions[id], !s.expiredSessions.contains(id) else {
            return Self.googleError(404, reason: "notFound", message: "upload session not found")
        }
        defer { s.sessions[id] = session }
        guard let range = r.header("content-range") else {
            return Self.googleError(400, reason: "badContent", message: "missing Content-Range")
        }
        if range == "bytes */\(session.total)" {
            guard r.body.isEmpty else { return Self.googleError(400, reason: "badContent", message: "status query with a body") }
            return Self.progress(session)
        }
        // bytes a-b/N: must continue exactly where the server stands.
        let parts = range.dropFirst("bytes ".count).split(whereSeparator: { $0 == "-" || $0 == "/" }).compactMap { Int($0) }
        guard range.hasPrefix("bytes "), parts.count == 3, parts[2] == session.total,
              parts[0] == session.bytes.count, parts[1] - parts[0] + 1 == r.body.count
        else {
            return Self.googleError(400, reason: "badContent",
                                    message: "Content-Range \(range) does not continue from \(session.bytes.count)")
        }
        switch s.youTube.chunkFaults[s.chunkPuts] {
        case .status(let code)?:
            return Self.googleError(code, reason: "backendError", message: "Backend Error")
        case .expireSession?:
            s.expiredSessions.insert(id)
            return Self.googleError(404, reason: "notFound", message: "upload session not found")
        case .acceptPartially(let keep)?:
            session.bytes.append(contentsOf: r.body.prefix(keep))
            return Self.progress(session)
        case .dropConnection?, nil:
            session.bytes.append(contentsOf: r.body)
        }
        if session.bytes.count == session.total {
            let videoID = session.videoID ?? "vid\(id)"
            session.videoID = videoID
            return Self.json(.ok, ["kind": "youtube#video", "id": videoID,
                                   "snippet": session.metadata["snippet"] ?? [:],
                                   "status": ["uploadStatus": "uploaded"]])
        }
        return Self.progress(session)
    }

    /// 308 with the held prefix (no Range when nothing arrived), or the resource when complete.
    private static func progress(_ session: YouTubeSession) -> Reply {
        if let videoID = session.videoID {
            return json(.ok, ["kind": "youtube#video", "id": videoID])
        }
        var headers = [("Content-Length", "0")]
        if !session.bytes.isEmpty { headers.append(("Range", "bytes=0-\(session.bytes.count - 1)")) }
        return (HTTPResponseStatus(statusCode: 308), headers, [])
    }

    static func googleError(_ status: Int, reason: String?, message: String) -> Reply {
        var error: [String: Any] = ["code": status, "message": message]
        error["errors"] = [["domain": "youtube", "reason": reason ?? "unknown", "message": message]]
        return json(HTTPResponseStatus(statusCode: status), ["error": error])
    }

    // MARK: Instagram

    private func rupload(_ s: State, _ r: Recorded) -> Reply {
        guard r.header("authorization") == "OAuth \(token)" else {
            return Self.json(.unauthorized, ["debug_info": ["type": "OAuthException", "message": "Invalid OAuth access token"]])
        }
        let parts = r.path.split(separator: "/").map(String.init)
        guard parts.count == 3, parts[1] == version, var container = s.containers[parts[2]] else {
            return Self.json(.notFound, ["debug_info": ["type": "NotFound", "message": "unknown container"]])
        }
        defer { s.containers[parts[2]] = container }
        if r.method == "GET" {
            return s.instagram.reportsOffset ? Self.json(.ok, ["offset": container.bytes.count]) : Self.json(.ok, [:])
        }
        // A POST from offset 0 starts over; any other offset must continue what is held.
        if r.header("offset") == "0" { container.bytes = [] }
        guard let offset = r.header("offset").flatMap(Int.init), let size = r.header("file_size").flatMap(Int.init),
              offset == container.bytes.count, offset + r.body.count == size
        else {
            return Self.json(.badRequest, ["debug_info": ["type": "ProcessingFailedError",
                                                          "message": "offset does not continue from \(container.bytes.count)"]])
        }
        container.fileSize = size
        container.bytes.append(contentsOf: r.body)
        return Self.json(.ok, ["success": true, "message": "Upload successful."])
    }

    private func graph(_ s: State, _ r: Recorded) -> Reply {
        var fields = Self.query(r.uri)
        if r.method == "POST" {
            guard r.header("content-type") == "application/x-www-form-urlencoded" else {
                return Self.graphError(400, "form body expected")
            }
            fields.merge(Self.form(String(decoding: r.body, as: UTF8.self))) { $1 }
        }
        guard fields["access_token"] == token else { return Self.graphError(400, "Invalid OAuth access token.", code: 190) }
        let parts = r.path.split(separator: "/").dropFirst().map(String.init)  // drop the version
        switch (r.method, parts.count, parts.last ?? "") {
        case ("POST", 2, "media") where parts[0] == userID:
            guard fields["media_type"] == "REELS", fields["upload_type"] == "resumable" else {
                return Self.graphError(400, "media_type REELS with upload_type resumable expected")
            }
            let id = "1790000000000\(s.containers.count + 1)"
            s.containers[id] = Container(caption: fields["caption"] ?? "")
            return Self.json(.ok, ["id": id, "uri": "https://rupload.facebook.com/ig-api-upload/\(version)/\(id)"])
        case ("GET", 1, let id) where s.containers[id] != nil:
            guard fields["fields"] == "status_code,status" else { return Self.graphError(400, "fields expected") }
            s.polls += 1
            let statuses = s.instagram.statuses
            let code = statuses[min(s.polls, statuses.count) - 1]
            let text: String
            switch code {
            case "ERROR": text = s.instagram.errorText
            case "FINISHED": text = "Finished: Media has been uploaded and it is ready to be published."
            case "IN_PROGRESS": text = "In Progress: Media is still being processed."
            default: text = code
            }
            return Self.json(.ok, ["status_code": code, "status": text, "id": id])
        case ("GET", 2, "content_publishing_limit") where parts[0] == userID:
            return Self.json(.ok, ["data": [["quota_usage": s.instagram.quotaUsage,
                                             "config": ["quota_total": s.instagram.quotaTotal, "quota_duration": 86400]]]])
        case ("POST", 2, "media_publish") where parts[0] == userID:
            guard let id = fields["creation_id"], var container = s.containers[id] else {
                return Self.graphError(400, "unknown creation_id")
            }
            guard !container.published, container.bytes.count == container.fileSize else {
                return Self.graphError(400, "container not ready or already published")
            }
            container.published = true
            s.containers[id] = container
            let media = "1800000000000\(s.publishedMedia.count + 1)"
            s.publishedMedia.append(media)
            return Self.json(.ok, ["id": media])
        default:
            return Self.graphError(400, "Unsupported \(r.method) request")
        }
    }

    static func graphError(_ status: Int, _ message: String, code: Int = 100) -> Reply {
        json(HTTPResponseStatus(statusCode: status),
             ["error": ["message": message, "type": "OAuthException", "code": code, "fbtrace_id": "AbCdEf"]])
    }

    // MARK: Helpers

    static func json(_ status: HTTPResponseStatus, _ object: [String: Any]) -> Reply {
        let body = (try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])) ?? Data()
        return (status, [("Content-Type", "application/json; charset=UTF-8"), ("Content-Length", "\(body.count)")], Array(body))
    }

    static func query(_ uri: String) -> [String: String] {
        guard let q = uri.split(separator: "?", maxSplits: 1).dropFirst().first else { return [:] }
        return form(String(q))
    }

    static func form(_ text: String) -> [String: String] {
        var fields: [String: String] = [:]
        for pair in text.split(separator: "&") {
            let kv = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            let decode = { (s: Substring) in String(s).replacingOccurrences(of: "+", with: " ").removingPercentEncoding ?? String(s) }
            fields[decode(kv[0])] = kv.count > 1 ? decode(kv[1]) : ""
        }
        return fields
    }
}

/// Collects one request at a time and hands it to the server; cuts the connection when
/// the script says so. Answers `Expect: 100-continue` so a client does not wait.
private final class ExchangeHandler: ChannelInboundHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    private let server: FakeSocialServer
    private var head: HTTPRequestHead?
    private var body: [UInt8] = []
    private var dropAfter: Int?
    private var dropped = false

    init(server: FakeSocialServer) {
        self.server = server
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard !dropped else { return }
        switch unwrapInboundIn(data) {
        case .head(let head):
            self.head = head
            body = []
            dropAfter = server.dropPoint(for: head)
            if head.headers["expect"].contains(where: { $0.lowercased() == "100-continue" }) {
                context.writeAndFlush(wrapOutboundOut(.head(HTTPResponseHead(version: head.version, status: .continue))), promise: nil)
            }
        case .body(var buffer):
            body.append(contentsOf: buffer.readBytes(length: buffer.readableBytes) ?? [])
            if let keep = dropAfter, body.count >= keep, let head {
                dropped = true
                server.commitDropped(head, body: Array(body.prefix(keep)))
                context.close(promise: nil)
            }
        case .end:
            guard let head else { return }
            let reply = server.handle(head, body: body)
            var headers = HTTPHeaders(reply.headers)
            headers.replaceOrAdd(name: "Connection", value: head.isKeepAlive ? "keep-alive" : "close")
            context.write(wrapOutboundOut(.head(HTTPResponseHead(version: head.version, status: reply.status, headers: headers))), promise: nil)
            if !reply.body.isEmpty {
                context.write(wrapOutboundOut(.body(.byteBuffer(ByteBuffer(bytes: reply.body)))), promise: nil)
            }
            let keepAlive = head.isKeepAlive
            context.writeAndFlush(wrapOutboundOut(.end(nil))).whenComplete { _ in
                if !keepAlive { context.close(promise: nil) }
            }
            self.head = nil
        }
    }
}
