import Foundation
import Logging
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif

/// Uploads a finished short with the YouTube Data API v3 resumable protocol.
///
/// Guarantees:
/// - the video is read from disk one chunk at a time; every chunk but the last is a
///   multiple of 256 KiB, as the protocol requires;
/// - after a dropped connection or a 5xx it asks the session how much it holds
///   (`Content-Range: bytes */N`) and resumes exactly after the server's `Range`, never
///   from a position it assumed; consecutive failures back off exponentially and are
///   bounded by `Configuration.retry`;
/// - a 404 (session expired) starts a new session from byte 0, at most
///   `maxSessionRestarts` times;
/// - 403 `quotaExceeded` and 400 `uploadLimitExceeded` stop at once with
///   `UploadError.quotaExceeded` / `.uploadLimitExceeded`; any other 4xx stops with
///   `UploadError.rejected` carrying the status and the API's message;
/// - the token goes only into the `Authorization` header: it is never logged and never
///   part of an error.
public struct YouTubeUploader: Sendable {
    public struct Configuration: Sendable {
        /// The API root; a local fake server in tests.
        public var baseURL: URL
        public var token: AccessToken
        /// Bytes per PUT; must be a positive multiple of 256 KiB.
        public var chunkSize: Int
        /// Backoff for 5xx answers and dropped connections (consecutive, reset on progress).
        public var retry: Backoff
        /// How many times an expired session (404) may be replaced by a new one.
        public var maxSessionRestarts: Int
        /// Per-request timeout, in seconds.
        public var requestTimeout: TimeInterval

        public static let defaultBaseURL = URL(string: "https://www.googleapis.com")!
        /// The protocol's chunk granule: 256 KiB.
        public static let chunkGranule = 256 * 1024

        public init(token: AccessToken, baseURL: URL = Configuration.defaultBaseURL,
                    chunkSize: Int = 8 * 1024 * 1024, retry: Backoff = Backoff(),
                    maxSessionRestarts: Int = 2, requestTimeout: TimeInterval = 120) {
            self.baseURL = baseURL
            self.token = token
            self.chunkSize = chunkSize
            self.retry = retry
            self.maxSessionRestarts = maxSessionRestarts
            self.requestTimeout = requestTimeout
        }
    }

    /// What a finished upload produced.
    public struct Result: Sendable, Hashable {
        public var videoID: String
        public var bytes: Int
        /// New sessions started after a 404.
        public var sessionRestarts: Int
        /// Retries after a 5xx or a dropped connection.
        public var retries: Int
    }

    public let configuration: Configuration
    private let transport: HTTPTransport
    private let logger: Logger

    /// Fails with `UploadError.invalidConfiguration` when the chunk size breaks the protocol.
    public init(configuration: Configuration, logger: Logger = Logger(label: "tower.media.upload.youtube")) throws(UploadError) {
        guard configuration.chunkSize > 0, configuration.chunkSize % Configuration.chunkGranule == 0 else {
            throw .invalidConfiguration("YouTube chunk size \(configuration.chunkSize) is not a positive multiple of 256 KiB")
        }
        guard configuration.retry.maxAttempts >= 0, configuration.maxSessionRestarts >= 0 else {
            throw .invalidConfiguration("retry and restart limits must not be negative")
        }
        self.configuration = configuration
        self.transport = HTTPTransport(timeout: configuration.requestTimeout)
        self.logger = logger
    }

    /// Uploads the MP4 at `file` with `metadata`; returns the new video's id.
    /// Throws `UploadError` (the short stays pending) or `CancellationError`.
    public func upload(file: URL, metadata: ShortMetadata) async throws -> Result {
        let video = try VideoFile(file)
        var restarts = 0
        var retries = 0
        var failures = 0  // consecutive, for the backoff

        sessions: while true {
            let session = try await startSession(size: video.size, metadata: metadata, retries: &retries)
            logger.info("youtube upload session started", metadata: [
                "bytes": "\(video.size)", "restart": "\(restarts)",
            ])
            var persisted = 0          // what the server said it holds
            var askStatus = false      // after an interruption, ask before sending again

            while true {
                let outcome: YouTubeSessionOutcome
                do {
                    if askStatus {
                        outcome = try await queryStatus(session, size: video.size)
                    } else {
                        let end = min(video.size, persisted + configuration.chunkSize)
                        outcome = try await sendChunk(session, video: video, range: persisted..<end)
                    }
                } catch let failure as TransportFailure {
                    // The connection dropped: what arrived is unknown until the session says.
                    outcome = .retryable(failure.description)
                }

                switch outcome {
                case .completed(let videoID):
                    logger.info("youtube upload finished", metadata: ["video": "\(videoID)", "bytes": "\(video.size)"])
                    return Result(videoID: videoID, bytes: video.size, sessionRestarts: restarts, retries: retries)

                case .incomplete(let held):
                    guard held <= video.size else {
                        throw UploadError.invalidResponse(platform: .youTube, detail: "server holds \(held) of \(video.size) bytes")
                    }
                    if held == video.size {
                        // Everything arrived but the final answer was lost; a status query
                        // returns the resource. A server that keeps answering 308 for a
                        // complete file is retried like a failure, so this cannot loop forever.
                        if askStatus {
                            failures += 1
                            retries += 1
                            try await backOff(failures, problem: "all bytes held but no video resource")
                        }
                        askStatus = true
                        continue
                    }
                    if held > persisted || askStatus {
                        if held > persisted { failures = 0 }
                        logger.debug("youtube upload resumes", metadata: ["from": "\(held)"])
                        persisted = held
                        askStatus = false
                    } else {
                        // A chunk was sent and nothing new was kept: back off and resend.
                        failures += 1
                        retries += 1
                        try await backOff(failures, problem: "no progress at byte \(held)")
                    }

                case .retryable(let problem):
                    failures += 1
                    retries += 1
                    logger.warning("youtube upload interrupted", metadata: ["problem": "\(problem)", "attempt": "\(failures)"])
                    try await backOff(failures, problem: problem)
                    askStatus = true

                case .sessionExpired:
                    restarts += 1
                    guard restarts <= configuration.maxSessionRestarts else {
                        throw UploadError.sessionExpired(restarts: restarts - 1)
                    }
                    logger.warning("youtube upload session expired; starting a new one", metadata: ["restart": "\(restarts)"])
                    failures = 0
                    continue sessions

                case .stop(let error):
                    logger.error("youtube upload stopped", metadata: ["reason": "\(error)"])
                    throw error
                }
            }
        }
    }

    // MARK: Exchanges

    /// POSTs the metadata and returns the session URI from `Location`; 5xx and dropped
    /// connections are retried with backoff, refusals stop.
    private func startSession(size: Int, metadata: ShortMetadata, retries: inout Int) async throws -> URL {
        var components = URLComponents(url: configuration.baseURL.appendingPathComponent("upload/youtube/v3/videos"),
                                       resolvingAgainstBaseURL: false)!
        components.queryItems = [
            URLQueryItem(name: "uploadType", value: "resumable"),
            URLQueryItem(name: "part", value: "snippet,status"),
        ]
        var request = URLRequest(url: components.url!)
        request.httpMethod = "POST"
        authorize(&request)
        request.setValue("application/json; charset=UTF-8", forHTTPHeaderField: "Content-Type")
        request.setValue(String(size), forHTTPHeaderField: "X-Upload-Content-Length")
        request.setValue("video/mp4", forHTTPHeaderField: "X-Upload-Content-Type")
        request.httpBody = try Self.resourceBody(metadata)

        var failures = 0
        while true {
            let problem: String
            do {
                let answer = try await transport.send(request)
                switch answer.status {
                case 200, 201:
                    guard let location = answer.header("Location"),
                          let session = URL(string: location, relativeTo: configuration.baseURL)?.absoluteURL
                    else {
                        throw UploadError.invalidResponse(platform: .youTube, detail: "no session URI in Location")
                    }
                    return session
                case 500...599:
                    problem = "HTTP \(answer.status)"
                default:
                    throw YouTubeSessionOutcome.refusal(answer, token: configuration.token)
                }
            } catch let failure as TransportFailure {
                problem = failure.description
            }
            failures += 1
            retries += 1
            try await backOff(failures, problem: problem)
        }
    }

    private func sendChunk(_ session: URL, video: VideoFile, range: Range<Int>) async throws -> YouTubeSessionOutcome {
        var request = URLRequest(url: session)
        request.httpMethod = "PUT"
        authorize(&request)
        request.setValue("video/mp4", forHTTPHeaderField: "Content-Type")
        request.setValue(String(range.count), forHTTPHeaderField: "Content-Length")
        request.setValue("bytes \(range.lowerBound)-\(range.upperBound - 1)/\(video.size)", forHTTPHeaderField: "Content-Range")
        request.httpBody = try video.read(range)
        let answer = try await transport.send(request)
        return YouTubeSessionOutcome.classify(answer, token: configuration.token)
    }

    /// The status query: an empty PUT whose `Content-Range: bytes */N` asks what arrived.
    private func queryStatus(_ session: URL, size: Int) async throws -> YouTubeSessionOutcome {
        var request = URLRequest(url: session)
        request.httpMethod = "PUT"
        authorize(&request)
        request.setValue("0", forHTTPHeaderField: "Content-Length")
        request.setValue("bytes */\(size)", forHTTPHeaderField: "Content-Range")
        request.httpBody = Data()
        let answer = try await transport.send(request)
        return YouTubeSessionOutcome.classify(answer, token: configuration.token)
    }

    private func authorize(_ request: inout URLRequest) {
        request.setValue("Bearer \(configuration.token.revealedForRequest)", forHTTPHeaderField: "Authorization")
    }

    private func backOff(_ failures: Int, problem: String) async throws {
        guard failures <= configuration.retry.maxAttempts else {
            throw UploadError.serverUnavailable(platform: .youTube, attempts: failures, lastProblem: problem)
        }
        try await configuration.retry.sleep(configuration.retry.delay(forAttempt: failures))
    }

    static func resourceBody(_ metadata: ShortMetadata) throws(UploadError) -> Data {
        let resource: [String: Any] = [
            "snippet": [
                "title": metadata.title,
                "description": metadata.description,
                "tags": metadata.tags,
                "categoryId": metadata.categoryID,
            ],
            "status": [
                "privacyStatus": metadata.privacy.rawValue,
                "selfDeclaredMadeForKids": false,
            ],
        ]
        do {
            return try JSONSerialization.data(withJSONObject: resource, options: [.sortedKeys])
        } catch {
            throw .invalidConfiguration("metadata is not encodable as JSON")
        }
    }
}
