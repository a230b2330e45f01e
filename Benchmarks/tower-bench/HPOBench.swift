import ArgumentParser
import CoordinatorKit
import Foundation
import Learning
import Logging
import NIOPosix
import Wire

/// A TPE search over the same space as Benchmarks/hpo/optuna_peer.py, on a real
/// coordinator with worker processes (one trial at a time each). Writes the featurized
/// train/valid/test CSVs the peer reads.
struct HPOBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "hpo", abstract: "Distributed TPE search (peer: Optuna + LightGBM, Benchmarks/hpo/run.sh).")
    @Option var interactions = 200_000
    @Option var trials = 20
    @Option var workers = 2
    @Option var out = "Benchmarks/results/hpo"
    @Flag(help: "Also stop weak trials with ASHA (Optuna runs without pruning).") var asha = false
    @Flag(name: .customLong("no-peer-files"), help: "Skip writing the featurized CSVs the Optuna peer reads (scale runs).") var noPeerFiles = false
    @Option(help: "Boosting rounds per trial.") var iterations = 200
    @Option(help: "The sampler's seed (the peer's --seed), to tell a search's luck from a systematic gap.") var seed: UInt64 = 7

    static func space(trials: Int, workers: Int, asha: Bool, iterations: Int = 200, seed: UInt64 = 7) -> String {
        """
        model: gbdt
        metric: auc
        sampler: tpe
        seed: \(seed)
        max_trials: \(trials)
        max_concurrent: \(workers)
        \(asha ? "asha: {min_iterations: 20, max_iterations: 200, reduction_factor: 3}" : "")
        params:
          num_iterations: \(iterations)
          max_bin: 255
          num_leaves: {int: [8, 128], log: true}
          learning_rate: {loguniform: [0.02, 0.3]}
          min_data_in_leaf: {int: [5, 100]}
          feature_fraction: {uniform: [0.5, 1.0]}
          bagging_fraction: {uniform: [0.5, 1.0]}
          bagging_freq: 1
          lambda_l2: {loguniform: [0.001, 10]}
        """
    }

    func run() async throws {
        let outDir = URL(fileURLWithPath: out)
        let market = outDir.appendingPathComponent("market")
        let users = max(500, interactions / 50), listings = max(300, interactions / 40)
        try DemoMarket(DemoMarket.Configuration(users: users, listings: listings, interactions: interactions, seed: 42)).generate().write(to: market)
        if !noPeerFiles {
            let prepared = try LearningWorkflow.prepare(.market(directory: market))
            try prepared.train.writeCSV(to: outDir.appendingPathComponent("train.csv"))
            try prepared.valid?.writeCSV(to: outDir.appendingPathComponent("valid.csv"))
            try prepared.test?.writeCSV(to: outDir.appendingPathComponent("test.csv"))
        }
        // From here this process is the coordinator: its peak memory is counted afresh.
        PeakMemory.resetOwn()

        let bench = try await BenchCluster.start(prefix: "tower-hpo-bench", workers: workers)
        defer { bench.remove() }
        let (service, op) = (bench.service, bench.op)

        var spec = WireHPOSpec()
        spec.experiment = "bench"
        spec.modelName = "bench"
        spec.space = Self.space(trials: trials, workers: workers, asha: asha, iterations: iterations, seed: seed)
        spec.dataset = try DatasetArchive.pack(directory: market)
        var job = WireJobSpec()
        job.kind = JobKind.hpo
        job.spec = try spec.serializedData()
        let started = DispatchTime.now()
        let id = try await op.submit(job).jobID
        var line = ProgressLine()
        let end = try await op.follow(id, every: .milliseconds(50)) { s in FileHandle.standardError.write(Data("\r\(line.render(s))".utf8)) }
        let wall = Double(DispatchTime.now().uptimeNanoseconds - started.uptimeNanoseconds) / 1e9
        FileHandle.standardError.write(Data("\n".utf8))
        let summary = try WireHPOSummary(serializedBytes: end.summary)
        let version = try await op.model("bench").versions.last
        let workerPeaks = bench.processes.map { PeakMemory.megabytes(pid: $0.processIdentifier) }
        let coordinatorPeak = PeakMemory.megabytes(pid: getpid())
        op.close()
        await service.shutdown()
        let valid = summary.bestMetrics[MetricName.valid(MetricName.auc)] ?? .nan
        let test = version?.metrics[MetricName.holdout(MetricName.auc)] ?? .nan
        print(String(format: "RESULT side=tower trials=%d workers=%d wall=%.3f best_valid_auc=%.5f test_auc=%.5f stopped_early=%d coordinator_peak_mb=%.1f worker_peak_mb=%@",
                     summary.trials, workers, wall, valid, test, summary.stoppedEarly, coordinatorPeak ?? .nan,
                     workerPeaks.map { $0.map { String(format: "%.1f", $0) } ?? "?" }.joined(separator: ",")))
    }
}

/// Peak resident memory (VmHWM) from /proc.
enum PeakMemory {
    static func megabytes(pid: Int32) -> Double? {
        guard let text = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8),
              let line = text.split(separator: "\n").first(where: { $0.hasPrefix("VmHWM:") }),
              let kb = Double(line.split(separator: " ").dropFirst().first ?? "") else { return nil }
        return kb / 1024
    }

    /// Starts counting this process's peak afresh (Linux: "5" to clear_refs).
    static func resetOwn() {
        try? "5".write(toFile: "/proc/self/clear_refs", atomically: false, encoding: .utf8)
    }
}
