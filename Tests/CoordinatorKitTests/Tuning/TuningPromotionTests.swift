import Foundation
import Learning
import Testing
@testable import CoordinatorKit

@Suite struct TuningPromotionTests {
    /// A synthetic holdout: `users` users with `perUser` candidate listings each; a row's
    /// latent relevance z decides its label; a model scores sigmoid(z + noise · ε), so less
    /// noise is a better model. Regions are "r0" … "r7" by user, price bands by row.
    struct World {
        var z: [Double] = []
        var labels: [Float] = []
        var groups: [Int] = []
        var regions: [String?] = []
        var bands: [String?] = []
        var eps: [Double] = []

        init(users: Int = 300, perUser: Int = 20, seed: UInt64 = 11) {
            var rng = TuningRandom(seed: seed)
            for u in 0..<users {
                for r in 0..<perUser {
                    let zi = rng.gaussian()
                    let p = 1 / (1 + exp(-(2 * zi - 1.5)))
                    z.append(zi)
                    labels.append(rng.unit() < p ? 1 : 0)
                    groups.append(1000 + u * 7)
                    regions.append("r\(u % 8)")
                    bands.append(r % 2 == 0 ? "low" : "high")
                    eps.append(rng.gaussian())
                }
            }
        }

        /// Predictions with `noise`; rows where `broken` is true get scores unrelated to z.
        func model(noise: Double, seed: UInt64, broken: (Int) -> Bool = { _ in false }) throws -> HoldoutPredictions {
            var rng = TuningRandom(seed: seed)
            var p: [Double] = []
            for i in z.indices {
                let e = rng.gaussian()
                let s = broken(i) ? 3 * e : z[i] + noise * e
                p.append(1 / (1 + exp(-(s - 1.5))))
            }
            return try HoldoutPredictions(probabilities: p, labels: labels, groups: groups,
                                          segments: ["region": regions, "price_band": bands])
        }
    }

    static func policy(_ edit: (inout PromotionPolicy) -> Void = { _ in }) -> PromotionPolicy {
        var p = PromotionPolicy()
        p.bootstrapSamples = 200
        p.minHoldoutRows = 1000
        p.seed = 5
        edit(&p)
        return p
    }

    @Test func clearlyBetterCandidateIsPromoted() throws {
        let w = World()
        let champion = try w.model(noise: 1.5, seed: 1)
        let candidate = try w.model(noise: 0.4, seed: 2)
        let d = Self.policy().decide(candidate: candidate, champion: champion)
        #expect(d.promoted, "\(d.reasons)")
        #expect(d.reasons.contains { $0.hasPrefix("AUC +") && $0.contains("95% CI") && $0.contains("≥ margin 0.0020") }, "\(d.reasons)")
        let low = try #require(d.numbers["auc_diff_ci_low"]), high = try #require(d.numbers["auc_diff_ci_high"])
        let diff = try #require(d.numbers["auc_diff"])
        #expect(low > 0.002 && low <= diff && diff <= high)
        #expect(d.numbers["precision_at_10_diff_ci_low"] != nil)
        #expect(d.numbers["bootstrap_samples_used"] == 200)
    }

    @Test func equalCandidateIsRefusedWithTheReason() throws {
        let w = World()
        let champion = try w.model(noise: 1.0, seed: 1)
        let d = Self.policy().decide(candidate: champion, champion: champion)
        #expect(!d.promoted)
        #expect(d.numbers["auc_diff"] == 0)
        // "margin" also appears in the passing reason, so match the declined one exactly.
        #expect(d.reasons.contains("AUC +0.0000 (95% CI +0.0000…+0.0000): lower bound below the margin 0.0020; the gain is not established"), "\(d.reasons)")
        #expect(!d.reasons.contains { $0.contains("≥ margin") }, "\(d.reasons)")
    }

    @Test func worseCandidateIsRefused() throws {
        let w = World()
        let champion = try w.model(noise: 0.5, seed: 1)
        let candidate = try w.model(noise: 1.5, seed: 2)
        let d = Self.policy().decide(candidate: candidate, champion: champion)
        #expect(!d.promoted)
        #expect(try #require(d.numbers["auc_diff_ci_high"]) < 0)
        #expect(d.reasons.contains { $0.hasPrefix("AUC -") && $0.contains("lower bound below the margin") }, "\(d.reasons)")
        #expect(d.reasons.contains { $0.contains("guardrail Precision@10") && $0.contains("more than the tolerance") }, "\(d.reasons)")
        #expect(d.reasons.contains { $0.contains("guardrail NDCG@10") && $0.contains("more than the tolerance") }, "\(d.reasons)")
        #expect(try #require(d.numbers["precision_at_10_diff_ci_high"]) < 0)
    }

    @Test func candidateLosingASegmentBadlyIsRefusedNamingIt() throws {
        let w = World()
        let champion = try w.model(noise: 1.0, seed: 1)
        // Much better everywhere except region r3, where its scores are noise.
        let candidate = try w.model(noise: 0.2, seed: 2) { w.regions[$0] == "r3" }
        let d = Self.policy { $0.guardrails = [:] }.decide(candidate: candidate, champion: champion)
        #expect(try #require(d.numbers["auc_diff_ci_low"]) >= 0.002, "wins on average: \(d.reasons)")
        #expect(!d.promoted)
        #expect(d.reasons.contains { $0.hasPrefix("segment region=r3: AUC") && $0.contains("worse than the tolerance 0.0200") }, "\(d.reasons)")
        #expect(!d.reasons.contains { $0.hasPrefix("segment region=r2") })
        #expect(try #require(d.numbers["segment.region=r3.candidate_auc"]) < (try #require(d.numbers["segment.region=r3.champion_auc"])))
        // Restricting the checked dimensions to price band lets it through.
        let onlyBands = Self.policy { $0.guardrails = [:]; $0.segments = ["price_band"] }.decide(candidate: candidate, champion: champion)
        #expect(onlyBands.promoted, "\(onlyBands.reasons)")
    }

    @Test func tooFewRowsIsRefused() throws {
        let w = World(users: 40)
        // 40 users × 20 rows = 800 rows.
        let d = Self.policy().decide(candidate: try w.model(noise: 0.2, seed: 2), champion: try w.model(noise: 2, seed: 1))
        #expect(!d.promoted)
        #expect(d.reasons.contains { $0.contains("holdout has 800 rows, fewer than the minimum 1000") }, "\(d.reasons)")
    }

    @Test func withoutAChampionFloorsApply() throws {
        let w = World()
        let good = Self.policy().decide(candidate: try w.model(noise: 0.5, seed: 2), champion: nil)
        #expect(good.promoted, "\(good.reasons)")
        #expect(good.reasons.contains { $0.hasPrefix("no champion: AUC") && $0.contains("≥ floor 0.6000") })
        let useless = try w.model(noise: 0, seed: 3) { _ in true }
        let bad = Self.policy().decide(candidate: useless, champion: nil)
        #expect(!bad.promoted)
        #expect(bad.reasons.contains { $0.hasPrefix("no champion: AUC") && $0.contains("below the floor 0.6000") }, "\(bad.reasons)")
        let ceiling = Self.policy { $0.floors = ["logloss": 0.01] }.decide(candidate: try w.model(noise: 0.5, seed: 2), champion: nil)
        #expect(!ceiling.promoted && ceiling.reasons.contains { $0.contains("log-loss") && $0.contains("above the ceiling") })
    }

    @Test func decisionsAreDeterministicForASeed() throws {
        let w = World()
        let champion = try w.model(noise: 1.0, seed: 1)
        let candidate = try w.model(noise: 0.9, seed: 2)
        let a = Self.policy().decide(candidate: candidate, champion: champion)
        let b = Self.policy().decide(candidate: candidate, champion: champion)
        #expect(a == b)
        let other = Self.policy { $0.seed = 6 }.decide(candidate: candidate, champion: champion)
        #expect(other.numbers["auc_diff"] == a.numbers["auc_diff"])
        #expect(other.numbers["auc_diff_ci_low"] != a.numbers["auc_diff_ci_low"], "the seed drives the resampling")
    }

    @Test func differentHoldoutsAreRefused() throws {
        let w = World(), v = World(seed: 12)
        let d = Self.policy().decide(candidate: try w.model(noise: 0.2, seed: 2), champion: try v.model(noise: 2, seed: 1))
        #expect(!d.promoted && d.reasons.contains { $0.contains("not scored on the same holdout") })
    }

    @Test func bootstrapStatisticsMatchTheLearningLibraryWithUnitWeights() throws {
        // Coarse scores make many ties, which both must count one half.
        let w = World(users: 60)
        let m = try w.model(noise: 1, seed: 4)
        let scores = m.probabilities.map { ($0 * 20).rounded() / 20 }
        var userIndex: [Int: Int32] = [:], rowsOfUser: [[Int]] = []
        let userOfRow = m.groups.enumerated().map { i, g -> Int32 in
            if let u = userIndex[g] { rowsOfUser[Int(u)].append(i); return u }
            userIndex[g] = Int32(rowsOfUser.count); rowsOfUser.append([i]); return Int32(rowsOfUser.count - 1)
        }
        let view = BootstrapModelView(scores: scores, labels: m.labels, userOfRow: userOfRow, rowsOfUser: rowsOfUser, k: 10)
        let ones = [Double](repeating: 1, count: rowsOfUser.count)
        let auc = ones.withUnsafeBufferPointer { view.weightedAUC($0) }
        #expect(abs(auc - Metrics.auc(scores: scores, labels: m.labels)) < 1e-12)
        let ranking = Metrics.ranking(scores: scores, labels: m.labels, groups: m.groups, k: 10)
        let withPositive = rowsOfUser.indices.filter { u in rowsOfUser[u].contains { m.labels[$0] > 0.5 } }
        let precision = withPositive.map { view.precision[$0] }.reduce(0, +) / Double(withPositive.count)
        let ndcg = withPositive.map { view.ndcg[$0] }.reduce(0, +) / Double(withPositive.count)
        #expect(abs(precision - ranking.precision) < 1e-12 && abs(ndcg - ranking.ndcg) < 1e-12)
        // Weight 2 on one user equals duplicating its rows.
        var twice = ones; twice[0] = 2
        let weighted = twice.withUnsafeBufferPointer { view.weightedAUC($0) }
        let dup = rowsOfUser[0]
        #expect(abs(weighted - Metrics.auc(scores: scores + dup.map { scores[$0] }, labels: m.labels + dup.map { m.labels[$0] })) < 1e-12)
    }

    @Test func policyReadsItsConfigKeys() throws {
        let p = try PromotionPolicy(yaml: """
            margin: 0.005
            confidence: 0.9
            bootstrap_samples: 500
            min_holdout_rows: 20000
            guardrails: {precision_at_10: 0.02, ndcg_at_10: 0.01, logloss: 0.005}
            segment_tolerance: 0.03
            min_segment_rows: 300
            segments: [region, price_band]
            floors: {auc: 0.65, logloss: 0.5}
            seed: 9
            """)
        #expect(p.margin == 0.005 && p.confidence == 0.9 && p.bootstrapSamples == 500 && p.minHoldoutRows == 20000)
        #expect(p.guardrails == ["precision_at_10": 0.02, "ndcg_at_10": 0.01, "logloss": 0.005])
        #expect(p.segmentTolerance == 0.03 && p.minSegmentRows == 300 && p.segments == ["region", "price_band"])
        #expect(p.floors == ["auc": 0.65, "logloss": 0.5] && p.seed == 9)
        #expect(try PromotionPolicy(yaml: "margin: 0.01").bootstrapSamples == 1000, "missing keys keep defaults")
    }

    static let badPolicies: [(String, String)] = [
        ("margn: 0.01", "promotion.margn: unknown key"),
        ("confidence: 1.5", "promotion.confidence: '1.5' is invalid"),
        ("bootstrap_samples: 10", "promotion.bootstrap_samples: '10' is invalid"),
        ("guardrails: {recall_at_10: 0.1}", "promotion.guardrails.recall_at_10: unknown key. Known keys here: precision_at_10, ndcg_at_10, logloss"),
        ("floors: {auc: -1}", "promotion.floors.auc: '-1.0' is invalid"),
        ("margin: -0.1", "promotion.margin: '-0.1' is invalid"),
        ("margin: lots", "promotion.margin: expected a number."),
        ("guardrails: [precision_at_10]", "promotion.guardrails: expected a mapping of metric name → number."),
    ]

    @Test(arguments: badPolicies)
    func refusesBadPoliciesNamingTheField(text: String, message: String) {
        do {
            _ = try PromotionPolicy(yaml: text)
            Issue.record("accepted \(text)")
        } catch let e as PromotionPolicyError {
            #expect(e.description.hasPrefix(message), "\(e.description)")
        } catch {
            Issue.record("untyped error \(error)")
        }
    }

    @Test func holdoutInputIsValidated() {
        #expect(throws: HoldoutError.lengthMismatch(field: "labels", count: 1, expected: 2)) {
            try HoldoutPredictions(probabilities: [0.1, 0.2], labels: [1], groups: [1, 1])
        }
        #expect(throws: HoldoutError.invalidProbability(row: 1, value: 2.5)) {
            try HoldoutPredictions(probabilities: [0.1, 2.5], labels: [1, 0], groups: [1, 1])
        }
        #expect(throws: HoldoutError.invalidLabel(row: 0, value: 0.5)) {
            try HoldoutPredictions(rows: [.init(probability: 0.1, label: 0.5, group: 1)])
        }
    }
}

@Suite struct TuningPromotionEdgeTests {
    @Test func oneClassHoldoutIsRefused() throws {
        let rows = (0..<1500).map { HoldoutPredictions.Row(probability: Double($0 % 10) / 10, label: 0, group: $0 / 10) }
        let h = try HoldoutPredictions(rows: rows)
        let d = TuningPromotionTests.policy().decide(candidate: h, champion: h)
        #expect(!d.promoted && d.reasons.contains { $0.contains("only negative labels") }, "\(d.reasons)")
    }

    @Test func decisionsAndTrialsEncodeAsJSON() throws {
        let d = PromotionDecision(promoted: false, reasons: ["x"], numbers: ["a": 1, "b": .nan])
        #expect(d.numbers == ["a": 1], "NaN is not recorded")
        let data = try JSONEncoder().encode(d)
        #expect(try JSONDecoder().decode(PromotionDecision.self, from: data) == d)
        let t = TrialParameters(["num_leaves": .int(31), "learning_rate": .double(0.05), "early_stopping_metric": .string("auc")])
        let json = String(decoding: try JSONEncoder().encode(t), as: UTF8.self)
        #expect(json.contains("\"num_leaves\":31") && !json.contains("values"))
        #expect(try JSONDecoder().decode(TrialParameters.self, from: Data(json.utf8)) == t)
    }
}
