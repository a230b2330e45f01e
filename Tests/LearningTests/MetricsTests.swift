import Foundation
import Testing
@testable import Learning

@Suite struct MetricsTests {
    @Test func aucWithoutTies() {
        // Positives at 0.8, 0.4; negatives at 0.6, 0.2: pairs (0.8>0.6 ✓, 0.8>0.2 ✓, 0.4<0.6 ✗, 0.4>0.2 ✓) = 3/4.
        #expect(Metrics.auc(scores: [0.8, 0.6, 0.4, 0.2], labels: [1, 0, 1, 0]) == 0.75)
    }

    @Test func aucCountsTiesAsHalf() {
        // Positive 0.5 ties with negative 0.5 (½), beats 0.1 (1); positive 0.9 beats both (2): 3.5/4.
        #expect(Metrics.auc(scores: [0.5, 0.5, 0.9, 0.1], labels: [1, 0, 1, 0]) == 0.875)
        // All scores equal: exactly 0.5.
        #expect(Metrics.auc(scores: [1, 1, 1, 1, 1], labels: [1, 0, 0, 1, 0]) == 0.5)
    }

    @Test func aucIsNaNForOneClass() {
        #expect(Metrics.auc(scores: [0.1, 0.2], labels: [1, 1]).isNaN)
    }

    @Test func logLossAndBrierByHand() {
        let p = [0.9, 0.2, 0.6], y: [Float] = [1, 0, 0]
        let expected = -(log(0.9) + log(0.8) + log(0.4)) / 3
        #expect(abs(Metrics.logLoss(probabilities: p, labels: y) - expected) < 1e-12)
        let brier = (0.01 + 0.04 + 0.36) / 3
        #expect(abs(Metrics.brier(probabilities: p, labels: y) - brier) < 1e-12)
        // A certain mistake is clipped, not infinite.
        #expect(Metrics.logLoss(probabilities: [0], labels: [1]).isFinite)
    }

    @Test func rankingMetricsPerGroupByHand() {
        // Group 1: scores 0.9(0) 0.8(1) 0.7(0) 0.6(1) → top-2 hits 1: P@2 = 0.5, R@2 = 0.5,
        //   DCG = 1/log2(3), IDCG = 1 + 1/log2(3).
        // Group 2: scores 0.3(1) 0.2(0) → P@2 = 0.5, R@2 = 1, NDCG = 1.
        // Group 3: no positives → ignored.
        let scores = [0.9, 0.8, 0.7, 0.6, 0.3, 0.2, 0.5, 0.4]
        let labels: [Float] = [0, 1, 0, 1, 1, 0, 0, 0]
        let groups = [1, 1, 1, 1, 2, 2, 3, 3]
        let r = Metrics.ranking(scores: scores, labels: labels, groups: groups, k: 2)
        #expect(r.groupsEvaluated == 2)
        #expect(abs(r.precision - 0.5) < 1e-12)
        #expect(abs(r.recall - 0.75) < 1e-12)
        let ndcg1 = (1 / log2(3.0)) / (1 + 1 / log2(3.0))
        #expect(abs(r.ndcg - (ndcg1 + 1) / 2) < 1e-12)
    }

    @Test func precisionUsesGroupSizeWhenSmallerThanK() {
        // One user shown 3 listings, 2 positive, both ranked top: P@10 = 2/3 (not 2/10).
        let r = Metrics.ranking(scores: [0.9, 0.8, 0.1], labels: [1, 1, 0], groups: [7, 7, 7], k: 10)
        #expect(abs(r.precision - 2.0 / 3.0) < 1e-12)
        #expect(r.recall == 1 && r.ndcg == 1)
    }

    @Test func rankingTiesFollowRowOrder() {
        // Tied scores: the earlier row ranks first, so the positive at row 1 misses P@1.
        let r = Metrics.ranking(scores: [0.5, 0.5], labels: [0, 1], groups: [1, 1], k: 1)
        #expect(r.precision == 0)
    }

    @Test func reportCarriesAllMetrics() {
        let report = EvaluationReport(probabilities: [0.9, 0.1, 0.8, 0.3], labels: [1, 0, 1, 0], groups: [1, 1, 2, 2], k: 10)
        #expect(report.auc == 1)
        #expect(report.ranking?.precision == 0.5)
        #expect(report.dictionary["ndcg@10"] == 1)
        #expect(report.summary.contains("AUC 1.0000"))
    }
}
