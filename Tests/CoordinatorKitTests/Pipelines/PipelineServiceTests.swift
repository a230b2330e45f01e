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
}
}
