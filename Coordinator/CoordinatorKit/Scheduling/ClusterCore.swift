import Foundation
import Logging
import Metrics
import NIOCore
import Wire

/// A connected worker as the core sees it.
final class WorkerSession {
    let id: SessionID
    let name: String
    let address: String
    let capabilities: WireCapabilities
    let channel: Channel
    let connectedAt = Date()
    var tasksDone: UInt64 = 0
    var draining = false

    init(id: SessionID, name: String, address: String, capabilities: WireCapabilities, channel: Channel) {
        self.id = id
        self.name = name
        self.address = address
        self.capabilities = capabilities
        self.channel = channel
    }

    func send(_ body: WireEnvelope.Body) {
        channel.writeAndFlush(WireEnvelope(body), promise: nil)
    }
}

/// What the core keeps of a task it may hand out.
struct TaskInfo {
    var job: String
    var index: Int
    var kind: String
    var input: Data
    var blobs: [String]
}

/// The coordinator's I/O shell around the ``Scheduler``: it owns the scheduler, the worker
/// sessions and the result writer, and runs every mutation on one event loop so the state
/// machine needs no locks. Connection handlers hop onto `loop` to call it.
public final class ClusterCore: @unchecked Sendable {
    public let loop: EventLoop
    public let store: ClusterStore
    public let blobs: BlobStore
    let planners: JobPlanners
    let settings: CoordinatorSettings
    let logger: Logger
    private let writer: ResultWriter
    public let tracking: TrackingStore
    public let models: ModelRegistry
    public let registry: RegistryService
    /// The feature store's requests.
    public let features: FeatureService
    /// Publishes approved shorts.
    var publisher: ShortPublisher
    /// Subscribers (gateways, operators) told whenever an alias moves.
    public let promotions: PromotionBroadcaster
    private var controllers: [String: any JobController] = [:]
    /// What the core exports for Prometheus.
    private let metrics = ClusterMetrics()
    /// Job summaries as operators read them.
    private let views: JobView

    private var scheduler: Scheduler
    private var sessions: [SessionID: WorkerSession] = [:]
    private var taskInfo: [TaskID: TaskInfo] = [:]
    private var activeJobs: [String: JobRow] = [:]
    private var assignScheduled = false
    private var timer: RepeatedTask?
    private var nextSession = 0

    /// Results refused because their sender did not hold the lease (tests read it).
    private(set) var refusedResultCount = 0
    /// Results refused while the store could not be written.
    private(set) var resultsRefusedUnstored = 0
    private var warnings = RateLimitedLog(interval: 5)
    /// When each leased task left for its worker, for the round-trip timer.
    private var assignedAt: [TaskID: UInt64] = [:]
    /// Called on the core's loop with each task's assignment-to-result time in
    /// nanoseconds (benchmarks read percentiles from it).
    public var roundTripObserver: ((UInt64) -> Void)?

    public init(loop: EventLoop, store: ClusterStore, blobs: BlobStore, planners: JobPlanners, settings: CoordinatorSettings, logger: Logger) {
        self.loop = loop
        self.store = store
        self.blobs = blobs
        self.planners = planners
        self.settings = settings
        self.logger = logger
        self.scheduler = Scheduler(leaseTimeoutMs: settings.leaseTimeoutMs, prefetchPerSlot: settings.prefetchPerSlot)
        self.views = JobView(store: store, planners: planners)
        self.tracking = TrackingStore(store)
        self.models = ModelRegistry(store)
        self.registry = RegistryService(tracking: tracking, models: models, loop: loop)
        self.features = FeatureService(store: FeatureStore(store), blobs: blobs, loop: loop, logger: logger)
        self.promotions = PromotionBroadcaster(models: models, logger: logger)
        self.publisher = ShortPublisher(settings: settings.shorts, store: store, blobs: blobs, logger: logger)
        let promotions = self.promotions
        models.onAliasMoved = { promotions.publish($0) }
        let log = logger
        let failures = metrics.storeWriteFailures, writable = metrics.storeWritable
        let path = store.path
        writable.record(1)
        self.writer = ResultWriter(store: store, onError: { error in
            failures.increment()
            writable.record(0)
            log.error("writing to the store failed; results are refused and kept tasks are retried until it recovers",
                      metadata: ["store": "\(path)", "error": "\(error)"])
        }, onRecovered: {
            writable.record(1)
            log.notice("the store is writable again; taking results", metadata: ["store": "\(path)"])
        })
        // Ingest asks for a short of each strong new listing through the same submit path
        // as operators.
        let trigger = ShortTrigger(settings: settings.shorts, features: FeatureStore(store), registry: models, blobs: blobs)
        let triggerLoop = loop
        features.shorts = (trigger, { [weak self] spec in
            guard let self else { return triggerLoop.makeFailedFuture(WireError.connectionClosed) }
            return self.submit(spec, by: PeerIdentity(name: "shorts-trigger", role: .operator, serial: ""))
        })
    }

    /// Why the store cannot be written now, for operators; nil while it can.
    var storeProblem: String? {
        writer.failure.map { "the store \(store.path) cannot be written (\($0)); results are refused until it recovers — check the disk and the file's permissions" }
    }

    /// Loads unfinished jobs from the store (a restart resumes them) and starts the lease
    /// clock. Call once, before accepting connections.
    public func start() throws {
        let released = try ShortStore(store).releaseInterruptedPublications()
        if released > 0 {
            logger.warning("shorts left mid-publication by the last run are pending again; approve them again", metadata: ["shorts": "\(released)"])
        }
        let unfinished = try store.unfinishedJobs()
        var resumed: [(JobRow, [PendingTaskRow], (done: Int, failed: Int, retries: Int), (any JobController)?)] = []
        for job in unfinished {
            let controller = try planners.planner(for: job.kind).controller(for: job, existing: try store.results(job: job.id), context: jobContext)
            resumed.append((job, try store.pendingTasks(job: job.id), try store.taskCounts(job: job.id), controller))
        }
        try loop.submit {
            for (job, pending, counts, controller) in resumed {
                self.admit(job, pending: pending, done: counts.done, failed: counts.failed, retries: counts.retries, controller: controller)
                self.logger.info("resumed job", metadata: ["job": "\(job.id)", "pending": "\(pending.count)", "done": "\(counts.done)"])
            }
            self.timer = self.loop.scheduleRepeatedTask(initialDelay: .milliseconds(100), delay: .milliseconds(100)) { _ in
                self.tick()
            }
        }.wait()
    }

    /// Stops the lease clock and closes every worker session, then waits for the store.
    /// Call after the listeners are closed and before the event loops shut down.
    public func stop() async {
        let closing = try? await loop.submit { () -> [EventLoopFuture<Void>] in
            self.timer?.cancel()
            self.timer = nil
            self.stopped = true
            return self.sessions.values.map { $0.channel.close() }
        }.get()
        for future in closing ?? [] { try? await future.get() }
        writer.flush()
    }

    private var stopped = false

    /// Blocks until every accepted change is in the store.
    public func flushStore() { writer.flush() }

    var nowMs: UInt64 { UInt64(DispatchTime.now().uptimeNanoseconds / 1_000_000) }

    var jobContext: JobContext {
        JobContext(store: store, blobs: blobs, tracking: tracking, registry: models, dataDirectory: URL(fileURLWithPath: settings.dataDirectory),
                   pipelines: pipelineTrigger)
    }

    // MARK: Jobs

    /// Plans a job off the event loop, stores it with its tasks, then queues them.
    public func submit(_ spec: WireJobSpec, by peer: PeerIdentity) -> EventLoopFuture<WireJobAccepted> {
        let promise = loop.makePromise(of: WireJobAccepted.self)
        DispatchQueue.global().async {
            do {
                let planner = try self.planners.planner(for: spec.kind)
                // Stored in binary form whichever form the client sent (JSON from --spec).
                let specBytes = try planner.descriptor.normalizeSpec(spec.spec)
                let planned = try planner.plan(spec: specBytes, context: self.jobContext)
                let attempts = spec.maxAttempts > 0 ? Int(spec.maxAttempts) : self.settings.maxAttempts
                let job = JobRow(id: Self.newJobID(), kind: spec.kind, name: spec.name.isEmpty ? spec.kind : spec.name,
                                 spec: specBytes, state: .queued, total: planned.count, maxAttempts: attempts,
                                 createdAt: Date(), finishedAt: nil, error: nil, summary: nil, submittedBy: peer.name)
                let ids = try self.store.insertJob(job, tasks: planned)
                let controller = try planner.controller(for: job, existing: [], context: self.jobContext)
                let pending = zip(ids, planned).enumerated().map { index, pair in
                    PendingTaskRow(id: pair.0, jobID: job.id, index: index, input: pair.1.input, blobs: pair.1.blobs, attempts: 0)
                }
                self.loop.execute {
                    self.admit(job, pending: pending, done: 0, failed: 0, retries: 0, controller: controller)
                    self.metrics.jobsSubmitted.increment()
                    self.logger.info("job submitted", metadata: ["job": "\(job.id)", "kind": "\(job.kind)", "tasks": "\(ids.count)", "by": "\(peer.name)"])
                    var accepted = WireJobAccepted()
                    accepted.jobID = job.id
                    accepted.tasks = UInt32(ids.count)
                    promise.succeed(accepted)
                }
            } catch {
                promise.fail(error)
            }
        }
        return promise.futureResult
    }

    /// Runs a tracked run again, as the kind that recorded it says (a search repeats one
    /// trial with its data, parameters and seed).
    public func rerun(_ runID: String, by peer: PeerIdentity) -> EventLoopFuture<WireJobAccepted> {
        fromStore { () -> WireJobSpec in
            let run = try self.tracking.run(runID)
            guard let jobID = run.jobID, let job = try self.store.job(jobID) else {
                throw WireError.invalidArgument("run \(runID) was not recorded by a job; only runs of a job can be re-run")
            }
            guard let spec = try self.planners.planner(for: job.kind).rerun(run, runID: runID) else {
                throw WireError.invalidArgument("run \(runID) belongs to a \(job.kind) job, and \(job.kind) jobs cannot re-run a run")
            }
            return spec
        }.flatMap { self.submit($0, by: peer) }
    }

    /// Starts pipelines for jobs (drift → retraining); set before ``start()`` by the
    /// service that runs pipelines.
    public var pipelineTrigger: (any PipelineTriggering)?

    /// Answers pipeline and drift-report requests; set by the service that runs pipelines.
    public var pipelineHandler: (@Sendable (WireEnvelope.OneOf_Body) -> EventLoopFuture<WireEnvelope.Body>)?

    func pipelineRequest(_ body: WireEnvelope.OneOf_Body) -> EventLoopFuture<WireEnvelope.Body> {
        guard let handler = pipelineHandler else {
            return loop.makeFailedFuture(WireError.notFound(what: "pipelines: this coordinator runs none (add `pipelines:` to its config)"))
        }
        return handler(body)
    }

    public func driftReport(_ id: String) -> EventLoopFuture<WireDriftReportInfo> {
        fromStore(flushing: true) { try DriftReportStore(self.store).report(id) }
    }

    public func shorts() -> EventLoopFuture<WireShortList> {
        fromStore(flushing: true) { try ShortStore(self.store).list() }
    }

    public func short(_ id: String) -> EventLoopFuture<WireShortInfo> {
        fromStore(flushing: true) { try ShortStore(self.store).short(id) }
    }

    /// Publishes a short (or, with `dry_run`, says what publishing would do).
    public func approveShort(_ request: WireApproveShort, by peer: PeerIdentity) -> EventLoopFuture<WireShortInfo> {
        let publisher = self.publisher
        return loop.makeFutureWithTask { try await publisher.approve(request.id, dryRun: request.dryRun, actor: peer.name) }
    }

    static func newJobID() -> String {
        let stamp = Int(Date().timeIntervalSince1970)
        return "job-\(String(stamp, radix: 36))-\(String(UInt32.random(in: 0...UInt32.max), radix: 36))"
    }

    private func admit(_ job: JobRow, pending: [PendingTaskRow], done: Int, failed: Int, retries: Int, controller: (any JobController)?) {
        loop.preconditionInEventLoop()
        activeJobs[job.id] = job
        controllers[job.id] = controller
        for task in pending {
            taskInfo[task.id] = TaskInfo(job: job.id, index: task.index, kind: job.kind, input: task.input, blobs: task.blobs)
        }
        var grants: [TaskID: Scheduler.Grant] = [:]
        for task in pending {
            if let worker = task.leasedTo, task.attempts > 0 { grants[task.id] = .init(worker: worker, attempt: task.attempts) }
        }
        let tools = (try? planners.planner(for: job.kind).descriptor.requiredTools) ?? []
        scheduler.addJob(job.id, maxAttempts: job.maxAttempts, pending: pending.map { ($0.id, $0.attempts) }, done: done, failed: failed,
                         retries: retries, grants: grants, needs: Scheduler.Needs(kind: job.kind, tools: Set(tools)),
                         indices: Dictionary(pending.map { ($0.id, $0.index) }) { first, _ in first })
        if pending.isEmpty { finishIfEnded(job.id) }
        scheduleAssign()
    }

    public func cancel(job id: String, by peer: PeerIdentity) -> EventLoopFuture<WireJobSummary> {
        loop.submit { () -> EventLoopFuture<Void> in
            guard self.activeJobs[id] != nil else {
                if try self.store.job(id) != nil { return self.loop.makeSucceededVoidFuture() }
                throw WireError.notFound(what: "job \(id)")
            }
            let (revoked, end) = self.scheduler.cancel(job: id)
            self.revoke(revoked, reason: "job \(id) was cancelled")
            self.writer.enqueue(.cancelled(job: id))
            self.writer.enqueue(.audit(actor: peer.name, action: "cancel", subject: id, detail: "\(revoked.count) running tasks stopped"))
            // The answer shows the job as it ended, so wait for its end to be recorded.
            return end.map { self.finish($0) } ?? self.loop.makeSucceededVoidFuture()
        }.flatMap { $0 }.flatMap { self.summary(of: id) }
    }

    /// The job's progress: live from the scheduler while it runs, from the store after.
    public func summary(of id: String) -> EventLoopFuture<WireJobSummary> {
        loop.submit { self.liveView(id) }.flatMap { live in
            if let live { return self.loop.makeSucceededFuture(self.views.summary(live.row, live.progress, live: live)) }
            return self.fromStore(flushing: true) { try self.views.stored(id) }
        }
    }

    /// What only the running core knows of an active job. Call on the loop.
    private func liveView(_ id: String) -> JobView.Live? {
        guard let row = activeJobs[id], let progress = scheduler.progress(of: id) else { return nil }
        return JobView.Live(row: row, progress: progress, waiting: scheduler.waiting(id),
                            planned: controllers[id]?.plannedTotal ?? 0, problem: storeProblem)
    }

    /// Runs store reads off the event loop (after the pending writes, if asked), so a
    /// slow disk never stalls the scheduler.
    private func fromStore<T>(flushing: Bool = false, _ body: @escaping () throws -> T) -> EventLoopFuture<T> {
        let promise = loop.makePromise(of: T.self)
        DispatchQueue.global().async {
            if flushing { self.writer.flush() }
            promise.completeWith(Result(catching: body))
        }
        return promise.futureResult
    }

    public func listJobs(limit: Int) -> EventLoopFuture<WireJobList> {
        loop.submit { () -> [String: JobView.Live] in
            var live: [String: JobView.Live] = [:]
            for id in self.activeJobs.keys { live[id] = self.liveView(id) }
            return live
        }.flatMap { live in self.fromStore { try self.views.list(limit: limit, live: live) } }
    }

    public func taskResults(job id: String) -> EventLoopFuture<WireTaskResultList> {
        fromStore(flushing: true) {
            guard try self.store.job(id) != nil else { throw WireError.notFound(what: "job \(id)") }
            var list = WireTaskResultList()
            list.results = try self.store.results(job: id).map { row in
                var r = WireTaskResult()
                r.index = UInt32(row.index)
                r.worker = row.worker ?? ""
                r.attempts = UInt32(row.attempts)
                r.output = row.output ?? Data()
                r.error = row.error ?? ""
                r.state = row.state.label
                return r
            }
            return list
        }
    }

    // MARK: Workers

    /// Registers a worker after its Hello; returns its session id.
    func join(name: String, address: String, capabilities: WireCapabilities, channel: Channel) -> SessionID {
        loop.preconditionInEventLoop()
        nextSession += 1
        let id = "\(name)#\(nextSession)"
        let slots = max(1, Int(capabilities.slots))
        let session = WorkerSession(id: id, name: name, address: address, capabilities: capabilities, channel: channel)
        sessions[id] = session
        scheduler.addWorker(id, name: name, slots: slots, now: nowMs,
                            offer: Scheduler.Offer(kinds: Set(capabilities.jobKinds), tools: Set(capabilities.tools)))
        metrics.workersGauge.record(sessions.count)
        logger.info("worker joined", metadata: ["session": "\(id)", "address": "\(address)", "slots": "\(slots)", "tools": "\(capabilities.tools.joined(separator: ","))"])
        scheduleAssign()
        return id
    }

    func leave(_ id: SessionID) {
        loop.preconditionInEventLoop()
        guard sessions.removeValue(forKey: id) != nil else { return }
        let lost = scheduler.removeWorker(id)
        metrics.workersGauge.record(sessions.count)
        logger.info("worker left", metadata: ["session": "\(id)", "tasks returned": "\(lost.count)"])
        handleLost(lost)
        scheduleAssign()
    }

    func drain(_ id: SessionID) {
        loop.preconditionInEventLoop()
        sessions[id]?.draining = true
        scheduler.drain(id)
        logger.info("worker draining", metadata: ["session": "\(id)", "running": "\(scheduler.running(on: id).count)"])
    }

    func renew(_ id: SessionID, running: [TaskID]) {
        loop.preconditionInEventLoop()
        scheduler.renew(id, running: running, now: nowMs)
    }

    public func workers() -> EventLoopFuture<WireWorkerList> {
        loop.submit {
            var list = WireWorkerList()
            for session in self.sessions.values.sorted(by: { $0.id < $1.id }) {
                var info = WireWorkerInfo()
                info.sessionID = session.id
                info.name = session.name
                info.address = session.address
                info.capabilities = session.capabilities
                info.running = UInt32(self.scheduler.running(on: session.id).count)
                info.draining = session.draining
                info.connectedAtMs = Int64(session.connectedAt.timeIntervalSince1970 * 1000)
                info.tasksDone = session.tasksDone
                list.workers.append(info)
            }
            return list
        }
    }

    // MARK: Results

    func record(_ batch: WireResultBatch, from id: SessionID) {
        loop.preconditionInEventLoop()
        scheduler.heard(from: id, now: nowMs)
        if let problem = storeProblem {
            // Counting a result done that cannot be stored would report work that a crash
            // loses; refused, the task's lease runs out and it runs again once the store
            // recovers.
            resultsRefusedUnstored += batch.outcomes.count
            warnings.log(logger, "refusing results: the store is not writable", key: "store", metadata: ["problem": "\(problem)", "session": "\(id)"])
            return
        }
        for outcome in batch.outcomes {
            switch outcome.result {
            case let .output(output):
                recordDone(outcome, output: output, from: id)
            case let .failure(failure):
                recordFailure(outcome.taskID, failure, from: id)
            case nil:
                recordFailure(outcome.taskID, .with { $0.message = "worker sent an outcome without result"; $0.retryable = true }, from: id)
            }
        }
        scheduleAssign()
    }

    private func recordDone(_ outcome: WireTaskOutcome, output: Data, from id: SessionID) {
        let info = taskInfo[outcome.taskID]
        let worker = sessions[id]?.name ?? id
        let controller = info.flatMap { controllers[$0.job] }
        if let controller, scheduler.lease(of: outcome.taskID)?.session == id {
            do { try controller.validate(output: output) }
            catch {
                // A result the job cannot read is a failure, said loudly, not a success
                // with nothing in it.
                logger.error("refused a malformed result", metadata: ["task": "\(outcome.taskID)", "session": "\(id)", "error": "\(error)"])
                recordFailure(outcome.taskID, .with { $0.message = "malformed result: \(error)"; $0.retryable = false }, from: id)
                return
            }
        }
        switch scheduler.complete(outcome.taskID, attempt: Int(outcome.attempt), from: id, worker: worker) {
        case .refused:
            metrics.refusedResults.increment()
            refusedResultCount += 1
            warnings.log(logger, "refused a result from a worker that does not hold the task's lease", key: "refused-result",
                         metadata: ["task": "\(outcome.taskID)", "attempt": "\(outcome.attempt)", "session": "\(id)"])
        case let .recorded(attempts, jobEnd, revoke):
            // The duration is the worker's claim: clamped to what the store (a signed
            // 64-bit integer) and the timer (nanoseconds) hold, instead of trapping.
            let durationUs = min(outcome.durationUs, Self.maxDurationUs)
            sessions[id]?.tasksDone += 1
            let directive = info.flatMap { info in controller.map { $0.completed(index: info.index, output: output) } }
            writer.enqueue(.done(task: outcome.taskID, attempts: attempts, output: directive?.storedOutput ?? output, worker: worker, durationUs: durationUs,
                                 record: directive?.record))
            metrics.tasksCompleted.increment()
            metrics.taskDuration.recordNanoseconds(Int64(durationUs) * 1000)
            if let sent = assignedAt.removeValue(forKey: outcome.taskID) {
                let elapsed = DispatchTime.now().uptimeNanoseconds - sent
                metrics.roundTrip.recordNanoseconds(Int64(elapsed))
                roundTripObserver?(elapsed)
            }
            if let revoke { self.revoke([(revoke, outcome.taskID)], reason: "another worker finished it first") }
            if let info, let directive { addTasks(info.job, directive.tasks) }
            if let job = jobEnd?.job ?? info?.job { finishIfEnded(job) }
        case .duplicate:
            metrics.duplicateResults.increment()
            logger.info("ignored a duplicate result", metadata: ["task": "\(outcome.taskID)", "session": "\(id)"])
        case .unknownTask:
            metrics.duplicateResults.increment()
            logger.info("ignored a result for a task that is not running", metadata: ["task": "\(outcome.taskID)", "session": "\(id)"])
        }
    }

    /// The longest task duration recorded, in microseconds (about 292 years).
    static let maxDurationUs = UInt64(Int64.max / 1000)

    /// Adds tasks an adaptive job asked for: stored first, then queued.
    /// The store write runs off the loop; until the tasks are queued the job counts as
    /// growing, so it cannot end in between.
    private func addTasks(_ job: String, _ planned: [PlannedTask]) {
        guard !planned.isEmpty, let row = activeJobs[job] else { return }
        growing[job, default: 0] += 1
        let store = self.store
        DispatchQueue.global().async {
            let stored = Result { try store.appendTasks(job: job, tasks: planned) }
            self.loop.execute {
                self.growing[job]! -= 1
                if self.growing[job] == 0 { self.growing[job] = nil }
                switch stored {
                case let .success(ids):
                    guard self.activeJobs[job] != nil, self.scheduler.addTasks(job, ids.map(\.id), indices: Dictionary(ids.map { ($0.id, $0.index) }) { first, _ in first }) else {
                        // Cancelled meanwhile: the new tasks end with it.
                        self.writer.enqueue(.cancelled(job: job))
                        self.finishIfEnded(job)
                        return
                    }
                    for (pair, task) in zip(ids, planned) {
                        self.taskInfo[pair.id] = TaskInfo(job: job, index: pair.index, kind: row.kind, input: task.input, blobs: task.blobs)
                    }
                    self.scheduleAssign()
                case let .failure(error):
                    self.logger.error("could not add tasks to a job", metadata: ["job": "\(job)", "error": "\(error)"])
                    self.finishIfEnded(job)
                }
            }
        }
    }

    /// Jobs with tasks on their way into the store, by how many batches.
    private var growing: [String: Int] = [:]

    private func finishIfEnded(_ job: String) {
        guard growing[job] == nil else { return }
        if let progress = scheduler.progress(of: job), progress.isFinished {
            finish(Scheduler.JobEnd(job: job, progress: progress))
        }
    }

    /// Progress of running tasks, for adaptive jobs (e.g. ASHA early stopping).
    func recordProgress(_ batch: WireProgressBatch, from id: SessionID) {
        loop.preconditionInEventLoop()
        scheduler.heard(from: id, now: nowMs)
        var stop: [(SessionID, TaskID)] = []
        for p in batch.progress {
            guard let info = taskInfo[p.taskID], let controller = controllers[info.job],
                  scheduler.lease(of: p.taskID)?.session == id else { continue }
            if !controller.progress(index: info.index, step: Int(p.step), metrics: p.metrics) {
                stop.append((id, p.taskID))
            }
        }
        if !stop.isEmpty { revoke(stop, reason: "stopped early by the job's scheduler", stopEarly: true) }
    }

    private func recordFailure(_ task: TaskID, _ failure: WireTaskFailure, from id: SessionID) {
        let outcome = scheduler.fail(task, from: id, message: failure.message, retryable: failure.retryable)
        handleLost([Scheduler.LostLease(task: task, session: id, outcome: outcome)])
    }

    private func handleLost(_ lost: [Scheduler.LostLease]) {
        for item in lost {
            assignedAt[item.task] = nil
            let error = scheduler.lastError(of: item.task) ?? "lost"
            switch item.outcome {
            case let .requeued(attempts):
                metrics.taskRetries.increment()
                writer.enqueue(.attemptFailed(task: item.task, attempts: attempts, error: error))
                logger.info("task returned to the queue", metadata: ["task": "\(item.task)", "attempts": "\(attempts)", "reason": "\(error)"])
            case let .failedForGood(attempts, jobEnd):
                metrics.tasksFailed.increment()
                let info = taskInfo[item.task]
                let directive = info.flatMap { info in controllers[info.job].map { $0.failed(index: info.index, error: error) } }
                writer.enqueue(.failed(task: item.task, attempts: attempts, error: error, record: directive?.record))
                logger.warning("task failed for good", metadata: ["task": "\(item.task)", "attempts": "\(attempts)", "error": "\(error)"])
                if let info, let directive { addTasks(info.job, directive.tasks) }
                if let job = jobEnd?.job ?? info?.job { finishIfEnded(job) }
            case .ignored:
                break
            }
        }
    }

    /// Concludes a job whose tasks all ended. Its summary (for a search: evaluating and
    /// promoting the winner) is made off the loop and outside the store's write
    /// transaction; the job reads as running until the summary is stored.
    @discardableResult
    private func finish(_ end: Scheduler.JobEnd) -> EventLoopFuture<Void> {
        guard let job = activeJobs.removeValue(forKey: end.job) else { return loop.makeSucceededVoidFuture() }
        let recorded = loop.makePromise(of: Void.self)
        let p = end.progress
        let controller = controllers.removeValue(forKey: job.id)
        for (id, info) in taskInfo where info.job == job.id { taskInfo[id] = nil }
        scheduler.forget(job: job.id)
        let planner = try? planners.planner(for: job.kind)
        let rule = planner?.descriptor.failureRule ?? .allMustSucceed
        let writer = self.writer, store = self.store, logger = self.logger
        DispatchQueue.global().async {
            // A summary computed from a store that missed writes would be wrong: wait for
            // the store (it is retried) rather than summarize what is there.
            while !writer.flush() { sleep(1) }
            let (state, error, summary) = JobEnding.conclude(progress: p, rule: rule) {
                let results = try store.results(job: job.id)
                if let controller { return try controller.finish(results: results) }
                return try planner?.summarize(spec: job.spec, results: results) ?? Data()
            }
            logger.info("job ended", metadata: ["job": "\(job.id)", "state": "\(state)", "done": "\(p.done)", "failed": "\(p.failed)", "retries": "\(p.retries)"])
            writer.enqueue(.finished(job: job.id, state: state, error: error, summary: summary))
            recorded.succeed()
        }
        return recorded.futureResult
    }

    private func revoke(_ pairs: [(SessionID, TaskID)], reason: String, stopEarly: Bool = false) {
        var bySession: [SessionID: [TaskID]] = [:]
        for (session, task) in pairs { bySession[session, default: []].append(task) }
        for (session, tasks) in bySession {
            var cancel = WireCancelTasks()
            cancel.taskIds = tasks
            cancel.reason = reason
            cancel.stopEarly = stopEarly
            sessions[session]?.send(.cancelTasks(cancel))
        }
    }

    // MARK: Assignment

    private func scheduleAssign() {
        guard !assignScheduled else { return }
        assignScheduled = true
        loop.execute {
            self.assignScheduled = false
            self.assign()
        }
    }

    private func assign() {
        // While the store cannot be written, handing out work only makes results that
        // would be refused.
        guard !stopped, writer.failure == nil else { return updateGauges() }
        let assignments = scheduler.assign(now: nowMs)
        guard !assignments.isEmpty else { return updateGauges() }
        var batches: [SessionID: WireTaskBatch] = [:]
        var started: Set<String> = []
        for a in assignments {
            guard let info = taskInfo[a.task] else { continue }
            var t = WireTaskAssignment()
            t.taskID = a.task
            t.jobID = info.job
            t.index = UInt32(info.index)
            t.attempt = UInt32(a.attempt)
            writer.enqueueLazily(.leased(task: a.task, attempts: a.attempt, worker: sessions[a.session]?.name ?? a.session))
            assignedAt[a.task] = DispatchTime.now().uptimeNanoseconds
            t.kind = info.kind
            t.input = info.input
            t.blobs = info.blobs
            batches[a.session, default: WireTaskBatch()].tasks.append(t)
            if let job = activeJobs[info.job], job.state == .queued {
                activeJobs[info.job]?.state = .running
                started.insert(info.job)
            }
        }
        for job in started { writer.enqueue(.started(job: job)) }
        for (session, batch) in batches { sessions[session]?.send(.tasks(batch)) }
        updateGauges()
    }

    private func tick() {
        // A worker silent for a whole lease period is behind a cut network or hung: the
        // scheduler has already taken it out of the pool (so this tick's assignment skips
        // it); cut its connection at once — a graceful TLS close would wait on a peer that
        // is gone. It reconnects when it can.
        let expiry = scheduler.expire(now: nowMs)
        for id in expiry.silentWorkers {
            guard let session = sessions.removeValue(forKey: id) else { continue }
            logger.warning("worker silent for a lease period; closing its connection", metadata: ["session": "\(id)"])
            ConnectionAbort.abort(session.channel)
        }
        if !expiry.silentWorkers.isEmpty { metrics.workersGauge.record(sessions.count) }
        let lost = expiry.lost
        if !lost.isEmpty {
            metrics.leaseExpiries.increment(by: lost.count)
            handleLost(lost)
            revoke(lost.map { ($0.session, $0.task) }.filter { sessions[$0.0] != nil }, reason: "lease expired")
        }
        // Also resumes assignment once a failing store recovers.
        scheduleAssign()
        writer.kick()
        updateGauges()
    }

    private func updateGauges() {
        metrics.queuedGauge.record(scheduler.queuedCount)
        metrics.leasedGauge.record(scheduler.leasedCount)
    }
}

extension WireJobState {
    init(_ state: JobState) {
        switch state {
        case .queued: self = .queued
        case .running: self = .running
        case .succeeded: self = .succeeded
        case .failed: self = .failed
        case .cancelled: self = .cancelled
        }
    }

    public var label: String {
        switch self {
        case .queued: return "queued"
        case .running: return "running"
        case .succeeded: return "succeeded"
        case .failed: return "failed"
        case .cancelled: return "cancelled"
        case .unspecified, .UNRECOGNIZED: return "unknown"
        }
    }
}
