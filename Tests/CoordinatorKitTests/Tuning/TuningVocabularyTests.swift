import Foundation
import Learning
import Testing
@testable import CoordinatorKit

/// The search space and the operator CLI speak the learning library's vocabulary.
@Suite struct TuningVocabularyTests {
    /// A value each parameter accepts, written as YAML.
    static let sample: [String: String] = [
        "c": "4", "num_iterations": "7", "learning_rate": "0.05", "num_leaves": "15", "max_depth": "6",
        "min_data_in_leaf": "9", "min_sum_hessian_in_leaf": "0.5", "lambda_l2": "0.25", "min_gain_to_split": "0.1",
        "feature_fraction": "0.8", "bagging_fraction": "0.7", "bagging_freq": "3", "max_bin": "63", "min_data_in_bin": "5",
        "early_stopping_round": "5", "early_stopping_metric": "auc", "seed": "42",
    ]

    @Test func everyNameTheSearchSpaceAcceptsResolvesAsTheTrainersParseIt() throws {
        for family in ModelFamily.allCases {
            for parameter in LearningParameter.all where parameter.models.contains(family) && parameter.searchable {
                let value = try #require(Self.sample[parameter.name], "no sample for \(parameter.name)")
                for written in parameter.names {
                    let space = try SearchSpace(yaml: "model: \(family.rawValue)\nparams: {\(written): {categorical: [\(value)]}}")
                    #expect(Array(space.params.keys) == [parameter.name], "\(family) \(written)")
                    guard case let .categorical(choices)? = space.params[parameter.name], let drawn = choices.first else {
                        Issue.record("\(written) is not searched"); continue
                    }
                    let settings = space.parameters(for: TrialParameters([parameter.name: drawn]))
                    switch family {
                    case .gbdt:
                        var fromSearch = BoostingParameters()
                        for (k, v) in settings.sorted(by: { $0.key < $1.key }) { try fromSearch.set(k, v) }
                        #expect(fromSearch == (try BoostingParameters(parsing: "\(written)=\(value),seed=\(settings["seed"] ?? "0")")), "gbdt \(written)")
                    case .logistic:
                        var fromSearch = LogisticParameters()
                        for (k, v) in settings.sorted(by: { $0.key < $1.key }) { try fromSearch.set(k, v) }
                        #expect(fromSearch == (try LogisticParameters(parsing: "\(written)=\(value)")), "logistic \(written)")
                    }
                }
            }
        }
    }

    @Test func namesOutsideTheTableAreRefusedWithTheTablesNames() {
        for (family, name) in [(ModelFamily.gbdt, "C"), (.gbdt, "num_threads"), (.logistic, "num_leaves"), (.logistic, "n_jobs")] {
            #expect(throws: SearchSpaceError.unknownParameter(path: "params.\(name)", model: family, known: family.knownParameters)) {
                try SearchSpace(yaml: "model: \(family.rawValue)\nparams: {\(name): {categorical: [1]}}")
            }
        }
        #expect(ModelFamily.logistic.knownParameters == ["c", "lambda_l2", "seed"])
    }

    @Test func theSearchObjectiveIsNamedAsTrainingRecordsIt() {
        #expect(ObjectiveMetric.auc.rawValue == MetricName.auc && ObjectiveMetric.auc.metricName == MetricName.auc)
        #expect(ObjectiveMetric.logloss.rawValue == MetricName.logLoss && ObjectiveMetric.logloss.metricName == MetricName.logLoss)
    }

    @Test func thePromotionPolicysKeysAreTheSharedNamesAsIdentifiers() {
        #expect(PromotionPolicy.floorMetrics == [MetricName.auc, MetricName.precisionAt(10), MetricName.ndcgAt(10), MetricName.logLoss].map(MetricName.identifier))
        #expect(PromotionPolicy.floorMetrics == ["auc", "precision_at_10", "ndcg_at_10", "logloss"], "tower.yaml keys must not change")
    }

    @Test func modelsShowListsEveryHoldoutMetricSorted() {
        // What HPOPlanner registers: the holdout report under holdout_, plus the trial's own metrics.
        let report = ["auc": 0.81234, "logloss": 0.2, "brier": 0.05, "rows": 1200, "positive_rate": 0.07,
                      "precision@10": 0.123456, "recall@10": 0.5, "ndcg@10": 0.4321]
        var metrics = report.reduce(into: [String: Double]()) { $0[MetricName.holdout($1.key)] = $1.value }
        metrics[MetricName.valid(MetricName.auc)] = 0.9
        let lines = MetricLines.lines(metrics)
        // Names padded to the longest (positive_rate, 13 characters), then two spaces.
        func row(_ name: String, _ value: String) -> String { name + String(repeating: " ", count: 15 - name.count) + value }
        #expect(lines == [row("auc", "0.8123"), row("brier", "0.0500"), row("logloss", "0.2000"), row("ndcg@10", "0.4321"),
                          row("positive_rate", "0.0700"), row("precision@10", "0.1235"), row("recall@10", "0.5000"),
                          row("rows", "1200")])
        #expect(MetricLines.lines([MetricName.valid(MetricName.auc): 0.9]).isEmpty)
    }
}
