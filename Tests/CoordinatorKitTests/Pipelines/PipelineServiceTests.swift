import Foundation
import Logging
import NIOCore
import Testing
import Wire
@testable import CoordinatorKit

/// The pipeline service inside a real in-process coordinator, with real workers running
/// echo jobs as steps. Inside the serialized SecurityTests: its coordinators share the
/// process-wide metrics registry with the metrics test.
extension SecurityTests {
@Suite(.serialized, .timeLimit(.minutes(2))) struct PipelineServiceTests {
    typealias H = HardeningTests

    /// A `job` step submitting an echo job from its protobuf JSON.
    static func echoStep(_ name: String, after: [String] = [], tasks: Int = 2, failIndexPlusOne: Int = 0, retries: Int = 0,
                         maxAttempts: Int? = nil) -> PipelineStep {
        var options = ["kind": "echo", "spec_json": #"{"tasks": \#(tasks), "payloadBytes": 16, "failIndexPlusOne": \#(failIndexPlusOne)}"#]
        if let maxAttempts { options["max_attempts"] = "\(maxAttempts)" }
        return PipelineStep(name: name, kind: "job", retries: retries, retryBackoffSeconds: 0, timeoutSeconds: 60, after: after, options: options)
    }

    static func start(_ pipelines: [PipelineDefinition], retrain: RetrainOnDrift = RetrainOnDrift()) async throws -> InProcessCoordinator {
        try await H.start { s in
            s.pipelines = pipelines
            s.retrainOnDrift = retrain
            s.pipelineTickSeconds = 0.05
        }
    }

    /// Waits (bounded) until the run has ended and returns it as the operator sees it.
    static func finished(_ op: OperatorClient, _ pipeline: String, _ run: String) async throws -> WirePipelineRunInfo {
        var last: WirePipelineRunInfo?
        try await H.waitUntil("run \(run) to end") {
            last = try await op.pipelineRuns(pipeline).first { $0.runID == run }
            return last.map { $0.state != "running" } ?? false
        }
        return last!
    }

    @Test func aTriggeredRunOfTwoStepsSucceedsAndIsListedWithItsJobs() async throws {
        let pipeline = try PipelineDefinition(name: "p", steps: [Self.echoStep("a"), Self.echoStep("b", after: ["a"])])
        let c = try await Self.start([pipeline])
        defer { Task { await c.stop() } }
        let (agent, worker) = try H.runWorker(c, "w1")
        defer { agent.drain(); worker.cancel() }
        let op = try await c.operatorClient()
        defer { op.close() }

        let started = try await op.trigger(pipeline: "p", reason: "a test")
        #expect(started.pipeline == "p")
        #expect(started.trigger == "manual")
        #expect(started.state == "running")
        let run = try await Self.finished(op, "p", started.runID)
        #expect(run.state == "succeeded")
        #expect(run.error == "")
        #expect(run.steps.map(\.name) == ["a", "b"])
        #expect(run.steps.map(\.state) == ["succeeded", "succeeded"])
        #expect(run.steps.map(\.attempts) == [1, 1])
        #expect(run.steps.map(\.error) == ["", ""])
        let jobs = run.steps.map(\.jobID)
        #expect(Set(jobs).count == 2 && !jobs.contains(""))
        // Each job carries its attempt's name, which is how a restart finds it.
        let store = c.service.core.store
        #expect(try jobs.map { try store.job($0)?.name } == ["\(run.runID)/a#1", "\(run.runID)/b#1"])
        #expect(try jobs.map { try store.job($0)?.submittedBy } == ["pipeline:p", "pipeline:p"])
        #expect(try jobs.map { try store.job($0)?.state } == [.succeeded, .succeeded])

        let listed = try await op.pipelines()
        #expect(listed.map(\.name) == ["p"])
        #expect(listed[0].steps == ["a", "b"])
        #expect(listed[0].schedule == "")
        #expect(listed[0].lastRunID == run.runID)
        #expect(listed[0].lastState == "succeeded")
    }

    @Test func aStepWhoseJobAlwaysFailsEndsTheRunFailedAfterItsRetries() async throws {
        let pipeline = try PipelineDefinition(name: "p", steps: [
            Self.echoStep("a", tasks: 1, failIndexPlusOne: 1, retries: 1, maxAttempts: 1), Self.echoStep("b", after: ["a"]),
        ])
        let c = try await Self.start([pipeline])
        defer { Task { await c.stop() } }
        let (agent, worker) = try H.runWorker(c, "w1")
        defer { agent.drain(); worker.cancel() }
        let op = try await c.operatorClient()
        defer { op.close() }

        let run = try await Self.finished(op, "p", try await op.trigger(pipeline: "p", reason: "").runID)
        let attempts = try PipelineStore(c.service.core.store).attempts(run: run.runID)
        #expect(attempts.map(\.step) == ["a", "a"])
        #expect(attempts.map(\.attempt) == [1, 2])
        #expect(attempts.map(\.state) == ["failed", "failed"])
        let jobIDs = attempts.compactMap(\.jobID)
        #expect(jobIDs.count == 2 && jobIDs[0] != jobIDs[1])
        let lastJob = try await op.job(jobIDs[1])
        #expect(lastJob.state == .failed)
        #expect(!lastJob.error.isEmpty)
        let reason = "job \(jobIDs[1]) failed: \(lastJob.error)"
        #expect(attempts[1].error == reason)
        #expect(run.state == "failed")
        #expect(run.error == "step \"a\" failed after 2 attempts: \(reason)")
        #expect(run.steps.map(\.state) == ["failed", "skipped"])
        #expect(run.steps.map(\.attempts) == [2, 0])
        #expect(run.steps.map(\.jobID) == [jobIDs[1], ""])
        #expect(run.steps.map(\.error) == [reason, ""])
    }

    @Test func aManualTriggerBeyondMaxActiveRunsIsRefusedNamingTheRunningRun() async throws {
        // No worker: the first run's job stays queued, so the run stays active.
        let pipeline = try PipelineDefinition(name: "p", maxActiveRuns: 1, steps: [Self.echoStep("a")])
        let c = try await Self.start([pipeline])
        defer { Task { await c.stop() } }
        let service = try #require(c.service.pipelines)
        let first = try service.trigger("p", reason: "first")
        let refusal = "pipeline \"p\" already runs \(first.id) (started \(PipelineService.format(first.startedAt))), its max_active_runs (1); wait for it to end (coordinator pipelines runs p) or raise max_active_runs"
        #expect(throws: WireError.invalidArgument(refusal)) { try service.trigger("p", reason: "second") }
        #expect(throws: WireError.notFound(what: "pipeline \"x\" (configured: p)")) { try service.trigger("x", reason: "") }

        // The operator sees the same refusal over the wire.
        let op = try await c.operatorClient()
        defer { op.close() }
        await #expect(throws: WireError.remote(code: .invalidArgument, message: WireError.invalidArgument(refusal).description)) {
            _ = try await op.trigger(pipeline: "p", reason: "third")
        }
        #expect(try await op.pipelineRuns("p").map(\.runID) == [first.id])
    }

    @Test func driftRetrainingIsDebounced() async throws {
        let pipeline = try PipelineDefinition(name: "retrain", steps: [Self.echoStep("a")])
        let c = try await Self.start([pipeline], retrain: RetrainOnDrift(pipeline: "retrain", debounceHours: 24))
        defer { Task { await c.stop() } }
        let service = try #require(c.service.pipelines)
        #expect(c.service.core.pipelineTrigger as? PipelineService === service)

        let id = try #require(try service.retrainForDrift(reportID: "report-1", jobID: "job-1"))
        #expect(try service.retrainForDrift(reportID: "report-2", jobID: "job-2") == nil)
        let store = PipelineStore(c.service.core.store)
        let run = try #require(try store.run(id))
        #expect(run.trigger == "drift")
        #expect(run.reason == "report-1")
        #expect(try store.driftTriggerCount(outcome: "started") == 1)
        #expect(try store.driftTriggerCount(outcome: "debounced") == 1)
        #expect(try store.runs(pipeline: "retrain", limit: 10).map(\.id) == [id])

        // With no such pipeline configured, drift starts nothing.
        let other = PipelineService(core: c.service.core, pipelines: [], retrainOnDrift: RetrainOnDrift(pipeline: "missing"), logger: Logger(label: "test"))
        #expect(try other.retrainForDrift(reportID: "report-3", jobID: "job-3") == nil)
        #expect(try store.driftTriggerCount(outcome: "no-pipeline") == 1)
    }

    /// A coordinator stopped mid-step resumes the run by re-attaching to the step's job —
    /// found by its recorded id, or by its name when the id never got recorded — and never
    /// submits the attempt again.
    @Test(arguments: [false, true]) func aRestartedServiceReattachesToTheStepsJob(jobIDLost: Bool) async throws {
        let pipeline = try PipelineDefinition(name: "p", steps: [Self.echoStep("a", tasks: 1)])
        let c = try await Self.start([pipeline])
        defer { Task { await c.stop() } }
        let core = c.service.core
        let first = try #require(c.service.pipelines)
        let store = PipelineStore(core.store)
        let run = try first.trigger("p", reason: "")
        try await H.waitUntil("the step's job to be recorded") { try store.attempts(run: run.id).first?.jobID != nil }
        first.stop()
        var row = try #require(try store.attempts(run: run.id).first)
        let job = try #require(row.jobID)
        if jobIDLost {
            // As if the coordinator died between submitting the job and recording its id.
            row.jobID = nil
            row.state = "launching"
            try store.save(attempts: [row])
        }
        #expect(try core.store.jobs().count == 1)

        let second = PipelineService(core: core, pipelines: [pipeline], tickInterval: .milliseconds(50), logger: Logger(label: "test"))
        second.attach()
        try second.start()
        defer { second.stop() }
        let (agent, worker) = try H.runWorker(c, "w1")
        defer { agent.drain(); worker.cancel() }
        try await H.waitUntil("the resumed run to end") { try store.run(run.id)?.state != "running" }

        let ended = try #require(try store.run(run.id))
        #expect(ended.state == "succeeded")
        #expect(try core.store.jobs().map(\.id) == [job])
        let attempts = try store.attempts(run: run.id)
        #expect(attempts.map(\.attempt) == [1])
        #expect(attempts.map(\.jobID) == [job])
        #expect(attempts.map(\.state) == ["succeeded"])
        #expect(ended.run.state(of: "a") == .succeeded(attempts: 1))
    }

    @Test func aScheduledPipelineDownForHoursRunsOnceForTheLatestMissedSlot() async throws {
        let c = try await Self.start([])
        defer { Task { await c.stop() } }
        #expect(c.service.pipelines == nil)
        let utc = TimeZone(identifier: "UTC")!
        let pipeline = try PipelineDefinition(name: "hourly", schedule: try CronSchedule("0 * * * *", timeZone: utc), steps: [Self.echoStep("a")])
        let sevenOClock = Date(timeIntervalSince1970: TimeInterval(1_800_000_000 - 1_800_000_000 % 86_400 + 7 * 3600))
        let now = sevenOClock.addingTimeInterval(3.5 * 3600)
        let store = PipelineStore(c.service.core.store)
        try store.startScheduled([], pipeline: "hourly", lastSlot: sevenOClock, attempts: [])

        let service = PipelineService(core: c.service.core, pipelines: [pipeline], tickInterval: .milliseconds(50),
                                      logger: Logger(label: "test"), now: { now })
        service.attach()
        try service.start()
        defer { service.stop() }
        // Slots 08:00, 09:00 and 10:00 were missed: one run, for 10:00.
        let runs = try store.runs(pipeline: "hourly", limit: 10)
        #expect(runs.map(\.trigger) == ["schedule"])
        #expect(runs.map(\.scheduledFor) == [sevenOClock.addingTimeInterval(3 * 3600)])
        #expect(try store.lastSlot("hourly") == sevenOClock.addingTimeInterval(3 * 3600))
        // Later ticks at the same instant start nothing more.
        try await Task.sleep(for: .milliseconds(300))
        #expect(try store.runs(pipeline: "hourly", limit: 10).count == 1)
        guard case let .pipelineList(list) = try await service.handle(.listPipelines(WireListPipelines())).get() else {
            Issue.record("not a pipeline list")
            return
        }
        #expect(list.pipelines.map(\.schedule) == ["0 * * * *"])
        #expect(list.pipelines.map(\.timeZone) == ["UTC"])
        #expect(list.pipelines.map(\.nextRunMs) == [Int64(sevenOClock.addingTimeInterval(4 * 3600).timeIntervalSince1970 * 1000)])
        #expect(list.pipelines.map(\.lastRunID) == [runs[0].id])
        #expect(list.pipelines.map(\.lastState) == ["running"])
    }

    @Test func stepsSubmitTheirKindsSpecsWithDefaults() async throws {
        let c = try await Self.start([])
        defer { Task { await c.stop() } }
        let steps = [
            PipelineStep(name: "data", kind: "training_set"),
            PipelineStep(name: "search", kind: "hpo", after: ["data"]),
            PipelineStep(name: "score", kind: "score", after: ["search"], options: ["k": "5"]),
            PipelineStep(name: "drift", kind: "drift", after: ["score"], options: ["retrain": "false", "window_hours": "6"]),
        ]
        let pipeline = try PipelineDefinition(name: "retrain", steps: steps)
        let service = PipelineService(core: c.service.core, pipelines: [pipeline], logger: Logger(label: "test"))
        let record = PipelineRunRecord(id: "r", pipeline: "retrain", trigger: "manual", reason: "", scheduledFor: nil, state: "running",
                                       startedAt: Date(), finishedAt: nil, error: nil, run: PipelineRun(pipeline))
        var run = PipelineService.ActiveRun(record: record, attempts: [:])
        #expect(throws: WireError.invalidArgument("step \"search\": step \"data\" has produced no training set (list it in `after:` so it runs first)")) {
            try service.jobSpec(steps[1], in: run)
        }
        run.attempts["data#1"] = StepAttemptRecord(runID: "r", step: "data", attempt: 1, state: "failed", error: "x")
        run.attempts["data#2"] = StepAttemptRecord(runID: "r", step: "data", attempt: 2, state: "succeeded", output: "abc123")
        let hpo = try service.jobSpec(steps[1], in: run)
        #expect(hpo.kind == JobKind.hpo)
        let hpoSpec = try WireHPOSpec(serializedBytes: hpo.spec)
        #expect(hpoSpec.datasetSha256 == "abc123")
        #expect(hpoSpec.experiment == "retrain")
        #expect(hpoSpec.modelName == "match")
        let space = try SearchSpace(yaml: hpoSpec.space)
        #expect(space.maxTrials == 8)
        #expect(space.maxConcurrent == 2)

        let score = try WireScoreSpec(serializedBytes: try service.jobSpec(steps[2], in: run).spec)
        #expect(score.modelName == "match" && score.version == 0 && score.k == 5)
        let drift = try service.jobSpec(steps[3], in: run)
        #expect(drift.kind == DriftKind.name)
        let driftSpec = try WireDriftSpec(serializedBytes: drift.spec)
        #expect(driftSpec.modelName == "match" && driftSpec.windowHours == 6 && driftSpec.retrainOnDrift == false)

        // An hpo step with no training_set step before it cannot get its data.
        let lone = try PipelineDefinition(name: "lone", steps: [PipelineStep(name: "search", kind: "hpo")])
        let loneRun = PipelineService.ActiveRun(record: PipelineRunRecord(id: "l", pipeline: "lone", trigger: "manual", reason: "", scheduledFor: nil,
                                                                          state: "running", startedAt: Date(), finishedAt: nil, error: nil,
                                                                          run: PipelineRun(lone)), attempts: [:])
        #expect(throws: WireError.invalidArgument("step \"search\": an hpo step needs a training_set step before it in the pipeline")) {
            try service.jobSpec(lone.steps[0], in: loneRun)
        }
        #expect(throws: WireError.invalidArgument("step \"score\": with.k is \"0\"; expected a number from 1.0 to 100.0")) {
            try service.jobSpec(PipelineStep(name: "score", kind: "score", options: ["k": "0"]), in: run)
        }
    }
}
}

@Suite struct RetrainOnDriftConfigTests {
    @Test func readsTheSectionWithDefaultsAndRefusesUnknownKeys() throws {
        #expect(try CoordinatorSettings.load(yaml: "listen: 0.0.0.0:7443").retrainOnDrift == RetrainOnDrift(pipeline: "retrain", debounceHours: 24))
        let s = try CoordinatorSettings.load(yaml: "retrain_on_drift: {pipeline: nightly, debounce_hours: 6}")
        #expect(s.retrainOnDrift == RetrainOnDrift(pipeline: "nightly", debounceHours: 6))
        #expect(try CoordinatorSettings.load(yaml: "retrain_on_drift: {debounce_hours: 0}").retrainOnDrift == RetrainOnDrift(pipeline: "retrain", debounceHours: 0))
        #expect(throws: ConfigError.invalid("tower.yaml: retrain_on_drift: unknown key \"debounce\"; known keys: pipeline, debounce_hours")) {
            try CoordinatorSettings.load(yaml: "retrain_on_drift: {debounce: 6}", path: "tower.yaml")
        }
        #expect(throws: ConfigError.invalidValue(key: "retrain_on_drift.debounce_hours", value: "-1.0", expected: "a number of hours from 0 to 8760")) {
            try CoordinatorSettings.load(yaml: "retrain_on_drift: {debounce_hours: -1}")
        }
    }

    /// Deploy/tower.yaml configures the nightly retraining pipeline the README triggers, and
    /// its commented additions (an hourly drift pipeline, retrain_on_drift) load once
    /// uncommented.
    @Test func theSampleInDeployTowerYamlLoads() throws {
        let url = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().deletingLastPathComponent().appendingPathComponent("Deploy/tower.yaml")
        let text = try String(contentsOf: url, encoding: .utf8)
        let active = try CoordinatorSettings.load(yaml: text, path: "Deploy/tower.yaml")
        #expect(active.pipelines.map(\.name) == ["retrain"])
        #expect(active.pipelines[0].steps.map(\.kind) == ["training_set", "hpo", "score"])
        #expect(active.pipelines[0].timeZone.identifier == "Asia/Seoul")
        #expect(active.pipelines[0].schedule?.expression == "0 0 * * *")
        #expect(active.retrainOnDrift == RetrainOnDrift())

        let more = try #require(text.range(of: "# More, uncommented when wanted"))
        let additions = text[more.lowerBound...].split(separator: "\n").compactMap { line -> Substring? in
            line.hasPrefix("#   ") || line.hasPrefix("# retrain_on_drift:") ? line.dropFirst(2) : nil
        }
        let s = try CoordinatorSettings.load(yaml: text.replacingOccurrences(of: "# More, uncommented when wanted", with: additions.joined(separator: "\n") + "\n#"),
                                             path: "Deploy/tower.yaml")
        #expect(s.pipelines.map(\.name) == ["retrain", "drift"])
        #expect(s.pipelines[1].schedule?.expression == "0 * * * *")
        #expect(s.retrainOnDrift == RetrainOnDrift(pipeline: "retrain", debounceHours: 24))
    }
}
