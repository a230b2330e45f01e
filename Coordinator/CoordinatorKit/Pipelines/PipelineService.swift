import Foundation
import Learning
import Logging
import Metrics
import NIOCore
import Wire

/// Runs the configured pipelines inside the coordinator: starts scheduled runs from each
/// pipeline's ``PipelineClock``, manual and drift-triggered runs on request, and drives
/// every ``PipelineRun`` by submitting its steps' jobs to the ``ClusterCore`` and
/// following them to their end. The I/O shell around the pure clock and run.
///
/// Guarantees:
/// - Every decision runs on one serial queue, so the runs need no locks.
/// - A run's new state and the attempt rows its directives create are stored before any
///   job is submitted or cancelled; a coordinator killed mid-run resumes each unfinished
///   run from the store and re-attaches to the jobs its running steps had submitted —
///   found by the recorded id, or by the job name each attempt gives its job — so no step
///   attempt ever runs twice. A step whose job cannot be found fails (and may be retried
///   as its next attempt).
/// - A step's timeout cancels its job; a late result of an abandoned attempt is ignored.
/// - Never more than `max_active_runs` runs of a pipeline at once: a manual trigger beyond
///   it is refused naming the running run; a scheduled slot waits for a run to end.
/// - Drift-triggered retraining starts at most one run per debounce interval.
public final class PipelineService: PipelineTriggering, @unchecked Sendable {
    let core: ClusterCore
    let store: PipelineStore
    /// In config order, for listings.
    let definitions: [PipelineDefinition]
    let retrainOnDrift: RetrainOnDrift
    let tickInterval: TimeAmount
    let logger: Logger
    let now: @Sendable () -> Date
    let queue = DispatchQueue(label: "tower.pipelines")
    private let queueKey = DispatchSpecificKey<Bool>()
    private let metrics: [String: PipelineMetrics]

    // State below is touched on `queue` only.
    private var active: [String: ActiveRun] = [:]
    private var lastSlots: [String: Date] = [:]
    private var wakeAt: [String: Date] = [:]
    /// Attempts whose job summary is being fetched, so a slow answer is not asked twice.
    private var polling: Set<String> = []
    private var timer: RepeatedTask?
    private var running = false

    /// A run in flight with its attempt rows, keyed by ``attemptKey(_:_:)``.
    struct ActiveRun {
        var record: PipelineRunRecord
        var attempts: [String: StepAttemptRecord]
    }

    /// - Parameters:
    ///   - tickInterval: how often clocks, deadlines and jobs are looked at.
    ///   - now: the wall clock (tests may fix it).
    public init(core: ClusterCore, pipelines: [PipelineDefinition], retrainOnDrift: RetrainOnDrift = RetrainOnDrift(),
                tickInterval: TimeAmount = .seconds(1), logger: Logger, now: @escaping @Sendable () -> Date = { Date() }) {
        self.core = core
        self.store = PipelineStore(core.store)
        self.definitions = pipelines
        self.retrainOnDrift = retrainOnDrift
        self.tickInterval = tickInterval
        self.logger = logger
        self.now = now
        metrics = Dictionary(uniqueKeysWithValues: pipelines.map { ($0.name, PipelineMetrics(pipeline: $0.name)) })
        queue.setSpecific(key: queueKey, value: true)
    }

    func definition(_ name: String) throws -> PipelineDefinition {
        guard let d = definitions.first(where: { $0.name == name }) else {
            let names = definitions.map(\.name)
            throw WireError.notFound(what: "pipeline \"\(name)\" (configured: \(names.isEmpty ? "none" : names.joined(separator: ", ")))")
        }
        return d
    }

    /// Sets this service as the core's pipeline trigger and request handler. Call before
    /// `core.start()` so jobs resumed by the core can already trigger pipelines.
    public func attach() {
        core.pipelineTrigger = self
        let loop = core.loop
        // Weak: the core outlives a service that a test (or a reload) replaces.
        core.pipelineHandler = { [weak self] body in
            guard let self else { return loop.makeFailedFuture(WireError.notFound(what: "pipelines: the pipeline service has stopped")) }
            return self.handle(body)
        }
    }

    /// Resumes unfinished runs from the store, consults every clock, and starts the tick.
    /// Call after `core.start()` (the jobs being re-attached must be loaded first).
    public func start() throws {
        try onQueue {
            guard !running else { return }
            running = true
            let now = self.now()
            for record in try store.unfinishedRuns() {
                // A run carries its own steps, so it finishes even if its pipeline left the config.
                if !definitions.contains(where: { $0.name == record.pipeline }) {
                    logger.notice("resuming a run whose pipeline is no longer configured", metadata: ["run": "\(record.id)"])
                }
                var attempts: [String: StepAttemptRecord] = [:]
                for a in try store.attempts(run: record.id) { attempts[Self.attemptKey(a.step, a.attempt)] = a }
                var run = ActiveRun(record: record, attempts: attempts)
                let directives = run.record.run.resume(now: now)
                active[record.id] = run
                logger.info("resumed pipeline run", metadata: ["run": "\(record.id)", "pipeline": "\(record.pipeline)"])
                commit(record.id, directives, now: now)
            }
            for pipeline in definitions where pipeline.schedule != nil {
                lastSlots[pipeline.name] = try store.lastSlot(pipeline.name)
                evaluateClock(pipeline, now: now)
            }
        }
        timer = core.loop.scheduleRepeatedTask(initialDelay: tickInterval, delay: tickInterval) { [weak self] _ in
            guard let self else { return }
            self.queue.async { self.tick() }
        }
    }

    /// Stops the tick; runs stay in the store as they are and resume on the next start.
    /// Answers still in flight are dropped.
    public func stop() {
        timer?.cancel()
        timer = nil
        onQueue { running = false; active.removeAll(); polling.removeAll() }
    }

    private func onQueue<T>(_ body: () throws -> T) rethrows -> T {
        if DispatchQueue.getSpecific(key: queueKey) == true { return try body() }
        return try queue.sync(execute: body)
    }

    static func attemptKey(_ step: String, _ attempt: Int) -> String { "\(step)#\(attempt)" }

    /// The name an attempt's job carries: unique per attempt, so a restarted coordinator
    /// finds the job even if its id was never recorded.
    static func jobName(run: String, step: String, attempt: Int) -> String { "\(run)/\(step)#\(attempt)" }

    // MARK: Tick

    private func tick() {
        guard running else { return }
        let now = self.now()
        for pipeline in definitions where pipeline.schedule != nil {
            if let wake = wakeAt[pipeline.name], wake <= now { evaluateClock(pipeline, now: now) }
        }
        for id in active.keys.sorted() {
            guard let run = active[id] else { continue }
            if let deadline = run.record.run.nextDeadline, deadline <= now {
                var changed = run
                let directives = changed.record.run.tick(now: now)
                active[id] = changed
                commit(id, directives, now: now)
            }
            guard let run = active[id] else { continue }
            for attempt in run.attempts.values where attempt.state == "running" {
                if let job = attempt.jobID { poll(id, attempt, job: job) }
            }
        }
    }

    private func poll(_ runID: String, _ attempt: StepAttemptRecord, job: String) {
        let key = "\(runID) \(Self.attemptKey(attempt.step, attempt.attempt))"
        guard !polling.contains(key) else { return }
        polling.insert(key)
        core.summary(of: job).whenComplete { result in
            self.queue.async {
                self.polling.remove(key)
                guard self.running else { return }
                switch result {
                case let .success(summary):
                    switch summary.state {
                    case .succeeded:
                        self.report(runID, attempt.step, attempt.attempt, .success(job))
                    case .failed:
                        let why = summary.error.isEmpty ? "" : ": \(summary.error)"
                        self.report(runID, attempt.step, attempt.attempt, .failure("job \(job) failed\(why)"))
                    case .cancelled:
                        self.report(runID, attempt.step, attempt.attempt, .failure("job \(job) was cancelled"))
                    default:
                        break
                    }
                case let .failure(error):
                    if case WireError.notFound = error {
                        self.report(runID, attempt.step, attempt.attempt, .failure("the step's job \(job) is gone"))
                    } else {
                        self.logger.warning("could not read a pipeline step's job", metadata: ["job": "\(job)", "error": "\(error)"])
                    }
                }
            }
        }
    }

    enum StepResult {
        /// The step's output (a training set's sha256, a job id).
        case success(String)
        case failure(String)
    }

    /// A step attempt ended. Call on the queue.
    private func report(_ runID: String, _ step: String, _ attempt: Int, _ result: StepResult) {
        guard running, var run = active[runID] else { return }
        let now = self.now()
        let key = Self.attemptKey(step, attempt)
        var row = run.attempts[key] ?? StepAttemptRecord(runID: runID, step: step, attempt: attempt, state: "running")
        let directives: [PipelineRun.Directive]
        switch result {
        case let .success(output):
            directives = run.record.run.stepSucceeded(step, attempt: attempt, now: now)
            row.state = "succeeded"
            row.output = output
        case let .failure(reason):
            directives = run.record.run.stepFailed(step, attempt: attempt, reason: reason, now: now)
            row.state = "failed"
            row.error = reason
        }
        // A stale report (an abandoned attempt) changes nothing, not even its row.
        guard !directives.isEmpty || run.record.run != active[runID]?.record.run else { return }
        run.attempts[key] = row
        active[runID] = run
        commit(runID, directives, now: now, changed: [row])
    }

    // MARK: Directives

    /// Stores the run as it now is with the attempt rows its directives create, then acts
    /// on them. Call on the queue after changing `active[runID].record.run`.
    private func commit(_ runID: String, _ directives: [PipelineRun.Directive], now: Date, changed: [StepAttemptRecord] = []) {
        guard var run = active[runID] else { return }
        var rows = changed
        for directive in directives {
            switch directive {
            case let .launch(step, attempt):
                let row = StepAttemptRecord(runID: runID, step: step, attempt: attempt, state: "launching")
                run.attempts[Self.attemptKey(step, attempt)] = row
                rows.append(row)
            case let .abandon(step, attempt):
                let key = Self.attemptKey(step, attempt)
                var row = run.attempts[key] ?? StepAttemptRecord(runID: runID, step: step, attempt: attempt, state: "running")
                row.state = "abandoned"
                row.error = row.error ?? run.record.run.steps.indices
                    .first { run.record.run.steps[$0].name == step }.flatMap { run.record.run.lastErrors[$0] } ?? "the run ended"
                run.attempts[key] = row
                rows.append(row)
            case let .finished(outcome):
                run.record.finishedAt = now
                switch outcome {
                case .succeeded: run.record.state = "succeeded"
                case let .failed(why): run.record.state = "failed"; run.record.error = why
                case .cancelled: run.record.state = "cancelled"
                }
            case .retryAt, .reattach:
                break
            }
        }
        do {
            try store.save(run.record, attempts: rows)
        } catch {
            // Not acting keeps the store the truth: the next start resumes from what it holds.
            logger.error("could not store a pipeline run; its next steps wait for a restart",
                         metadata: ["run": "\(runID)", "error": "\(error)"])
            return
        }
        active[runID] = run
        for directive in directives {
            switch directive {
            case let .launch(step, attempt): launch(run.record, step: step, attempt: attempt)
            case let .abandon(step, attempt): abandon(run, step: step, attempt: attempt)
            case let .reattach(step, attempt): reattach(runID, step: step, attempt: attempt)
            case let .finished(outcome): finished(run.record, outcome)
            case .retryAt: break
            }
        }
    }

    private func finished(_ record: PipelineRunRecord, _ outcome: PipelineRun.Outcome) {
        active[record.id] = nil
        let m = metrics[record.pipeline]
        switch outcome {
        case .succeeded:
            m?.succeeded.increment()
            logger.info("pipeline run succeeded", metadata: ["run": "\(record.id)", "pipeline": "\(record.pipeline)"])
        case let .failed(why):
            m?.failed.increment()
            logger.warning("pipeline run failed", metadata: ["run": "\(record.id)", "pipeline": "\(record.pipeline)", "error": "\(why)"])
        case .cancelled:
            m?.failed.increment()
            logger.notice("pipeline run cancelled", metadata: ["run": "\(record.id)", "pipeline": "\(record.pipeline)"])
        }
        // A slot may have been waiting for this run to end.
        if let pipeline = definitions.first(where: { $0.name == record.pipeline }), pipeline.schedule != nil {
            evaluateClock(pipeline, now: now())
        }
    }

    private func abandon(_ run: ActiveRun, step: String, attempt: Int) {
        guard let job = run.attempts[Self.attemptKey(step, attempt)]?.jobID else { return }
        core.cancel(job: job, by: Self.identity(run.record.pipeline)).whenFailure { error in
            self.logger.warning("could not cancel an abandoned step's job", metadata: ["job": "\(job)", "error": "\(error)"])
        }
    }

    /// After a restart: follow the job the attempt submitted, or fail the attempt.
    private func reattach(_ runID: String, step: String, attempt: Int) {
        guard var run = active[runID], let kind = run.record.run.steps.first(where: { $0.name == step })?.kind else { return }
        let key = Self.attemptKey(step, attempt)
        guard kind != "training_set" else {
            queue.async { self.report(runID, step, attempt, .failure("the coordinator restarted while the training set was being built")) }
            return
        }
        var row = run.attempts[key] ?? StepAttemptRecord(runID: runID, step: step, attempt: attempt, state: "launching")
        let name = Self.jobName(run: runID, step: step, attempt: attempt)
        let job = (try? row.jobID ?? store.job(named: name)) ?? nil
        guard let job, (try? core.store.job(job)) != nil else {
            queue.async { self.report(runID, step, attempt, .failure("the coordinator restarted and the step's job is gone")) }
            return
        }
        row.jobID = job
        row.state = "running"
        run.attempts[key] = row
        active[runID] = run
        do { try store.save(attempts: [row]) } catch {
            logger.error("could not record a re-attached job", metadata: ["run": "\(runID)", "error": "\(error)"])
        }
        logger.info("re-attached a pipeline step to its job", metadata: ["run": "\(runID)", "step": "\(step)", "job": "\(job)"])
    }

    // MARK: Launching steps

    static func identity(_ pipeline: String) -> PeerIdentity {
        PeerIdentity(name: "pipeline:\(pipeline)", role: .operator, serial: "")
    }

    private func launch(_ record: PipelineRunRecord, step name: String, attempt: Int) {
        guard let step = record.run.steps.first(where: { $0.name == name }) else { return }
        let runID = record.id
        if step.kind == "training_set" {
            let days: Double
            do { days = try Self.number(step, "days", default: 30, allowed: 0.001...3650) } catch {
                queue.async { self.report(runID, name, attempt, .failure("\(error)")) }
                return
            }
            let end = now()
            let features = core.features, blobs = core.blobs
            DispatchQueue.global().async {
                let definition = TrainingSetDefinition(from: end.timeIntervalSince1970 - days * 86_400, to: end.timeIntervalSince1970,
                                                       asOf: end.timeIntervalSince1970)
                let result = Result { try features.store.makeTrainingSet(definition, blobs: blobs, now: end.timeIntervalSince1970) }
                self.queue.async {
                    switch result {
                    case let .success(info): self.report(runID, name, attempt, .success(info.sha256))
                    case let .failure(error): self.report(runID, name, attempt, .failure("building the training set failed: \(error)"))
                    }
                }
            }
            return
        }
        var spec: WireJobSpec
        do { spec = try jobSpec(step, in: active[runID] ?? ActiveRun(record: record, attempts: [:])) } catch {
            queue.async { self.report(runID, name, attempt, .failure("\(error)")) }
            return
        }
        spec.name = Self.jobName(run: runID, step: name, attempt: attempt)
        core.submit(spec, by: Self.identity(record.pipeline)).whenComplete { result in
            self.queue.async {
                guard self.running, var run = self.active[runID] else { return }
                switch result {
                case let .success(accepted):
                    let key = Self.attemptKey(name, attempt)
                    var row = run.attempts[key] ?? StepAttemptRecord(runID: runID, step: name, attempt: attempt, state: "launching")
                    // Abandoned while the submit was on its way: cancel what it started.
                    let abandoned = row.state == "abandoned"
                    row.jobID = accepted.jobID
                    if !abandoned { row.state = "running" }
                    run.attempts[key] = row
                    self.active[runID] = run
                    do { try self.store.save(attempts: [row]) } catch {
                        self.logger.error("could not record a step's job", metadata: ["run": "\(runID)", "error": "\(error)"])
                    }
                    if abandoned { self.abandon(run, step: name, attempt: attempt) }
                    self.logger.info("pipeline step submitted its job", metadata: ["run": "\(runID)", "step": "\(name)", "job": "\(accepted.jobID)"])
                case let .failure(error):
                    self.report(runID, name, attempt, .failure("submitting the \(step.kind) job failed: \(error)"))
                }
            }
        }
    }

    /// The job a step submits, from its kind and `with:` options.
    func jobSpec(_ step: PipelineStep, in run: ActiveRun) throws -> WireJobSpec {
        var job = WireJobSpec()
        switch step.kind {
        case JobKind.hpo:
            var spec = WireHPOSpec()
            spec.experiment = step.options["experiment"] ?? run.record.pipeline
            spec.modelName = step.options["model"] ?? "match"
            spec.datasetSha256 = try trainingSet(before: step, in: run)
            if let path = step.options["space"] {
                do { spec.space = try String(contentsOfFile: path, encoding: .utf8) } catch {
                    throw WireError.invalidArgument("step \"\(step.name)\": cannot read the search space \(path) (with.space): \(error.localizedDescription)")
                }
            } else {
                spec.space = Self.defaultSearchSpace
            }
            job.kind = JobKind.hpo
            job.spec = try spec.serializedData()
        case ScoreKind.name:
            var spec = WireScoreSpec()
            spec.modelName = step.options["model"] ?? "match"
            spec.version = 0
            spec.k = UInt32(try Self.number(step, "k", default: 10, allowed: 1...100))
            job.kind = ScoreKind.name
            job.spec = try spec.serializedData()
        case DriftKind.name:
            var spec = WireDriftSpec()
            spec.modelName = step.options["model"] ?? "match"
            spec.windowHours = UInt32(try Self.number(step, "window_hours", default: 24, allowed: 1...8760))
            spec.retrainOnDrift = step.options["retrain"].map { $0.lowercased() != "false" } ?? true
            job.kind = DriftKind.name
            job.spec = try spec.serializedData()
        case "job":
            guard let kind = step.options["kind"], !kind.isEmpty else {
                throw WireError.invalidArgument("step \"\(step.name)\": a job step needs with.kind (the job kind to submit)")
            }
            job.kind = kind
            // The core accepts protobuf JSON and stores it in binary form.
            job.spec = Data((step.options["spec_json"] ?? "{}").utf8)
            if step.options["max_attempts"] != nil {
                job.maxAttempts = UInt32(try Self.number(step, "max_attempts", default: 1, allowed: 1...100))
            }
        default:
            throw WireError.invalidArgument("step \"\(step.name)\": this coordinator cannot run steps of kind \"\(step.kind)\"")
        }
        return job
    }

    /// The output of the nearest `training_set` step listed before `step`.
    func trainingSet(before step: PipelineStep, in run: ActiveRun) throws -> String {
        let steps = run.record.run.steps
        let index = steps.firstIndex { $0.name == step.name } ?? steps.count
        guard let source = steps[..<index].last(where: { $0.kind == "training_set" }) else {
            throw WireError.invalidArgument("step \"\(step.name)\": an hpo step needs a training_set step before it in the pipeline")
        }
        let output = run.attempts.values.filter { $0.step == source.name && $0.state == "succeeded" }.max { $0.attempt < $1.attempt }?.output
        guard let sha = output, !sha.isEmpty else {
            throw WireError.invalidArgument("step \"\(step.name)\": step \"\(source.name)\" has produced no training set (list it in `after:` so it runs first)")
        }
        return sha
    }

    static func number(_ step: PipelineStep, _ key: String, default value: Double, allowed: ClosedRange<Double>) throws -> Double {
        guard let text = step.options[key] else { return value }
        guard let n = Double(text), allowed.contains(n) else {
            throw WireError.invalidArgument("step \"\(step.name)\": with.\(key) is \"\(text)\"; expected a number from \(allowed.lowerBound) to \(allowed.upperBound)")
        }
        return n
    }

    /// A small search for nightly retraining when the step names no space file: quick
    /// enough for every night, wide enough to follow the data.
    static let defaultSearchSpace = """
        model: gbdt
        metric: auc
        sampler: tpe
        max_trials: 8
        max_concurrent: 2
        asha: {min_iterations: 10, max_iterations: 60, reduction_factor: 3}
        params:
          num_iterations: 60
          num_leaves: {int: [8, 32]}
          learning_rate: {loguniform: [0.03, 0.3]}
          min_data_in_leaf: {int: [10, 60]}
        """

    // MARK: Starting runs

    /// A new run of `pipeline`, started at `now`, with the attempt rows of its first steps.
    private func newRun(_ pipeline: PipelineDefinition, trigger: String, reason: String, scheduledFor: Date?, now: Date)
        -> (PipelineRunRecord, [PipelineRun.Directive], [StepAttemptRecord]) {
        let stamp = String(Int(now.timeIntervalSince1970), radix: 36)
        let id = "\(pipeline.name)-\(stamp)-\(String(UInt32.random(in: 0...UInt32.max), radix: 36))"
        var run = PipelineRun(pipeline)
        let directives = run.start(now: now)
        let record = PipelineRunRecord(id: id, pipeline: pipeline.name, trigger: trigger, reason: reason, scheduledFor: scheduledFor,
                                       state: "running", startedAt: now, finishedAt: nil, error: nil, run: run)
        let rows = directives.compactMap { d -> StepAttemptRecord? in
            guard case let .launch(step, attempt) = d else { return nil }
            return StepAttemptRecord(runID: id, step: step, attempt: attempt, state: "launching")
        }
        return (record, directives, rows)
    }

    /// Makes a stored new run active and acts on its first directives.
    private func activate(_ record: PipelineRunRecord, _ directives: [PipelineRun.Directive], _ rows: [StepAttemptRecord]) {
        var attempts: [String: StepAttemptRecord] = [:]
        for row in rows { attempts[Self.attemptKey(row.step, row.attempt)] = row }
        active[record.id] = ActiveRun(record: record, attempts: attempts)
        metrics[record.pipeline]?.started.increment()
        logger.info("pipeline run started", metadata: ["run": "\(record.id)", "pipeline": "\(record.pipeline)", "trigger": "\(record.trigger)"])
        for directive in directives {
            switch directive {
            case let .launch(step, attempt): launch(record, step: step, attempt: attempt)
            case let .finished(outcome): finished(record, outcome)
            default: break
            }
        }
    }

    private func activeRuns(of pipeline: String) -> [PipelineRunRecord] {
        active.values.map(\.record).filter { $0.pipeline == pipeline }.sorted { $0.startedAt < $1.startedAt }
    }

    private func evaluateClock(_ pipeline: PipelineDefinition, now: Date) {
        guard running, let clock = PipelineClock(pipeline) else { return }
        let decision = clock.decide(lastSlot: lastSlots[pipeline.name], now: now, activeRuns: activeRuns(of: pipeline.name).count)
        wakeAt[pipeline.name] = decision.wakeAt
        guard decision.lastSlot != lastSlots[pipeline.name] || !decision.start.isEmpty else { return }
        if decision.skipped > 0 {
            logger.notice("missed schedule slots skipped (catch_up is off)", metadata: ["pipeline": "\(pipeline.name)", "skipped": "\(decision.skipped)"])
        }
        let runs = decision.start.map { slot in
            newRun(pipeline, trigger: "schedule", reason: "scheduled for \(Self.format(slot))", scheduledFor: slot, now: now)
        }
        do {
            try store.startScheduled(runs.map(\.0), pipeline: pipeline.name, lastSlot: decision.lastSlot, attempts: runs.flatMap(\.2))
        } catch {
            logger.error("could not store the pipeline's schedule; trying again next tick", metadata: ["pipeline": "\(pipeline.name)", "error": "\(error)"])
            wakeAt[pipeline.name] = now
            return
        }
        lastSlots[pipeline.name] = decision.lastSlot
        for (record, directives, rows) in runs { activate(record, directives, rows) }
    }

    static func format(_ date: Date) -> String {
        let f = ISO8601DateFormatter()
        return f.string(from: date)
    }

    /// Starts a run now (`trigger` is `manual` or `drift`), refusing one beyond the
    /// pipeline's `max_active_runs`.
    public func trigger(_ name: String, reason: String, trigger: String = "manual") throws -> PipelineRunRecord {
        try onQueue {
            let pipeline = try definition(name)
            guard running else { throw WireError.invalidArgument("pipelines are not running on this coordinator yet; try again in a moment") }
            try checkCapacity(pipeline)
            let (record, directives, rows) = newRun(pipeline, trigger: trigger, reason: reason, scheduledFor: nil, now: now())
            try store.save(record, attempts: rows)
            activate(record, directives, rows)
            return record
        }
    }

    private func checkCapacity(_ pipeline: PipelineDefinition) throws {
        let runs = activeRuns(of: pipeline.name)
        guard runs.count < pipeline.maxActiveRuns else {
            let list = runs.map { "\($0.id) (started \(Self.format($0.startedAt)))" }.joined(separator: ", ")
            throw WireError.invalidArgument("pipeline \"\(pipeline.name)\" already runs \(list), its max_active_runs (\(pipeline.maxActiveRuns)); wait for it to end (coordinator pipelines runs \(pipeline.name)) or raise max_active_runs")
        }
    }

    // MARK: PipelineTriggering

    public func retrainForDrift(reportID: String, jobID: String) throws -> String? {
        try onQueue {
            let name = retrainOnDrift.pipeline
            let now = self.now()
            guard let pipeline = definitions.first(where: { $0.name == name }) else {
                logger.warning("drift asked for retraining, but no pipeline named by retrain_on_drift is configured",
                               metadata: ["pipeline": "\(name)", "report": "\(reportID)"])
                try store.recordDriftTrigger(at: now, reportID: reportID, jobID: jobID, pipeline: name, outcome: "no-pipeline")
                return nil
            }
            guard running else {
                logger.warning("drift asked for retraining before pipelines started", metadata: ["report": "\(reportID)"])
                return nil
            }
            if let last = try store.lastDriftStart(pipeline: name), now.timeIntervalSince(last.at) < retrainOnDrift.debounceInterval {
                logger.notice("drift retraining debounced", metadata: [
                    "pipeline": "\(name)", "report": "\(reportID)", "previous_run": "\(last.runID)",
                    "debounce_hours": "\(retrainOnDrift.debounce_hours)"])
                try store.recordDriftTrigger(at: now, reportID: reportID, jobID: jobID, pipeline: name, outcome: "debounced")
                return nil
            }
            do { try checkCapacity(pipeline) } catch {
                logger.notice("drift retraining not started: the pipeline is busy", metadata: ["report": "\(reportID)", "reason": "\(error)"])
                try store.recordDriftTrigger(at: now, reportID: reportID, jobID: jobID, pipeline: name, outcome: "busy")
                return nil
            }
            let (record, directives, rows) = newRun(pipeline, trigger: "drift", reason: reportID, scheduledFor: nil, now: now)
            try store.recordDriftTrigger(at: now, reportID: reportID, jobID: jobID, pipeline: name, outcome: "started", run: record, attempts: rows)
            activate(record, directives, rows)
            return record.id
        }
    }

    // MARK: Requests

    /// Answers `listPipelines`, `listPipelineRuns` and `triggerPipeline`; the core's
    /// ``ClusterCore/pipelineHandler``.
    public func handle(_ body: WireEnvelope.OneOf_Body) -> EventLoopFuture<WireEnvelope.Body> {
        let promise = core.loop.makePromise(of: WireEnvelope.Body.self)
        queue.async { promise.completeWith(Result { try self.answer(body) }) }
        return promise.futureResult
    }

    private func answer(_ body: WireEnvelope.OneOf_Body) throws -> WireEnvelope.Body {
        switch body {
        case .listPipelines:
            return .pipelineList(.with { $0.pipelines = definitions.map(info) })
        case let .listPipelineRuns(request):
            let pipeline = try definition(request.pipeline)
            let limit = request.limit == 0 ? 20 : Int(min(request.limit, 1000))
            let runs = try store.runs(pipeline: pipeline.name, limit: limit)
            return .pipelineRunList(.with { $0.runs = runs.map(wire) })
        case let .triggerPipeline(request):
            let record = try trigger(request.pipeline, reason: request.reason.isEmpty ? "triggered by an operator" : request.reason)
            return .pipelineRun(wire(active[record.id]?.record ?? record))
        case .getDriftReport:
            throw WireError.notFound(what: "drift reports (not built yet)")
        default:
            throw WireError.invalidArgument("not a pipeline request")
        }
    }

    private func info(_ p: PipelineDefinition) -> WirePipelineInfo {
        var info = WirePipelineInfo()
        info.name = p.name
        info.schedule = p.schedule?.expression ?? ""
        // Foundation on Linux names the zone the config calls UTC "GMT"; say what was written.
        info.timeZone = p.timeZone.identifier == "GMT" ? "UTC" : p.timeZone.identifier
        info.steps = p.steps.map(\.name)
        if p.schedule != nil, let wake = wakeAt[p.name] ?? p.schedule?.next(after: now()) {
            info.nextRunMs = Int64(wake.timeIntervalSince1970 * 1000)
        }
        if let last = (try? store.runs(pipeline: p.name, limit: 1))?.first {
            info.lastRunID = last.id
            info.lastState = last.state
        }
        return info
    }

    func wire(_ r: PipelineRunRecord) -> WirePipelineRunInfo {
        var info = WirePipelineRunInfo()
        info.runID = r.id
        info.pipeline = r.pipeline
        info.trigger = r.trigger
        info.state = r.state
        info.scheduledForMs = r.scheduledFor.map { Int64($0.timeIntervalSince1970 * 1000) } ?? 0
        info.startedAtMs = Int64(r.startedAt.timeIntervalSince1970 * 1000)
        info.finishedAtMs = r.finishedAt.map { Int64($0.timeIntervalSince1970 * 1000) } ?? 0
        info.error = r.error ?? ""
        let attempts = active[r.id]?.attempts.values.map { $0 } ?? (try? store.attempts(run: r.id)) ?? []
        info.steps = r.run.steps.indices.map { i in
            let step = r.run.steps[i]
            var s = WirePipelineStepInfo()
            s.name = step.name
            (s.state, s.attempts) = Self.describe(r.run.states[i])
            s.jobID = attempts.filter { $0.step == step.name && $0.jobID != nil }.max { $0.attempt < $1.attempt }?.jobID ?? ""
            s.output = attempts.filter { $0.step == step.name && $0.state == "succeeded" }.max { $0.attempt < $1.attempt }?.output ?? ""
            s.error = r.run.lastErrors[i] ?? ""
            return s
        }
        return info
    }

    static func describe(_ state: PipelineRun.StepState) -> (String, UInt32) {
        switch state {
        case .pending: return ("pending", 0)
        case let .running(attempt, _): return ("running", UInt32(attempt))
        case let .waitingToRetry(next, _): return ("waiting_to_retry", UInt32(next - 1))
        case let .succeeded(n): return ("succeeded", UInt32(n))
        case let .failed(n, _): return ("failed", UInt32(n))
        case let .cancelled(n): return ("cancelled", UInt32(n))
        case .skipped: return ("skipped", 0)
        }
    }
}

/// Runs started and ended, per pipeline, for Prometheus.
struct PipelineMetrics {
    let started: Counter
    let succeeded: Counter
    let failed: Counter

    init(pipeline: String) {
        let dimensions = [("pipeline", pipeline)]
        started = Counter(label: "tower_pipeline_runs_started_total", dimensions: dimensions)
        succeeded = Counter(label: "tower_pipeline_runs_succeeded_total", dimensions: dimensions)
        failed = Counter(label: "tower_pipeline_runs_failed_total", dimensions: dimensions)
    }
}
