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
}
