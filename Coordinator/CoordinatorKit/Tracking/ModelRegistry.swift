import Foundation
import GRDB
import Wire

/// The model registry: registered models, their versions (model file, holdout metrics,
/// the run and job they came from), aliases such as `champion`, and every promotion
/// decision with its numbers and reasons. Apart from run tracking (``TrackingStore``): a
/// version outlives the runs and experiments that produced it.
///
/// Guarantees: versions count up from 1 per model and are registered once per source job;
/// an alias moves only by compare-and-set against the version the decider saw, so two
/// promotions racing for one alias cannot both win; every decision is recorded, moved or
/// not, with an audit entry.
public final class ModelRegistry: @unchecked Sendable {
    let pool: DatabasePool
    /// Called after every decision that moved an alias (set once, before use).
    public var onAliasMoved: (@Sendable (PromotionRecord) -> Void)?
    /// Tests inject a competing decision here to play a race for an alias.
    var beforeDecision: (() -> Void)?

    public init(_ store: ClusterStore) {
        pool = store.pool
    }

    /// Registers a new version of `model` (creating the model on first use); versions
    /// count up from 1.
    /// Registers a new version. With `sourceJob`, registration is idempotent per job: a
    /// job that registers again (its coordinator crashed after registering and resumed it)
    /// gets the version it already has, so one search never makes two versions.
    public func registerVersion(model: String, runID: String?, sha256: String, metrics: [String: Double], description: String = "",
                                sourceJob: String? = nil) throws -> Int {
        try pool.write { db in
            if let sourceJob, let existing = try Int.fetchOne(db, sql: "SELECT version FROM model_version WHERE model = ? AND source_job = ?",
                                                             arguments: [model, sourceJob]) {
                return existing
            }
            let now = Date().timeIntervalSince1970
            try db.execute(sql: "INSERT OR IGNORE INTO registered_model (name, created_at) VALUES (?, ?)", arguments: [model, now])
            let version = (try Int.fetchOne(db, sql: "SELECT MAX(version) FROM model_version WHERE model = ?", arguments: [model]) ?? 0) + 1
            try db.execute(sql: """
                INSERT INTO model_version (model, version, run_id, sha256, metrics, description, created_at, source_job)
                VALUES (?, ?, ?, ?, ?, ?, ?, ?)
                """, arguments: [model, version, runID, sha256, TrackingStore.json(metrics), description, now, sourceJob])
            return version
        }
    }

    /// The decision an actor already recorded for a version, if any (a resumed job's
    /// decision is not made twice).
    public func decision(model: String, version: Int, actor: String) throws -> PromotionRecord? {
        try decisions(model: model).last { $0.version == version && $0.actor == actor }
    }

    public func models() throws -> [(name: String, versions: Int, aliases: [String: Int])] {
        try pool.read { db in
            try Row.fetchAll(db, sql: "SELECT name FROM registered_model ORDER BY name").map { row in
                let name: String = row["name"]
                let count = try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM model_version WHERE model = ?", arguments: [name]) ?? 0
                return (name, count, try Self.aliases(db, name))
            }
        }
    }

    public func versions(of model: String) throws -> [ModelVersionRow] {
        try pool.read { db in
            guard try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM registered_model WHERE name = ?", arguments: [model]) == 1 else {
                throw RegistryError.unknownModel(model)
            }
            return try Row.fetchAll(db, sql: "SELECT * FROM model_version WHERE model = ? ORDER BY version", arguments: [model]).map(Self.versionRow)
        }
    }

    public func version(_ model: String, _ version: Int) throws -> ModelVersionRow {
        try pool.read { db in
            guard let row = try Row.fetchOne(db, sql: "SELECT * FROM model_version WHERE model = ? AND version = ?", arguments: [model, version]) else {
                throw RegistryError.unknownVersion(model: model, version: version)
            }
            return Self.versionRow(row)
        }
    }

    public func aliases(of model: String) throws -> [String: Int] {
        try pool.read { db in try Self.aliases(db, model) }
    }

    public func alias(_ model: String, _ alias: String) throws -> Int? {
        try pool.read { db in try Int.fetchOne(db, sql: "SELECT version FROM model_alias WHERE model = ? AND alias = ?", arguments: [model, alias]) }
    }

    /// Records a decision and, when it promotes, moves the alias — only if the alias still
    /// points where the decision was made against (`expected`). Returns the stored record.
    @discardableResult
    public func decide(model: String, alias: String, version: Int, expected: Int?, promoted: Bool, action: String,
                       reasons: [String], numbers: [String: Double], actor: String) throws -> PromotionRecord {
        beforeDecision?()
        let record = try record(model: model, alias: alias, version: version, expected: expected, promoted: promoted,
                                action: action, reasons: reasons, numbers: numbers, actor: actor)
        if promoted { onAliasMoved?(record) }
        return record
    }

    private func record(model: String, alias: String, version: Int, expected: Int?, promoted: Bool, action: String,
                        reasons: [String], numbers: [String: Double], actor: String) throws -> PromotionRecord {
        try pool.write { db in
            guard try Row.fetchOne(db, sql: "SELECT 1 FROM model_version WHERE model = ? AND version = ?", arguments: [model, version]) != nil else {
                throw RegistryError.unknownVersion(model: model, version: version)
            }
            let current = try Int.fetchOne(db, sql: "SELECT version FROM model_alias WHERE model = ? AND alias = ?", arguments: [model, alias])
            if promoted {
                guard current == expected else { throw RegistryError.aliasMoved(model: model, alias: alias, expected: expected, actual: current) }
                try db.execute(sql: "INSERT OR REPLACE INTO model_alias VALUES (?, ?, ?, ?)", arguments: [model, alias, version, Date().timeIntervalSince1970])
            }
            let record = PromotionRecord(model: model, alias: alias, version: version, previousVersion: current, promoted: promoted,
                                         action: action, reasons: reasons, numbers: numbers, actor: actor, at: Date())
            try db.execute(sql: "INSERT INTO promotion_decision (model, alias, version, previous_version, promoted, action, reasons, numbers, actor, at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                           arguments: [model, alias, version, current, promoted, action, TrackingStore.json(reasons), TrackingStore.json(numbers), actor, record.at.timeIntervalSince1970])
            try ClusterStore.audit(db, actor: actor, action: promoted ? "promote" : "decline", subject: "\(model)@\(alias)",
                                   detail: "version \(version) (\(action)): " + reasons.joined(separator: "; "))
            return record
        }
    }

    /// Moves the alias back to the version it pointed at before its current one, recorded
    /// like any other decision. Repeated rollbacks keep walking back through the alias's
    /// history (3 → 2 → 1), never forward to the version just rolled back from.
    @discardableResult
    public func rollback(model: String, alias: String = "champion", actor: String, reason: String) throws -> PromotionRecord {
        let target: (current: Int, previous: Int) = try pool.read { db in
            guard let current = try Int.fetchOne(db, sql: "SELECT version FROM model_alias WHERE model = ? AND alias = ?", arguments: [model, alias]),
                  let previous = Self.rollbackTarget(history: try Row.fetchAll(db, sql: """
                      SELECT version, action FROM promotion_decision
                      WHERE model = ? AND alias = ? AND promoted = 1 ORDER BY id
                      """, arguments: [model, alias]).map { (version: $0["version"], action: $0["action"]) }, current: current) else {
                throw RegistryError.nothingToRollBack(model: model, alias: alias)
            }
            return (current, previous)
        }
        return try decide(model: model, alias: alias, version: target.previous, expected: target.current, promoted: true,
                          action: "rollback", reasons: ["rolled back from version \(target.current): \(reason)"], numbers: [:], actor: actor)
    }

    /// Replays the alias moves as a stack, a promotion pushing its version and a rollback
    /// popping the one it left, so the version under the top is where the next rollback
    /// goes.
    static func rollbackTarget(history: [(version: Int, action: String)], current: Int) -> Int? {
        var stack: [Int] = []
        for move in history {
            if move.action == "rollback" {
                stack.removeLast(min(1, stack.count))
                if stack.last != move.version { stack.append(move.version) }
            } else {
                stack.append(move.version)
            }
        }
        if stack.last == current { stack.removeLast() }
        return stack.last
    }

    public func decisions(model: String) throws -> [PromotionRecord] {
        try pool.read { db in
            try Row.fetchAll(db, sql: "SELECT * FROM promotion_decision WHERE model = ? ORDER BY id", arguments: [model]).map { row in
                PromotionRecord(model: row["model"], alias: row["alias"], version: row["version"], previousVersion: row["previous_version"],
                                promoted: row["promoted"], action: row["action"],
                                reasons: TrackingStore.decode([String].self, row["reasons"]) ?? [],
                                numbers: TrackingStore.decode([String: Double].self, row["numbers"]) ?? [:],
                                actor: row["actor"], at: Date(timeIntervalSince1970: row["at"]))
            }
        }
    }

    // MARK: Helpers

    static func aliases(_ db: Database, _ model: String) throws -> [String: Int] {
        Dictionary(try Row.fetchAll(db, sql: "SELECT alias, version FROM model_alias WHERE model = ?", arguments: [model])
            .map { ($0["alias"] as String, $0["version"] as Int) }) { $1 }
    }

    static func versionRow(_ row: Row) -> ModelVersionRow {
        ModelVersionRow(model: row["model"], version: row["version"], runID: row["run_id"], sha256: row["sha256"],
                        metrics: TrackingStore.decode([String: Double].self, row["metrics"]) ?? [:], description: row["description"],
                        createdAt: Date(timeIntervalSince1970: row["created_at"]))
    }
}
