import Foundation
import Learning
import Testing
import Wire
@testable import CoordinatorKit

/// The search's coordinator-side logic without sockets: trials added as results arrive,
/// failed trials recorded with their error, ASHA answering progress reports.
@Suite struct HPOControllerTests {
    func setUp(space: String) throws -> (HPOController, [PlannedTask], TrackingStore) {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("tower-hpo-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        let store = try ClusterStore(path: dir.appendingPathComponent("t.sqlite").path)
        let blobs = try BlobStore(root: dir.appendingPathComponent("blobs"))
        let tracking = TrackingStore(store)
        var spec = WireHPOSpec()
        spec.experiment = "exp"
        spec.space = space
        // A real (small) market: the planner featurizes and bins it once for every trial.
        let market = dir.appendingPathComponent("market")
        try DemoMarket(.init(users: 200, listings: 150, interactions: 3_000, seed: 2)).generate().write(to: market)
        spec.dataset = try DatasetArchive.pack(directory: market)
        let job = JobRow(id: "j", kind: JobKind.hpo, name: "s", spec: try spec.serializedData(), state: .queued, total: 0, maxAttempts: 3,
                         createdAt: Date(), finishedAt: nil, error: nil, summary: nil, submittedBy: "op")
        let planner = HPOPlanner()
        let context = JobContext(store: store, blobs: blobs, tracking: tracking, registry: ModelRegistry(store), dataDirectory: dir)
        let first = try planner.plan(spec: job.spec, context: context)
        let controller = try #require(try planner.controller(for: job, existing: [], context: context) as? HPOController)
        return (controller, first, tracking)
    }

    @Test func aFailedTrialIsRecordedWithItsErrorAndTheSearchGoesOn() throws {
        let (controller, first, tracking) = try setUp(space: """
            model: gbdt
            sampler: random
            seed: 1
            max_trials: 4
            max_concurrent: 2
            params: {num_leaves: {int: [4, 16]}}
            """)
        #expect(first.count == 2)
        let directive = controller.failed(index: 0, error: "training diverged")
        // What the core writes with the failure, in the same transaction.
        try tracking.pool.write { db in try directive.record?(db) }
        let next = directive.tasks
        #expect(next.count == 1)
        #expect(try WireTrialInput(serializedBytes: next[0].input).trial == 2)
        _ = try controller.finish(results: [])  // waits for the tracking writes
        let run = try tracking.run("j-t0")
        #expect(run.status == "failed")
        #expect(run.error == "training diverged")
        #expect(try tracking.run("j-t2").status == "running")
        // Once max_trials are planned, no more come.
        _ = controller.failed(index: 1, error: "x")
        #expect(controller.failed(index: 2, error: "x").tasks.isEmpty)
    }

    @Test func ashaStopsATrialBehindTheBestAtARung() throws {
        let (controller, _, tracking) = try setUp(space: """
            model: gbdt
            sampler: random
            seed: 1
            max_trials: 2
            max_concurrent: 2
            asha: {min_iterations: 10, max_iterations: 90, reduction_factor: 2}
            params: {num_iterations: 90, num_leaves: {int: [4, 16]}}
            """)
        // η = 2: the second value at the rung is past the grace and is judged.
        #expect(controller.progress(index: 0, step: 10, metrics: ["valid_auc": 0.80]))
        #expect(!controller.progress(index: 1, step: 10, metrics: ["valid_auc": 0.70]))
        #expect(controller.progress(index: 0, step: 20, metrics: ["valid_auc": 0.81]))
        _ = try controller.finish(results: [])
        #expect(try tracking.curve("j-t0", metric: "valid_auc").map(\.step) == [10, 20])
        #expect(try tracking.run("j-t1").tags["asha"] != nil)
    }

    /// A trial output that does not decode, or says nothing of how the trial went, is
    /// refused instead of counting as an empty success.
    @Test func aMalformedTrialOutputIsRefused() throws {
        let (controller, _, _) = try setUp(space: """
            model: gbdt
            sampler: random
            seed: 1
            max_trials: 2
            max_concurrent: 2
            params: {num_leaves: {int: [4, 16]}}
            """)
        #expect(throws: WireError.self) { try controller.validate(output: Data([0xFF, 0xFF, 0xFF])) }
        do {
            try controller.validate(output: try WireTrialOutput().serializedData())
            Issue.record("an empty trial output was accepted")
        } catch let error as WireError {
            #expect("\(error)" == "invalid argument: the trial output has neither valid_auc nor a model file")
        }
        var good = WireTrialOutput()
        good.metrics = ["valid_auc": 0.8]
        try controller.validate(output: try good.serializedData())
    }

    /// A trial's run is finished in the same write as its result: applying the directive
    /// records metrics and status; nothing is left "running" for a finished trial.
    @Test func aCompletedTrialsRunIsWrittenWithItsResult() throws {
        let (controller, _, tracking) = try setUp(space: """
            model: gbdt
            sampler: random
            seed: 1
            max_trials: 3
            max_concurrent: 2
            params: {num_leaves: {int: [4, 16]}}
            """)
        #expect(try tracking.run("j-t0").status == "running")
        var out = WireTrialOutput()
        out.metrics = ["valid_auc": 0.81]
        out.iterations = 40
        out.worker = "w1"
        let directive = controller.completed(index: 0, output: try out.serializedData())
        #expect(directive.tasks.count == 1)
        try tracking.pool.write { db in try directive.record?(db) }
        let run = try tracking.run("j-t0")
        #expect(run.status == "finished")
        #expect(run.metrics["valid_auc"] == 0.81)
        #expect(run.tags["worker"] == "w1")
        // The next trial's run was started by the same write.
        #expect(try tracking.run("j-t2").status == "running")
    }
}
