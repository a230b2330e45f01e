import Foundation
import Testing
@testable import CoordinatorKit

@Suite struct TuningSearchTests {
    static let text = """
        model: gbdt
        metric: auc
        sampler: tpe
        seed: 3
        max_trials: 6
        max_concurrent: 2
        time_budget_seconds: 100
        asha: {min_iterations: 10, max_iterations: 90, reduction_factor: 3}
        tpe: {startup_trials: 3}
        params:
          num_leaves: {int: [8, 128], log: true}
          learning_rate: {loguniform: [0.01, 0.3]}
          num_iterations: 90
        """

    @Test func respectsTrialAndConcurrencyLimits() throws {
        var search = HyperparameterSearch(space: try SearchSpace(yaml: Self.text))
        let aPlan = search.nextTrial(elapsedSeconds: 0)
        let a = try #require(aPlan)
        let bPlan = search.nextTrial(elapsedSeconds: 0)
        let b = try #require(bPlan)
        #expect(a.number == 0 && b.number == 1)
        #expect(a.settings["num_iterations"] == "90" && a.settings["seed"] == "3")
        #expect(search.admission(elapsedSeconds: 1) == .concurrencyLimitReached)
        #expect(search.nextTrial(elapsedSeconds: 1) == nil)
        search.finish(trial: 0, value: 0.8)
        search.fail(trial: 1, error: "training threw: out of memory")
        #expect(search.failures[1] == "training threw: out of memory")
        var numbers: [Int] = []
        while let t = search.nextTrial(elapsedSeconds: 2) {
            numbers.append(t.number)
            search.finish(trial: t.number, value: 0.7 + 0.01 * Double(t.number))
        }
        #expect(numbers == [2, 3, 4, 5])
        #expect(search.admission(elapsedSeconds: 3) == .trialLimitReached)
        #expect(search.isFinished(elapsedSeconds: 3))
        #expect(search.history.count == 6 && search.history.filter { $0.outcome == .failed }.count == 1)
        #expect(search.best?.number == 0)
    }

    @Test func noTrialStartsAfterTheTimeBudget() throws {
        var search = HyperparameterSearch(space: try SearchSpace(yaml: Self.text))
        let aPlan = search.nextTrial(elapsedSeconds: 99)
        let a = try #require(aPlan)
        #expect(search.nextTrial(elapsedSeconds: 100) == nil)
        #expect(search.admission(elapsedSeconds: 100) == .timeBudgetSpent)
        #expect(!search.isFinished(elapsedSeconds: 150), "the running trial may finish")
        search.finish(trial: a.number, value: 0.7)
        #expect(search.isFinished(elapsedSeconds: 150))
    }

    @Test func ashaStopsAndTheStoppedTrialKeepsItsLastValue() throws {
        // η = 2, so two values at the rung are past ASHA's grace and the worse one stops.
        var search = HyperparameterSearch(space: try SearchSpace(yaml: Self.text.replacingOccurrences(of: "reduction_factor: 3", with: "reduction_factor: 2")))
        let aPlan = search.nextTrial(elapsedSeconds: 0)
        let a = try #require(aPlan)
        let bPlan = search.nextTrial(elapsedSeconds: 0)
        let b = try #require(bPlan)
        #expect(search.report(trial: a.number, iteration: 10, value: 0.8) == .continue)
        #expect(search.report(trial: b.number, iteration: 10, value: 0.6).shouldStop)
        search.finish(trial: b.number, value: nil, outcome: .stopped)
        #expect(search.history.last == CompletedTrial(number: b.number, parameters: b.parameters, value: 0.6, outcome: .stopped))
        #expect(search.report(trial: b.number, iteration: 11, value: 0.9).shouldStop, "late reports do not revive a trial")
        search.finish(trial: b.number, value: 0.9)
        #expect(search.history.count == 1, "finishing twice changes nothing")
        search.finish(trial: a.number, value: 0.85)
        #expect(search.best?.number == a.number)
    }

    @Test func searchesAreReproducible() throws {
        func run() throws -> [TrialPlan] {
            var search = HyperparameterSearch(space: try SearchSpace(yaml: Self.text))
            var plans: [TrialPlan] = []
            while let t = search.nextTrial(elapsedSeconds: 0) {
                plans.append(t)
                search.finish(trial: t.number, value: 0.5 + 0.1 * sin(Double(t.number)))
            }
            return plans
        }
        #expect(try run() == (try run()))
    }
}
