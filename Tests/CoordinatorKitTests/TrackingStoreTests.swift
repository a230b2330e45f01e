import Foundation
import GRDB
import Testing
@testable import CoordinatorKit

@Suite struct TrackingStoreTests {
    func stores() throws -> (ClusterStore, TrackingStore, String, ModelRegistry) {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("tower-track-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        let path = dir.appendingPathComponent("t.sqlite").path
        let cluster = try ClusterStore(path: path)
        return (cluster, TrackingStore(cluster), path, ModelRegistry(cluster))
    }

    @Test func runsKeepParamsCurvesTagsAndArtifacts() throws {
        let (_, t, _, r) = try stores()
        try t.startRun("r1", experiment: "search", jobID: "j", taskIndex: 0, params: ["num_leaves": "31"], tags: ["seed": "7"])
        try t.logMetrics("r1", [("valid_auc", 1, 0.70), ("valid_auc", 2, 0.75), ("valid_auc", 3, 0.78)])
        try t.logMetrics("r1", [("valid_auc", 3, 0.79)])  // a retried step replaces, never duplicates
        try t.addArtifact("r1", name: "model", sha256: String(repeating: "a", count: 64), size: 10)
        try t.finishRun("r1", status: "finished")
        try t.startRun("r2", experiment: "search", params: ["num_leaves": "8"], tags: [:])
        try t.logMetrics("r2", [("valid_auc", 1, 0.81)])
        try t.finishRun("r2", status: "finished")
        #expect(try t.curve("r1", metric: "valid_auc").map(\.value) == [0.70, 0.75, 0.79])
        let runs = try t.runs(experiment: "search", sortBy: "valid_auc")
        #expect(runs.map(\.id) == ["r2", "r1"])
        #expect(runs[1].params == ["num_leaves": "31"])
        #expect(runs[1].tags["seed"] == "7")
        #expect(runs[1].metrics["valid_auc"] == 0.79)
        #expect(runs[1].artifacts["model"]?.count == 64)
        #expect(throws: RegistryError.unknownRun("nope")) { try t.finishRun("nope", status: "failed") }
    }

    /// Ranking reads one index (run_metric_latest), so its answers must equal the
    /// definition: the last step's value, best first, ties and runs without the metric in
    /// start order, at most `limit`.
    @Test func rankedPagesFollowTheLastStepAndTheLimit() throws {
        let (_, t, _, _) = try stores()
        let finals: [(String, Double?)] = [("a", 0.70), ("b", 0.90), ("c", nil), ("d", 0.80), ("e", 0.90), ("f", 0.60)]
        for (id, auc) in finals {
            try t.startRun(id, experiment: "search", params: [:], tags: [:])
            try t.logMetrics(id, [("valid_logloss", 1, 0.5)])
            if let auc { try t.logMetrics(id, [("valid_auc", 1, 0.99), ("valid_auc", 2, auc)]) }
        }
        try t.logMetrics("f", [("valid_auc", 1, 0.95)])  // an earlier step logged late does not count
        try t.startRun("other", experiment: "elsewhere", params: [:], tags: [:])
        try t.logMetrics("other", [("valid_auc", 1, 1.0)])
        #expect(try t.runs(experiment: "search", sortBy: "valid_auc").map(\.id) == ["b", "e", "d", "a", "f", "c"])
        #expect(try t.runs(experiment: "search", sortBy: "valid_auc", limit: 3).map(\.id) == ["b", "e", "d"])
        #expect(try t.runs(experiment: "search", sortBy: "valid_auc", ascending: true, limit: 6).map(\.id) == ["f", "a", "d", "b", "e", "c"])
        #expect(try t.runs(experiment: "search", sortBy: "valid_auc", limit: 3).map { $0.metrics["valid_auc"] } == [0.90, 0.90, 0.80])
        #expect(try t.runs(experiment: "search", limit: 2).map(\.id) == ["e", "f"], "unsorted: the most recent, oldest first")
        #expect(try t.runs(experiment: "search", ids: ["d", "other", "a"]).map(\.id) == ["d", "a"])
        #expect(try t.runCount(experiment: "search") == 6)
        #expect(try t.hasMetric("valid_auc", experiment: "search"))
        #expect(try !t.hasMetric("valid_acu", experiment: "search"))
        #expect(try t.metricKeys(experiment: "search") == ["valid_auc", "valid_logloss"])
    }

    /// A store made before the ranking table gets it filled from the curves it has.
    @Test func theRankingTableIsFilledFromExistingCurves() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("tower-track-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let path = dir.appendingPathComponent("old.sqlite").path
        do {
            let pool = try DatabasePool(path: path)
            try ClusterStore.migrator.migrate(pool, upTo: "v6-short-publication")
            try pool.write { db in
                try db.execute(sql: "INSERT INTO experiment (id, name, created_at) VALUES (1, 'search', 0)")
                for (id, start) in [("old-1", 1.0), ("old-2", 2.0)] {
                    try db.execute(sql: "INSERT INTO run (id, experiment_id, status, started_at) VALUES (?, 1, 'finished', ?)", arguments: [id, start])
                }
                for (id, step, value) in [("old-1", 1, 0.9), ("old-1", 2, 0.7), ("old-2", 1, 0.8)] {
                    try db.execute(sql: "INSERT INTO run_metric VALUES (?, 'valid_auc', ?, ?, 0)", arguments: [id, step, value])
                }
            }
        }
        let t = TrackingStore(try ClusterStore(path: path))
        #expect(try t.runs(experiment: "search", sortBy: "valid_auc").map { "\($0.id)=\($0.metrics["valid_auc"]!)" } == ["old-2=0.8", "old-1=0.7"])
    }

    @Test func versionsCountUpAndPromotionMovesTheAliasWithARecord() throws {
        let (_, t, _, r) = try stores()
        let v1 = try r.registerVersion(model: "match", runID: "r1", sha256: "x", metrics: ["auc": 0.8])
        let v2 = try r.registerVersion(model: "match", runID: "r2", sha256: "y", metrics: ["auc": 0.82])
        #expect((v1, v2) == (1, 2))
        try r.decide(model: "match", alias: "champion", version: 1, expected: nil, promoted: true, action: "auto", reasons: ["first"], numbers: ["auc": 0.8], actor: "policy")
        try r.decide(model: "match", alias: "champion", version: 2, expected: 1, promoted: false, action: "auto", reasons: ["not better"], numbers: [:], actor: "policy")
        #expect(try r.alias("match", "champion") == 1)
        try r.decide(model: "match", alias: "champion", version: 2, expected: 1, promoted: true, action: "manual", reasons: ["operator"], numbers: [:], actor: "alice")
        #expect(try r.alias("match", "champion") == 2)
        let decisions = try r.decisions(model: "match")
        #expect(decisions.map(\.promoted) == [true, false, true])
        #expect(decisions[1].reasons == ["not better"])
        #expect(decisions[2].previousVersion == 1)
    }

    @Test func twoPromotionsRacingForOneAliasCannotBothWin() async throws {
        let (_, t, _, r) = try stores()
        for _ in 1...3 { _ = try r.registerVersion(model: "m", runID: nil, sha256: "s", metrics: [:]) }
        try r.decide(model: "m", alias: "champion", version: 1, expected: nil, promoted: true, action: "auto", reasons: [], numbers: [:], actor: "p")
        // Both decided against version 1; only one may move the alias.
        let results = await withTaskGroup(of: (Int, Result<PromotionRecord, RegistryError>).self) { group in
            for v in [2, 3] {
                group.addTask {
                    (v, Result { try r.decide(model: "m", alias: "champion", version: v, expected: 1, promoted: true, action: "auto", reasons: [], numbers: [:], actor: "p") }
                        .mapError { $0 as? RegistryError ?? .unknownRun("unexpected \($0)") })
                }
            }
            return await group.reduce(into: [(Int, Result<PromotionRecord, RegistryError>)]()) { $0.append($1) }
        }
        let winners = results.filter { if case .success = $0.1 { return true } else { return false } }
        #expect(winners.count == 1)
        let winner = try #require(try r.alias("m", "champion"))
        #expect(winners.first?.0 == winner)
        let losers = results.filter { $0.0 != winner }
        #expect(losers.count == 1)
        if case let .failure(error)? = losers.first?.1 {
            #expect(error == .aliasMoved(model: "m", alias: "champion", expected: 1, actual: winner))
        } else {
            Issue.record("the loser did not fail: \(losers)")
        }
        // Only the winner's decision is recorded as a promotion.
        #expect(try r.decisions(model: "m").filter(\.promoted).map(\.version) == [1, winner])
    }

    @Test func rollbackRestoresThePreviousChampionAndSurvivesRestart() throws {
        let (_, t, path, r) = try stores()
        for _ in 1...2 { _ = try r.registerVersion(model: "m", runID: nil, sha256: "s", metrics: [:]) }
        #expect(throws: RegistryError.nothingToRollBack(model: "m", alias: "champion")) { try r.rollback(model: "m", actor: "a", reason: "x") }
        try r.decide(model: "m", alias: "champion", version: 1, expected: nil, promoted: true, action: "auto", reasons: [], numbers: [:], actor: "p")
        try r.decide(model: "m", alias: "champion", version: 2, expected: 1, promoted: true, action: "auto", reasons: [], numbers: [:], actor: "p")
        let record = try r.rollback(model: "m", actor: "alice", reason: "bad clicks")
        #expect(record.version == 1 && record.action == "rollback")
        // Reopen the same file: the registry and the audit trail are still there.
        let reopened = ModelRegistry(try ClusterStore(path: path))
        #expect(try reopened.alias("m", "champion") == 1)
        #expect(try reopened.decisions(model: "m").count == 3)
        #expect(try ClusterStore(path: path).auditLog().contains { $0.subject == "m@champion" && $0.detail.contains("bad clicks") })
        #expect(throws: RegistryError.unknownVersion(model: "m", version: 9)) {
            try reopened.decide(model: "m", alias: "champion", version: 9, expected: 1, promoted: true, action: "manual", reasons: [], numbers: [:], actor: "a")
        }
    }

    /// The end of a search is idempotent: registering again for the same job (a coordinator
    /// that crashed after registering, or after deciding, and resumed the job) returns the
    /// version it has, and the decision already recorded is found instead of made twice.
    @Test func aJobRegistersOneVersionWhateverPointACrashInterruptedItAt() throws {
        let (_, t, _, r) = try stores()
        let sha = String(repeating: "b", count: 64)
        let first = try r.registerVersion(model: "match", runID: "j-t1", sha256: sha, metrics: ["holdout_auc": 0.8], sourceJob: "j")
        // Crash after registering: the resumed job registers again.
        #expect(try r.registerVersion(model: "match", runID: "j-t1", sha256: sha, metrics: ["holdout_auc": 0.8], sourceJob: "j") == first)
        #expect(try r.decision(model: "match", version: first, actor: "policy:j") == nil)
        _ = try r.decide(model: "match", alias: "champion", version: first, expected: nil, promoted: true, action: "auto",
                         reasons: ["floors met"], numbers: [:], actor: "policy:j")
        // Crash after deciding: the decision is found, not made again.
        #expect(try r.registerVersion(model: "match", runID: "j-t1", sha256: sha, metrics: [:], sourceJob: "j") == first)
        let recorded = try #require(try r.decision(model: "match", version: first, actor: "policy:j"))
        #expect(recorded.promoted && recorded.reasons == ["floors met"])
        #expect(try r.models().first { $0.name == "match" }?.versions == 1)
        #expect(try r.decisions(model: "match").count == 1)
        // Another job gets its own version.
        #expect(try r.registerVersion(model: "match", runID: "k-t0", sha256: sha, metrics: [:], sourceJob: "k") == first + 1)
    }
}
