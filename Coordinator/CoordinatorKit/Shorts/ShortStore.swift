import Foundation
import GRDB
import Wire

/// The marketing shorts render jobs made, in the coordinator's SQLite file: one row per
/// short (its video is a blob), written in the same transaction as the render task's
/// result, so a task recorded once leaves exactly one row.
public struct ShortStore: Sendable {
    let pool: DatabasePool

    public init(_ store: ClusterStore) {
        pool = store.pool
    }

    public static let pendingReview = "pending_review"
    /// An approval is uploading it now (one at a time per short).
    public static let publishing = "publishing"
    /// Approved, and a platform refused it or could not take it yet; `reason` says why.
    public static let pendingUpload = "pending_upload"
    public static let published = "published"

    static func register(_ migrator: inout DatabaseMigrator) {
        migrator.registerMigration("v5-shorts") { db in
            try db.execute(sql: """
                CREATE TABLE short (
                  id TEXT PRIMARY KEY, listing_id INTEGER NOT NULL, job_id TEXT NOT NULL, sha256 TEXT NOT NULL,
                  bytes INTEGER NOT NULL, duration DOUBLE NOT NULL, state TEXT NOT NULL, language TEXT NOT NULL,
                  script TEXT NOT NULL, created_at DOUBLE NOT NULL, reason TEXT NOT NULL DEFAULT ''
                );
                CREATE INDEX short_created ON short(created_at);
                """)
        }
        migrator.registerMigration("v6-short-publication") { db in
            try db.execute(sql: """
                ALTER TABLE short ADD COLUMN youtube_video_id TEXT NOT NULL DEFAULT '';
                ALTER TABLE short ADD COLUMN instagram_media_id TEXT NOT NULL DEFAULT '';
                ALTER TABLE short ADD COLUMN published_at DOUBLE;
                ALTER TABLE short ADD COLUMN approved_by TEXT NOT NULL DEFAULT '';
                """)
        }
    }

    public struct Row: Sendable, Equatable {
        public var id: String
        public var listing: Int
        public var job: String
        public var sha256: String
        public var bytes: Int
        public var duration: Double
        public var state: String
        public var language: String
        public var script: [String]
        public var createdAt: Double
        public var reason: String
    }

    /// Stores a short (replacing one stored before under its id).
    static func save(_ r: Row, _ db: Database) throws {
        try db.execute(sql: """
            INSERT OR REPLACE INTO short (id, listing_id, job_id, sha256, bytes, duration, state, language, script, created_at, reason)
            VALUES (?,?,?,?,?,?,?,?,?,?,?)
            """, arguments: [r.id, r.listing, r.job, r.sha256, r.bytes, r.duration, r.state, r.language,
                             r.script.joined(separator: "\n"), r.createdAt, r.reason])
    }

    static func wire(_ r: GRDB.Row) -> WireShortInfo {
        var info = WireShortInfo()
        info.id = r["id"]
        info.listingID = UInt64(max(0, r["listing_id"] as Int))
        info.jobID = r["job_id"]
        info.sha256 = r["sha256"]
        info.bytes = UInt64(max(0, r["bytes"] as Int))
        info.durationSeconds = r["duration"]
        info.state = r["state"]
        info.language = r["language"]
        let script: String = r["script"]
        info.scriptLines = script.isEmpty ? [] : script.components(separatedBy: "\n")
        info.createdAtMs = Int64((r["created_at"] as Double) * 1000)
        info.reason = r["reason"]
        info.youtubeVideoID = r["youtube_video_id"]
        info.instagramMediaID = r["instagram_media_id"]
        info.publishedAtMs = (r["published_at"] as Double?).map { Int64($0 * 1000) } ?? 0
        info.approvedBy = r["approved_by"]
        return info
    }

    /// Every short, newest first.
    public func list() throws -> WireShortList {
        try pool.read { db in
            var list = WireShortList()
            list.shorts = try GRDB.Row.fetchAll(db, sql: "SELECT * FROM short ORDER BY created_at DESC, id").map(Self.wire)
            return list
        }
    }

    public func short(_ id: String) throws -> WireShortInfo {
        try pool.read { db in
            guard let row = try GRDB.Row.fetchOne(db, sql: "SELECT * FROM short WHERE id = ?", arguments: [id]) else {
                throw WireError.notFound(what: "short \(id) (see `coordinator shorts`)")
            }
            return Self.wire(row)
        }
    }

    /// Marks the short as being published by `actor`, if no approval is publishing it
    /// already and it is not published; returns it as it was before.
    func beginPublishing(_ id: String, actor: String) throws -> WireShortInfo {
        try pool.write { db in
            guard let row = try GRDB.Row.fetchOne(db, sql: "SELECT * FROM short WHERE id = ?", arguments: [id]) else {
                throw WireError.notFound(what: "short \(id) (see `coordinator shorts`)")
            }
            let info = Self.wire(row)
            switch info.state {
            case Self.publishing:
                throw WireError.invalidArgument("short \(id) is being published by \(info.approvedBy) now; see `coordinator shorts get \(id)` when it ends")
            case Self.published:
                throw WireError.invalidArgument("short \(id) is already published (\(Self.destinations(info))); nothing to do")
            default:
                try db.execute(sql: "UPDATE short SET state = ?, approved_by = ?, reason = '' WHERE id = ?",
                               arguments: [Self.publishing, actor, id])
                return info
            }
        }
    }

    /// Records where the short is now and why; `published` stamps the time.
    func finishPublishing(_ id: String, youtube: String, instagram: String, state: String, reason: String,
                          now: Double = Date().timeIntervalSince1970) throws {
        try pool.write { db in
            try db.execute(sql: """
                UPDATE short SET state = ?, reason = ?, youtube_video_id = ?, instagram_media_id = ?,
                  published_at = CASE WHEN ? = 'published' THEN ? ELSE published_at END WHERE id = ?
                """, arguments: [state, reason, youtube, instagram, state, now, id])
        }
    }

    /// A coordinator that stopped mid-publication leaves shorts `publishing`; at start they
    /// go back to `pending_upload`, so an operator can approve them again.
    func releaseInterruptedPublications() throws -> Int {
        try pool.write { db in
            try db.execute(sql: "UPDATE short SET state = ?, reason = ? WHERE state = ?",
                           arguments: [Self.pendingUpload, "the coordinator stopped while publishing; approve it again", Self.publishing])
            return db.changesCount
        }
    }

    static func destinations(_ info: WireShortInfo) -> String {
        var parts: [String] = []
        if !info.youtubeVideoID.isEmpty { parts.append("YouTube video \(info.youtubeVideoID)") }
        if !info.instagramMediaID.isEmpty { parts.append("Instagram media \(info.instagramMediaID)") }
        return parts.isEmpty ? "nowhere" : parts.joined(separator: ", ")
    }
}
