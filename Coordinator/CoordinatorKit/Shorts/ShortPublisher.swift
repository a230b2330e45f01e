import Foundation
import Learning
import Logging
import Media
import MediaUpload
import Wire

/// Publishes an approved short to every configured platform (YouTube, Instagram Reels).
/// Nothing is published without an operator's approval; a refusal or a quota keeps the
/// short `pending_upload` with the platform's reason, and approving it again sends it
/// only to the platforms that do not have it yet.
///
/// Guarantees: one approval at a time per short (the store's `publishing` state is the
/// lock); the tokens are never logged (``AccessToken``); an approval the coordinator did
/// not finish (it stopped) is released at the next start.
public struct ShortPublisher: Sendable {
    let settings: ShortSettings
    let shorts: ShortStore
    let features: FeatureStore
    let blobs: BlobStore
    let logger: Logger
    /// How the upload clients wait between retries (tests pass one that does not wait).
    var retry = Backoff()
    var poll = Backoff(initial: .seconds(5), multiplier: 1.5, maximum: .seconds(60))

    init(settings: ShortSettings, store: ClusterStore, blobs: BlobStore, logger: Logger) {
        self.settings = settings
        self.shorts = ShortStore(store)
        self.features = FeatureStore(store)
        self.blobs = blobs
        self.logger = logger
    }

    public func approve(_ id: String, dryRun: Bool, actor: String) async throws -> WireShortInfo {
        if dryRun { return try plan(id) }
        guard settings.youTube != nil || settings.instagram != nil else {
            throw WireError.invalidArgument("no platform to publish to: add shorts.youtube and/or shorts.instagram (with access_token_file) to the coordinator's config and restart it; short \(id) stays as it is")
        }
        let before = try shorts.beginPublishing(id, actor: actor)
        let metadata = try self.metadata(before)
        let file = blobs.url(for: before.sha256)
        var youTubeID = before.youtubeVideoID, instagramID = before.instagramMediaID
        var actions: [String] = [], problems: [String] = []
        logger.info("publishing a short", metadata: ["short": "\(id)", "by": "\(actor)"])

        if let target = settings.youTube {
            if !youTubeID.isEmpty {
                actions.append("YouTube: already uploaded as video \(youTubeID)")
            } else {
                do {
                    let config = YouTubeUploader.Configuration(token: target.token, baseURL: target.baseURL, retry: retry)
                    var meta = metadata
                    meta.privacy = target.privacy
                    let result = try await YouTubeUploader(configuration: config).upload(file: file, metadata: meta)
                    youTubeID = result.videoID
                    actions.append("YouTube: uploaded as \(target.privacy.rawValue) video \(result.videoID) (\(result.bytes) bytes, \(result.retries) retries)")
                } catch {
                    problems.append("YouTube: \(Self.reason(error))")
                }
            }
        }
        if let target = settings.instagram {
            if !instagramID.isEmpty {
                actions.append("Instagram: already published as media \(instagramID)")
            } else {
                do {
                    let config = InstagramReelsPublisher.Configuration(userID: target.userID, token: target.token, graphBaseURL: target.graphURL,
                                                                       uploadBaseURL: target.uploadURL, retry: retry, poll: poll)
                    let result = try await InstagramReelsPublisher(configuration: config).publish(file: file, metadata: metadata)
                    instagramID = result.mediaID
                    actions.append("Instagram: published as Reel \(result.mediaID) (container \(result.containerID), \(result.polls) status polls)")
                } catch {
                    problems.append("Instagram: \(Self.reason(error))")
                }
            }
        }
        let state = problems.isEmpty ? ShortStore.published : ShortStore.pendingUpload
        try shorts.finishPublishing(id, youtube: youTubeID, instagram: instagramID, state: state, reason: problems.joined(separator: "; "))
        if problems.isEmpty {
            logger.notice("short published", metadata: ["short": "\(id)", "youtube": "\(youTubeID)", "instagram": "\(instagramID)"])
        } else {
            logger.warning("short stays pending", metadata: ["short": "\(id)", "reason": "\(problems.joined(separator: "; "))"])
        }
        var info = try shorts.short(id)
        info.actions = actions + problems
        return info
    }

    /// What an approval would do, without doing it.
    func plan(_ id: String) throws -> WireShortInfo {
        var info = try shorts.short(id)
        let metadata = try self.metadata(info)
        let size = info.bytes >= 1 << 20 ? String(format: "%.1f MiB", Double(info.bytes) / 1_048_576) : String(format: "%.0f KiB", Double(info.bytes) / 1024)
        var actions: [String] = []
        if let target = settings.youTube {
            actions.append(info.youtubeVideoID.isEmpty
                ? "YouTube: would upload \(size) to \(target.baseURL.host ?? "") as a \(target.privacy.rawValue) video titled \"\(metadata.title)\""
                : "YouTube: already uploaded as video \(info.youtubeVideoID)")
        }
        if let target = settings.instagram {
            actions.append(info.instagramMediaID.isEmpty
                ? "Instagram: would publish \(size) as a Reel of account \(target.userID) with a \(metadata.instagramCaption.count)-character caption"
                : "Instagram: already published as media \(info.instagramMediaID)")
        }
        if actions.isEmpty { actions.append("nowhere: no shorts.youtube or shorts.instagram in the coordinator's config") }
        info.actions = actions.map { "dry run — " + $0 }
        return info
    }

    /// Title from the listing's facts, description from the script.
    func metadata(_ info: WireShortInfo) throws -> ShortMetadata {
        let language = ShortLanguage(rawValue: info.language) ?? .korean
        let title: String
        if info.listingID <= UInt64(Int.max), let stored = try features.listing(Int(info.listingID)) {
            title = ScriptWriter.title(try RenderPlanner.facts(stored.listing, features: features), language: language)
        } else {
            title = language == .korean ? "매물 \(info.listingID)번" : "Listing \(info.listingID)"
        }
        let tags = language == .korean ? ["부동산", "매물", "TowerRealty"] : ["realestate", "home", "TowerRealty"]
        return ShortMetadata(title: title, description: info.scriptLines.joined(separator: "\n"), tags: tags)
    }

    static func reason(_ error: Error) -> String {
        (error as? UploadError)?.pendingReason ?? "\(error)"
    }
}
