import Foundation
import Testing
import Wire
@testable import CoordinatorKit

extension ProcessClusterSuites {
/// What operator commands print, read as a newcomer reads it: runs refused by name when
/// the experiment or metric does not exist, numbers at a readable precision, one
/// numbering of tasks, a state per result row, a finished job's rate from its own times.
@Suite(.serialized, .timeLimit(.minutes(3))) struct OperatorOutputTests {
    /// Three finished runs of experiment `search`, written into the coordinator's own
    /// SQLite file as a search would write them.
    func recordRuns(_ c: ProcessCluster) throws {
        let tracking = TrackingStore(try ClusterStore(path: c.cluster.data.appendingPathComponent("tower.sqlite").path))
        for (run, loss, rows) in [("search-a", 0.52, 9961.0), ("search-b", 0.41, 9961.0), ("search-c", 0.47, 9961.0)] {
            try tracking.startRun(run, experiment: "search", params: ["learning_rate": "0.0921508266702202", "num_leaves": "31", "seed": "7"], tags: [:])
            try tracking.logMetrics(run, [("valid_logloss", 20, loss), ("valid_auc", 20, 1 - loss), ("valid_rows", 20, rows)])
            try tracking.finishRun(run, status: "finished")
        }
    }

    @Test func runsAreListedBestFirstAndUnknownNamesAreRefused() async throws {
        let (c, op) = try await ProcessCluster.running(workers: ["w1"])
        defer { op.close(); c.stopAll() }
        let empty = try await c.runOperatorCommand(["runs", "experiments"])
        #expect(empty.output == "no experiments yet; `coordinator submit hpo …` records one\n")
        try recordRuns(c)

        let byLoss = try await c.runOperatorCommand(["runs", "list", "search", "--sort", "valid_logloss"])
        #expect(byLoss.status == 0, "\(byLoss.output)")
        let lines = byLoss.output.split(separator: "\n").map(String.init)
        #expect(lines.first == "RUN                           STATUS    valid_logloss  STEPS  PARAMS")
        #expect(lines.dropFirst().map { String($0.prefix(8)) } == ["search-b", "search-c", "search-a"])
        #expect(lines.dropFirst().first?.hasSuffix("0.4100         20     learning_rate=0.09215 num_leaves=31") == true, "\(lines)")
        let best = try await c.runOperatorCommand(["runs", "list", "search", "--sort", "valid_logloss", "--limit", "1"])
        #expect(best.output.split(separator: "\n").dropFirst().map { String($0.prefix(8)) } == ["search-b", "1 of 3 r"], "\(best.output)")
        #expect(best.output.hasSuffix("\n1 of 3 runs shown; --limit N shows more (0: all)\n"))
        let compared = try await c.runOperatorCommand(["runs", "list", "search", "--compare", "search-a", "search-b"])
        #expect(compared.output.contains("valid_rows              9961                        9961\n"), "\(compared.output)")

        let unknown = try await c.runOperatorCommand(["runs", "list", "nope"])
        #expect(unknown.status == 1)
        #expect(unknown.output == "error: not found: \(RegistryError.unknownExperiment("nope", known: ["search"]))\n")
        let badSort = try await c.runOperatorCommand(["runs", "list", "search", "--sort", "valid_nothing"])
        #expect(badSort.status == 1)
        #expect(badSort.output == "error: invalid argument: no run of search logged valid_nothing; sort by one of: valid_auc, valid_logloss, valid_rows\n")
        let experiments = try await c.runOperatorCommand(["runs", "experiments"])
        #expect(experiments.output.hasPrefix("EXPERIMENT    RUNS  LATEST RUN\nsearch        3     "), "\(experiments.output)")
    }

    @Test func aFailedTaskHasOneNumberAndEveryResultAState() async throws {
        let (c, op) = try await ProcessCluster.running(workers: ["w1"])
        defer { op.close(); c.stopAll() }
        let job = try await c.submitEcho(op, tasks: 6, sleepMs: 0, maxAttempts: 1, failIndex: 3)
        try await c.waitUntil("the job to end") { try await op.job(job).state.isTerminal }
        let shown = try await c.runOperatorCommand(["job", job])
        let error = try #require(shown.output.split(separator: "\n").first { $0.hasPrefix("  error: ") })
        #expect(error.hasPrefix("  error: task 3 failed after 1 attempt(s): "), "\(shown.output)")
        let results = try await c.runOperatorCommand(["results", job])
        let rows = results.output.split(separator: "\n").map { $0.split(separator: "\t").map(String.init) }
        #expect(rows.first == ["TASK", "STATE", "WORKER", "ATTEMPTS", "OUTPUT", "ERROR"])
        #expect(rows.dropFirst().map { [$0[0], $0[1]] } == (0..<6).map { ["\($0)", $0 == 3 ? "failed" : "succeeded"] })

        // Following a job that already ended reports its own rate and duration.
        let followed = try await c.runOperatorCommand(["job", job, "--follow"])
        #expect(followed.status == 3)
        let bar = try #require(followed.output.split(separator: "\n").first)
        let took = try #require(followed.output.split(separator: "\n").first { $0.hasPrefix("  took ") })
        #expect(bar.hasSuffix("tasks/s  \(took.dropFirst(2))  failed 1"), "\(followed.output)")
        #expect(!followed.output.contains("ETA"))
    }

    /// Piped into a file, `models watch` writes its first lines at once (where each alias
    /// points now), not when the buffer fills.
    @Test func modelsWatchFlushesWhatItSaysFirst() async throws {
        let (c, op) = try await ProcessCluster.running(workers: [])
        defer { op.close(); c.stopAll() }
        let models = ModelRegistry(try ClusterStore(path: c.cluster.data.appendingPathComponent("tower.sqlite").path))
        _ = try models.registerVersion(model: "match", runID: nil, sha256: "aa", metrics: [:])
        _ = try models.decide(model: "match", alias: "champion", version: 1, expected: nil, promoted: true, action: "promote",
                              reasons: ["first champion"], numbers: [:], actor: "test")
        let out = c.cluster.directory.appendingPathComponent("watch.txt")
        let watch = try LocalCluster.spawn(ProcessCluster.binDirectory.appendingPathComponent("coordinator"),
                                           ["models", "watch", "--coordinator", "127.0.0.1:\(c.port)", "--cert", c.cluster.certificate("operator"),
                                            "--key", c.cluster.key("operator"), "--ca", c.cluster.ca], log: out)
        defer { c.kill9(watch) }
        try await c.waitUntil("watch to say what it watches") {
            (try? String(contentsOf: out, encoding: .utf8)) == "watching all models; Ctrl-C to stop\nmatch@champion: v1 (now)\n"
        }
        #expect(watch.isRunning)
    }
}
}
