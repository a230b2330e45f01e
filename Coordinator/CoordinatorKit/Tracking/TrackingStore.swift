import Foundation
import GRDB

/// Errors of experiment tracking and the model registry, each saying what to do next.
public enum RegistryError: Error, Equatable, CustomStringConvertible, Sendable {
    case unknownModel(String)
    case unknownVersion(model: String, version: Int)
    case unknownRun(String)
    case aliasMoved(model: String, alias: String, expected: Int?, actual: Int?)
    case nothingToRollBack(model: String, alias: String)

    public var description: String {
        switch self {
        case let .unknownModel(name):
            return "no registered model named \(name); `coordinator models` lists them"
        case let .unknownVersion(model, version):
            return "model \(model) has no version \(version); `coordinator models show \(model)` lists its versions"
        case let .unknownRun(id):
            return "no run \(id); `coordinator runs EXPERIMENT` lists runs"
        case let .aliasMoved(model, alias, expected, actual):
            return "\(model)@\(alias) moved while deciding (expected version \(expected.map(String.init) ?? "none"), found \(actual.map(String.init) ?? "none")); the other decision stands — decide again against the new version"
        case let .nothingToRollBack(model, alias):
            return "\(model)@\(alias) has no earlier version to roll back to"
        }
    }
}

/// One run (trial) as listed and compared.
public struct RunSummary: Sendable, Equatable {
    public var id: String
    public var experiment: String
    public var jobID: String?
    public var status: String
    public var params: [String: String]
    /// The last value logged for each metric.
    public var metrics: [String: Double]
    public var tags: [String: String]
    public var artifacts: [String: String]
    public var startedAt: Date?
    public var finishedAt: Date?
    public var error: String?
}

public struct ModelVersionRow: Sendable, Equatable {
    public var model: String
    public var version: Int
    public var runID: String?
    public var sha256: String
    public var metrics: [String: Double]
    public var description: String
    public var createdAt: Date
}

public struct PromotionRecord: Sendable, Equatable {
    public var model: String
    public var alias: String
    public var version: Int
    public var previousVersion: Int?
    public var promoted: Bool
    public var action: String
    public var reasons: [String]
    public var numbers: [String: Double]
    public var actor: String
    public var at: Date
}

/// Experiment tracking (experiments, runs, params, step-wise metrics, tags, artifacts) and
/// the model registry (registered models, versions, aliases, every promotion decision), in
/// the coordinator's SQLite file. Alias moves are compare-and-set inside one transaction,
/// so two promotions racing for one alias cannot both win.
public final class TrackingStore: @unchecked Sendable {
    let pool: DatabasePool
    /// Called after every decision that moved an alias (set once, before use).
    public var onAliasMoved: (@Sendable (PromotionRecord) -> Void)?
    /// Tests inject a competing decision here to play a race for an alias.
    var beforeDecision: (() -> Void)?

    public init(_ store: ClusterStore) {
        pool = store.pool
    }

    static func register(_ migrator: inout DatabaseMigrator) {
        migrator.registerMigration("v2-tracking-registry") { db in
            try db.execute(sql: """
                CREATE TABLE experiment (
                  id INTEGER PRIMARY KEY,
                  name TEXT NOT NULL UNIQUE,
                  created_at DOUBLE NOT NULL
                );
                CREATE TABLE run (
                  id TEXT PRIMARY KEY,
                  experiment_id INTEGER NOT NULL REFERENCES experiment(id),
                  job_id TEXT,
                  task_index INTEGER,
                  status TEXT NOT NULL,
                  started_at DOUBLE,
                  finished_at DOUBLE,
                  error TEXT
                );
                CREATE TABLE run_param (run_id TEXT NOT NULL REFERENCES run(id), key TEXT NOT NULL, value TEXT NOT NULL, PRIMARY KEY (run_id, key));
                CREATE TABLE run_tag (run_id TEXT NOT NULL REFERENCES run(id), key TEXT NOT NULL, value TEXT NOT NULL, PRIMARY KEY (run_id, key));
                CREATE TABLE run_metric (
                  run_id TEXT NOT NULL REFERENCES run(id), key TEXT NOT NULL, step INTEGER NOT NULL,
                  value DOUBLE NOT NULL, at DOUBLE NOT NULL, PRIMARY KEY (run_id, key, step)
                );
                CREATE TABLE artifact (run_id TEXT NOT NULL REFERENCES run(id), name TEXT NOT NULL, sha256 TEXT NOT NULL, size INTEGER NOT NULL, PRIMARY KEY (run_id, name));
                CREATE TABLE registered_model (name TEXT PRIMARY KEY, description TEXT NOT NULL DEFAULT '', created_at DOUBLE NOT NULL);
                CREATE TABLE model_version (
                  model TEXT NOT NULL REFERENCES registered_model(name), version INTEGER NOT NULL,
                  run_id TEXT, sha256 TEXT NOT NULL, metrics TEXT NOT NULL, description TEXT NOT NULL DEFAULT '',
                  created_at DOUBLE NOT NULL, PRIMARY KEY (model, version)
                );
                CREATE TABLE model_alias (model TEXT NOT NULL, alias TEXT NOT NULL, version INTEGER NOT NULL, updated_at DOUBLE NOT NULL, PRIMARY KEY (model, alias));
                CREATE TABLE promotion_decision (
                  id INTEGER PRIMARY KEY, model TEXT NOT NULL, alias TEXT NOT NULL, version INTEGER NOT NULL,
                  previous_version INTEGER, promoted INTEGER NOT NULL, action TEXT NOT NULL,
                  reasons TEXT NOT NULL, numbers TEXT NOT NULL, actor TEXT NOT NULL, at DOUBLE NOT NULL
                );
                """)
        }
        migrator.registerMigration("v3-version-source-job") { db in
            // One version per registering job, whatever point a crash interrupted it at.
            try db.execute(sql: """
                ALTER TABLE model_version ADD COLUMN source_job TEXT;
                CREATE UNIQUE INDEX model_version_source_job ON model_version(model, source_job) WHERE source_job IS NOT NULL;
                """)
        }
    }

    // MARK: Experiments and runs

    @discardableResult
    public func experiment(named name: String) throws -> Int64 {
        try pool.write { db in try Self.experimentID(db, name) }
    }

    static func experimentID(_ db: Database, _ name: String) throws -> Int64 {
        if let id = try Int64.fetchOne(db, sql: "SELECT id FROM experiment WHERE name = ?", arguments: [name]) { return id }
        try db.execute(sql: "INSERT INTO experiment (name, created_at) VALUES (?, ?)", arguments: [name, Date().timeIntervalSince1970])
        return db.lastInsertedRowID
    }

    /// Starts (or restarts, after a retry) a run; params and tags are replaced.
    public func startRun(_ id: String, experiment: String, jobID: String? = nil, taskIndex: Int? = nil,
                         params: [String: String], tags: [String: String]) throws {
        try pool.write { db in try Self.startRun(db, id, experiment: experiment, jobID: jobID, taskIndex: taskIndex, params: params, tags: tags) }
    }

    /// The same inside a caller's transaction (a job writes its runs with its results).
    public static func startRun(_ db: Database, _ id: String, experiment: String, jobID: String? = nil, taskIndex: Int? = nil,
                                params: [String: String], tags: [String: String]) throws {
        do {
            let exp = try Self.experimentID(db, experiment)
            try db.execute(sql: """
                INSERT INTO run (id, experiment_id, job_id, task_index, status, started_at) VALUES (?, ?, ?, ?, 'running', ?)
                ON CONFLICT(id) DO UPDATE SET status = 'running', started_at = excluded.started_at, finished_at = NULL, error = NULL
                """, arguments: [id, exp, jobID, taskIndex, Date().timeIntervalSince1970])
            for (k, v) in params { try db.execute(sql: "INSERT OR REPLACE INTO run_param VALUES (?, ?, ?)", arguments: [id, k, v]) }
            for (k, v) in tags { try db.execute(sql: "INSERT OR REPLACE INTO run_tag VALUES (?, ?, ?)", arguments: [id, k, v]) }
        }
    }

    /// Records metric values by step (a learning curve); a repeated (key, step) keeps the
    /// latest value, so a retried trial does not leave two curves.
    public func logMetrics(_ run: String, _ values: [(key: String, step: Int, value: Double)]) throws {
        guard !values.isEmpty else { return }
        try pool.write { db in try Self.logMetrics(db, run, values) }
    }

    public static func logMetrics(_ db: Database, _ run: String, _ values: [(key: String, step: Int, value: Double)]) throws {
        do {
            let now = Date().timeIntervalSince1970
            let statement = try db.cachedStatement(sql: "INSERT OR REPLACE INTO run_metric VALUES (?, ?, ?, ?, ?)")
            for v in values { try statement.execute(arguments: [run, v.key, v.step, v.value, now]) }
        }
    }

    public func setTags(_ run: String, _ tags: [String: String]) throws {
        try pool.write { db in try Self.setTags(db, run, tags) }
    }

    public static func setTags(_ db: Database, _ run: String, _ tags: [String: String]) throws {
        do {
            for (k, v) in tags { try db.execute(sql: "INSERT OR REPLACE INTO run_tag VALUES (?, ?, ?)", arguments: [run, k, v]) }
        }
    }

    public func addArtifact(_ run: String, name: String, sha256: String, size: Int) throws {
        try pool.write { db in try Self.addArtifact(db, run, name: name, sha256: sha256, size: size) }
    }

    public static func addArtifact(_ db: Database, _ run: String, name: String, sha256: String, size: Int) throws {
        do {
            try db.execute(sql: "INSERT OR REPLACE INTO artifact VALUES (?, ?, ?, ?)", arguments: [run, name, sha256, size])
        }
    }

    public func finishRun(_ id: String, status: String, error: String? = nil) throws {
        try pool.write { db in try Self.finishRun(db, id, status: status, error: error) }
    }

    public static func finishRun(_ db: Database, _ id: String, status: String, error: String? = nil) throws {
        do {
            try db.execute(sql: "UPDATE run SET status = ?, error = ?, finished_at = ? WHERE id = ?",
                           arguments: [status, error, Date().timeIntervalSince1970, id])
            guard db.changesCount > 0 else { throw RegistryError.unknownRun(id) }
        }
    }

    public func curve(_ run: String, metric: String) throws -> [(step: Int, value: Double)] {
        try pool.read { db in
            try Row.fetchAll(db, sql: "SELECT step, value FROM run_metric WHERE run_id = ? AND key = ? ORDER BY step", arguments: [run, metric])
                .map { ($0["step"], $0["value"]) }
        }
    }

    public func run(_ id: String) throws -> RunSummary {
        guard let run = try runs(where: "run.id = ?", [id]).first else { throw RegistryError.unknownRun(id) }
        return run
    }

    /// Runs of an experiment, best first by `sortBy` (descending unless `ascending`).
    public func runs(experiment: String, sortBy metric: String? = nil, ascending: Bool = false) throws -> [RunSummary] {
        var list = try runs(where: "experiment.name = ?", [experiment])
        if let metric {
            list.sort { a, b in
                switch (a.metrics[metric], b.metrics[metric]) {
                case let (x?, y?): return ascending ? x < y : x > y
                case (_?, nil): return true
                default: return false
                }
            }
        }
        return list
    }

    private func runs(where clause: String, _ arguments: StatementArguments) throws -> [RunSummary] {
        try pool.read { db in
            let rows = try Row.fetchAll(db, sql: """
                SELECT run.*, experiment.name AS experiment_name FROM run JOIN experiment ON experiment.id = run.experiment_id
                WHERE \(clause) ORDER BY run.started_at, run.id
                """, arguments: arguments)
            return try rows.map { row in
                let id: String = row["id"]
                func pairs(_ sql: String) throws -> [String: String] {
                    Dictionary(try Row.fetchAll(db, sql: sql, arguments: [id]).map { ($0[0] as String, $0[1] as String) }) { $1 }
                }
                let metrics = Dictionary(try Row.fetchAll(db, sql: """
                    SELECT key, value FROM run_metric m WHERE run_id = ? AND step = (SELECT MAX(step) FROM run_metric WHERE run_id = m.run_id AND key = m.key)
                    """, arguments: [id]).map { ($0[0] as String, $0[1] as Double) }) { $1 }
                return RunSummary(
                    id: id, experiment: row["experiment_name"], jobID: row["job_id"], status: row["status"],
                    params: try pairs("SELECT key, value FROM run_param WHERE run_id = ?"),
                    metrics: metrics,
                    tags: try pairs("SELECT key, value FROM run_tag WHERE run_id = ?"),
                    artifacts: try pairs("SELECT name, sha256 FROM artifact WHERE run_id = ?"),
                    startedAt: (row["started_at"] as Double?).map(Date.init(timeIntervalSince1970:)),
                    finishedAt: (row["finished_at"] as Double?).map(Date.init(timeIntervalSince1970:)),
                    error: row["error"])
            }
        }
    }

    // MARK: Registry

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
                """, arguments: [model, version, runID, sha256, Self.json(metrics), description, now, sourceJob])
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
                           arguments: [model, alias, version, current, promoted, action, Self.json(reasons), Self.json(numbers), actor, record.at.timeIntervalSince1970])
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
                                reasons: Self.decode([String].self, row["reasons"]) ?? [],
                                numbers: Self.decode([String: Double].self, row["numbers"]) ?? [:],
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
                        metrics: decode([String: Double].self, row["metrics"]) ?? [:], description: row["description"],
                        createdAt: Date(timeIntervalSince1970: row["created_at"]))
    }

    static func json<T: Encodable>(_ value: T) -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = .sortedKeys
        return (try? String(decoding: encoder.encode(value), as: UTF8.self)) ?? "null"
    }

    static func decode<T: Decodable>(_ type: T.Type, _ text: String) -> T? {
        try? JSONDecoder().decode(type, from: Data(text.utf8))
    }
}
