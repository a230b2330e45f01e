import Wire

/// The cluster's scheduling logic as a pure state machine: jobs, the task queue, leases
/// and worker slots. It does no I/O and has no clock — every input that depends on time
/// carries `now` in milliseconds — so each transition is tested without sockets, and the
/// NIO shell around it (``ClusterCore``) only translates messages into calls.
///
/// Guarantees:
/// - A task is leased to at most one session at a time, and only while it is queued.
/// - The first completion of a task is recorded; any later one is reported as
///   ``Completion/duplicate`` (completion is idempotent by task id).
/// - A lease that is not renewed before its expiry, or whose session leaves, returns the
///   task to the queue; after `maxAttempts` leases the task fails for good.
/// - A result is accepted only from the session holding the task's current lease, or from
///   the same worker identity for an attempt it was given (a late or redelivered result);
///   anything else is ``Completion/refused``.
/// - A worker silent for a whole lease period leaves the pool before its leases are
///   returned, so nothing is assigned to a worker that is being dropped.
/// - A task goes only to a worker that runs its job's kind and has every tool the kind
///   needs; a job no connected worker can run waits (``waiting(_:)`` says why) and spends
///   no attempts.
/// - A job ends exactly once, when every one of its tasks is done, failed or cancelled.
public struct Scheduler {
    /// What a job's tasks need of a worker.
    public struct Needs: Equatable, Sendable {
        public var kind: String
        public var tools: Set<String>
        public init(kind: String, tools: Set<String> = []) {
            self.kind = kind
            self.tools = tools
        }
    }

    /// What a worker offers: the kinds it has runners for and the tools on its host.
    public struct Offer: Equatable, Sendable {
        public var kinds: Set<String>
        public var tools: Set<String>
        public init(kinds: Set<String>, tools: Set<String> = []) {
            self.kinds = kinds
            self.tools = tools
        }
        func satisfies(_ needs: Needs) -> Bool { kinds.contains(needs.kind) && needs.tools.isSubset(of: tools) }
    }

    public enum TaskState: String, Sendable {
        case queued, leased, done, failed, cancelled
        public var isTerminal: Bool { self == .done || self == .failed || self == .cancelled }

        /// The words operators read for jobs too (`succeeded`, not `done`).
        public var label: String {
            switch self {
            case .queued: return "queued"
            case .leased: return "running"
            case .done: return "succeeded"
            case .failed: return "failed"
            case .cancelled: return "cancelled"
            }
        }
    }

    public struct Lease: Equatable, Sendable {
        public var session: SessionID
        public var attempt: Int
        public var expiresAt: UInt64
    }

    /// An attempt handed to a worker identity (the certificate's name), kept so the same
    /// worker may deliver that attempt's result after its lease expired or it reconnected.
    public struct Grant: Equatable, Sendable {
        public var worker: String
        public var attempt: Int
        public init(worker: String, attempt: Int) {
            self.worker = worker
            self.attempt = attempt
        }
    }

    struct Task {
        var job: String
        /// The task's index in its job, as `coordinator results` numbers it; nil when the
        /// caller did not say (errors then name the task id).
        var index: Int?
        var state: TaskState
        var attempts: Int
        var lease: Lease?
        var lastError: String?
        var grants: [Grant] = []
    }

    public struct JobProgress: Equatable, Sendable {
        public var total: Int
        public var done = 0
        public var failed = 0
        public var cancelled = 0
        public var leased = 0
        public var retries = 0
        public var maxAttempts: Int
        public var firstError: String?
        public var queued: Int { total - done - failed - cancelled - leased }
        public var isFinished: Bool { done + failed + cancelled == total }
    }

    struct Worker {
        var name: String
        var slots: Int
        var offer: Offer
        var lastHeard: UInt64
        var running: Set<TaskID> = []
        var draining = false
    }

    /// A task handed to a session.
    public struct Assignment: Equatable, Sendable {
        public var session: SessionID
        public var task: TaskID
        public var attempt: Int
    }

    /// A job whose last task just reached a terminal state.
    public struct JobEnd: Equatable, Sendable {
        public var job: String
        public var progress: JobProgress
    }

    public enum Completion: Equatable, Sendable {
        /// The result is the task's; `revoke` lists another session still running it.
        case recorded(attempts: Int, jobEnd: JobEnd?, revoke: SessionID?)
        /// The task already has a result (or was cancelled); this one is ignored.
        case duplicate
        case unknownTask
        /// The sender was never given this attempt of the task: a forged or confused
        /// result, refused and counted.
        case refused
    }

    /// What one clock tick decided: workers dropped for silence (already out of the pool)
    /// and the leases that returned to the queue.
    public struct Expiry: Equatable, Sendable {
        public var silentWorkers: [SessionID] = []
        public var lost: [LostLease] = []
    }

    public enum Failure: Equatable, Sendable {
        case requeued(attempts: Int)
        case failedForGood(attempts: Int, jobEnd: JobEnd?)
        case ignored
    }

    /// A lease that ran out or lost its session, and what became of its task.
    public struct LostLease: Equatable, Sendable {
        public var task: TaskID
        public var session: SessionID
        public var outcome: Failure
    }

    public var leaseTimeoutMs: UInt64
    /// How many tasks a worker may hold per slot: >1 hides the round trip between a result
    /// and the next assignment.
    public var prefetchPerSlot: Int

    private(set) var tasks: [TaskID: Task] = [:]
    private(set) public var jobs: [String: JobProgress] = [:]
    /// Queued tasks per job, and jobs in the order they were added: a job nobody can run
    /// is skipped whole without holding up the others.
    private var queues: [String: TaskQueue] = [:]
    private var jobOrder: [String] = []
    private var needs: [String: Needs] = [:]
    private var workers: [SessionID: Worker] = [:]
    private var workerOrder: [SessionID] = []
    private var nextWorker = 0

    public init(leaseTimeoutMs: UInt64, prefetchPerSlot: Int = 2) {
        self.leaseTimeoutMs = leaseTimeoutMs
        self.prefetchPerSlot = max(1, prefetchPerSlot)
    }

    // MARK: Jobs

    /// Adds a job's tasks that still need to run, with the attempts already spent on each
    /// (non-zero when a restarted coordinator resumes a job). `alreadyFinished` counts the
    /// tasks of the job that ended before (done, failed) so progress stays whole.
    /// `retries` carries the retries already spent, and `grants` the attempts already
    /// handed out, so a resumed job keeps its bookkeeping exactly. `indices` are the
    /// tasks' indices in the job, for errors operators match against `results`.
    public mutating func addJob(_ job: String, maxAttempts: Int, pending: [(TaskID, attempts: Int)], done: Int = 0, failed: Int = 0,
                                retries: Int = 0, grants: [TaskID: Grant] = [:], needs jobNeeds: Needs? = nil, indices: [TaskID: Int] = [:]) {
        needs[job] = jobNeeds
        if queues[job] == nil { jobOrder.append(job) }
        queues[job, default: TaskQueue()].reserve(pending.count)
        var progress = JobProgress(total: pending.count + done + failed, maxAttempts: max(1, maxAttempts))
        progress.done = done
        progress.failed = failed
        progress.retries = retries
        jobs[job] = progress
        for (id, attempts) in pending {
            var task = Task(job: job, index: indices[id], state: .queued, attempts: attempts)
            if let grant = grants[id] { task.grants = [grant] }
            tasks[id] = task
            queues[job, default: TaskQueue()].append(id)
        }
    }

    /// Adds tasks to a job the core has not ended (adaptive kinds such as hpo grow as
    /// results arrive, possibly after every earlier task finished). Returns false if the
    /// job is unknown (ended and forgotten) or was cancelled.
    @discardableResult
    public mutating func addTasks(_ job: String, _ pending: [TaskID], indices: [TaskID: Int] = [:]) -> Bool {
        guard var progress = jobs[job], progress.cancelled == 0 else { return false }
        progress.total += pending.count
        jobs[job] = progress
        for id in pending {
            tasks[id] = Task(job: job, index: indices[id], state: .queued, attempts: 0)
            queues[job, default: TaskQueue()].append(id)
        }
        return true
    }

    public func progress(of job: String) -> JobProgress? { jobs[job] }
    public func state(of task: TaskID) -> TaskState? { tasks[task]?.state }
    public func lease(of task: TaskID) -> Lease? { tasks[task]?.lease }
    public var queuedCount: Int { jobs.values.reduce(0) { $0 + max(0, $1.queued) } }

    /// Why a job's queued tasks cannot start, when no connected worker can run them; nil
    /// when some worker can (or nothing is queued).
    public func waiting(_ job: String) -> String? {
        guard let progress = jobs[job], progress.queued > 0, let needs = needs[job] else { return nil }
        let live = workers.values.filter { !$0.draining }
        guard !live.contains(where: { $0.offer.satisfies(needs) }) else { return nil }
        if live.isEmpty { return "no worker is connected" }
        let withKind = live.filter { $0.offer.kinds.contains(needs.kind) }
        if withKind.isEmpty { return "no connected worker runs job kind \(needs.kind)" }
        let missing = needs.tools.subtracting(withKind.reduce(into: Set<String>()) { $0.formUnion($1.offer.tools) }).sorted()
        let lacking = needs.tools.sorted().joined(separator: ", ")
        return "no connected worker has \(lacking) (\(missing.isEmpty ? "none has all of them" : "missing everywhere: " + missing.joined(separator: ", ")))"
    }
    public var leasedCount: Int { workers.values.reduce(0) { $0 + $1.running.count } }

    /// Cancels a job's unfinished tasks. Returns the sessions that must stop running some.
    public mutating func cancel(job: String) -> (revoked: [(SessionID, TaskID)], jobEnd: JobEnd?) {
        guard var progress = jobs[job], !progress.isFinished else { return ([], nil) }
        var revoked: [(SessionID, TaskID)] = []
        for (id, task) in tasks where task.job == job && !task.state.isTerminal {
            if let lease = task.lease {
                workers[lease.session]?.running.remove(id)
                revoked.append((lease.session, id))
                progress.leased -= 1
            }
            tasks[id]?.state = .cancelled
            tasks[id]?.lease = nil
            progress.cancelled += 1
        }
        jobs[job] = progress
        return (revoked, finishIfDone(job))
    }

    /// Forgets a finished job's tasks (their results live in the store).
    public mutating func forget(job: String) {
        guard jobs[job]?.isFinished == true else { return }
        jobs[job] = nil
        needs[job] = nil
        queues[job] = nil
        jobOrder.removeAll { $0 == job }
        tasks = tasks.filter { $0.value.job != job }
    }

    // MARK: Workers

    /// Adds a worker session; `name` is the identity from its certificate, which results
    /// are checked against.
    /// A job added without needs runs on any worker, whatever it offers.
    public mutating func addWorker(_ session: SessionID, name: String, slots: Int, now: UInt64, offer: Offer = Offer(kinds: [])) {
        if workers[session] == nil { workerOrder.append(session) }
        workers[session] = Worker(name: name, slots: max(1, slots), offer: offer, lastHeard: now)
    }

    private func canRun(_ session: SessionID, _ job: String) -> Bool {
        guard let needs = needs[job] else { return true }
        return workers[session]?.offer.satisfies(needs) == true
    }

    /// Any message from the worker proves it alive.
    public mutating func heard(from session: SessionID, now: UInt64) {
        workers[session]?.lastHeard = now
    }

    public func isWorker(_ session: SessionID) -> Bool { workers[session] != nil }

    /// The worker stops taking tasks but keeps its leases until it finishes them.
    public mutating func drain(_ session: SessionID) {
        workers[session]?.draining = true
    }

    /// The session is gone: each of its leases returns to the queue (or fails for good if
    /// it used its last attempt).
    public mutating func removeWorker(_ session: SessionID, reason: String? = nil) -> [LostLease] {
        guard let worker = workers.removeValue(forKey: session) else { return [] }
        workerOrder.removeAll { $0 == session }
        return worker.running.sorted().map { id in
            LostLease(task: id, session: session, outcome: loseLease(id, reason: reason ?? "worker \(session) disconnected"))
        }
    }

    public func running(on session: SessionID) -> Set<TaskID> { workers[session]?.running ?? [] }

    // MARK: Leases

    /// Fills every worker's free capacity from the queues, job by job in the order the jobs
    /// came, spreading each job's tasks round-robin over the workers that can run them.
    public mutating func assign(now: UInt64) -> [Assignment] {
        var result: [Assignment] = []
        guard !workerOrder.isEmpty else { return result }
        var capacity: [SessionID: Int] = [:]
        for (id, worker) in workers where !worker.draining {
            let free = worker.slots * prefetchPerSlot - worker.running.count
            if free > 0 { capacity[id] = free }
        }
        for job in jobOrder where !capacity.isEmpty {
            let able = workerOrder.filter { canRun($0, job) }
            guard !able.isEmpty else { continue }
            while !capacity.isEmpty, able.contains(where: { capacity[$0] != nil }), let id = queues[job]?.pop(where: { tasks[$0]?.state == .queued }) {
                // Next capable worker in rotation that still has room.
                var session: SessionID!
                for _ in 0..<workerOrder.count {
                    let candidate = workerOrder[nextWorker % workerOrder.count]
                    nextWorker = (nextWorker + 1) % workerOrder.count
                    if capacity[candidate] != nil, canRun(candidate, job) { session = candidate; break }
                }
                capacity[session]! -= 1
                if capacity[session]! == 0 { capacity[session] = nil }
                var task = tasks[id]!
                task.attempts += 1
                task.state = .leased
                task.lease = Lease(session: session, attempt: task.attempts, expiresAt: now + leaseTimeoutMs)
                task.grants.append(Grant(worker: workers[session]!.name, attempt: task.attempts))
                tasks[id] = task
                workers[session]!.running.insert(id)
                jobs[task.job]!.leased += 1
                result.append(Assignment(session: session, task: id, attempt: task.attempts))
            }
        }
        return result
    }

    /// Extends the leases of the tasks a session says it is running.
    public mutating func renew(_ session: SessionID, running: [TaskID], now: UInt64) {
        workers[session]?.lastHeard = now
        for id in running {
            guard let lease = tasks[id]?.lease, lease.session == session else { continue }
            tasks[id]!.lease!.expiresAt = now + leaseTimeoutMs
        }
    }

    /// One clock tick: first drops every worker silent for a whole lease period (out of
    /// the pool, its leases returned), then returns every other lease that expired by `now`.
    /// Dropping first is what keeps the next ``assign(now:)`` from handing fresh tasks to
    /// a worker whose connection is being closed.
    public mutating func expire(now: UInt64) -> Expiry {
        var expiry = Expiry()
        for session in workerOrder where now > (workers[session]?.lastHeard ?? now) + leaseTimeoutMs {
            expiry.silentWorkers.append(session)
        }
        for session in expiry.silentWorkers {
            expiry.lost += removeWorker(session, reason: "worker \(session) silent for a lease period")
        }
        expiry.lost += expireLeases(now: now)
        return expiry
    }

    /// Returns every lease that expired by `now` to the queue.
    public mutating func expireLeases(now: UInt64) -> [LostLease] {
        var lost: [LostLease] = []
        // Only leased tasks can expire, and every one of them is in some worker's set.
        let leased = workers.values.flatMap(\.running)
        for id in leased {
            guard let lease = tasks[id]?.lease, lease.expiresAt <= now else { continue }
            workers[lease.session]?.running.remove(id)
            lost.append(LostLease(task: id, session: lease.session, outcome: loseLease(id, reason: "lease expired on \(lease.session)")))
        }
        return lost.sorted { $0.task < $1.task }
    }

    // MARK: Results

    /// Records a task's result for `attempt`. The holder of the current lease may deliver
    /// it, and so may the worker identity an earlier attempt was granted to — a result
    /// computed on a lease that since expired, or redelivered after a reconnect, is still a
    /// correct result. The first accepted result wins; anyone else is refused.
    public mutating func complete(_ id: TaskID, attempt: Int, from session: SessionID, worker name: String) -> Completion {
        guard var task = tasks[id] else { return .unknownTask }
        guard !task.state.isTerminal else { return .duplicate }
        let holdsLease = task.lease.map { $0.session == session && $0.attempt == attempt } ?? false
        guard holdsLease || task.grants.contains(Grant(worker: name, attempt: attempt)) else { return .refused }
        task.attempts = max(task.attempts, attempt)
        var revoke: SessionID?
        if let lease = task.lease {
            workers[lease.session]?.running.remove(id)
            jobs[task.job]!.leased -= 1
            if lease.session != session { revoke = lease.session }
        }
        workers[session]?.running.remove(id)
        task.state = .done
        task.lease = nil
        tasks[id] = task
        jobs[task.job]!.done += 1
        return .recorded(attempts: task.attempts, jobEnd: finishIfDone(task.job), revoke: revoke)
    }

    /// Records a failed attempt. Retryable failures go back to the queue until the task's
    /// attempts are used up.
    public mutating func fail(_ id: TaskID, from session: SessionID, message: String, retryable: Bool) -> Failure {
        guard let task = tasks[id], !task.state.isTerminal else { return .ignored }
        guard task.lease?.session == session else { return .ignored }
        workers[session]?.running.remove(id)
        tasks[id]!.lastError = message
        if !retryable {
            tasks[id]!.attempts = max(task.attempts, jobs[task.job]!.maxAttempts)
        }
        return loseLease(id, reason: message)
    }

    public func lastError(of task: TaskID) -> String? { tasks[task]?.lastError }
    public func attempts(of task: TaskID) -> Int { tasks[task]?.attempts ?? 0 }

    // MARK: Internals

    private mutating func loseLease(_ id: TaskID, reason: String) -> Failure {
        guard var task = tasks[id], task.state == .leased else { return .ignored }
        task.lease = nil
        if task.lastError == nil { task.lastError = reason }
        var progress = jobs[task.job]!
        progress.leased -= 1
        if task.attempts >= progress.maxAttempts {
            task.state = .failed
            progress.failed += 1
            if progress.firstError == nil { progress.firstError = "task \(task.index.map(String.init) ?? "#\(id)") failed after \(task.attempts) attempt(s): \(task.lastError ?? reason)" }
            tasks[id] = task
            jobs[task.job] = progress
            return .failedForGood(attempts: task.attempts, jobEnd: finishIfDone(task.job))
        }
        task.state = .queued
        task.lastError = reason
        progress.retries += 1
        tasks[id] = task
        jobs[task.job] = progress
        queues[task.job, default: TaskQueue()].append(id)
        return .requeued(attempts: task.attempts)
    }

    private func finishIfDone(_ job: String) -> JobEnd? {
        guard let progress = jobs[job], progress.isFinished else { return nil }
        return JobEnd(job: job, progress: progress)
    }
}

/// A FIFO of task ids that pops in O(1) and compacts itself now and then. Tasks that
/// changed state while queued (cancelled, finished elsewhere) are skipped when popped
/// rather than searched for when they change.
struct TaskQueue {
    private var items: [TaskID] = []
    private var head = 0

    mutating func reserve(_ count: Int) { items.reserveCapacity(items.count + count) }
    mutating func append(_ id: TaskID) { items.append(id) }

    mutating func pop(where isLive: (TaskID) -> Bool) -> TaskID? {
        while head < items.count {
            let id = items[head]
            head += 1
            if head > 4096 && head * 2 > items.count {
                items.removeFirst(head)
                head = 0
            }
            if isLive(id) { return id }
        }
        return nil
    }
}
