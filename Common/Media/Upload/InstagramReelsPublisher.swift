import Foundation
import Logging
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif

/// Publishes a finished short as an Instagram Reel through the Graph API: create a
/// resumable container, upload the bytes to the rupload host, poll until processed,
/// check the publishing limit, publish.
///
/// Guarantees:
/// - the upload POST carries the file from the resume offset on, read from disk for
///   that POST and released after it (the protocol sends the rest of the file at once);
/// - an interrupted upload (dropped connection or 5xx) asks the rupload host how many
///   bytes it holds (`GET` on the upload URI) and re-POSTs from the `offset` it reports;
///   when the answer carries no offset it restarts from byte 0 — never from a guess;
/// - polling waits per `Configuration.poll` between `IN_PROGRESS` answers and gives up
///   after `maxPolls` with `UploadError.processingTimedOut`; `ERROR` stops with
///   `.containerFailed` (the platform's status text), `EXPIRED` with `.containerExpired`;
/// - nothing is published when `quota_usage >= config.quota_total`
///   (`UploadError.publishingLimitReached`);
/// - the token goes only into `access_token` and the rupload `Authorization: OAuth`
///   header: it is never logged and never part of an error.
public struct InstagramReelsPublisher: Sendable {
    public struct Configuration: Sendable {
        /// Graph API root including the version, e.g. `https://graph.facebook.com/v21.0`.
        public var graphBaseURL: URL
        /// The resumable upload host. Container creation also returns a `uri` on the
        /// production host; the configured host is used instead, so tests and egress
        /// proxies decide where the bytes go.
        public var uploadBaseURL: URL
        /// The Instagram professional account (`ig-user-id`).
        public var userID: String
        public var token: AccessToken
        /// Backoff for 5xx answers and dropped connections (consecutive, reset on success).
        public var retry: Backoff
        /// Waits between status polls; only `initial`, `multiplier` and `maximum` are used.
        public var poll: Backoff
        /// Status polls before giving up on a container still `IN_PROGRESS`.
        public var maxPolls: Int
        public var requestTimeout: TimeInterval

        public static let defaultGraphBaseURL = URL(string: "https://graph.facebook.com/v21.0")!
        public static let defaultUploadBaseURL = URL(string: "https://rupload.facebook.com")!

        public init(userID: String, token: AccessToken,
                    graphBaseURL: URL = Configuration.defaultGraphBaseURL,
                    uploadBaseURL: URL = Configuration.defaultUploadBaseURL,
                    retry: Backoff = Backoff(),
                    poll: Backoff = Backoff(initial: .seconds(5), multiplier: 1.5, maximum: .seconds(60)),
                    maxPolls: Int = 40, requestTimeout: TimeInterval = 300) {
            self.graphBaseURL = graphBaseURL
            self.uploadBaseURL = uploadBaseURL
            self.userID = userID
            self.token = token
            self.retry = retry
            self.poll = poll
            self.maxPolls = maxPolls
            self.requestTimeout = requestTimeout
        }

        /// The Graph version the rupload path repeats: the last component of the base URL.
        var apiVersion: String { graphBaseURL.lastPathComponent }
    }

    /// What a publication produced.
    public struct Result: Sendable, Hashable {
        public var mediaID: String
        public var containerID: String
        /// Status polls until `FINISHED`.
        public var polls: Int
        /// Upload POSTs (1 when nothing was interrupted).
        public var uploadAttempts: Int
    }

    public let configuration: Configuration
    private let transport: HTTPTransport
    private let logger: Logger

    public init(configuration: Configuration, logger: Logger = Logger(label: "tower.media.upload.instagram")) throws(UploadError) {
        guard !configuration.userID.isEmpty, configuration.userID.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber) }) else {
            throw .invalidConfiguration("Instagram user id must be non-empty and alphanumeric")
        }
        guard configuration.maxPolls > 0 else { throw .invalidConfiguration("maxPolls must be positive") }
        self.configuration = configuration
        self.transport = HTTPTransport(timeout: configuration.requestTimeout)
        self.logger = logger
    }

    /// Publishes the MP4 at `file` with the caption built from `metadata`.
    public func publish(file: URL, metadata: ShortMetadata) async throws -> Result {
        try await publish(file: file, caption: metadata.instagramCaption)
    }

    /// Publishes the MP4 at `file` as a Reel with `caption`; returns the media id.
    /// Throws `UploadError` (the short stays pending) or `CancellationError`.
    public func publish(file: URL, caption: String) async throws -> Result {
        let video = try VideoFile(file)
        let containerID = try await createContainer(caption: caption)
        logger.info("instagram container created", metadata: ["container": "\(containerID)"])
        let attempts = try await upload(video, containerID: containerID)
        let polls = try await waitUntilFinished(containerID)
        try await checkPublishingLimit()
        let published = try await graph("POST", path: "\(configuration.userID)/media_publish",
                                         fields: ["creation_id": containerID])
        guard let mediaID = published["id"] as? String, !mediaID.isEmpty else {
            throw UploadError.invalidResponse(platform: .instagram, detail: "media_publish returned no id")
        }
        logger.info("instagram reel published", metadata: ["media": "\(mediaID)", "container": "\(containerID)"])
        return Result(mediaID: mediaID, containerID: containerID, polls: polls, uploadAttempts: attempts)
    }

    // MARK: Steps

    private func createContainer(caption: String) async throws -> String {
        let answer = try await graph("POST", path: "\(configuration.userID)/media", fields: [
            "media_type": "REELS", "upload_type": "resumable", "caption": caption,
        ])
        guard let id = answer["id"] as? String, !id.isEmpty,
              id.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber) })
        else {
            throw UploadError.invalidResponse(platform: .instagram, detail: "container creation returned no usable id")
        }
        return id
    }

    /// POSTs the bytes from `offset` on; after an interruption asks the host for its
    /// offset and resumes there. Returns the number of POSTs made.
    private func upload(_ video: VideoFile, containerID: String) async throws -> Int {
        let uploadURL = configuration.uploadBaseURL
            .appendingPathComponent("ig-api-upload")
            .appendingPathComponent(configuration.apiVersion)
            .appendingPathComponent(containerID)
        var offset = 0
        var attempts = 0
        var failures = 0
        while true {
            attempts += 1
            var request = URLRequest(url: uploadURL)
            request.httpMethod = "POST"
            request.setValue("OAuth \(configuration.token.revealedForRequest)", forHTTPHeaderField: "Authorization")
            request.setValue(String(offset), forHTTPHeaderField: "offset")
            request.setValue(String(video.size), forHTTPHeaderField: "file_size")
            request.setValue("application/octet-stream", forHTTPHeaderField: "Content-Type")

            // The rupload protocol takes the rest of the file in one POST, and
            // FoundationNetworking can only send a body of known length from memory (see
            // HTTPTransport.send), so the bytes from `offset` on are read for this POST
            // and released after it: tens of MB for a ≤ 60 s short.
            request.httpBody = try video.read(offset..<video.size)

            let problem: String
            do {
                let answer = try await transport.send(request)
                switch answer.status {
                case 200...299:
                    let json = (try? JSONSerialization.jsonObject(with: answer.body)) as? [String: Any]
                    guard json?["success"] as? Bool == true else {
                        throw UploadError.invalidResponse(platform: .instagram, detail: "upload not acknowledged")
                    }
                    logger.info("instagram upload finished", metadata: ["bytes": "\(video.size)", "attempts": "\(attempts)"])
                    return attempts
                case 500...599:
                    problem = "HTTP \(answer.status)"
                default:
                    throw refusal(answer)
                }
            } catch let failure as TransportFailure {
                problem = failure.description
            }
            failures += 1
            logger.warning("instagram upload interrupted", metadata: ["problem": "\(problem)", "attempt": "\(failures)"])
            try await backOff(failures, problem: problem)
            let held = try await heldOffset(uploadURL)
            guard held <= video.size else {
                throw UploadError.invalidResponse(platform: .instagram, detail: "upload host holds \(held) of \(video.size) bytes")
            }
            if held > offset { failures = 0 }
            offset = held
            logger.debug("instagram upload resumes", metadata: ["from": "\(offset)"])
        }
    }

    /// How many bytes the upload host holds for this container: the `offset` of a GET on
    /// the upload URI; 0 when the host does not say (then the whole file is sent again).
    private func heldOffset(_ uploadURL: URL) async throws -> Int {
        var request = URLRequest(url: uploadURL)
        request.httpMethod = "GET"
        request.setValue("OAuth \(configuration.token.revealedForRequest)", forHTTPHeaderField: "Authorization")
        do {
            let answer = try await transport.send(request)
            guard answer.status == 200,
                  let json = (try? JSONSerialization.jsonObject(with: answer.body)) as? [String: Any]
            else { return 0 }
            if let offset = json["offset"] as? Int, offset >= 0 { return offset }
            if let text = json["offset"] as? String, let offset = Int(text), offset >= 0 { return offset }
            return 0
        } catch is TransportFailure {
            return 0
        }
    }

    private func waitUntilFinished(_ containerID: String) async throws -> Int {
        var polls = 0
        while true {
            polls += 1
            let answer = try await graph("GET", path: containerID, fields: ["fields": "status_code,status"])
            let code = answer["status_code"] as? String ?? ""
            let status = configuration.token.redacting(answer["status"] as? String ?? code)
            switch code {
            case "FINISHED":
                return polls
            case "IN_PROGRESS":
                guard polls < configuration.maxPolls else {
                    throw UploadError.processingTimedOut(containerID: containerID, polls: polls)
                }
                logger.debug("instagram container processing", metadata: ["container": "\(containerID)", "poll": "\(polls)"])
                try await configuration.poll.sleep(configuration.poll.delay(forAttempt: polls))
            case "ERROR":
                throw UploadError.containerFailed(containerID: containerID, status: status)
            case "EXPIRED":
                throw UploadError.containerExpired(containerID: containerID)
            default:
                throw UploadError.invalidResponse(platform: .instagram, detail: "container status \"\(status)\"")
            }
        }
    }

    private func checkPublishingLimit() async throws {
        let answer = try await graph("GET", path: "\(configuration.userID)/content_publishing_limit",
                                     fields: ["fields": "config,quota_usage"])
        // The API wraps the figures in `data: [ … ]`; accept them unwrapped too.
        let entry = (answer["data"] as? [[String: Any]])?.first ?? answer
        guard let usage = Self.int(entry["quota_usage"]),
              let total = Self.int((entry["config"] as? [String: Any])?["quota_total"])
        else {
            throw UploadError.invalidResponse(platform: .instagram, detail: "content_publishing_limit without quota figures")
        }
        logger.debug("instagram publishing limit", metadata: ["usage": "\(usage)", "total": "\(total)"])
        if usage >= total {
            throw UploadError.publishingLimitReached(quotaUsage: usage, quotaTotal: total)
        }
    }

    // MARK: Graph requests

    /// One Graph API call with `access_token` added: POSTs send the fields as a form,
    /// GETs as the query. 5xx and dropped connections are retried with backoff; a 4xx
    /// stops with the API's message.
    private func graph(_ method: String, path: String, fields: [String: String]) async throws -> [String: Any] {
        var all = fields
        all["access_token"] = configuration.token.revealedForRequest
        let form = Self.formEncoded(all)
        let url = configuration.graphBaseURL.appendingPathComponent(path)
        var request: URLRequest
        if method == "GET" {
            request = URLRequest(url: URL(string: url.absoluteString + "?" + form)!)
        } else {
            request = URLRequest(url: url)
            request.setValue("application/x-www-form-urlencoded", forHTTPHeaderField: "Content-Type")
            request.httpBody = Data(form.utf8)
        }
        request.httpMethod = method

        var failures = 0
        while true {
            let problem: String
            do {
                let answer = try await transport.send(request)
                switch answer.status {
                case 200...299:
                    guard let json = (try? JSONSerialization.jsonObject(with: answer.body)) as? [String: Any] else {
                        throw UploadError.invalidResponse(platform: .instagram, detail: "\(method) \(path) returned no JSON object")
                    }
                    return json
                case 500...599:
                    problem = "HTTP \(answer.status)"
                default:
                    throw refusal(answer)
                }
            } catch let failure as TransportFailure {
                problem = failure.description
            }
            failures += 1
            logger.warning("instagram request failed; retrying", metadata: ["step": "\(method) \(Self.step(path))", "problem": "\(problem)"])
            try await backOff(failures, problem: problem)
        }
    }

    /// A Graph error body is `{"error":{"message":…,"type":…,"code":…}}`.
    private func refusal(_ answer: HTTPAnswer) -> UploadError {
        let json = (try? JSONSerialization.jsonObject(with: answer.body)) as? [String: Any]
        let error = json?["error"] as? [String: Any]
        let message = error?["message"] as? String ?? String(decoding: answer.body.prefix(300), as: UTF8.self)
        return .rejected(platform: .instagram, status: answer.status, message: configuration.token.redacting(message))
    }

    private func backOff(_ failures: Int, problem: String) async throws {
        guard failures <= configuration.retry.maxAttempts else {
            throw UploadError.serverUnavailable(platform: .instagram, attempts: failures, lastProblem: problem)
        }
        try await configuration.retry.sleep(configuration.retry.delay(forAttempt: failures))
    }

    /// The last path component names the step in logs (`media`, `media_publish`, …);
    /// ids are not secrets but say nothing useful there.
    private static func step(_ path: String) -> String {
        String(path.split(separator: "/").last ?? Substring(path))
    }

    private static func int(_ value: Any?) -> Int? {
        if let number = value as? Int { return number }
        if let text = value as? String { return Int(text) }
        return nil
    }

    /// application/x-www-form-urlencoded, sorted so requests are reproducible.
    static func formEncoded(_ fields: [String: String]) -> String {
        // Unreserved ASCII only: `+`, `&`, `=` and non-ASCII in a caption must be escaped.
        let allowed = CharacterSet(charactersIn: "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-._*")
        return fields.sorted { $0.key < $1.key }.map { key, value in
            let k = key.addingPercentEncoding(withAllowedCharacters: allowed) ?? key
            let v = value.addingPercentEncoding(withAllowedCharacters: allowed) ?? ""
            return k + "=" + v
        }.joined(separator: "&")
    }
}
