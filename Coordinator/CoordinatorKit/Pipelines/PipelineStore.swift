import Foundation
import GRDB

/// A pipeline run as the store keeps it: the row callers list, and the ``PipelineRun``
/// state machine it continues from after a restart.
public struct PipelineRunRecord: Sendable, Equatable {
    public var id: String
    public var pipeline: String
    /// `schedule`, `manual` or `drift`.
    public var trigger: String
    /// Who or what asked for the run (an operator's reason, a drift report id).
    public var reason: String
    /// The cron slot a scheduled run is for; nil for triggered runs.
    public var scheduledFor: Date?
    /// `running`, `succeeded`, `failed` or `cancelled`.
    public var state: String
    public var startedAt: Date
    public var finishedAt: Date?
    public var error: String?
    public var run: PipelineRun
}

/// One attempt of one step, recorded before it is acted on.
public struct StepAttemptRecord: Sendable, Equatable {
    public var runID: String
    public var step: String
    public var attempt: Int
    /// The job the attempt submitted, once known.
    public var jobID: String?
    /// `launching`, `running`, `succeeded`, `failed` or `abandoned`.
    public var state: String
    public var error: String?
    /// What the attempt produced for later steps (a training set's sha256, a job id).
    public var output: String?
}

/// The pipelines' durable state in the cluster store: each scheduled pipeline's last
/// accounted slot, every run with its persisted state machine, every step attempt, and
/// the drift triggers (for debouncing). History survives restarts.
///
/// Guarantees: a run's state machine and the attempt rows its directives create are
/// written in one transaction (``save(_:attempts:)``), so after a crash the two never
/// disagree; starting scheduled runs and moving the pipeline's last slot are one
/// transaction too (``startScheduled(_:pipeline:lastSlot:)``), so a slot is neither lost
/// nor started twice.
public final class PipelineStore: @unchecked Sendable {
    let store: ClusterStore

    public init(_ store: ClusterStore) {
        self.store = store
    }

    static func register(_ migrator: inout DatabaseMigrator) {
        migrator.registerMigration("v4-pipelines") { db in
            try db.execute(sql: """
                CREATE TABLE pipeline_clock (
                  pipeline TEXT PRIMARY KEY,
                  last_slot DOUBLE NOT NULL
                );
                CREATE TABLE pipeline_run (
                  id TEXT PRIMARY KEY,
                  pipeline TEXT NOT NULL,
                  trigger TEXT NOT NULL,
                  reason TEXT NOT NULL DEFAULT '',
                  scheduled_for DOUBLE,
                  state TEXT NOT NULL,
                  started_at DOUBLE NOT NULL,
                  finished_at DOUBLE,
                  error TEXT,
                  run TEXT NOT NULL
                );
                CREATE INDEX pipeline_run_by_pipeline ON pipeline_run(pipeline, started_at);
                CREATE TABLE pipeline_step_attempt (
                  run_id TEXT NOT NULL REFERENCES pipeline_run(id) ON DELETE CASCADE,
                  step TEXT NOT NULL,
                  attempt INTEGER NOT NULL,
                  job_id TEXT,
                  state TEXT NOT NULL,
                  error TEXT,
                  output TEXT,
                  PRIMARY KEY (run_id, step, attempt)
                );
                CREATE TABLE pipeline_drift_trigger (
                  id INTEGER PRIMARY KEY,
                  at DOUBLE NOT NULL,
                  report_id TEXT NOT NULL,
                  job_id TEXT NOT NULL,
                  pipeline TEXT NOT NULL,
                  run_id TEXT,
                  outcome TEXT NOT NULL
                );
                """)
        }
    }

    // MARK: Clock

    public func lastSlot(_ pipeline: String) throws -> Date? {
        try store.pool.read { db in
            try Double.fetchOne(db, sql: "SELECT last_slot FROM pipeline_clock WHERE pipeline = ?", arguments: [pipeline])
                .map { Date(timeIntervalSince1970: $0) }
        }
    }

    /// Moves the pipeline's last slot and inserts the runs it starts, together.
    public func startScheduled(_ runs: [PipelineRunRecord], pipeline: String, lastSlot: Date, attempts: [StepAttemptRecord]) throws {
        try store.pool.write { db in
            try db.execute(sql: "INSERT INTO pipeline_clock (pipeline, last_slot) VALUES (?, ?) ON CONFLICT(pipeline) DO UPDATE SET last_slot = excluded.last_slot",
                           arguments: [pipeline, lastSlot.timeIntervalSince1970])
            for run in runs { try Self.upsert(db, run) }
            for attempt in attempts { try Self.upsert(db, attempt) }
        }
    }

    // MARK: Runs

    /// Writes a run (inserting it the first time) with the attempt rows its latest
    /// directives made, in one transaction.
    public func save(_ run: PipelineRunRecord, attempts: [StepAttemptRecord] = []) throws {
        try store.pool.write { db in
            try Self.upsert(db, run)
            for attempt in attempts { try Self.upsert(db, attempt) }
        }
    }

    /// Updates attempt rows alone (a job id learned after the submit returned).
    public func save(attempts: [StepAttemptRecord]) throws {
        try store.pool.write { db in
            for attempt in attempts { try Self.upsert(db, attempt) }
        }
    }

    public func run(_ id: String) throws -> PipelineRunRecord? {
        try store.pool.read { db in
            try Row.fetchOne(db, sql: "SELECT * FROM pipeline_run WHERE id = ?", arguments: [id]).map(Self.runRecord)
        }
    }

    /// Runs of `pipeline`, newest first.
    public func runs(pipeline: String, limit: Int) throws -> [PipelineRunRecord] {
        try store.pool.read { db in
            try Row.fetchAll(db, sql: "SELECT * FROM pipeline_run WHERE pipeline = ? ORDER BY started_at DESC, rowid DESC LIMIT ?",
                             arguments: [pipeline, limit]).map(Self.runRecord)
        }
    }

    /// Every run not yet finished, oldest first.
    public func unfinishedRuns() throws -> [PipelineRunRecord] {
        try store.pool.read { db in
            try Row.fetchAll(db, sql: "SELECT * FROM pipeline_run WHERE state = 'running' ORDER BY started_at, rowid").map(Self.runRecord)
        }
    }

    public func attempts(run: String) throws -> [StepAttemptRecord] {
        try store.pool.read { db in
            try Row.fetchAll(db, sql: "SELECT * FROM pipeline_step_attempt WHERE run_id = ? ORDER BY step, attempt", arguments: [run]).map(Self.attemptRecord)
        }
    }

    /// The id of the job whose name is `name`, if one was stored: after a crash between
    /// a submit and recording its id, the job is found by the name the attempt gave it.
    public func job(named name: String) throws -> String? {
        try store.pool.read { db in
            try String.fetchOne(db, sql: "SELECT id FROM job WHERE name = ? ORDER BY created_at LIMIT 1", arguments: [name])
        }
    }

    // MARK: Drift triggers

    /// The last drift trigger of `pipeline` that started a run.
    public func lastDriftStart(pipeline: String) throws -> (at: Date, runID: String)? {
        try store.pool.read { db in
            try Row.fetchOne(db, sql: "SELECT at, run_id FROM pipeline_drift_trigger WHERE pipeline = ? AND outcome = 'started' ORDER BY at DESC LIMIT 1",
                             arguments: [pipeline]).map { (Date(timeIntervalSince1970: $0["at"]), $0["run_id"] ?? "") }
        }
    }

    /// Records a drift trigger: `outcome` is `started` (with the run, written with it),
    /// `debounced`, `busy` or `no-pipeline`.
    public func recordDriftTrigger(at: Date, reportID: String, jobID: String, pipeline: String, outcome: String,
                                   run: PipelineRunRecord? = nil, attempts: [StepAttemptRecord] = []) throws {
        try store.pool.write { db in
            if let run { try Self.upsert(db, run) }
            for attempt in attempts { try Self.upsert(db, attempt) }
            try db.execute(sql: "INSERT INTO pipeline_drift_trigger (at, report_id, job_id, pipeline, run_id, outcome) VALUES (?, ?, ?, ?, ?, ?)",
                           arguments: [at.timeIntervalSince1970, reportID, jobID, pipeline, run?.id, outcome])
        }
    }

    public func driftTriggerCount(outcome: String) throws -> Int {
        try store.pool.read { db in
            try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM pipeline_drift_trigger WHERE outcome = ?", arguments: [outcome]) ?? 0
        }
    }

    // MARK: Rows

    static func upsert(_ db: Database, _ r: PipelineRunRecord) throws {
        let json = String(decoding: try r.run.persisted(), as: UTF8.self)
        try db.execute(sql: """
            INSERT INTO pipeline_run (id, pipeline, trigger, reason, scheduled_for, state, started_at, finished_at, error, run)
            VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
            ON CONFLICT(id) DO UPDATE SET state = excluded.state, finished_at = excluded.finished_at,
              error = excluded.error, run = excluded.run
            """, arguments: [r.id, r.pipeline, r.trigger, r.reason, r.scheduledFor?.timeIntervalSince1970, r.state,
                             r.startedAt.timeIntervalSince1970, r.finishedAt?.timeIntervalSince1970, r.error, json])
    }

    static func upsert(_ db: Database, _ a: StepAttemptRecord) throws {
        try db.execute(sql: """
            INSERT INTO pipeline_step_attempt (run_id, step, attempt, job_id, state, error, output) VALUES (?, ?, ?, ?, ?, ?, ?)
            ON CONFLICT(run_id, step, attempt) DO UPDATE SET job_id = excluded.job_id, state = excluded.state,
              error = excluded.error, output = excluded.output
            """, arguments: [a.runID, a.step, a.attempt, a.jobID, a.state, a.error, a.output])
    }

    static func runRecord(_ row: Row) throws -> PipelineRunRecord {
        let json: String = row["run"]
        return PipelineRunRecord(id: row["id"], pipeline: row["pipeline"], trigger: row["trigger"], reason: row["reason"],
                                 scheduledFor: (row["scheduled_for"] as Double?).map { Date(timeIntervalSince1970: $0) },
                                 state: row["state"], startedAt: Date(timeIntervalSince1970: row["started_at"]),
                                 finishedAt: (row["finished_at"] as Double?).map { Date(timeIntervalSince1970: $0) },
                                 error: row["error"], run: try PipelineRun.restored(from: Data(json.utf8)))
    }

    static func attemptRecord(_ row: Row) -> StepAttemptRecord {
        StepAttemptRecord(runID: row["run_id"], step: row["step"], attempt: row["attempt"], jobID: row["job_id"],
                          state: row["state"], error: row["error"], output: row["output"])
    }
}
