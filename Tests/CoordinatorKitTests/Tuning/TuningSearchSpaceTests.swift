import Foundation
import Learning
import Testing
@testable import CoordinatorKit

@Suite struct TuningSearchSpaceTests {
    static let example = """
        model: gbdt            # or logistic
        metric: auc
        sampler: tpe
        seed: 7
        max_trials: 20
        max_concurrent: 40
        time_budget_seconds: 600
        asha: {min_iterations: 10, max_iterations: 200, reduction_factor: 3}
        params:
          num_leaves: {int: [8, 128], log: true}
          learning_rate: {loguniform: [0.01, 0.3]}
          min_data_in_leaf: {int: [5, 100]}
          feature_fraction: {uniform: [0.5, 1.0]}
          bagging_fraction: {uniform: [0.5, 1.0]}
          lambda: {loguniform: [0.001, 10]}
          num_trees: 200
          early_stopping_metric: {categorical: [logloss, auc]}
        """

    @Test func parsesTheDocumentedExample() throws {
        let s = try SearchSpace(yaml: Self.example)
        #expect(s.model == .gbdt && s.metric == .auc && s.sampler == .tpe && s.seed == 7)
        #expect(s.maxTrials == 20)
        #expect(s.maxConcurrent == 20, "more concurrent trials than trials is clamped to max_trials")
        #expect(s.timeBudgetSeconds == 600)
        #expect(s.asha == AshaSettings(minIterations: 10, maxIterations: 200, reductionFactor: 3))
        #expect(s.params["num_leaves"] == .integer(low: 8, high: 128, log: true))
        #expect(s.params["learning_rate"] == .real(low: 0.01, high: 0.3, log: true))
        #expect(s.params["feature_fraction"] == .real(low: 0.5, high: 1.0, log: false))
        #expect(s.params["lambda_l2"] == .real(low: 0.001, high: 10, log: true), "aliases are stored under the canonical name")
        #expect(s.params["num_iterations"] == .fixed(.int(200)))
        #expect(s.params["early_stopping_metric"] == .categorical([.string("logloss"), .string("auc")]))
        #expect(s.searchedParameters == ["bagging_fraction", "early_stopping_metric", "feature_fraction", "lambda_l2",
                                         "learning_rate", "min_data_in_leaf", "num_leaves"])
    }

    @Test func jsonAndYamlGiveTheSameSpace() throws {
        let json = """
            {"model": "gbdt", "metric": "logloss", "sampler": "random", "seed": 7, "max_trials": 5,
             "params": {"num_leaves": {"int": [8, 128], "log": true}, "learning_rate": {"loguniform": [0.01, 0.3]},
                        "max_bin": {"categorical": [63, 255]}, "num_iterations": 50}}
            """
        let yaml = """
            model: gbdt
            metric: logloss
            sampler: random
            seed: 7
            max_trials: 5
            params:
              num_leaves: {int: [8, 128], log: true}
              learning_rate: {loguniform: [0.01, 0.3]}
              max_bin: {categorical: [63, 255]}
              num_iterations: 50
            """
        let a = try SearchSpace(json: json)
        #expect(a == (try SearchSpace(yaml: yaml)))
        #expect(a.params["max_bin"] == .categorical([.int(63), .int(255)]))
        #expect(a.metric.maximize == false)
        #expect(a.maxConcurrent == 1)
    }

    /// (document, text the message must contain)
    static let refusals: [(String, String)] = [
        ("model: gbdt\nparams: {learning_rate: {uniform: [0.3, 0.01]}}", "params.learning_rate: empty range [0.3, 0.01]"),
        ("model: gbdt\nparams: {num_leaves: {int: [64, 8]}}", "params.num_leaves: empty range [64, 8]"),
        ("model: gbdt\nparams: {lambda_l2: {uniform: [0, 1], log: true}}", "params.lambda_l2: log scale needs a positive lower bound"),
        ("model: gbdt\nparams: {lambda_l2: {loguniform: [-1, 1]}}", "params.lambda_l2: log scale"),
        ("model: gbdt\nparams: {num_leafs: {int: [8, 64]}}", "params.num_leafs: not a parameter of the gbdt model. Known parameters: num_iterations, learning_rate, num_leaves"),
        ("model: logistic\nparams: {num_leaves: {int: [8, 64]}}", "params.num_leaves: not a parameter of the logistic model. Known parameters: c, lambda_l2"),
        ("model: gbdt\nmax_trails: 3\nparams: {num_leaves: {int: [8, 64]}}", "max_trails: unknown key"),
        ("model: gbdt\nparams: {max_bin: {categorical: []}}", "params.max_bin.categorical: categorical with no choices"),
        ("model: gbdt\nmax_trials: 0\nparams: {num_leaves: {int: [8, 64]}}", "max_trials: 0 is impossible"),
        ("model: gbdt\nmax_concurrent: 0\nparams: {num_leaves: {int: [8, 64]}}", "max_concurrent: 0 is impossible"),
        ("model: gbdt\ntime_budget_seconds: 0\nparams: {num_leaves: {int: [8, 64]}}", "time_budget_seconds: 0 is impossible"),
        ("model: gbdt\nasha: {min_iterations: 50, max_iterations: 50}\nparams: {num_leaves: {int: [8, 64]}}", "asha.min_iterations: 50 is impossible"),
        ("model: gbdt\nasha: {min_iterations: 5, max_iterations: 50, reduction_factor: 1}\nparams: {num_leaves: {int: [8, 64]}}", "asha.reduction_factor: 1 is impossible"),
        ("model: gbdt\nasha: {min_iterations: 5, max_iterations: 500}\nparams: {num_iterations: 200, num_leaves: {int: [8, 64]}}", "asha.max_iterations: 500 is impossible: expected at most params.num_iterations (200)"),
        ("model: logistic\nasha: {min_iterations: 5, max_iterations: 50}\nparams: {c: {loguniform: [0.01, 10]}}", "asha: 'asha with model logistic' is invalid"),
        ("model: gbdt\nsampler: grid\nparams: {num_leaves: {int: [8, 64]}}", "sampler: unknown value 'grid'. Use one of: random, tpe"),
        ("model: forest\nparams: {num_leaves: {int: [8, 64]}}", "model: unknown value 'forest'. Use one of: gbdt, logistic"),
        ("model: gbdt\nmetric: accuracy\nparams: {num_leaves: {int: [8, 64]}}", "metric: unknown value 'accuracy'. Use one of: auc, logloss"),
        ("model: gbdt\nparams: {feature_fraction: {uniform: [0.5, 1.5]}}", "params.feature_fraction: '1.5' is invalid: expected a fraction in (0, 1]"),
        ("model: gbdt\nparams: {learning_rate: {uniform: [0.1, 0.3], spread: 2}}", "params.learning_rate.spread: unknown key"),
        ("model: gbdt\nparams: {num_iterations: 100}", "params: 'only fixed values' is invalid"),
        ("params: {num_leaves: {int: [8, 64]}}", "model: missing"),
        ("model: gbdt", "params: missing"),
        ("model: gbdt\nparams: [1, 2", "search space: cannot read the document"),
    ]

    @Test(arguments: refusals)
    func refusesBadSpacesNamingTheField(document: String, message: String) {
        do {
            let s = try SearchSpace(yaml: document)
            Issue.record("accepted \(document) as \(s)")
        } catch let e as SearchSpaceError {
            #expect(e.description.contains(message), "\(e.description)")
        } catch {
            Issue.record("untyped error \(error)")
        }
    }

    @Test func parametersUseTheLearningLibraryKeys() throws {
        let s = try SearchSpace(yaml: Self.example)
        var sampler = RandomSampler(space: s)
        let trial = sampler.suggest(history: [])
        let keys = s.parameters(for: trial)
        #expect(keys["num_iterations"] == "200")
        #expect(keys["seed"] == "7", "the search seed trains every trial unless the space fixes one")
        #expect(keys["lambda_l2"] != nil && keys["lambda"] == nil)
        // Every key must be accepted by the learning library with a value it takes as given.
        var p = BoostingParameters()
        for (k, v) in keys { try p.set(k, v) }
        #expect(p.numIterations == 200)
        #expect(p.numLeaves == trial["num_leaves"].flatMap { if case let .int(i) = $0 { return i } else { return nil } })
        #expect(p.learningRate == trial["learning_rate"]?.number)
        #expect(p.earlyStoppingMetric == trial["early_stopping_metric"]?.description)
    }

    @Test func logisticCBecomesInverseLambda() throws {
        let s = try SearchSpace(yaml: "model: logistic\nparams: {C: {loguniform: [0.01, 100]}}")
        let keys = s.parameters(for: TrialParameters(["c": .double(4)]))
        #expect(keys["lambda_l2"] == "0.25")
        #expect(keys["c"] == nil)
    }
}

@Suite struct TuningSettingsRoundTripTests {
    @Test func settingsRoundTripToTrialParameters() throws {
        let space = try SearchSpace(yaml: TuningSearchSpaceTests.example)
        var sampler = TPESampler(space: space)
        for _ in 0..<20 {
            let trial = sampler.suggest(history: [])
            #expect(space.trialParameters(fromSettings: space.parameters(for: trial)) == trial)
        }
        let logistic = try SearchSpace(yaml: "model: logistic\nparams: {c: {loguniform: [0.01, 100]}, lambda_l2: 0.5}")
        let back = logistic.trialParameters(fromSettings: logistic.parameters(for: TrialParameters(["c": .double(4)])))
        #expect(abs((back["c"]?.number ?? 0) - 4) < 1e-12)
        let mixed = try SearchSpace(yaml: "model: gbdt\nparams: {max_bin: {categorical: [63, 255]}, early_stopping_metric: {categorical: [auc, logloss]}}")
        #expect(mixed.trialParameters(fromSettings: ["max_bin": "255", "early_stopping_metric": "auc", "seed": "0"])
                == TrialParameters(["max_bin": .int(255), "early_stopping_metric": .string("auc")]))
    }
}
