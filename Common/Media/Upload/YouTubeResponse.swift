import Foundation

/// What one answer of a YouTube resumable session means for the upload. Pure: the
/// uploader's I/O shell sends, this decides, so every branch is testable without sockets.
enum YouTubeSessionOutcome: Equatable, Sendable {
    /// 200/201: the video resource exists.
    case completed(videoID: String)
    /// 308 Resume Incomplete: the server holds bytes `0..<persisted`.
    case incomplete(persisted: Int)
    /// 5xx: worth asking the session where it stands and resuming after a backoff.
    case retryable(String)
    /// 404: the session URI is gone; only a new session can continue.
    case sessionExpired
    /// A refusal that no retry fixes.
    case stop(UploadError)

    static func classify(_ answer: HTTPAnswer, token: AccessToken) -> YouTubeSessionOutcome {
        switch answer.status {
        case 200, 201:
            guard let json = try? JSONSerialization.jsonObject(with: answer.body) as? [String: Any],
                  let id = json["id"] as? String, !id.isEmpty
            else {
                return .stop(.invalidResponse(platform: .youTube, detail: "upload finished without a video id"))
            }
            return .completed(videoID: id)
        case 308:
            guard let range = answer.header("Range") else { return .incomplete(persisted: 0) }
            guard let last = parseLastByte(range) else {
                return .stop(.invalidResponse(platform: .youTube, detail: "unreadable Range header \"\(token.redacting(range))\""))
            }
            return .incomplete(persisted: last + 1)
        case 404:
            return .sessionExpired
        case 500...599:
            return .retryable("HTTP \(answer.status)")
        default:
            return .stop(refusal(answer, token: token))
        }
    }

    /// Maps a 4xx to the typed error the caller acts on: quota and upload limits get their
    /// own cases because they mean "wait", not "fix something".
    static func refusal(_ answer: HTTPAnswer, token: AccessToken) -> UploadError {
        let error = GoogleError(answer.body)
        let message = token.redacting(error.message ?? String(decoding: answer.body.prefix(300), as: UTF8.self))
        if answer.status == 403, error.reasons.contains("quotaExceeded") {
            return .quotaExceeded(message: message)
        }
        if answer.status == 400, error.reasons.contains("uploadLimitExceeded") {
            return .uploadLimitExceeded(message: message)
        }
        return .rejected(platform: .youTube, status: answer.status, message: message)
    }

    /// `bytes=0-42` (or `0-42`) → 42. YouTube always reports a prefix starting at 0.
    static func parseLastByte(_ range: String) -> Int? {
        var text = Substring(range.trimmingCharacters(in: .whitespaces))
        if text.hasPrefix("bytes=") { text = text.dropFirst("bytes=".count) }
        let bounds = text.split(separator: "-", omittingEmptySubsequences: false)
        guard bounds.count == 2, bounds[0] == "0", let last = Int(bounds[1]), last >= 0 else { return nil }
        return last
    }
}

/// Google's JSON error body: `{"error":{"errors":[{"reason":…}],"code":…,"message":…}}`.
struct GoogleError {
    var reasons: [String] = []
    var message: String?

    init(_ body: Data) {
        guard let json = try? JSONSerialization.jsonObject(with: body) as? [String: Any],
              let error = json["error"] as? [String: Any]
        else { return }
        message = error["message"] as? String
        if let errors = error["errors"] as? [[String: Any]] {
            reasons = errors.compactMap { $0["reason"] as? String }
        }
    }
}
