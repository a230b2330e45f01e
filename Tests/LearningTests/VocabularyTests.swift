import Foundation
import Testing
@testable import Learning

/// The learning library's one table of parameter names, its metric names, and the
/// objective as a part of its own.
@Suite struct VocabularyTests {
    /// A value every parameter accepts in its own terms, to exercise the parsers.
    static let sample: [String: String] = [
        "c": "4", "num_iterations": "7", "learning_rate": "0.05", "num_leaves": "15", "max_depth": "6",
        "min_data_in_leaf": "9", "min_sum_hessian_in_leaf": "0.5", "lambda_l2": "0.25", "min_gain_to_split": "0.1",
        "feature_fraction": "0.8", "bagging_fraction": "0.7", "bagging_freq": "3", "max_bin": "63", "min_data_in_bin": "5",
        "early_stopping_round": "5", "early_stopping_metric": "auc", "seed": "42", "num_threads": "2",
    ]

    @Test func everyNameIsListedOnce() {
        let names = LearningParameter.all.flatMap(\.names)
        #expect(Set(names).count == names.count, "a name or alias appears twice: \(names)")
        #expect(Set(Self.sample.keys) == Set(LearningParameter.all.map(\.name)), "give each parameter a sample value")
        #expect(LearningParameter.all.allSatisfy { !$0.models.isEmpty })
    }

    @Test func everyParameterOfAFamilyHasASetter() {
        #expect(Set(ModelFamily.gbdt.knownParameters(searchableOnly: false)) == Set(BoostingParameters.setters.keys))
        #expect(Set(ModelFamily.logistic.knownParameters(searchableOnly: false)) == Set(LogisticParameters.setters.keys))
    }

    @Test func everyAliasSetsWhatItsCanonicalNameSets() throws {
        for parameter in LearningParameter.all {
            let value = try #require(Self.sample[parameter.name])
            for alias in parameter.aliases {
                if parameter.models.contains(.gbdt) {
                    #expect(try BoostingParameters(parsing: "\(alias)=\(value)") == BoostingParameters(parsing: "\(parameter.name)=\(value)"), "\(alias)")
                }
                if parameter.models.contains(.logistic) {
                    #expect(try LogisticParameters(parsing: "\(alias)=\(value)") == LogisticParameters(parsing: "\(parameter.name)=\(value)"), "\(alias)")
                }
            }
            // Each sample really changes something, so the comparison above means something.
            if parameter.models.contains(.gbdt) { #expect(try BoostingParameters(parsing: "\(parameter.name)=\(value)") != BoostingParameters() || parameter.name == "seed") }
        }
    }

    @Test func aFamilyRefusesTheOtherFamilysParameters() {
        #expect(throws: ParameterError.unknownKey("num_leaves", known: ["c", "lambda_l2", "seed", "num_threads"])) {
            try LogisticParameters(parsing: "num_leaves=3")
        }
        #expect(throws: ParameterError.self) { try BoostingParameters(parsing: "C=1") }
        #expect(ModelFamily.logistic.canonicalName("C") == "c")
        #expect(ModelFamily.gbdt.canonicalName("C") == nil)
        #expect(ModelFamily.gbdt.canonicalName("n_jobs") == nil, "threads are not a hyperparameter")
        #expect(ModelFamily.gbdt.knownParameters.first == "num_iterations")
    }

    @Test func logisticCIsTheInverseOfTheL2Penalty() throws {
        #expect(try LogisticParameters(parsing: "C=4").lambdaL2 == 0.25)
        #expect(throws: ParameterError.invalidValue(key: "C", value: "0", expected: "a positive number (C is the inverse regularization strength)")) {
            try LogisticParameters(parsing: "C=0")
        }
    }

    @Test func evaluationReportsStoreUnderTheSharedNames() {
        let data = Fixtures.mixedData(rows: 400)
        let report = EvaluationReport(probabilities: data.columns[0].map { logistic(Double($0.isNaN ? 0 : $0)) },
                                      labels: data.labels, groups: data.groups, k: 10)
        #expect(Set(report.dictionary.keys) == [MetricName.auc, MetricName.logLoss, MetricName.brier, MetricName.rows,
                                                MetricName.positiveRate, MetricName.precisionAt(10),
                                                MetricName.recallAt(10), MetricName.ndcgAt(10)])
        #expect(MetricName.precisionAt(10) == "precision@10" && MetricName.ndcgAt(10) == "ndcg@10")
        #expect(MetricName.holdout(MetricName.precisionAt(10)) == "holdout_precision@10")
        #expect(MetricName.valid(MetricName.auc) == "valid_auc")
        #expect(MetricName.withPrefix(MetricName.holdoutPrefix, in: ["holdout_auc": 0.7, "valid_auc": 0.8]) == ["auc": 0.7])
        #expect(MetricName.formatted(1200, of: MetricName.rows) == "1200")
        #expect(MetricName.formatted(0.123456, of: MetricName.ndcgAt(10)) == "0.1235")
        #expect(MetricName.formatted(.nan, of: MetricName.auc) == "n/a")
    }

    /// Delegates to binary log-loss and counts how often the booster asks it.
    final class CountingObjective: Objective, @unchecked Sendable {
        let inner = BinaryLogLoss()
        var gradientCalls = 0
        var name: String { inner.name }
        func initialScore(labels: [Float]) -> Double { inner.initialScore(labels: labels) }
        func gradients(scores: UnsafePointer<Double>, labels: UnsafePointer<Float>, count: Int,
                       gradients: UnsafeMutablePointer<Float>, hessians: UnsafeMutablePointer<Float>, threads: Int) {
            gradientCalls += 1
            inner.gradients(scores: scores, labels: labels, count: count, gradients: gradients, hessians: hessians, threads: threads)
        }
    }

    @Test func theBoosterTrainsOnTheObjectiveItIsGiven() throws {
        let data = Fixtures.mixedData(rows: 1500)
        var p = BoostingParameters()
        p.numIterations = 12
        p.baggingFraction = 0.8
        p.baggingFrequency = 1
        p.featureFraction = 0.6
        let counting = CountingObjective()
        let given = try GBDTTrainer.train(data, valid: data, parameters: p, objective: counting)
        let standard = try GBDTTrainer.train(data, valid: data, parameters: p)
        #expect(counting.gradientCalls == 12)
        #expect(given.trees == standard.trees && given.initialScore == standard.initialScore)
        #expect(given.curve == standard.curve)
        #expect(BinaryLogLoss().name == "binary")
    }
}
