import Foundation
import GRDB
import Wire

/// Where a job is in its life; stored by its raw value.
public enum JobState: String, Sendable, Equatable, CaseIterable {
    case queued, running, succeeded, failed, cancelled

    public var isFinished: Bool { self == .succeeded || self == .failed || self == .cancelled }
}

/// A job as the store keeps it.
public struct JobRow: Sendable, Equatable {
    public var id: String
    public var kind: String
    public var name: String
    public var spec: Data
    public var state: JobState
    public var total: Int
    public var maxAttempts: Int
    public var createdAt: Date
    public var finishedAt: Date?
    public var error: String?
    public var summary: Data?
    public var submittedBy: String
}

/// A task to insert with its job.
public struct PlannedTask: Sendable {
    public var input: Data
    public var blobs: [String]
    public init(input: Data, blobs: [String] = []) {
        self.input = input
        self.blobs = blobs
    }
}

/// A task that still has to run when a coordinator starts on existing data.
public struct PendingTaskRow: Sendable {
    public var id: TaskID
    public var jobID: String
    public var index: Int
    public var input: Data
    public var blobs: [String]
    public var attempts: Int
    /// The worker identity the last attempt was leased to: after a restart it may still
    /// deliver that attempt's result.
    public var leasedTo: String? = nil
}

/// One finished task's result as stored.
public struct TaskResultRow: Sendable, Equatable {
    public var index: Int
    public var state: Scheduler.TaskState
    public var output: Data?
    public var error: String?
    public var worker: String?
    public var attempts: Int
    public var resultCount: Int
}

/// The coordinator's durable state in one SQLite file (WAL mode via GRDB's `DatabasePool`):
/// jobs, tasks with their results, the audit log. Reads may run while a write is going on.
///
/// Results are written in batches (see ``ResultWriter``): a result the coordinator accepted
/// but had not written when it died is lost only in the sense that its task runs again —
/// the row is updated only while the task is unfinished, so nothing is ever counted twice.
public final class ClusterStore: @unchecked Sendable {
    public let pool: DatabasePool
    public let path: String

    public let durability: Durability

    /// Opens (creating if needed) the store at `path`. Errors name the file and say what to
    /// check, since SQLite's own messages ("file is not a database") do not.
    public init(path: String, durability: Durability = .normal) throws {
        self.path = path
        self.durability = durability
        var config = Configuration()
        config.busyMode = .timeout(10)
        let pragma = "PRAGMA synchronous = \(durability.synchronousPragma)"
        config.prepareDatabase { db in
            try db.execute(sql: pragma)
        }
        do {
            pool = try DatabasePool(path: path, configuration: config)
            // GRDB sets synchronous = NORMAL on the writer when it turns WAL on, after
            // prepareDatabase ran; set it again so `strict` really reaches the writer.
            try pool.writeWithoutTransaction { db in try db.execute(sql: pragma) }
            try Self.migrator.migrate(pool)
        } catch {
            throw StoreOpenError.cannotOpen(path: path, reason: Self.explain(error))
        }
    }

    private static func explain(_ error: Error) -> String {
        guard let db = error as? DatabaseError else { return "\(error)" }
        let message = db.message ?? "\(db.resultCode)"
        switch db.resultCode.primaryResultCode {
        case .SQLITE_NOTADB, .SQLITE_CORRUPT:
            return "\(message) — the file is not a Tower store or is damaged; restore it from a backup or point data_dir elsewhere"
        case .SQLITE_READONLY, .SQLITE_PERM, .SQLITE_CANTOPEN, .SQLITE_AUTH:
            return "\(message) — the coordinator needs to read and write the file, its -wal and -shm files and their directory; check permissions, ownership and that the disk is mounted read-write"
        case .SQLITE_FULL:
            return "\(message) — the disk is full; free space and restart"
        default:
            return message
        }
    }

    static var migrator: DatabaseMigrator {
        var migrator = DatabaseMigrator()
        migrator.registerMigration("v1-cluster") { db in
            try db.execute(sql: """
                CREATE TABLE job (
                  id TEXT PRIMARY KEY,
                  kind TEXT NOT NULL,
                  name TEXT NOT NULL,
                  spec BLOB NOT NULL,
                  state TEXT NOT NULL,
                  total INTEGER NOT NULL,
                  max_attempts INTEGER NOT NULL,
                  created_at DOUBLE NOT NULL,
                  finished_at DOUBLE,
                  error TEXT,
                  summary BLOB,
                  submitted_by TEXT NOT NULL
                );
                CREATE TABLE task (
                  id INTEGER PRIMARY KEY,
                  job_id TEXT NOT NULL REFERENCES job(id) ON DELETE CASCADE,
                  idx INTEGER NOT NULL,
                  input BLOB NOT NULL,
                  blobs TEXT NOT NULL DEFAULT '',
                  state TEXT NOT NULL DEFAULT 'queued',
                  attempts INTEGER NOT NULL DEFAULT 0,
                  output BLOB,
                  error TEXT,
                  worker TEXT,
                  duration_us INTEGER,
                  finished_at DOUBLE,
                  result_count INTEGER NOT NULL DEFAULT 0,
                  UNIQUE (job_id, idx)
                );
                CREATE INDEX task_unfinished ON task(job_id) WHERE state NOT IN ('done', 'failed', 'cancelled');
                CREATE TABLE audit (
                  id INTEGER PRIMARY KEY,
                  at DOUBLE NOT NULL,
                  actor TEXT NOT NULL,
                  action TEXT NOT NULL,
                  subject TEXT NOT NULL,
                  detail TEXT NOT NULL DEFAULT ''
                );
                """)
        }
        TrackingStore.register(&migrator)
        FeatureStore.register(&migrator)
        migrator.registerMigration("v2-lease-holder") { db in
            // Who holds each attempt survives a restart, so results are bound to leases
            // across it and attempts are never undercounted.
            try db.execute(sql: "ALTER TABLE task ADD COLUMN leased_to TEXT")
        }
        PipelineStore.register(&migrator)
        ShortStore.register(&migrator)
        TrackingStore.registerRunRanking(&migrator)
        return migrator
    }

    // MARK: Jobs

    /// Inserts a job and all its tasks in one transaction; returns the task ids in order.
    public func insertJob(_ job: JobRow, tasks: [PlannedTask]) throws -> [TaskID] {
        try pool.write { db in
            try db.execute(
                sql: """
                    INSERT INTO job (id, kind, name, spec, state, total, max_attempts, created_at, submitted_by)
                    VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
                    """,
                arguments: [job.id, job.kind, job.name, job.spec, job.state.rawValue, job.total, job.maxAttempts,
                            job.createdAt.timeIntervalSince1970, job.submittedBy])
            let insert = try db.makeStatement(sql: "INSERT INTO task (job_id, idx, input, blobs) VALUES (?, ?, ?, ?)")
            var ids: [TaskID] = []
            ids.reserveCapacity(tasks.count)
            for (index, task) in tasks.enumerated() {
                try insert.execute(arguments: [job.id, index, task.input, task.blobs.joined(separator: ",")])
                ids.append(TaskID(db.lastInsertedRowID))
            }
            try Self.audit(db, actor: job.submittedBy, action: "submit", subject: job.id, detail: "\(job.kind) job \"\(job.name)\" with \(tasks.count) tasks")
            return ids
        }
    }

    /// Appends tasks to an existing job (indices continue after its last task) and
    /// raises its total; returns the new task ids with their indices.
    public func appendTasks(job: String, tasks: [PlannedTask]) throws -> [(id: TaskID, index: Int)] {
        try pool.write { db in
            let start = (try Int.fetchOne(db, sql: "SELECT MAX(idx) FROM task WHERE job_id = ?", arguments: [job]) ?? -1) + 1
            let insert = try db.makeStatement(sql: "INSERT INTO task (job_id, idx, input, blobs) VALUES (?, ?, ?, ?)")
            var ids: [(TaskID, Int)] = []
            for (offset, task) in tasks.enumerated() {
                try insert.execute(arguments: [job, start + offset, task.input, task.blobs.joined(separator: ",")])
                ids.append((TaskID(db.lastInsertedRowID), start + offset))
            }
            try db.execute(sql: "UPDATE job SET total = total + ? WHERE id = ?", arguments: [tasks.count, job])
            return ids
        }
    }

    public func job(_ id: String) throws -> JobRow? {
        try pool.read { db in
            try Row.fetchOne(db, sql: "SELECT * FROM job WHERE id = ?", arguments: [id]).map(Self.jobRow)
        }
    }

    /// The most jobs one listing returns, whoever asks (wire ListJobs or the API), so a
    /// request cannot make the coordinator load its whole history.
    public static let maxListedJobs = 1000

    public func jobs(limit: Int = 100) throws -> [JobRow] {
        let limit = min(max(limit, 1), Self.maxListedJobs)
        return try pool.read { db in
            try Row.fetchAll(db, sql: "SELECT * FROM job ORDER BY created_at DESC, id DESC LIMIT ?", arguments: [limit]).map(Self.jobRow)
        }
    }

    /// Jobs that had not ended when the coordinator stopped, oldest first.
    public func unfinishedJobs() throws -> [JobRow] {
        try pool.read { db in
            try Row.fetchAll(db, sql: "SELECT * FROM job WHERE state IN ('queued', 'running') ORDER BY created_at, id").map(Self.jobRow)
        }
    }

    public func pendingTasks(job: String) throws -> [PendingTaskRow] {
        try pool.read { db in
            try Row.fetchAll(db, sql: """
                SELECT id, job_id, idx, input, blobs, attempts, leased_to FROM task
                WHERE job_id = ? AND state NOT IN ('done', 'failed', 'cancelled') ORDER BY idx
                """, arguments: [job]).map { row in
                PendingTaskRow(id: row["id"], jobID: row["job_id"], index: row["idx"], input: row["input"],
                               blobs: (row["blobs"] as String).split(separator: ",").map(String.init), attempts: row["attempts"],
                               leasedTo: row["leased_to"])
            }
        }
    }

    /// Finished-task counts of a job. `retries` counts attempts that did not finish the
    /// task: each finished task's attempts beyond its first, and every attempt of an
    /// unfinished one (its lease was lost when the coordinator stopped) — the same number
    /// the live scheduler reports, so it neither drops nor jumps across a restart.
    public func taskCounts(job: String) throws -> (done: Int, failed: Int, retries: Int) {
        try pool.read { db in
            let row = try Row.fetchOne(db, sql: """
                SELECT COALESCE(SUM(state = 'done'), 0) AS done, COALESCE(SUM(state = 'failed'), 0) AS failed,
                       COALESCE(SUM(CASE WHEN state IN ('done', 'failed', 'cancelled') THEN MAX(attempts - 1, 0) ELSE attempts END), 0) AS retries
                FROM task WHERE job_id = ?
                """, arguments: [job])
            return (row?["done"] ?? 0, row?["failed"] ?? 0, row?["retries"] ?? 0)
        }
    }

    /// Every task's input by index (adaptive jobs rebuild their state from these).
    public func taskInputs(job: String) throws -> [Int: Data] {
        try pool.read { db in
            Dictionary(try Row.fetchAll(db, sql: "SELECT idx, input FROM task WHERE job_id = ?", arguments: [job])
                .map { ($0["idx"] as Int, $0["input"] as Data) }) { $1 }
        }
    }

    public func results(job: String) throws -> [TaskResultRow] {
        try pool.read { db in try Self.results(db, job: job) }
    }

    static func results(_ db: Database, job: String) throws -> [TaskResultRow] {
        try Row.fetchAll(db, sql: """
            SELECT idx, state, output, error, worker, attempts, result_count FROM task WHERE job_id = ? ORDER BY idx
            """, arguments: [job]).map { row in
            TaskResultRow(index: row["idx"], state: Scheduler.TaskState(rawValue: row["state"]) ?? .queued, output: row["output"], error: row["error"],
                          worker: row["worker"], attempts: row["attempts"], resultCount: row["result_count"])
        }
    }

    public func auditLog(limit: Int = 100) throws -> [(at: Date, actor: String, action: String, subject: String, detail: String)] {
        try pool.read { db in
            try Row.fetchAll(db, sql: "SELECT * FROM audit ORDER BY id DESC LIMIT ?", arguments: [limit]).map { row in
                (Date(timeIntervalSince1970: row["at"]), row["actor"], row["action"], row["subject"], row["detail"])
            }
        }
    }

    // MARK: Writes used by the result writer

    /// One batch of state changes, applied in one transaction, in order.
    public enum Change: Sendable {
        case started(job: String)
        /// A task was handed out: its attempt count and holder, so a restart neither
        /// undercounts attempts nor refuses the holder's result.
        case leased(task: TaskID, attempts: Int, worker: String)
        /// `record` holds the job's own writes for this result (e.g. its tracked run),
        /// applied in the same transaction.
        case done(task: TaskID, attempts: Int, output: Data, worker: String, durationUs: UInt64, record: (@Sendable (Database) throws -> Void)? = nil)
        case attemptFailed(task: TaskID, attempts: Int, error: String)
        case failed(task: TaskID, attempts: Int, error: String, record: (@Sendable (Database) throws -> Void)? = nil)
        case cancelled(job: String)
        /// The job's end, with the summary made before the write (never inside it).
        case finished(job: String, state: JobState, error: String?, summary: Data?)
        case audit(actor: String, action: String, subject: String, detail: String)
    }

    public func apply(_ changes: [Change], in db: Database) throws {
        let now = Date().timeIntervalSince1970
        let done = try db.cachedStatement(sql: """
            UPDATE task SET state = 'done', attempts = MAX(attempts, ?), output = ?, worker = ?, duration_us = ?, finished_at = ?,
              error = NULL, result_count = result_count + 1
            WHERE id = ? AND state NOT IN ('done', 'failed', 'cancelled')
            """)
        let leased = try db.cachedStatement(sql: """
            UPDATE task SET attempts = MAX(attempts, ?), leased_to = ? WHERE id = ? AND state NOT IN ('done', 'failed', 'cancelled')
            """)
        for change in changes {
            switch change {
            case let .started(job):
                try db.execute(sql: "UPDATE job SET state = 'running' WHERE id = ? AND state = 'queued'", arguments: [job])
            case let .leased(task, attempts, worker):
                try leased.execute(arguments: [attempts, worker, Int64(task)])
            case let .done(task, attempts, output, worker, durationUs, record):
                try done.execute(arguments: [attempts, output, worker, Int64(durationUs), now, Int64(task)])
                if db.changesCount > 0 { try record?(db) }
            case let .attemptFailed(task, attempts, error):
                try db.execute(sql: "UPDATE task SET attempts = ?, error = ? WHERE id = ? AND state NOT IN ('done', 'failed', 'cancelled')",
                               arguments: [attempts, error, Int64(task)])
            case let .failed(task, attempts, error, record):
                try db.execute(sql: "UPDATE task SET state = 'failed', attempts = ?, error = ?, finished_at = ? WHERE id = ? AND state NOT IN ('done', 'failed', 'cancelled')",
                               arguments: [attempts, error, now, Int64(task)])
                if db.changesCount > 0 { try record?(db) }
            case let .cancelled(job):
                try db.execute(sql: "UPDATE task SET state = 'cancelled', finished_at = ? WHERE job_id = ? AND state NOT IN ('done', 'failed', 'cancelled')",
                               arguments: [now, job])
            case let .finished(job, state, message, summary):
                try db.execute(sql: "UPDATE job SET state = ?, error = ?, summary = ?, finished_at = ? WHERE id = ?",
                               arguments: [state.rawValue, message, summary, now, job])
            case let .audit(actor, action, subject, detail):
                try Self.audit(db, actor: actor, action: action, subject: subject, detail: detail)
            }
        }
    }

    public func apply(_ changes: [Change]) throws {
        try pool.write { db in try apply(changes, in: db) }
    }

    static func audit(_ db: Database, actor: String, action: String, subject: String, detail: String) throws {
        try db.execute(sql: "INSERT INTO audit (at, actor, action, subject, detail) VALUES (?, ?, ?, ?, ?)",
                       arguments: [Date().timeIntervalSince1970, actor, action, subject, detail])
    }

    static func jobRow(_ row: Row) -> JobRow {
        JobRow(id: row["id"], kind: row["kind"], name: row["name"], spec: row["spec"], state: JobState(rawValue: row["state"]) ?? .failed,
               total: row["total"], maxAttempts: row["max_attempts"],
               createdAt: Date(timeIntervalSince1970: row["created_at"]),
               finishedAt: (row["finished_at"] as Double?).map(Date.init(timeIntervalSince1970:)),
               error: row["error"], summary: row["summary"], submittedBy: row["submitted_by"])
    }
}

/// Collects state changes from the event loop and writes them in batches on GRDB's writer
/// queue, in the order they were made. Batching is what lets one SQLite file keep up with
/// tens of thousands of results per second.
///
/// Guarantees: a batch that fails to write is kept and retried, in order, with backoff;
/// nothing enqueued is dropped while the process lives. While writes fail, ``failure``
/// says why, so the core can stop taking results instead of counting unstored work done.
public final class ResultWriter: @unchecked Sendable {
    private let store: ClusterStore
    private let lock = NSLock()
    private var pending: [ClusterStore.Change] = []
    private var retrying: [ClusterStore.Change] = []
    private var scheduled = false
    private var lastFailure: Error?
    private var consecutiveFailures = 0
    private let onError: @Sendable (Error) -> Void
    private let onRecovered: @Sendable () -> Void
    /// Backoff between retries of a failed batch, doubling up to `maxRetryDelayMs`.
    var retryDelayMs = 50
    var maxRetryDelayMs = 2000

    public init(store: ClusterStore, onError: @escaping @Sendable (Error) -> Void, onRecovered: @escaping @Sendable () -> Void = {}) {
        self.store = store
        self.onError = onError
        self.onRecovered = onRecovered
    }

    /// The error of the last write if it failed; nil while the store is writable.
    public var failure: Error? { lock.withLock { lastFailure } }

    public func enqueue(_ change: ClusterStore.Change) {
        lock.lock()
        pending.append(change)
        let start = !scheduled
        scheduled = true
        lock.unlock()
        if start { flushAsync() }
    }

    /// Starts a write if changes queued lazily are waiting (the core calls this on every
    /// tick, so they wait 100 ms at most).
    public func kick() {
        let start = lock.withLock { () -> Bool in
            guard !scheduled, !pending.isEmpty else { return false }
            scheduled = true
            return true
        }
        if start { flushAsync() }
    }

    /// Queues a change that may wait for the next write instead of starting one: lease
    /// bookkeeping rides along with the results that follow it, so handing out a task
    /// costs no transaction of its own. A crash loses at most the leases not yet carried
    /// (their tasks then count one attempt less, and run again).
    public func enqueueLazily(_ change: ClusterStore.Change) {
        lock.withLock { pending.append(change) }
    }

    private func flushAsync() {
        store.pool.asyncWrite({ db in
            let batch = self.takeBatch()
            do { try self.store.apply(batch, in: db) }
            catch {
                // The transaction rolls back; keep the batch, in order, for the retry.
                self.lock.withLock { self.retrying = batch }
                throw error
            }
        }, completion: { _, result in
            self.lock.lock()
            var delay = 0
            var recovered = false
            switch result {
            case let .failure(error):
                self.lastFailure = error
                self.consecutiveFailures += 1
                delay = min(self.maxRetryDelayMs, self.retryDelayMs << min(self.consecutiveFailures - 1, 16))
            case .success:
                recovered = self.lastFailure != nil
                self.lastFailure = nil
                self.consecutiveFailures = 0
            }
            let more = !self.pending.isEmpty || !self.retrying.isEmpty
            self.scheduled = more
            self.lock.unlock()
            if case let .failure(error) = result { self.onError(error) }
            if recovered { self.onRecovered() }
            guard more else { return }
            if delay > 0 {
                DispatchQueue.global().asyncAfter(deadline: .now() + .milliseconds(delay)) { self.flushAsync() }
            } else {
                self.flushAsync()
            }
        })
    }

    private func takeBatch() -> [ClusterStore.Change] {
        lock.lock()
        defer { lock.unlock() }
        let batch = retrying + pending
        retrying.removeAll()
        pending.removeAll(keepingCapacity: true)
        return batch
    }

    /// Waits until everything enqueued so far is on disk, or until writes are failing
    /// (then readers see what is stored; the rest stays queued for the retry). Returns
    /// false in the second case.
    @discardableResult
    public func flush() -> Bool {
        kick()
        while true {
            lock.lock()
            let idle = !scheduled && pending.isEmpty && retrying.isEmpty
            let failing = lastFailure != nil
            lock.unlock()
            if idle { return true }
            if failing { return false }
            usleep(1000)
        }
    }
}
