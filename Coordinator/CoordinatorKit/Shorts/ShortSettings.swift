import Foundation
import MediaUpload
import Yams

/// `shorts:` — when ingest queues a marketing short, and where an approved short is
/// published. Nothing is published without `coordinator shorts approve`.
///
/// ```yaml
/// shorts:
///   trigger_top_percent: 5        # new listings in the top 5% of predicted demand get a short; 0 = never
///   model: match                  # whose champion predicts demand
///   language: ko                  # ko or en
///   youtube:
///     access_token_file: /etc/tower/youtube.token
///     privacy: private            # private, unlisted or public
///   instagram:
///     user_id: "17841400000000001"
///     access_token_file: /etc/tower/instagram.token
/// ```
///
/// Guarantees: once parsed, the percent is in 0…100, the language is ko or en, and each
/// configured platform has a readable, non-empty token (read at start, so a missing file
/// is a start-up error, not a failed approval hours later).
public struct ShortSettings: Sendable, Equatable {
    public var triggerTopPercent: Double = 5
    public var model = "match"
    public var language = "ko"
    public var youTube: YouTubeTarget?
    public var instagram: InstagramTarget?

    public init() {}

    /// Where approved shorts go on YouTube.
    public struct YouTubeTarget: Sendable, Equatable {
        public var token: AccessToken
        public var baseURL = YouTubeUploader.Configuration.defaultBaseURL
        public var privacy: ShortMetadata.Privacy = .private

        public init(token: AccessToken, baseURL: URL = YouTubeUploader.Configuration.defaultBaseURL, privacy: ShortMetadata.Privacy = .private) {
            self.token = token
            self.baseURL = baseURL
            self.privacy = privacy
        }
    }

    /// Where approved shorts go on Instagram (as Reels).
    public struct InstagramTarget: Sendable, Equatable {
        public var userID: String
        public var token: AccessToken
        public var graphURL = InstagramReelsPublisher.Configuration.defaultGraphBaseURL
        public var uploadURL = InstagramReelsPublisher.Configuration.defaultUploadBaseURL

        public init(userID: String, token: AccessToken, graphURL: URL = InstagramReelsPublisher.Configuration.defaultGraphBaseURL,
                    uploadURL: URL = InstagramReelsPublisher.Configuration.defaultUploadBaseURL) {
            self.userID = userID
            self.token = token
            self.graphURL = graphURL
            self.uploadURL = uploadURL
        }
    }

    static let keys = ["trigger_top_percent", "model", "language", "youtube", "instagram"]
    static let youTubeKeys = ["access_token", "access_token_file", "base_url", "privacy"]
    static let instagramKeys = ["user_id", "access_token", "access_token_file", "graph_url", "upload_url"]

    /// Reads the `shorts:` node; errors name the key.
    static func parse(_ node: Node, path: String) throws -> ShortSettings {
        typealias P = PipelineDefinition
        func fail(_ key: String, _ problem: String) -> ConfigError { ConfigError.invalid("\(path): shorts.\(key): \(problem)") }
        var s = ShortSettings()
        if node.null != nil { return s }
        let fields = try P.mapping(node, key: "shorts", known: keys, path: path)
        if let v = fields["trigger_top_percent"] {
            guard let p = v.float, p.isFinite, p >= 0, p <= 100 else {
                throw ConfigError.invalidValue(key: "\(path): shorts.trigger_top_percent", value: P.show(v), expected: "a percent from 0 (never) to 100")
            }
            s.triggerTopPercent = p
        }
        if let v = fields["model"] { s.model = try P.string(v, key: "shorts.model", path: path) }
        if let v = fields["language"] {
            s.language = try P.string(v, key: "shorts.language", path: path)
            guard ["ko", "en"].contains(s.language) else { throw fail("language", "expected ko or en, got \"\(s.language)\"") }
        }
        if let node = fields["youtube"], node.null == nil {
            let y = try P.mapping(node, key: "shorts.youtube", known: youTubeKeys, path: path)
            let token = try Self.token(y, key: "shorts.youtube", path: path)
            var target = YouTubeTarget(token: token)
            if let v = y["base_url"] { target.baseURL = try Self.url(v, key: "shorts.youtube.base_url", path: path) }
            if let v = y["privacy"] {
                let text = try P.string(v, key: "shorts.youtube.privacy", path: path)
                guard let privacy = ShortMetadata.Privacy(rawValue: text) else { throw fail("youtube.privacy", "expected private, unlisted or public, got \"\(text)\"") }
                target.privacy = privacy
            }
            s.youTube = target
        }
        if let node = fields["instagram"], node.null == nil {
            let i = try P.mapping(node, key: "shorts.instagram", known: instagramKeys, path: path)
            guard let userNode = i["user_id"] else { throw fail("instagram.user_id", "name the Instagram professional account's user id") }
            let user = try P.string(userNode, key: "shorts.instagram.user_id", path: path)
            let token = try Self.token(i, key: "shorts.instagram", path: path)
            var target = InstagramTarget(userID: user, token: token)
            if let v = i["graph_url"] { target.graphURL = try Self.url(v, key: "shorts.instagram.graph_url", path: path) }
            if let v = i["upload_url"] { target.uploadURL = try Self.url(v, key: "shorts.instagram.upload_url", path: path) }
            s.instagram = target
        }
        return s
    }

    /// The token from `access_token_file` (trimmed) or `access_token`; exactly one.
    static func token(_ fields: [String: Node], key: String, path: String) throws -> AccessToken {
        switch (fields["access_token"], fields["access_token_file"]) {
        case let (inline?, nil):
            let text = try PipelineDefinition.string(inline, key: "\(key).access_token", path: path)
            guard !text.isEmpty else { throw ConfigError.invalid("\(path): \(key).access_token is empty") }
            return AccessToken(text)
        case let (nil, file?):
            let file = try PipelineDefinition.string(file, key: "\(key).access_token_file", path: path)
            let text: String
            do { text = try String(contentsOfFile: file, encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines) }
            catch { throw ConfigError.invalid("\(path): \(key).access_token_file: cannot read \(file): \(error.localizedDescription)") }
            guard !text.isEmpty else { throw ConfigError.invalid("\(path): \(key).access_token_file: \(file) is empty") }
            return AccessToken(text)
        case (nil, nil):
            throw ConfigError.invalid("\(path): \(key): give access_token_file (or access_token) with the OAuth token")
        case (_?, _?):
            throw ConfigError.invalid("\(path): \(key): give access_token_file or access_token, not both")
        }
    }

    static func url(_ node: Node, key: String, path: String) throws -> URL {
        let text = try PipelineDefinition.string(node, key: key, path: path)
        guard let url = URL(string: text), let scheme = url.scheme, ["http", "https"].contains(scheme), url.host != nil else {
            throw ConfigError.invalidValue(key: "\(path): \(key)", value: "\"\(text)\"", expected: "an http(s) URL")
        }
        return url
    }
}
