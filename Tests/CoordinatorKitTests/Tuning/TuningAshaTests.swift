import Foundation
import Testing
@testable import CoordinatorKit

@Suite struct TuningAshaTests {
    static let settings = AshaSettings(minIterations: 10, maxIterations: 200, reductionFactor: 3)

    /// A learning curve rising towards `quality`.
    static func curve(_ quality: Double, _ iteration: Int) -> Double {
        0.5 + (quality - 0.5) * (1 - exp(-Double(iteration) / 40))
    }

    /// Runs trials one report at a time, interleaved round-robin like concurrent workers;
    /// returns the last iteration each trial trained and every decision in order.
    static func simulate(_ qualities: [Double], metric: ObjectiveMetric = .auc,
                         value: (Double, Int) -> Double = curve) -> (lastIteration: [Int], decisions: [AshaDecision]) {
        var asha = AshaScheduler(settings: settings, metric: metric)
        var last = [Int](repeating: 0, count: qualities.count)
        var running = Set(qualities.indices)
        var decisions: [AshaDecision] = []
        var iteration = 0
        while !running.isEmpty {
            iteration += 1
            for t in qualities.indices where running.contains(t) {
                last[t] = iteration
                let d = asha.report(trial: t, iteration: iteration, value: value(qualities[t], iteration))
                decisions.append(d)
                if d.shouldStop || iteration == settings.maxIterations { running.remove(t) }
            }
        }
        return (last, decisions)
    }

    @Test func rungsAreGeometricBelowTheMaximum() {
        #expect(AshaScheduler(settings: Self.settings, metric: .auc).rungs == [10, 30, 90])
        #expect(AshaScheduler(settings: AshaSettings(minIterations: 1, maxIterations: 27, reductionFactor: 3), metric: .auc).rungs == [1, 3, 9])
    }

    @Test func weakTrialsStopAtTheFirstRungAndTheBestRunsToTheEnd() {
        // The best trial arrives first; the weak ones after it.
        let qualities = [0.9, 0.6, 0.62, 0.58, 0.61, 0.85, 0.59]
        let (last, _) = Self.simulate(qualities)
        #expect(last[0] == 200, "the best trial always runs to max_iterations")
        #expect(last[1] > 10, "the second arrival is within the grace (fewer than η = 3 values at the rung)")
        for t in [2, 3, 4, 6] { #expect(last[t] == 10, "weak trial \(t) stopped at the first rung, ran \(last[t])") }
        #expect(last[5] > 10, "the second-best trial passes the first rung")
    }

    @Test func theBestTrialRunsToTheEndWhateverItsArrivalOrder() {
        for position in 0..<6 {
            var qualities = [0.6, 0.62, 0.64, 0.66, 0.68]
            qualities.insert(0.9, at: position)
            let (last, _) = Self.simulate(qualities)
            #expect(last[position] == 200, "best at position \(position) ran \(last[position])")
        }
    }

    @Test func decisionsAreDeterministic() {
        let qualities = (0..<12).map { 0.6 + 0.3 * Double(($0 * 7) % 12) / 12 }
        let a = Self.simulate(qualities), b = Self.simulate(qualities)
        #expect(a.decisions == b.decisions)
        #expect(a.lastIteration == b.lastIteration)
        #expect(a.decisions.contains { $0.shouldStop })
    }

    @Test func rankingRuleAtARung() {
        var asha = AshaScheduler(settings: Self.settings, metric: .auc)
        // Grace: fewer than reduction_factor (3) values at the rung, every trial continues.
        #expect(asha.report(trial: 0, iteration: 10, value: 0.70) == .continue)
        #expect(asha.report(trial: 1, iteration: 10, value: 0.65) == .continue)
        // Three values: top ⌊3/3⌋ = 1 continue; 0.60 ranks 3rd.
        #expect(asha.report(trial: 2, iteration: 10, value: 0.60).shouldStop)
        // Four values: 0.80 is the best, continues.
        #expect(asha.report(trial: 3, iteration: 10, value: 0.80) == .continue)
        // Five values, top 1: 0.75 ranks 2nd and stops; six values, top 2: 0.78 ranks 2nd.
        #expect(asha.report(trial: 4, iteration: 10, value: 0.75).shouldStop)
        #expect(asha.report(trial: 5, iteration: 10, value: 0.78) == .continue)
        // A tie with the best counts in the trial's favour.
        #expect(asha.report(trial: 6, iteration: 10, value: 0.80) == .continue)
        #expect(asha.recorded[0].count == 7)
    }

    @Test func minimizesLogLoss() {
        // Lower log-loss is better: the trial with the lowest curve runs to the end.
        let (last, _) = Self.simulate([0.9, 0.6, 0.7, 0.65], metric: .logloss) { q, it in 1 - Self.curve(q, it) }
        #expect(last[0] == 200)
        #expect(last[2] == 10 && last[3] == 10, "the third and fourth arrivals are judged and stopped")
    }

    @Test func skippedIterationsRecordEveryRungPassed() {
        var asha = AshaScheduler(settings: Self.settings, metric: .auc)
        #expect(asha.report(trial: 0, iteration: 5, value: 0.7) == .continue)
        #expect(asha.recorded[0].isEmpty, "below the first rung nothing is recorded")
        #expect(asha.report(trial: 0, iteration: 35, value: 0.7) == .continue)
        #expect(asha.recorded[0][0] == 0.7 && asha.recorded[1][0] == 0.7 && asha.recorded[2].isEmpty)
    }

    @Test func stoppedStaysStoppedAndDivergenceStops() {
        var asha = AshaScheduler(settings: Self.settings, metric: .auc)
        _ = asha.report(trial: 0, iteration: 10, value: 0.8)
        _ = asha.report(trial: 9, iteration: 10, value: 0.7)
        #expect(asha.report(trial: 1, iteration: 10, value: 0.6).shouldStop)
        #expect(asha.report(trial: 1, iteration: 11, value: 0.99).shouldStop, "a stopped trial stays stopped")
        if case let .stop(reason) = asha.report(trial: 2, iteration: 3, value: .nan) {
            #expect(reason.contains("diverged"))
        } else { Issue.record("NaN did not stop the trial") }
        asha.forget(trial: 1)
        #expect(asha.recorded[0][1] == nil && asha.stopped[1] == nil)
    }

    @Test func stopReasonSaysWhere() {
        var asha = AshaScheduler(settings: Self.settings, metric: .auc)
        _ = asha.report(trial: 0, iteration: 10, value: 0.8)
        _ = asha.report(trial: 2, iteration: 10, value: 0.7)
        guard case let .stop(reason) = asha.report(trial: 1, iteration: 10, value: 0.6) else { Issue.record("not stopped"); return }
        #expect(reason == "at rung 10 iterations, auc 0.60000 ranks 3 of 3; only the top 1 continue (reduction factor 3)", "\(reason)")
    }

    @Test func buildsFromASpace() throws {
        let space = try SearchSpace(yaml: "model: gbdt\nmetric: logloss\nasha: {min_iterations: 5, max_iterations: 100, reduction_factor: 4}\nparams: {num_leaves: {int: [8, 64]}}")
        let asha = try #require(AshaScheduler(space: space))
        #expect(asha.rungs == [5, 20, 80] && asha.metric == .logloss)
        #expect(AshaScheduler(space: try SearchSpace(yaml: "model: gbdt\nparams: {num_leaves: {int: [8, 64]}}")) == nil)
    }
}
