import ArgumentParser
import CoordinatorKit
import Foundation
import GRDB
import Logging
import NIOPosix
import Wire

/// `coordinator runs EXPERIMENT --sort valid_auc` at scale: an experiment of 100,000 stored
/// runs (each with parameters, tags, an artifact and learning curves), asked over TLS as
/// the CLI asks. Tracking servers are known to take minutes at tens of thousands of runs;
/// the target here is an answer in under 100 ms.
struct RunsBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "runs", abstract: "Listing an experiment's runs sorted by a metric, over 100,000 stored runs.")
    @Option(help: "Runs stored in the experiment.") var runs = 100_000
    @Option(help: "Steps of each run's valid_auc and valid_logloss curves.") var steps = 20
    @Option(help: "Repetitions of each query (median, min and max reported).") var repeats = 3

    func run() async throws {
        let cluster = try LocalCluster.temporary(prefix: "tower-runs")
        defer { try? FileManager.default.removeItem(at: cluster.directory) }
        try cluster.issueCertificates(workers: [])
        let settings = cluster.coordinatorSettings()
        try FileManager.default.createDirectory(at: cluster.data, withIntermediateDirectories: true)
        let filled = DispatchTime.now()
        try fill(path: cluster.data.appendingPathComponent("tower.sqlite").path)
        let fillSeconds = Double(DispatchTime.now().uptimeNanoseconds - filled.uptimeNanoseconds) / 1e9
        var logger = Logger(label: "bench")
        logger.logLevel = .error
        let service = try CoordinatorService(settings: settings, logger: logger)
        try await service.start()
        let op = try await OperatorClient.connect(host: "127.0.0.1", port: service.port!, identity: try cluster.identity("operator"), group: MultiThreadedEventLoopGroup.singleton)
        var rows: [[String]] = []
        let queries: [(String, String, Bool, Int)] = [
            ("--sort valid_auc (best 50, with their curves)", "valid_auc", false, 50),
            ("--sort valid_logloss --order asc (best 50)", "valid_logloss", true, 50),
            ("unsorted (the 50 most recent)", "", false, 50),
            ("--sort valid_auc --limit 1000", "valid_auc", false, 1000),
        ]
        for (label, sort, ascending, limit) in queries {
            var times: [Double] = []
            var shown = 0, total: UInt64 = 0
            for _ in 0..<repeats {
                let start = DispatchTime.now()
                let page = try await op.runPage(experiment: "search", sortBy: sort, ascending: ascending, limit: limit)
                times.append(Double(DispatchTime.now().uptimeNanoseconds - start.uptimeNanoseconds) / 1e6)
                shown = page.runs.count
                total = page.total
            }
            rows.append([label, "\(shown) of \(total)", String(format: "%.1f (%.1f–%.1f)", median(times), times.min()!, times.max()!)])
        }
        op.close()
        await service.shutdown()
        printTable("`coordinator runs search …` over \(runs) stored runs (TLS request → answer, median of \(repeats), min–max); filled in \(format(fillSeconds, 1)) s",
                   ["query", "runs", "ms"], rows)
    }

    /// Writes the runs as an HPO job would (startRun, logMetrics, addArtifact, finishRun),
    /// 5,000 per transaction.
    func fill(path: String) throws {
        let store = try ClusterStore(path: path)
        var random = SystemRandomNumberGenerator()
        for batch in stride(from: 0, to: runs, by: 5_000) {
            try store.pool.write { db in
                for i in batch..<min(runs, batch + 5_000) {
                    let id = "job-\(i / 20)-\(i % 20)"
                    let leaves = Int.random(in: 8...128, using: &random)
                    try TrackingStore.startRun(db, id, experiment: "search", jobID: "job-\(i / 20)", taskIndex: i % 20,
                                               params: ["num_leaves": "\(leaves)", "learning_rate": "\(Double.random(in: 0.01...0.3, using: &random))",
                                                        "min_data_in_leaf": "\(Int.random(in: 5...100, using: &random))", "seed": "\(i)"],
                                               tags: ["worker": "w\(i % 8)", "iterations": "\(steps)"])
                    let auc = Double.random(in: 0.6...0.9, using: &random)
                    var values: [(key: String, step: Int, value: Double)] = []
                    for step in 1...steps {
                        let progress = Double(step) / Double(steps)
                        values.append(("valid_auc", step, 0.5 + (auc - 0.5) * progress))
                        values.append(("valid_logloss", step, 0.69 - 0.3 * (auc - 0.5) * progress))
                    }
                    values.append(("train_auc", steps, auc + 0.02))
                    try TrackingStore.logMetrics(db, id, values)
                    try TrackingStore.addArtifact(db, id, name: "model.tower", sha256: String(repeating: "a", count: 64), size: 1000)
                    try TrackingStore.finishRun(db, id, status: "finished")
                }
            }
            FileHandle.standardError.write(Data("\rstored \(min(runs, batch + 5_000)) of \(runs) runs".utf8))
        }
        FileHandle.standardError.write(Data("\n".utf8))
    }
}
