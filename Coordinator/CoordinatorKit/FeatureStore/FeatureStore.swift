import Foundation
import GRDB
import Learning
import Wire

/// What one ingested file changed.
public struct IngestCounts: Sendable, Equatable {
    public var rows = 0
    /// Ids not seen before.
    public var inserted = 0
    /// New versions of known ids.
    public var updated = 0
    /// Rows identical to what is stored (a file ingested twice changes nothing).
    public var unchanged = 0
    /// Listings: the ids not seen before that are active (candidates for a short).
    public var newActiveListings: [Int] = []
}

/// The product's feature store, in the coordinator's SQLite file: every version of every
/// user and listing with the time it became true (`event_time`) and the time it was
/// written (`written_at`), and the events people cause.
///
/// Guarantees: a file is ingested in one transaction — any bad row and nothing is
/// written; re-ingesting a file changes nothing; an update never overwrites, it adds a
/// version, so any past training set can be built again (``PointInTimeJoin``).
public final class FeatureStore: @unchecked Sendable {
    let pool: DatabasePool

    public init(_ store: ClusterStore) {
        pool = store.pool
    }

    public enum Table: String, CaseIterable, Sendable {
        case users, listings, events
    }

    static func register(_ migrator: inout DatabaseMigrator) {
        migrator.registerMigration("v3-feature-store") { db in
            try db.execute(sql: """
                CREATE TABLE fs_user (
                  user_id INTEGER NOT NULL, event_time DOUBLE NOT NULL, written_at DOUBLE NOT NULL,
                  age INTEGER NOT NULL, income DOUBLE NOT NULL, household_size INTEGER NOT NULL, has_children INTEGER NOT NULL,
                  max_commute_min DOUBLE NOT NULL, risk_appetite DOUBLE NOT NULL, investment_horizon_years INTEGER NOT NULL,
                  prefers_new_build INTEGER NOT NULL, preferred_region TEXT NOT NULL, budget DOUBLE NOT NULL,
                  PRIMARY KEY (user_id, event_time, written_at)
                );
                CREATE TABLE fs_listing (
                  listing_id INTEGER NOT NULL, event_time DOUBLE NOT NULL, written_at DOUBLE NOT NULL,
                  price DOUBLE NOT NULL, area_m2 DOUBLE NOT NULL, rooms INTEGER NOT NULL, floor INTEGER NOT NULL,
                  building_age INTEGER NOT NULL, region TEXT NOT NULL, subway_distance_m DOUBLE, school_score DOUBLE,
                  expected_yield DOUBLE NOT NULL, new_build INTEGER NOT NULL, lat DOUBLE NOT NULL, lon DOUBLE NOT NULL,
                  status TEXT NOT NULL, photos TEXT NOT NULL,
                  PRIMARY KEY (listing_id, event_time, written_at)
                );
                CREATE TABLE fs_event (
                  event_id TEXT PRIMARY KEY, user_id INTEGER NOT NULL, listing_id INTEGER NOT NULL, type TEXT NOT NULL,
                  event_time DOUBLE NOT NULL, written_at DOUBLE NOT NULL
                );
                CREATE INDEX fs_event_time ON fs_event(event_time);
                CREATE TABLE fs_ingest (
                  id INTEGER PRIMARY KEY, tbl TEXT NOT NULL, file TEXT NOT NULL, sha256 TEXT NOT NULL, rows INTEGER NOT NULL,
                  inserted INTEGER NOT NULL, updated INTEGER NOT NULL, unchanged INTEGER NOT NULL, actor TEXT NOT NULL, at DOUBLE NOT NULL
                );
                CREATE TABLE training_set (
                  sha256 TEXT PRIMARY KEY, definition TEXT NOT NULL, rows INTEGER NOT NULL, positives INTEGER NOT NULL, built_at DOUBLE NOT NULL
                );
                CREATE TABLE recommendation (
                  job_id TEXT NOT NULL, user_id INTEGER NOT NULL, rank INTEGER NOT NULL, listing_id INTEGER NOT NULL,
                  score DOUBLE NOT NULL, reasons TEXT NOT NULL, PRIMARY KEY (job_id, user_id, rank)
                );
                CREATE TABLE drift_report (
                  id TEXT PRIMARY KEY, job_id TEXT NOT NULL, summary BLOB NOT NULL, report TEXT NOT NULL, svgs TEXT NOT NULL, created_at DOUBLE NOT NULL
                );
                CREATE TABLE score_run (
                  job_id TEXT PRIMARY KEY, model TEXT NOT NULL, version INTEGER NOT NULL, finished_at DOUBLE
                );
                """)
        }
    }

    // MARK: Ingest

    /// Parses `csv` as the named table's file and stores it in one transaction. Errors
    /// are ``DataError``s naming `fileName`, the line and the column.
    public func ingest(_ table: Table, csv: [UInt8], fileName: String, sha256: String = "", actor: String = "operator",
                       now: Double = Date().timeIntervalSince1970) throws -> IngestCounts {
        let csvTable = try CSVTable(bytes: csv, file: fileName)
        let counts: IngestCounts
        switch table {
        case .users:
            let rows = try FeatureStoreFiles.users(csvTable)
            counts = try pool.write { db in try self.storeUsers(rows, file: fileName, now: now, db) }
        case .listings:
            let rows = try FeatureStoreFiles.listings(csvTable)
            counts = try pool.write { db in try self.storeListings(rows, file: fileName, now: now, db) }
        case .events:
            let rows = try FeatureStoreFiles.events(csvTable)
            counts = try pool.write { db in try self.storeEvents(rows, file: fileName, now: now, db) }
        }
        try pool.write { db in
            try db.execute(sql: "INSERT INTO fs_ingest (tbl, file, sha256, rows, inserted, updated, unchanged, actor, at) VALUES (?,?,?,?,?,?,?,?,?)",
                           arguments: [table.rawValue, fileName, sha256, counts.rows, counts.inserted, counts.updated, counts.unchanged, actor, now])
        }
        return counts
    }

    private static func checkWritten(_ written: Double?, now: Double, file: String, line: Int) throws {
        if let w = written, w > now + 1 {
            throw DataError.invalidValue(file: file, line: line, column: 0, columnName: "written_at", value: Timestamp.format(w),
                                         expected: "a time not after now (\(Timestamp.format(now))): values cannot be known in the future")
        }
    }

    private func storeUsers(_ rows: [ParsedRow<MarketUser>], file: String, now: Double, _ db: Database) throws -> IngestCounts {
        var counts = IngestCounts(rows: rows.count)
        let latest = try latestUsers(db, asOf: .infinity)
        for row in rows {
            try Self.checkWritten(row.writtenAt, now: now, file: file, line: row.line)
            let u = row.value
            if let current = latest[u.id], current.value == u, row.eventTime.map({ $0 >= current.eventTime }) ?? true {
                counts.unchanged += 1
                continue
            }
            if latest[u.id] != nil { counts.updated += 1 } else { counts.inserted += 1 }
            try db.execute(sql: """
                INSERT OR REPLACE INTO fs_user (user_id, event_time, written_at, age, income, household_size, has_children, max_commute_min,
                  risk_appetite, investment_horizon_years, prefers_new_build, preferred_region, budget) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)
                """, arguments: [u.id, row.eventTime ?? now, row.writtenAt ?? now, u.age, u.income, u.householdSize, u.hasChildren,
                                 u.maxCommuteMin, u.riskAppetite, u.investmentHorizonYears, u.prefersNewBuild, u.preferredRegion, u.budget])
        }
        return counts
    }

    private func storeListings(_ rows: [ParsedRow<StoredListing>], file: String, now: Double, _ db: Database) throws -> IngestCounts {
        var counts = IngestCounts(rows: rows.count)
        let latest = try latestListings(db, asOf: .infinity)
        for row in rows {
            try Self.checkWritten(row.writtenAt, now: now, file: file, line: row.line)
            let s = row.value, l = s.listing
            if let current = latest[l.id], current.value == s, row.eventTime.map({ $0 >= current.eventTime }) ?? true {
                counts.unchanged += 1
                continue
            }
            if latest[l.id] != nil {
                counts.updated += 1
            } else {
                counts.inserted += 1
                if s.status == .active { counts.newActiveListings.append(l.id) }
            }
            try db.execute(sql: """
                INSERT OR REPLACE INTO fs_listing (listing_id, event_time, written_at, price, area_m2, rooms, floor, building_age, region,
                  subway_distance_m, school_score, expected_yield, new_build, lat, lon, status, photos) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)
                """, arguments: [l.id, row.eventTime ?? now, row.writtenAt ?? now, l.price, l.areaM2, l.rooms, l.floor, l.buildingAge, l.region,
                                 l.subwayDistanceM, l.schoolScore, l.expectedYield, l.newBuild, l.lat, l.lon, s.status.rawValue,
                                 s.photos.joined(separator: ";")])
        }
        return counts
    }

    private func storeEvents(_ rows: [ParsedRow<FeedbackEventRow>], file: String, now: Double, _ db: Database) throws -> IngestCounts {
        var counts = IngestCounts(rows: rows.count)
        let users = try Set(Int.fetchAll(db, sql: "SELECT DISTINCT user_id FROM fs_user"))
        let listings = try Set(Int.fetchAll(db, sql: "SELECT DISTINCT listing_id FROM fs_listing"))
        for row in rows {
            try Self.checkWritten(row.writtenAt, now: now, file: file, line: row.line)
            let e = row.value
            guard users.contains(e.userID) else {
                throw DataError.unknownReference(file: file, line: row.line, column: "user_id", value: String(e.userID))
            }
            guard listings.contains(e.listingID) else {
                throw DataError.unknownReference(file: file, line: row.line, column: "listing_id", value: String(e.listingID))
            }
            if try insertEvent(e, writtenAt: row.writtenAt ?? now, db) {
                counts.inserted += 1
            } else if let stored = try storedEvent(e.eventID, db), stored == e {
                counts.unchanged += 1
            } else {
                throw DataError.conflictingID(file: file, line: row.line, column: "event_id", value: e.eventID,
                                              reason: "is already stored with different values; events cannot change — give the new event its own id")
            }
        }
        return counts
    }

    /// True when the event was new.
    private func insertEvent(_ e: FeedbackEventRow, writtenAt: Double, _ db: Database) throws -> Bool {
        try db.execute(sql: "INSERT INTO fs_event (event_id, user_id, listing_id, type, event_time, written_at) VALUES (?,?,?,?,?,?) ON CONFLICT(event_id) DO NOTHING",
                       arguments: [e.eventID, e.userID, e.listingID, e.type.rawValue, e.eventTime, writtenAt])
        return db.changesCount > 0
    }

    private func storedEvent(_ id: String, _ db: Database) throws -> FeedbackEventRow? {
        try Row.fetchOne(db, sql: "SELECT * FROM fs_event WHERE event_id = ?", arguments: [id]).map { r in
            FeedbackEventRow(eventID: r["event_id"], userID: r["user_id"], listingID: r["listing_id"],
                             type: FeedbackEventType(rawValue: r["type"]) ?? .impression, eventTime: r["event_time"])
        }
    }

    /// Events from the gateway: idempotent by id (a replayed batch counts as duplicates);
    /// an event naming an unknown user or listing, or an unknown type, fails the batch.
    public func record(events: [WireFeedbackEvent], now: Double = Date().timeIntervalSince1970) throws -> (inserted: Int, duplicates: Int) {
        try pool.write { db in
            var inserted = 0, duplicates = 0
            for w in events {
                guard let type = FeedbackEventType(rawValue: w.type) else {
                    throw WireError.invalidArgument("event \(w.eventID): unknown type \"\(w.type)\"; expected impression, click, save or contract")
                }
                guard !w.eventID.isEmpty, w.eventID.utf8.count <= 128 else { throw WireError.invalidArgument("an event needs an id of 1 to 128 bytes") }
                // Ids are at most Int32.max (as ingest allows); larger ones cannot exist.
                guard w.userID <= UInt64(Int32.max) else { throw WireError.notFound(what: "user \(w.userID) (event \(w.eventID))") }
                guard w.listingID <= UInt64(Int32.max) else { throw WireError.notFound(what: "listing \(w.listingID) (event \(w.eventID))") }
                guard w.eventTimeMs >= 0, w.eventTimeMs <= 253_402_300_799_000 else {
                    throw WireError.invalidArgument("event \(w.eventID): event_time_ms \(w.eventTimeMs) is not a time from 1970 to 9999")
                }
                guard try Bool.fetchOne(db, sql: "SELECT EXISTS(SELECT 1 FROM fs_user WHERE user_id = ?)", arguments: [Int(w.userID)]) == true else {
                    throw WireError.notFound(what: "user \(w.userID) (event \(w.eventID))")
                }
                guard try Bool.fetchOne(db, sql: "SELECT EXISTS(SELECT 1 FROM fs_listing WHERE listing_id = ?)", arguments: [Int(w.listingID)]) == true else {
                    throw WireError.notFound(what: "listing \(w.listingID) (event \(w.eventID))")
                }
                let e = FeedbackEventRow(eventID: w.eventID, userID: Int(w.userID), listingID: Int(w.listingID), type: type,
                                         eventTime: w.eventTimeMs == 0 ? now : Double(w.eventTimeMs) / 1000)
                if try insertEvent(e, writtenAt: now, db) { inserted += 1 } else { duplicates += 1 }
            }
            return (inserted, duplicates)
        }
    }

    // MARK: Reading

    static func user(_ r: Row) -> MarketUser {
        MarketUser(id: r["user_id"], age: r["age"], income: r["income"], householdSize: r["household_size"], hasChildren: r["has_children"],
                   maxCommuteMin: r["max_commute_min"], riskAppetite: r["risk_appetite"], investmentHorizonYears: r["investment_horizon_years"],
                   prefersNewBuild: r["prefers_new_build"], preferredRegion: r["preferred_region"], budget: r["budget"])
    }

    static func listing(_ r: Row) -> StoredListing {
        let l = MarketListing(id: r["listing_id"], price: r["price"], areaM2: r["area_m2"], rooms: r["rooms"], floor: r["floor"],
                              buildingAge: r["building_age"], region: r["region"], subwayDistanceM: r["subway_distance_m"],
                              schoolScore: r["school_score"], expectedYield: r["expected_yield"], newBuild: r["new_build"], lat: r["lat"], lon: r["lon"])
        let photos: String = r["photos"]
        return StoredListing(listing: l, status: ListingStatus(rawValue: r["status"]) ?? .active,
                             photos: photos.split(separator: ";").map(String.init))
    }

    /// Every version of every user.
    public func userVersions() throws -> [Versioned<MarketUser>] {
        try pool.read { db in
            try Row.fetchAll(db, sql: "SELECT * FROM fs_user").map {
                Versioned(id: $0["user_id"], eventTime: $0["event_time"], writtenAt: $0["written_at"], value: Self.user($0))
            }
        }
    }

    public func listingVersions() throws -> [Versioned<StoredListing>] {
        try pool.read { db in
            try Row.fetchAll(db, sql: "SELECT * FROM fs_listing").map {
                Versioned(id: $0["listing_id"], eventTime: $0["event_time"], writtenAt: $0["written_at"], value: Self.listing($0))
            }
        }
    }

    private func latestUsers(_ db: Database, asOf: Double) throws -> [Int: Versioned<MarketUser>] {
        var out: [Int: Versioned<MarketUser>] = [:]
        for r in try Row.fetchAll(db, sql: "SELECT * FROM fs_user ORDER BY user_id, event_time, written_at") {
            let v = Versioned(id: r["user_id"], eventTime: r["event_time"], writtenAt: r["written_at"], value: Self.user(r))
            if v.eventTime <= asOf { out[v.id] = v }
        }
        return out
    }

    private func latestListings(_ db: Database, asOf: Double) throws -> [Int: Versioned<StoredListing>] {
        var out: [Int: Versioned<StoredListing>] = [:]
        for r in try Row.fetchAll(db, sql: "SELECT * FROM fs_listing ORDER BY listing_id, event_time, written_at") {
            let v = Versioned(id: r["listing_id"], eventTime: r["event_time"], writtenAt: r["written_at"], value: Self.listing(r))
            if v.eventTime <= asOf { out[v.id] = v }
        }
        return out
    }

    /// The users and active listings as they are now, for scoring.
    public func snapshot(now: Double = Date().timeIntervalSince1970) throws -> MarketSnapshot {
        try pool.read { db in
            let users = try latestUsers(db, asOf: now).values.map(\.value)
            let listings = try latestListings(db, asOf: now).values.filter { $0.value.status == .active }.map(\.value.listing)
            return MarketSnapshot(users: users, listings: listings)
        }
    }

    public func listing(_ id: Int) throws -> StoredListing? {
        try pool.read { db in
            try Row.fetchOne(db, sql: "SELECT * FROM fs_listing WHERE listing_id = ? ORDER BY event_time DESC, written_at DESC LIMIT 1",
                             arguments: [id]).map(Self.listing)
        }
    }

    public func counts() throws -> (users: Int, listings: Int, events: Int) {
        try pool.read { db in
            (try Int.fetchOne(db, sql: "SELECT COUNT(DISTINCT user_id) FROM fs_user") ?? 0,
             try Int.fetchOne(db, sql: "SELECT COUNT(DISTINCT listing_id) FROM fs_listing") ?? 0,
             try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM fs_event") ?? 0)
        }
    }

    // MARK: Training sets

    /// Builds the point-in-time training set of `definition` from what is stored.
    public func buildTrainingSet(_ definition: TrainingSetDefinition) throws -> PointInTimeJoin.Result {
        let (impressions, actions) = try pool.read { db -> ([PointInTimeJoin.Impression], [PointInTimeJoin.Action]) in
            var impressions: [PointInTimeJoin.Impression] = [], actions: [PointInTimeJoin.Action] = []
            let rows = try Row.fetchCursor(db, sql: "SELECT event_id, user_id, listing_id, type, event_time, written_at FROM fs_event WHERE event_time >= ? AND event_time < ?",
                                           arguments: [definition.from, definition.to + definition.labelWindowSeconds])
            while let r = try rows.next() {
                let type: String = r["type"]
                if type == FeedbackEventType.impression.rawValue {
                    impressions.append(.init(eventID: r["event_id"], userID: r["user_id"], listingID: r["listing_id"], time: r["event_time"], writtenAt: r["written_at"]))
                } else {
                    actions.append(.init(userID: r["user_id"], listingID: r["listing_id"], time: r["event_time"], writtenAt: r["written_at"]))
                }
            }
            return (impressions, actions)
        }
        let listings = try listingVersions().map { Versioned(id: $0.id, eventTime: $0.eventTime, writtenAt: $0.writtenAt, value: $0.value.listing) }
        return try PointInTimeJoin.build(definition, impressions: impressions, actions: actions, users: try userVersions(), listings: listings)
    }

    /// Builds, stores as a blob and records a training set; building the same definition
    /// again gives the same address.
    public func makeTrainingSet(_ definition: TrainingSetDefinition, blobs: BlobStore, now: Double = Date().timeIntervalSince1970) throws -> WireTrainingSetInfo {
        let result = try buildTrainingSet(definition)
        let sha = try blobs.put(TrainingSetFile.encode(result.dataset, definition: definition))
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        let json = String(decoding: try encoder.encode(definition), as: UTF8.self)
        try pool.write { db in
            try db.execute(sql: "INSERT OR IGNORE INTO training_set (sha256, definition, rows, positives, built_at) VALUES (?,?,?,?,?)",
                           arguments: [sha, json, result.dataset.rowCount, result.positives, now])
        }
        var info = WireTrainingSetInfo()
        info.sha256 = sha
        info.definition = definition.wire
        info.rows = UInt64(result.dataset.rowCount)
        info.positives = UInt64(result.positives)
        info.builtAtMs = Int64(now * 1000)
        return info
    }

    public func trainingSetDefinition(_ sha: String) throws -> TrainingSetDefinition? {
        try pool.read { db in
            try String.fetchOne(db, sql: "SELECT definition FROM training_set WHERE sha256 = ?", arguments: [sha]).flatMap {
                try? JSONDecoder().decode(TrainingSetDefinition.self, from: Data($0.utf8))
            }
        }
    }

    // MARK: Recommendations

    /// Stores one shard's recommendations (replacing a shard stored before, so a task
    /// recorded twice still leaves one copy).
    static func save(_ output: WireScoreOutput, job: String, _ db: Database) throws {
        for user in output.users {
            try db.execute(sql: "DELETE FROM recommendation WHERE job_id = ? AND user_id = ?", arguments: [job, Int(user.userID)])
            for item in user.items {
                try db.execute(sql: "INSERT INTO recommendation (job_id, user_id, rank, listing_id, score, reasons) VALUES (?,?,?,?,?,?)",
                               arguments: [job, Int(user.userID), Int(item.rank), Int(item.listingID), item.score, item.reasons.joined(separator: "\n")])
            }
        }
    }

    /// The reason phrases stored recommendations give most often for `listing`, most
    /// frequent first (ties in phrase order); empty when it was never recommended.
    public func topReasons(listing: Int, limit: Int) throws -> [String] {
        try pool.read { db in
            var counts: [String: Int] = [:]
            let rows = try String.fetchCursor(db, sql: "SELECT reasons FROM recommendation WHERE listing_id = ? AND reasons <> ''", arguments: [listing])
            while let reasons = try rows.next() {
                for phrase in reasons.split(separator: "\n") where !phrase.isEmpty { counts[String(phrase), default: 0] += 1 }
            }
            return counts.sorted { $0.value != $1.value ? $0.value > $1.value : $0.key < $1.key }.prefix(limit).map(\.key)
        }
    }

    static func recordScoreRun(job: String, model: String, version: Int, finishedAt: Double?, _ db: Database) throws {
        try db.execute(sql: "INSERT OR REPLACE INTO score_run (job_id, model, version, finished_at) VALUES (?,?,?,?)",
                       arguments: [job, model, version, finishedAt])
    }

    /// What changes whenever users, listings or the latest score job change.
    public struct ChangeMarker: Equatable, Sendable {
        var users: Int, listings: Int, lastUserWrite: Double, lastListingWrite: Double, scoreJob: String
    }

    public func changeMarker() throws -> ChangeMarker {
        try pool.read { db in
            ChangeMarker(users: try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM fs_user") ?? 0,
                         listings: try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM fs_listing") ?? 0,
                         lastUserWrite: try Double.fetchOne(db, sql: "SELECT MAX(written_at) FROM fs_user") ?? 0,
                         lastListingWrite: try Double.fetchOne(db, sql: "SELECT MAX(written_at) FROM fs_listing") ?? 0,
                         scoreJob: try String.fetchOne(db, sql: "SELECT job_id FROM score_run WHERE finished_at IS NOT NULL ORDER BY finished_at DESC LIMIT 1") ?? "")
        }
    }

    public func latestScoreRun() throws -> (job: String, model: String, version: Int, finishedAt: Double)? {
        try pool.read { db in
            try Row.fetchOne(db, sql: "SELECT * FROM score_run WHERE finished_at IS NOT NULL ORDER BY finished_at DESC LIMIT 1").map {
                ($0["job_id"], $0["model"], $0["version"], $0["finished_at"])
            }
        }
    }

    func finishScoreRun(job: String, model: String, version: Int, at: Double) throws {
        try pool.write { db in try Self.recordScoreRun(job: job, model: model, version: version, finishedAt: at, db) }
    }

    /// A user's recommendations from `job` (default: the latest finished score job).
    public func recommendations(user: Int, job: String? = nil) throws -> WireRecommendationList {
        try pool.read { db in
            let run: Row?
            if let job, !job.isEmpty {
                run = try Row.fetchOne(db, sql: "SELECT * FROM score_run WHERE job_id = ?", arguments: [job])
                guard run != nil else { throw WireError.notFound(what: "score job \(job)") }
            } else {
                run = try Row.fetchOne(db, sql: "SELECT * FROM score_run WHERE finished_at IS NOT NULL ORDER BY finished_at DESC LIMIT 1")
            }
            guard let run else {
                throw WireError.notFound(what: "recommendations: no score job has finished yet; run `coordinator submit score --follow`")
            }
            let jobID: String = run["job_id"]
            guard try Bool.fetchOne(db, sql: "SELECT EXISTS(SELECT 1 FROM fs_user WHERE user_id = ?)", arguments: [user]) == true else {
                throw WireError.notFound(what: "user \(user) in the feature store")
            }
            var list = WireRecommendationList()
            list.userID = UInt64(user)
            list.jobID = jobID
            list.model = run["model"]
            list.modelVersion = UInt32(run["version"] as Int)
            list.scoredAtMs = Int64(((run["finished_at"] as Double?) ?? 0) * 1000)
            list.items = try Row.fetchAll(db, sql: "SELECT * FROM recommendation WHERE job_id = ? AND user_id = ? ORDER BY rank",
                                          arguments: [jobID, user]).map { r in
                var item = WireRecommendation()
                item.listingID = UInt64(r["listing_id"] as Int)
                item.rank = UInt32(r["rank"] as Int)
                item.score = r["score"]
                let reasons: String = r["reasons"]
                item.reasons = reasons.isEmpty ? [] : reasons.components(separatedBy: "\n")
                return item
            }
            return list
        }
    }
}

extension TrainingSetDefinition {
    public var wire: WireTrainingSetDefinition {
        var w = WireTrainingSetDefinition()
        w.fromMs = Int64(from * 1000)
        w.toMs = Int64(to * 1000)
        w.labelWindowSeconds = UInt32(labelWindowSeconds)
        w.asOfMs = Int64(asOf * 1000)
        return w
    }

    public init(wire w: WireTrainingSetDefinition, now: Double) throws {
        // Whole milliseconds, as the wire carries them: the definition sent back rebuilds
        // the same set.
        let now = (now * 1000).rounded(.down) / 1000
        let asOf = w.asOfMs == 0 ? now : Double(w.asOfMs) / 1000
        let to = w.toMs == 0 ? asOf : Double(w.toMs) / 1000
        let from = Double(w.fromMs) / 1000
        guard from < to else {
            throw WireError.invalidArgument("training set: from (\(Timestamp.format(from))) must be before to (\(Timestamp.format(to)))")
        }
        self.init(from: from, to: to, labelWindowSeconds: w.labelWindowSeconds == 0 ? 86_400 : Double(w.labelWindowSeconds), asOf: asOf)
    }
}
