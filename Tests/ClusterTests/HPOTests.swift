import Foundation
import NIOPosix
import Testing
import Wire
@testable import CoordinatorKit

/// Distributed hyperparameter search with real worker processes, through to the registry.
extension ProcessClusterSuites {
@Suite(.serialized) struct HPOTests {
    static let weak = """
        model: gbdt
        metric: auc
        sampler: random
        seed: 1
        max_trials: 2
        max_concurrent: 2
        params:
          num_iterations: 3
          num_leaves: 2
          learning_rate: 0.05
          min_data_in_leaf: {int: [5, 6]}
        """
    static let strong = """
        model: gbdt
        metric: auc
        sampler: tpe
        seed: 3
        max_trials: 6
        max_concurrent: 2
        asha: {min_iterations: 5, max_iterations: 40, reduction_factor: 3}
        params:
          num_iterations: 40
          num_leaves: {int: [4, 32]}
          learning_rate: {loguniform: [0.03, 0.3]}
          min_data_in_leaf: {int: [5, 50]}
        """

    func dataset(_ c: ProcessCluster) throws -> Data {
        let dir = c.cluster.directory.appendingPathComponent("market")
        let p = Process()
        p.executableURL = ProcessCluster.binDirectory.appendingPathComponent("coordinator")
        p.arguments = ["demo-data", "--out", dir.path, "--users", "400", "--listings", "250", "--interactions", "12000", "--seed", "5"]
        p.standardOutput = FileHandle.nullDevice
        try p.run()
        p.waitUntilExit()
        return try DatasetArchive.pack(directory: dir)
    }

    func search(_ op: OperatorClient, space: String, data: Data) async throws -> (WireJobSummary, WireHPOSummary) {
        var spec = WireHPOSpec()
        spec.experiment = "search"
        spec.modelName = "match"
        spec.space = space
        spec.dataset = data
        var job = WireJobSpec()
        job.kind = JobKind.hpo
        job.spec = try spec.serializedData()
        let id = try await op.submit(job).jobID
        let end = try await op.follow(id, every: .milliseconds(100)) { _ in }
        return (end, try WireHPOSummary(serializedBytes: end.summary))
    }

    @Test func searchRegistersPromotesOnlyBetterModelsAndRollsBack() async throws {
        let (c, op) = try await ProcessCluster.running(workers: ["w1", "w2"], slots: 1)
        defer { op.close(); c.stopAll() }
        let data = try dataset(c)
        // A gateway-like subscriber hears about every alias move.
        let events = EventBox()
        var hello = WireHello()
        hello.protocolVersion = WireProtocol.version
        hello.role = .operator
        let subscriber = try await WireClient.connect(host: "127.0.0.1", port: c.port, identity: try c.cluster.identity("operator"),
                                                      hello: hello, group: MultiThreadedEventLoopGroup.singleton,
                                                      onMessage: { if case let .promotionEvent(e) = $0.body { events.add(e) } })
        defer { subscriber.close() }
        _ = try await subscriber.request(.subscribe(.with { $0.models = ["match"] }))

        // A bad space is refused at submit, naming the field; nothing is stored.
        let inverted = "model: gbdt\nparams:\n  learning_rate: {loguniform: [0.3, 0.01]}\n"
        let refusal: String
        do { _ = try SearchSpace(yaml: inverted); refusal = "" } catch { refusal = WireError.invalidArgument("search space: \(error)").description }
        do {
            _ = try await search(op, space: inverted, data: data)
            Issue.record("an inverted range was accepted")
        } catch let WireError.remote(code, message) {
            #expect(code == .invalidArgument)
            #expect(message == refusal)
            #expect(message.contains("learning_rate"), "\(message)")
        }
        #expect(try await op.jobs().isEmpty, "a refused search left a job behind")
        #expect(try await op.models().isEmpty, "a refused search registered a model")
        // Nothing recorded: not even the experiment exists.
        do {
            let runs = try await op.runs(experiment: "search")
            Issue.record("a refused search recorded \(runs.count) runs")
        } catch {
            #expect("\(error)" == "not found: \(RegistryError.unknownExperiment("search", known: []))")
        }

        // 1. A weak model becomes the first champion: no champion yet, floors apply.
        let (weakJob, weak) = try await search(op, space: Self.weak, data: data)
        #expect(weakJob.state == .succeeded)
        #expect(weak.version == 1 && weak.promoted)

        // 2. A real search beats it on the same holdout and is promoted.
        let (strongJob, strong) = try await search(op, space: Self.strong, data: data)
        #expect(strongJob.state == .succeeded)
        #expect(strong.trials == 6)
        #expect(strong.version == 2)
        #expect(strong.promoted, "\(strong.reasons)")

        // ASHA stopped weak trials early: their recorded curves end before the last iteration.
        let runs = try await op.runs(experiment: "search", sortBy: "valid_auc").filter { $0.id.hasPrefix(strongJob.jobID) }
        #expect(runs.count == 6)
        let stopped = runs.filter { $0.status == "stopped" }
        #expect(!stopped.isEmpty)
        #expect(stopped.allSatisfy { ($0.curveSteps.max() ?? 40) < 40 })
        let best = try #require(runs.first { $0.id == strong.bestRun })
        #expect(best.status == "finished" && best.curveSteps.max() == 40)
        #expect(best.tags["dataset_sha256"] == BlobStore.sha256Hex(data))
        #expect(Set(runs.compactMap { $0.tags["worker"] }) == ["w1", "w2"])

        // Artifacts come back with the bytes their address promises.
        for name in ["model.tower", "learning-curve.svg", "shap-summary.svg"] {
            let sha = try #require(best.artifacts[name], "missing \(name)")
            let bytes = try await op.blob(sha)
            #expect(BlobStore.sha256Hex(bytes) == sha)
        }

        // A recorded trial re-runs exactly: same data blob, parameters and seed.
        let rerun = try await op.rerun(strong.bestRun)
        #expect(try await op.follow(rerun.jobID, every: .milliseconds(100)) { _ in }.state == .succeeded)
        let again1 = try #require(try await op.runs(experiment: "search").first { $0.tags["rerun_of"] == strong.bestRun })
        #expect(again1.metrics["valid_auc"] == best.metrics["valid_auc"])
        #expect(again1.params == best.params)

        // 3. The same search again is no better: declined, and the record says why.
        let (_, again) = try await search(op, space: Self.strong, data: data)
        #expect(again.version == 3 && !again.promoted)
        let model = try await op.model("match")
        // The declined reason exactly, rebuilt from the recorded numbers ("margin" alone
        // would also match the passing reason).
        let declined = try #require(model.decisions.last)
        let n = declined.numbers
        let expected = "AUC \(PromotionPolicy.signed(n["auc_diff"] ?? .nan)) (95% CI \(PromotionPolicy.signed(n["auc_diff_ci_low"] ?? .nan))…\(PromotionPolicy.signed(n["auc_diff_ci_high"] ?? .nan))): lower bound below the margin 0.0020; the gain is not established"
        #expect(again.reasons.contains(expected), "\(again.reasons)")
        #expect(!again.reasons.contains { $0.contains("≥ margin") }, "\(again.reasons)")
        #expect(model.aliases["champion"] == 2)
        #expect(model.decisions.map(\.promoted) == [true, true, false])

        // 4. Rollback restores the previous champion, recorded like any decision.
        let rolled = try await op.rollback("match", reason: "test")
        #expect(rolled.version == 1)
        #expect(try await op.model("match").aliases["champion"] == 1)
        #expect(try await op.model("match").decisions.last?.action == "rollback")

        // `models show` prints every holdout metric a version has, the ranking ones included
        // (they are stored as holdout_precision@10 and holdout_ndcg@10).
        let show = try await c.runOperatorCommand(["models", "show", "match"])
        #expect(show.status == 0, "\(show.output)")
        let shownLines = show.output.split(separator: "\n").map { $0.split(separator: " ").map(String.init) }
        for v in model.versions {
            for name in ["auc", "logloss", "precision@10", "ndcg@10", "recall@10"] {
                let value = try #require(v.metrics["holdout_" + name], "v\(v.version) has no holdout \(name): \(v.metrics.keys.sorted())")
                #expect(shownLines.contains(["holdout", name, String(format: "%.4f", value)]), "holdout \(name) of v\(v.version) not shown:\n\(show.output)")
            }
        }

        // Subscribers heard each move, with the model file's address.
        try await c.waitUntil("three promotion events") { events.all.count >= 3 }
        #expect(events.all.map(\.version) == [1, 2, 1])
        #expect(events.all.map(\.action) == ["auto", "auto", "rollback"])
        #expect(events.all[1].sha256 == model.versions[1].sha256)
    }

    @Test func killingAWorkerMidTrialRetriesTheTrialElsewhereAndRecordsItOnce() async throws {
        let (c, op) = try await ProcessCluster.running(workers: ["w1", "w2"], slots: 1)
        defer { op.close(); c.stopAll() }
        let data = try dataset(c)
        var spec = WireHPOSpec()
        spec.experiment = "killed"
        spec.modelName = "killed"
        spec.space = """
            model: gbdt
            sampler: random
            seed: 2
            max_trials: 4
            max_concurrent: 2
            params:
              num_iterations: 120
              num_leaves: {int: [8, 16]}
            """
        spec.dataset = data
        var job = WireJobSpec()
        job.kind = JobKind.hpo
        job.spec = try spec.serializedData()
        let id = try await op.submit(job).jobID
        // Kill the moment w1 holds a trial: its lease is then certain to be lost.
        try await c.waitUntil("w1 training a trial") { try await op.workers().first { $0.name == "w1" }?.running ?? 0 > 0 }
        c.kill9(c.workers["w1"])
        let end = try await op.follow(id, every: .milliseconds(100)) { _ in }
        #expect(end.state == .succeeded)
        #expect(end.retries > 0)
        let summary = try WireHPOSummary(serializedBytes: end.summary)
        #expect(summary.trials == 4)
        let rows = try c.storedResults(id)
        #expect(rows.count == 4 && rows.allSatisfy { $0.state == .done && $0.resultCount == 1 }, "\(rows.map { "\($0.index) \($0.state) \($0.attempts) \($0.error ?? "")" })")
        let runs = try await op.runs(experiment: "killed")
        #expect(runs.count == 4)
        #expect(runs.allSatisfy { $0.status == "finished" })
        #expect(rows.filter { $0.attempts > 1 }.allSatisfy { $0.worker == "w2" })
    }
}

    /// Cancelling a search stops its trial within an iteration: the worker's only slot is
    /// free for the next job long before the trial could have finished.
    @Test(.timeLimit(.minutes(2))) func aCancelledTrialStopsTrainingAndFreesItsSlot() async throws {
        let (c, op) = try await ProcessCluster.running(workers: ["w1"], slots: 1)
        defer { op.close(); c.stopAll() }
        var spec = WireHPOSpec()
        spec.space = """
            model: gbdt
            sampler: random
            max_trials: 1
            max_concurrent: 1
            params: {num_iterations: 1000000, learning_rate: 0.001, num_leaves: {int: [30, 31]}}
            """
        spec.dataset = try HPOTests().dataset(c)
        var job = WireJobSpec()
        job.kind = JobKind.hpo
        job.spec = try spec.serializedData()
        let search = try await op.submit(job).jobID
        try await c.waitUntil("the trial to be training") {
            let running = try await op.job(search).running
            return running == 1 && c.log("w1").contains("fetching a blob")
        }
        try await Task.sleep(for: .milliseconds(500))
        let cancelled = try await op.cancel(search)
        #expect(cancelled.state == .cancelled)
        // The slot frees only when the trial's training loop stops.
        let echo = try await c.submitEcho(op, tasks: 1, sleepMs: 0)
        try await c.waitUntil("the next job to run on the freed slot") { try await op.job(echo).state == .succeeded }
        #expect(c.log("w1").contains("tasks cancelled by the coordinator"))
    }
}

final class EventBox: @unchecked Sendable {
    private let lock = NSLock()
    private var events: [WirePromotionEvent] = []
    func add(_ e: WirePromotionEvent) { lock.withLock { events.append(e) } }
    var all: [WirePromotionEvent] { lock.withLock { events } }
}
