import Foundation
import GRDB
import Learning
import Logging
import Wire

/// Job kind `hpo`: a hyperparameter search. Each trial is one leased task; the search is
/// adaptive (the sampler proposes the next trial from the results so far), ASHA stops
/// weak trials from the validation metric workers report while training, and when the
/// search ends the best trial is evaluated on the holdout, registered as a new model
/// version and put through the ``PromotionPolicy``.
public struct HPOPlanner: JobPlanner {
    public let descriptor = HPOKind.erased
    public var policy: PromotionPolicy
    public var logger: Logger

    public init(policy: PromotionPolicy = PromotionPolicy(), logger: Logger = Logger(label: "tower.hpo")) {
        self.policy = policy
        self.logger = logger
    }

    /// The spec, parsed and checked; every error names the field.
    struct Checked {
        var spec: WireHPOSpec
        var space: SearchSpace
        var policy: PromotionPolicy
    }

    func check(_ data: Data) throws -> Checked {
        let spec: WireHPOSpec
        do { spec = try WireHPOSpec(serializedBytes: data) }
        catch { throw WireError.invalidArgument("hpo spec is not a valid HPOSpec message: \(error)") }
        let space: SearchSpace
        do { space = try SearchSpace(yaml: spec.space) }
        catch { throw WireError.invalidArgument("search space: \(error)") }
        if spec.dataset.isEmpty {
            guard BlobStore.isValidAddress(spec.datasetSha256) else {
                throw WireError.invalidArgument("hpo.dataset is empty: pass --data DIR with users.csv, listings.csv, interactions.csv")
            }
        } else {
            do {
                if TrainingSetFile.isTrainingSet(spec.dataset) { _ = try TrainingSetFile.decode(spec.dataset) }
                else { _ = try DatasetArchive.unpack(spec.dataset) }
            } catch { throw WireError.invalidArgument("hpo.dataset: \(error)") }
        }
        var policy = self.policy
        if !spec.promotion.isEmpty {
            do { policy = try PromotionPolicy(yaml: spec.promotion) }
            catch { throw WireError.invalidArgument("promotion policy: \(error)") }
        }
        return Checked(spec: spec, space: space, policy: policy)
    }

    public func plan(spec data: Data, context: JobContext) throws -> [PlannedTask] {
        let checked = try check(data)
        let blobs = context.blobs
        let dataset: String
        if checked.spec.dataset.isEmpty {
            guard blobs.contains(checked.spec.datasetSha256) else {
                throw WireError.notFound(what: "data set blob \(checked.spec.datasetSha256) (was the coordinator's data directory replaced?)")
            }
            dataset = checked.spec.datasetSha256
        } else {
            dataset = try blobs.put(checked.spec.dataset)
        }
        // The first wave, drawn by the same state machine the controller runs (it draws
        // the same wave again from the same seed).
        var search = HyperparameterSearch(space: checked.space)
        var wave: [(number: Int, parameters: TrialParameters)] = []
        while let trial = search.nextTrial(elapsedSeconds: 0) { wave.append((trial.number, trial.parameters)) }
        guard let first = wave.first else { return [] }
        // Featurized and binned once here, so that trials start training at once.
        let prepared: SearchData
        do {
            prepared = try SearchData.prepared(dataset: dataset, model: checked.space.model,
                                               params: checked.space.parameters(for: first.parameters), context: context)
        } catch { throw WireError.invalidArgument("hpo.dataset cannot be prepared for training: \(error)") }
        return try wave.map { trial in
            try HPOController.task(index: trial.number, parameters: trial.parameters, space: checked.space, trialData: prepared.trialBlob)
        }
    }

    public func summarize(spec: Data, results: [TaskResultRow]) throws -> Data { Data() }

    /// A recorded trial again with its data set blob, parameters and seed, as a one-trial
    /// search in the same experiment; the new run is tagged `rerun_of`.
    public func rerun(_ run: RunSummary, runID: String) throws -> WireJobSpec? {
        guard let dataset = run.tags["dataset_sha256"], let kind = run.tags["model_kind"] else {
            throw WireError.invalidArgument("run \(runID) was not recorded by a search (no data set or model kind); only trials can be re-run")
        }
        // Every parameter as recorded; the first as a one-choice categorical, since a
        // search space needs something to "search".
        let fixed = run.params.sorted { $0.key < $1.key }.enumerated().map { i, p in
            i == 0 ? "  \(p.key): {categorical: [\"\(p.value)\"]}" : "  \(p.key): \"\(p.value)\""
        }.joined(separator: "\n")
        var spec = WireHPOSpec()
        spec.experiment = run.experiment
        spec.modelName = "rerun"
        spec.datasetSha256 = dataset
        spec.rerunOf = runID
        spec.space = "model: \(kind)\nmetric: \(run.tags["metric"] ?? "auc")\nsampler: random\nmax_trials: 1\nmax_concurrent: 1\nparams:\n\(fixed)\n"
        var job = WireJobSpec()
        job.kind = HPOKind.name
        job.name = "rerun \(runID)"
        job.spec = try spec.serializedData()
        return job
    }

    public func controller(for job: JobRow, existing: [TaskResultRow], context: JobContext) throws -> (any JobController)? {
        let checked = try check(job.spec)
        return try HPOController(job: job, checked: checked, existing: existing, context: context, logger: logger)
    }
}

/// The I/O shell around one running search's state machine (``HyperparameterSearch``:
/// sampler, limits, ASHA, the trials so far): it turns the machine's trial plans into
/// tasks and tracked runs, and results into the machine's inputs. Lives on the core's
/// event loop; advisory progress writes go to a serial queue so they keep their order
/// without blocking the loop.
final class HPOController: JobController {
    let job: JobRow
    let space: SearchSpace
    let policy: PromotionPolicy
    let experiment: String
    let modelName: String
    /// The data set's address, as runs record it (a re-run starts from it).
    let dataset: String
    /// What the trials train on, prepared once from `dataset`; its holdout and validation
    /// rows serve the end of the search.
    let prepared: SearchData
    let rerunOf: String
    let context: JobContext
    let logger: Logger
    private var search: HyperparameterSearch
    private let startedAt = Date()
    private let trackingQueue = DispatchQueue(label: "tower.hpo.tracking")
    private let code = GitInfo.current

    var metricKey: String { MetricName.valid(space.metric.metricName) }

    /// A search grows a wave at a time up to max_trials.
    var plannedTotal: Int { space.maxTrials }

    init(job: JobRow, checked: HPOPlanner.Checked, existing: [TaskResultRow], context: JobContext, logger: Logger) throws {
        self.job = job
        self.space = checked.space
        self.policy = checked.policy
        self.experiment = checked.spec.experiment.isEmpty ? "search" : checked.spec.experiment
        self.modelName = checked.spec.modelName.isEmpty ? "match" : checked.spec.modelName
        self.dataset = checked.spec.dataset.isEmpty ? checked.spec.datasetSha256 : BlobStore.sha256Hex(checked.spec.dataset)
        self.rerunOf = checked.spec.rerunOf
        self.context = context
        self.logger = logger
        self.search = HyperparameterSearch(space: checked.space)
        // The planner drew the first wave from the same seed; drawing it again leaves this
        // machine's sampler where the planner's stopped.
        var first: TrialParameters?
        while let trial = search.nextTrial(elapsedSeconds: 0) { first = first ?? trial.parameters }
        // The planner's preparation, from the cache (or the same bytes again after a restart).
        self.prepared = try SearchData.prepared(dataset: dataset, model: checked.space.model,
                                                params: first.map { checked.space.parameters(for: $0) } ?? [:], context: context)
        // A resumed search: rebuild the trials and their ends from what was stored.
        let inputs = existing.isEmpty ? [:] : ((try? context.store.taskInputs(job: job.id)) ?? [:])
        for row in existing.sorted(by: { $0.index < $1.index }) {
            if let input = try? WireTrialInput(serializedBytes: inputs[row.index] ?? Data()) {
                search.resume(trial: row.index, parameters: space.trialParameters(fromSettings: input.params))
            }
            if row.state == .done, let out = try? WireTrialOutput(serializedBytes: row.output ?? Data()) {
                search.finish(trial: row.index, value: out.metrics[metricKey], outcome: out.stoppedEarly ? .stopped : .completed)
            } else if row.state == .failed {
                search.fail(trial: row.index, error: row.error ?? "failed")
            }
        }
        let wave = min(space.maxConcurrent, space.maxTrials)
        // Runs are written before their tasks can run; a resumed search re-records every
        // trial whose run does not match its stored result (a store from before results
        // and runs were written together).
        try context.store.pool.write { db in
            if existing.isEmpty {
                for index in 0..<wave { try self.startRunRecord(index)?(db) }
                return
            }
            for row in existing {
                let status = try String.fetchOne(db, sql: "SELECT status FROM run WHERE id = ?", arguments: [self.runID(row.index)])
                switch row.state {
                case .done where status == nil || status == "running":
                    if status == nil { try self.startRunRecord(row.index)?(db) }
                    if let out = try? WireTrialOutput(serializedBytes: row.output ?? Data()) { try self.finishRecord(row.index, out)(db) }
                case .failed where status == nil || status == "running":
                    if status == nil { try self.startRunRecord(row.index)?(db) }
                    try TrackingStore.finishRun(db, self.runID(row.index), status: "failed", error: row.error)
                case .queued where status == nil:
                    try self.startRunRecord(row.index)?(db)
                default:
                    break
                }
            }
        }
    }

    /// `trialData`: the blob the trial trains on (``SearchData/trialBlob``). No trial
    /// computes the SHAP summary: only the registered winner needs one, and the
    /// coordinator computes it for the winner alone when the search ends.
    static func task(index: Int, parameters: TrialParameters, space: SearchSpace, trialData: String) throws -> PlannedTask {
        var input = WireTrialInput()
        input.trial = UInt32(index)
        input.datasetSha256 = trialData
        input.modelKind = space.model.rawValue
        input.params = space.parameters(for: parameters)
        input.reportEvery = UInt32(max(1, space.asha.map { min($0.minIterations, 10) } ?? 10))
        input.metric = space.metric.rawValue
        return PlannedTask(input: try input.serializedData(), blobs: [trialData])
    }

    func runID(_ index: Int) -> String { "\(job.id)-t\(index)" }

    /// The write that starts trial `index`'s run, or nil if the trial is unknown.
    private func startRunRecord(_ index: Int) -> (@Sendable (Database) throws -> Void)? {
        guard let parameters = search.parameters(of: index) else { return nil }
        let params = space.parameters(for: parameters)
        var tags = ["job": job.id, "dataset_sha256": dataset, "seed": params["seed"] ?? String(space.seed &+ UInt64(index)),
                    "git_commit": code.commit, "git_dirty": code.dirty ? "true" : "false", "binary": WireProtocol.binaryVersion,
                    "sampler": space.sampler.rawValue, "model_kind": space.model.rawValue, "metric": space.metric.rawValue]
        if !rerunOf.isEmpty { tags["rerun_of"] = rerunOf }
        let id = runID(index), experiment = self.experiment, jobID = job.id, finalTags = tags
        return { db in try TrackingStore.startRun(db, id, experiment: experiment, jobID: jobID, taskIndex: index, params: params, tags: finalTags) }
    }

    /// The writes that finish trial `index`'s run from its output.
    private func finishRecord(_ index: Int, _ out: WireTrialOutput) -> @Sendable (Database) throws -> Void {
        let blobs = context.blobs, id = runID(index)
        return { db in
            try TrackingStore.logMetrics(db, id, out.metrics.map { (key: $0.key, step: Int(out.iterations), value: $0.value) })
            var tags = ["worker": out.worker, "duration_seconds": String(format: "%.3f", out.seconds), "iterations": "\(out.iterations)"]
            if out.stoppedEarly { tags["stopped_early"] = "true" }
            try TrackingStore.setTags(db, id, tags)
            for (name, bytes) in [("model.tower", out.modelFile), ("learning-curve.svg", out.learningCurveSvg), ("shap-summary.svg", out.shapSummarySvg)] where !bytes.isEmpty {
                try TrackingStore.addArtifact(db, id, name: name, sha256: try blobs.put(bytes), size: bytes.count)
            }
            try TrackingStore.finishRun(db, id, status: out.stoppedEarly ? "stopped" : "finished")
        }
    }

    /// One write of several records, in order.
    private static func together(_ records: [(@Sendable (Database) throws -> Void)?]) -> (@Sendable (Database) throws -> Void)? {
        let records = records.compactMap { $0 }
        guard !records.isEmpty else { return nil }
        return { db in for record in records { try record(db) } }
    }

    // MARK: JobController

    func progress(index: Int, step: Int, metrics: [String: Double]) -> Bool {
        let tracking = context.tracking, id = runID(index)
        trackingQueue.async {
            try? tracking.logMetrics(id, metrics.map { (key: $0.key, step: step, value: $0.value) })
        }
        guard space.asha != nil, let value = metrics[metricKey] else { return true }
        let decision = search.report(trial: index, iteration: step, value: value)
        if case let .stop(reason) = decision {
            logger.info("ASHA stops a trial", metadata: ["run": "\(id)", "iteration": "\(step)", "reason": "\(reason)"])
            trackingQueue.async { try? tracking.setTags(id, ["asha": reason]) }
            return false
        }
        return true
    }

    /// A trial's output must decode, and say how it ended; anything else is refused.
    func validate(output: Data) throws {
        let out: WireTrialOutput
        do { out = try WireTrialOutput(serializedBytes: output) }
        catch { throw WireError.malformedFrame(reason: "a \(output.count)-byte trial output is not a TrialOutput (\(error))") }
        guard out.stoppedEarly || out.metrics[metricKey] != nil || !out.modelFile.isEmpty else {
            throw WireError.invalidArgument("the trial output has neither \(metricKey) nor a model file")
        }
    }

    func completed(index: Int, output: Data) -> JobDirective {
        // validate(output:) accepted it, so it decodes.
        let out = (try? WireTrialOutput(serializedBytes: output)) ?? WireTrialOutput()
        search.finish(trial: index, value: out.metrics[metricKey], outcome: out.stoppedEarly ? .stopped : .completed)
        let (tasks, starts) = nextTrials()
        return JobDirective(tasks: tasks, record: Self.together([finishRecord(index, out)] + starts))
    }

    func failed(index: Int, error: String) -> JobDirective {
        search.fail(trial: index, error: error)
        let id = runID(index)
        let (tasks, starts) = nextTrials()
        return JobDirective(tasks: tasks, record: Self.together([{ db in try TrackingStore.finishRun(db, id, status: "failed", error: error) }] + starts))
    }

    /// Keeps `max_concurrent` trials running until `max_trials` or the time budget.
    private func nextTrials() -> (tasks: [PlannedTask], runs: [(@Sendable (Database) throws -> Void)?]) {
        var tasks: [PlannedTask] = []
        var runs: [(@Sendable (Database) throws -> Void)?] = []
        while let trial = search.nextTrial(elapsedSeconds: Date().timeIntervalSince(startedAt)) {
            guard let task = try? Self.task(index: trial.number, parameters: trial.parameters, space: space,
                                            trialData: prepared.trialBlob) else { break }
            tasks.append(task)
            runs.append(startRunRecord(trial.number))
        }
        return (tasks, runs)
    }

    // MARK: The end of the search

    func finish(results: [TaskResultRow]) throws -> Data {
        trackingQueue.sync {}
        var summary = WireHPOSummary()
        summary.modelName = modelName
        var best: (index: Int, value: Double, output: WireTrialOutput)?
        for row in results {
            guard row.state == .done, let out = try? WireTrialOutput(serializedBytes: row.output ?? Data()) else {
                if row.state == .failed { summary.failed += 1 }
                continue
            }
            summary.trials += 1
            if out.stoppedEarly { summary.stoppedEarly += 1; continue }
            guard let value = out.metrics[metricKey], value.isFinite else { continue }
            if best == nil || space.metric.isBetter(value, than: best!.value) { best = (row.index, value, out) }
        }
        guard let best else {
            summary.reasons = ["no trial finished with a finite \(metricKey); nothing to register"]
            return try summary.serializedData()
        }
        summary.bestRun = runID(best.index)
        summary.bestMetrics = best.output.metrics
        if !rerunOf.isEmpty {
            // A re-run reproduces a trial; it is compared, not registered.
            summary.reasons = ["re-run of \(rerunOf): nothing registered"]
            return try summary.serializedData()
        }
        let decision = try evaluateAndPromote(best.output, run: runID(best.index))
        do { try recordSHAPSummary(best.output, run: runID(best.index)) }
        catch { logger.warning("no SHAP summary for the winner", metadata: ["run": "\(runID(best.index))", "error": "\(error)"]) }
        summary.version = UInt32(decision.version)
        summary.promoted = decision.promoted
        summary.reasons = decision.reasons
        return try summary.serializedData()
    }

    /// The winner goes the one way every candidate goes (``PromotionService``).
    func evaluateAndPromote(_ winner: WireTrialOutput, run: String) throws -> (version: Int, promoted: Bool, reasons: [String]) {
        let service = PromotionService(registry: context.registry, blobs: context.blobs, logger: logger)
        let candidate = PromotionService.Candidate(model: modelName, modelFile: winner.modelFile, runID: run, metrics: winner.metrics,
                                                   source: job.id, description: "best of \(job.id) by \(metricKey)")
        let outcome = try service.consider(candidate, holdout: try holdoutData(), policy: policy)
        return (outcome.version, outcome.promoted, outcome.reasons)
    }

    /// The holdout: the test window of the search's own data set.
    func holdoutData() throws -> Dataset {
        guard let test = prepared.test else {
            throw WireError.invalidArgument("the data set has no holdout window")
        }
        return test
    }

    /// The winner's SHAP summary on the validation rows (as trials computed it before:
    /// up to 500 rows), on every core here, as an artifact of the winner's run.
    func recordSHAPSummary(_ winner: WireTrialOutput, run: String) throws {
        guard winner.shapSummarySvg.isEmpty, let valid = prepared.valid,
              case let .gradientBoosted(model) = try ModelFile.decode(winner.modelFile) else { return }
        let shap = try TreeSHAP.meanAbsolute(model, data: valid, maxRows: 500)
        let svg = Data(Plots.shapSummary(featureNames: model.schema.names, meanAbsoluteSHAP: shap).rendered.utf8)
        try context.tracking.addArtifact(run, name: "shap-summary.svg", sha256: try context.blobs.put(svg), size: svg.count)
    }

}

/// The commit of the code the coordinator runs, for run tags: `TOWER_GIT_COMMIT` when set
/// (packaged builds), else git in the working directory.
struct GitInfo {
    var commit: String
    var dirty: Bool

    static let current: GitInfo = {
        if let commit = ProcessInfo.processInfo.environment["TOWER_GIT_COMMIT"] { return GitInfo(commit: commit, dirty: false) }
        func git(_ args: [String]) -> String? {
            let p = Process()
            p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
            p.arguments = ["git"] + args
            let out = Pipe()
            p.standardOutput = out
            p.standardError = FileHandle.nullDevice
            guard (try? p.run()) != nil else { return nil }
            p.waitUntilExit()
            guard p.terminationStatus == 0 else { return nil }
            return String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        }
        guard let commit = git(["rev-parse", "HEAD"]) else { return GitInfo(commit: "unknown", dirty: false) }
        return GitInfo(commit: commit, dirty: !(git(["status", "--porcelain"]) ?? "").isEmpty)
    }()
}
