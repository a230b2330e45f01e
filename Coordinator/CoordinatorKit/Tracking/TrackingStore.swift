import Foundation
import GRDB

/// Errors of experiment tracking and the model registry, each saying what to do next.
public enum RegistryError: Error, Equatable, CustomStringConvertible, Sendable {
    case unknownModel(String)
    case unknownVersion(model: String, version: Int)
    case unknownRun(String)
    case aliasMoved(model: String, alias: String, expected: Int?, actual: Int?)
    case nothingToRollBack(model: String, alias: String)
    case unknownExperiment(String, known: [String])
    /// A sort metric no run of the experiment logged: sorting by it would order nothing.
    case unknownMetric(String, experiment: String, known: [String])

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
        case let .unknownExperiment(name, known):
            if known.isEmpty { return "no experiment named \(name), and none is recorded yet; `coordinator submit hpo …` records one" }
            return "no experiment named \(name); experiments: \(known.joined(separator: ", ")) (`coordinator runs experiments` lists them with their runs)"
        case let .unknownMetric(metric, experiment, known):
            if known.isEmpty { return "no run of \(experiment) has logged a metric yet, so none (\(metric)) can sort them; leave out the sort" }
            return "no run of \(experiment) logged \(metric); sort by one of: \(known.joined(separator: ", "))"
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

public struct ExperimentSummary: Sendable, Equatable {
    public var name: String
    public var runs: Int
    public var lastRunAt: Date?
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

    /// Registered after every other migration (the order GRDB applies them in).
    static func registerRunRanking(_ migrator: inout DatabaseMigrator) {
        migrator.registerMigration("v7-run-metric-latest") { db in
            // Ranking an experiment's runs by a metric's last value must not read every
            // run's curve: with 100,000 runs that took seconds. This table holds one row
            // per (run, metric), kept by `logMetrics`, indexed in rank order.
            try db.execute(sql: """
                CREATE TABLE run_metric_latest (
                  run_id TEXT NOT NULL REFERENCES run(id), experiment_id INTEGER NOT NULL, key TEXT NOT NULL,
                  step INTEGER NOT NULL, value DOUBLE NOT NULL, PRIMARY KEY (run_id, key)
                );
                INSERT INTO run_metric_latest
                  SELECT m.run_id, run.experiment_id, m.key, m.step, m.value FROM run_metric m JOIN run ON run.id = m.run_id
                  WHERE m.step = (SELECT MAX(step) FROM run_metric WHERE run_id = m.run_id AND key = m.key);
                CREATE INDEX run_metric_latest_rank ON run_metric_latest(experiment_id, key, value);
                CREATE INDEX run_by_experiment ON run(experiment_id, started_at, id);
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
            var last: [String: (step: Int, value: Double)] = [:]
            for v in values {
                try statement.execute(arguments: [run, v.key, v.step, v.value, now])
                if (last[v.key]?.step ?? .min) <= v.step { last[v.key] = (v.step, v.value) }
            }
            // One row per metric for ranking; an older step logged late does not replace it.
            let latest = try db.cachedStatement(sql: """
                INSERT INTO run_metric_latest (run_id, experiment_id, key, step, value)
                  SELECT id, experiment_id, ?, ?, ? FROM run WHERE id = ?
                ON CONFLICT (run_id, key) DO UPDATE SET step = excluded.step, value = excluded.value
                  WHERE excluded.step >= run_metric_latest.step
                """)
            for (key, v) in last { try latest.execute(arguments: [key, v.step, v.value, run]) }
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
        try curves([run], metric: metric)[run] ?? []
    }

    /// The curves of one metric for many runs, a query per 500 runs.
    public func curves(_ runs: [String], metric: String) throws -> [String: [(step: Int, value: Double)]] {
        try pool.read { db in
            var curves: [String: [(step: Int, value: Double)]] = [:]
            for start in stride(from: 0, to: runs.count, by: 500) {
                let chunk = Array(runs[start..<min(runs.count, start + 500)])
                for row in try Row.fetchAll(db, sql: """
                    SELECT run_id, step, value FROM run_metric WHERE key = ? AND run_id IN (\(databaseQuestionMarks(count: chunk.count))) ORDER BY run_id, step
                    """, arguments: StatementArguments([metric]) + StatementArguments(chunk)) {
                    curves[row["run_id"], default: []].append((row["step"], row["value"]))
                }
            }
            return curves
        }
    }

    public func run(_ id: String) throws -> RunSummary {
        guard let run = try pool.read({ db in try Self.summaries(db, ids: [id]) }).first else { throw RegistryError.unknownRun(id) }
        return run
    }

    /// Every experiment with its number of runs and when its latest run started, by name.
    public func experiments() throws -> [ExperimentSummary] {
        try pool.read { db in
            try Row.fetchAll(db, sql: """
                SELECT experiment.name AS name, COUNT(run.id) AS runs, MAX(run.started_at) AS last
                FROM experiment LEFT JOIN run ON run.experiment_id = experiment.id
                GROUP BY experiment.id ORDER BY experiment.name
                """).map { row in
                ExperimentSummary(name: row["name"], runs: row["runs"], lastRunAt: (row["last"] as Double?).map(Date.init(timeIntervalSince1970:)))
            }
        }
    }

    /// Runs of an experiment, best first by `sortBy` (descending unless `ascending`; ties
    /// and runs without the metric after, in start order), at most `limit` of them; without
    /// a metric, the `limit` most recently started, oldest first. Answers from indexes, so
    /// an experiment of 100,000 runs costs what its first page costs.
    public func runs(experiment: String, sortBy metric: String? = nil, ascending: Bool = false, limit: Int? = nil) throws -> [RunSummary] {
        try pool.read { db in
            guard let experimentID = try Int64.fetchOne(db, sql: "SELECT id FROM experiment WHERE name = ?", arguments: [experiment]) else { return [] }
            let cap = limit ?? -1  // SQLite's "no limit"
            var ids: [String]
            if let metric {
                ids = try String.fetchAll(db, sql: """
                    SELECT l.run_id FROM run_metric_latest l JOIN run ON run.id = l.run_id
                    WHERE l.experiment_id = ? AND l.key = ? ORDER BY l.value \(ascending ? "ASC" : "DESC"), run.started_at, run.id LIMIT ?
                    """, arguments: [experimentID, metric, cap])
                if limit.map({ ids.count < $0 }) ?? true {
                    ids += try String.fetchAll(db, sql: """
                        SELECT id FROM run WHERE experiment_id = ?
                          AND id NOT IN (SELECT run_id FROM run_metric_latest WHERE experiment_id = ? AND key = ?)
                        ORDER BY started_at, id LIMIT ?
                        """, arguments: [experimentID, experimentID, metric, limit.map { $0 - ids.count } ?? -1])
                }
            } else {
                ids = try String.fetchAll(db, sql: """
                    SELECT id FROM (SELECT id, started_at FROM run WHERE experiment_id = ? ORDER BY started_at DESC, id DESC LIMIT ?)
                    ORDER BY started_at, id
                    """, arguments: [experimentID, cap])
            }
            return try Self.summaries(db, ids: ids)
        }
    }

    /// How many runs an experiment has.
    public func runCount(experiment: String) throws -> Int {
        try pool.read { db in
            try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM run JOIN experiment ON experiment.id = run.experiment_id WHERE experiment.name = ?", arguments: [experiment]) ?? 0
        }
    }

    /// The runs of `ids` that belong to the experiment, in the order asked.
    public func runs(experiment: String, ids: [String]) throws -> [RunSummary] {
        try pool.read { db in try Self.summaries(db, ids: ids).filter { $0.experiment == experiment } }
    }

    /// Whether any run of the experiment logged the metric (an index probe).
    public func hasMetric(_ key: String, experiment: String) throws -> Bool {
        try pool.read { db in
            try Bool.fetchOne(db, sql: """
                SELECT 1 FROM run_metric_latest WHERE experiment_id = (SELECT id FROM experiment WHERE name = ?) AND key = ? LIMIT 1
                """, arguments: [experiment, key]) ?? false
        }
    }

    /// The metrics an experiment's runs have logged.
    public func metricKeys(experiment: String) throws -> [String] {
        try pool.read { db in
            try String.fetchAll(db, sql: """
                SELECT DISTINCT key FROM run_metric_latest WHERE experiment_id = (SELECT id FROM experiment WHERE name = ?) ORDER BY key
                """, arguments: [experiment])
        }
    }

    /// Full summaries of `ids`, in that order: a handful of queries per 500 runs rather
    /// than five per run.
    private static func summaries(_ db: Database, ids: [String]) throws -> [RunSummary] {
        var byID: [String: RunSummary] = [:]
        for start in stride(from: 0, to: ids.count, by: 500) {
            let chunk = Array(ids[start..<min(ids.count, start + 500)])
            let marks = databaseQuestionMarks(count: chunk.count)
            let arguments = StatementArguments(chunk)
            for row in try Row.fetchAll(db, sql: """
                SELECT run.*, experiment.name AS experiment_name FROM run JOIN experiment ON experiment.id = run.experiment_id
                WHERE run.id IN (\(marks))
                """, arguments: arguments) {
                let id: String = row["id"]
                byID[id] = RunSummary(
                    id: id, experiment: row["experiment_name"], jobID: row["job_id"], status: row["status"],
                    params: [:], metrics: [:], tags: [:], artifacts: [:],
                    startedAt: (row["started_at"] as Double?).map(Date.init(timeIntervalSince1970:)),
                    finishedAt: (row["finished_at"] as Double?).map(Date.init(timeIntervalSince1970:)),
                    error: row["error"])
            }
            for row in try Row.fetchAll(db, sql: "SELECT run_id, key, value FROM run_param WHERE run_id IN (\(marks))", arguments: arguments) {
                byID[row[0]]?.params[row[1]] = row[2]
            }
            for row in try Row.fetchAll(db, sql: "SELECT run_id, key, value FROM run_metric_latest WHERE run_id IN (\(marks))", arguments: arguments) {
                byID[row[0]]?.metrics[row[1]] = row[2]
            }
            for row in try Row.fetchAll(db, sql: "SELECT run_id, key, value FROM run_tag WHERE run_id IN (\(marks))", arguments: arguments) {
                byID[row[0]]?.tags[row[1]] = row[2]
            }
            for row in try Row.fetchAll(db, sql: "SELECT run_id, name, sha256 FROM artifact WHERE run_id IN (\(marks))", arguments: arguments) {
                byID[row[0]]?.artifacts[row[1]] = row[2]
            }
        }
        return ids.compactMap { byID[$0] }
    }

    // MARK: Helpers

    static func json<T: Encodable>(_ value: T) -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = .sortedKeys
        return (try? String(decoding: encoder.encode(value), as: UTF8.self)) ?? "null"
    }

    static func decode<T: Decodable>(_ type: T.Type, _ text: String) -> T? {
        try? JSONDecoder().decode(type, from: Data(text.utf8))
    }
}
