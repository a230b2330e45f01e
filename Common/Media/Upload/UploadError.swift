/// The platform an upload went to; errors name it so a reviewer knows where to look.
public enum UploadPlatform: String, Sendable, Hashable {
    case youTube = "YouTube"
    case instagram = "Instagram"
}

/// Why an upload or publication did not happen.
///
/// Guarantees: every case leaves the short unpublished, so the caller keeps it pending
/// and shows `pendingReason` to the reviewer; no case carries the access token (messages
/// from servers are redacted before they are stored); `retryLater` says whether trying
/// the same short again later can succeed without anyone changing anything.
public enum UploadError: Error, Sendable, Hashable, CustomStringConvertible {
    /// YouTube answered 403 `quotaExceeded`: the project's daily API quota is spent.
    case quotaExceeded(message: String)
    /// YouTube answered 400 `uploadLimitExceeded`: the channel uploaded too many videos.
    case uploadLimitExceeded(message: String)
    /// Instagram's `content_publishing_limit` says the account has no publications left.
    case publishingLimitReached(quotaUsage: Int, quotaTotal: Int)
    /// Instagram processed the container and reported `ERROR`; `status` is its text.
    case containerFailed(containerID: String, status: String)
    /// Instagram reported `EXPIRED`: the container was not published within 24 hours.
    case containerExpired(containerID: String)
    /// Instagram was still processing after the configured number of polls.
    case processingTimedOut(containerID: String, polls: Int)
    /// The upload session expired (404) more often than the configured number of restarts.
    case sessionExpired(restarts: Int)
    /// 5xx answers or dropped connections, retried with backoff until the attempts ran out.
    case serverUnavailable(platform: UploadPlatform, attempts: Int, lastProblem: String)
    /// Any other refusal (4xx): the status and the API's own message.
    case rejected(platform: UploadPlatform, status: Int, message: String)
    /// The server answered something this client cannot interpret.
    case invalidResponse(platform: UploadPlatform, detail: String)
    /// The video file could not be read.
    case unreadableFile(path: String, reason: String)
    /// The client was configured with values the protocol cannot use.
    case invalidConfiguration(String)

    public var description: String {
        switch self {
        case .quotaExceeded(let message):
            return "YouTube API quota exceeded; the short stays pending until the quota resets (\(message))"
        case .uploadLimitExceeded(let message):
            return "YouTube channel upload limit exceeded; the short stays pending (\(message))"
        case .publishingLimitReached(let usage, let total):
            return "Instagram publishing limit reached (\(usage) of \(total) in the current window); the short stays pending"
        case .containerFailed(let id, let status):
            return "Instagram could not process container \(id): \(status); the short stays pending"
        case .containerExpired(let id):
            return "Instagram container \(id) expired before it was published; the short stays pending"
        case .processingTimedOut(let id, let polls):
            return "Instagram container \(id) still processing after \(polls) polls; the short stays pending"
        case .sessionExpired(let restarts):
            return "YouTube upload session expired after \(restarts) restarts; the short stays pending"
        case .serverUnavailable(let platform, let attempts, let last):
            return "\(platform.rawValue) unavailable after \(attempts) attempts (\(last)); the short stays pending"
        case .rejected(let platform, let status, let message):
            return "\(platform.rawValue) refused the upload with HTTP \(status): \(message); the short stays pending"
        case .invalidResponse(let platform, let detail):
            return "\(platform.rawValue) sent an unexpected response: \(detail); the short stays pending"
        case .unreadableFile(let path, let reason):
            return "cannot read the video \(path): \(reason)"
        case .invalidConfiguration(let detail):
            return "invalid upload configuration: \(detail)"
        }
    }

    /// The text to store with the pending short.
    public var pendingReason: String { description }

    /// True when the same request can succeed later with nothing changed (quotas reset,
    /// servers recover); false when a person has to act (a refusal, a broken file).
    public var retryLater: Bool {
        switch self {
        case .quotaExceeded, .uploadLimitExceeded, .publishingLimitReached, .sessionExpired,
            .serverUnavailable, .processingTimedOut, .containerExpired:
            return true
        case .containerFailed, .rejected, .invalidResponse, .unreadableFile, .invalidConfiguration:
            return false
        }
    }
}
