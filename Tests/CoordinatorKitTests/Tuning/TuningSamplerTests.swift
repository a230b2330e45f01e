import Foundation
import Testing
@testable import CoordinatorKit

@Suite struct TuningSamplerTests {
    static let space2D = """
        model: gbdt
        metric: auc
        seed: 1
        params:
          learning_rate: {loguniform: [0.001, 1.0]}
          num_leaves: {int: [2, 256], log: true}
          early_stopping_metric: {categorical: [logloss, auc]}
        """

    /// A smooth synthetic "validation AUC" with its optimum at learning_rate 0.05,
    /// num_leaves 40 and the auc metric; maximum 0.9. Sharp enough that 40 random draws rarely come within
    /// 0.01 of it.
    static func objective(_ p: TrialParameters) -> Double {
        let lr = p["learning_rate"]!.number!, leaves = p["num_leaves"]!.number!
        let a = log10(lr) - log10(0.05)
        let b = log2(leaves) - log2(40)
        let c = p["early_stopping_metric"] == .string("auc") ? 0.0 : 0.03
        return 0.9 - 0.3 * a * a - 0.05 * b * b - c
    }

    static func run(_ sampler: inout some Sampler, trials: Int) -> (best: Double, history: [CompletedTrial]) {
        var history: [CompletedTrial] = []
        for n in 0..<trials {
            let p = sampler.suggest(history: history)
            history.append(CompletedTrial(number: n, parameters: p, value: objective(p)))
        }
        return (history.compactMap(\.value).max()!, history)
    }

    @Test func randomDrawsStayInsideTheDomains() throws {
        var space = try SearchSpace(yaml: Self.space2D)
        space.params["feature_fraction"] = .real(low: 0.5, high: 1, log: false)
        var s = RandomSampler(space: space)
        for _ in 0..<300 {
            let p = s.suggest(history: [])
            let lr = try #require(p["learning_rate"]?.number)
            #expect(lr >= 0.001 && lr <= 1)
            guard case let .int(leaves)? = p["num_leaves"] else { Issue.record("num_leaves not an int"); return }
            #expect(leaves >= 2 && leaves <= 256)
            #expect([ParameterValue.string("logloss"), .string("auc")].contains(p["early_stopping_metric"]!))
            let ff = try #require(p["feature_fraction"]?.number)
            #expect(ff >= 0.5 && ff <= 1)
        }
    }

    @Test func randomLogScaleCoversTheDecades() throws {
        var s = RandomSampler(space: try SearchSpace(yaml: Self.space2D))
        let draws = (0..<400).map { _ in s.suggest(history: [])["learning_rate"]!.number! }
        // Uniform in log space: about a third of the draws in each decade of [0.001, 1].
        let low = draws.filter { $0 < 0.01 }.count
        #expect(low > 90 && low < 180, "\(low) of 400 below 0.01")
    }

    @Test func samplersAreDeterministicForASeed() throws {
        let space = try SearchSpace(yaml: Self.space2D)
        var a = TPESampler(space: space), b = TPESampler(space: space)
        let ra = Self.run(&a, trials: 25), rb = Self.run(&b, trials: 25)
        #expect(ra.history == rb.history)
        var c = TPESampler(space: space, seed: 2)
        #expect(Self.run(&c, trials: 25).history != ra.history)
        var r1 = RandomSampler(space: space), r2 = RandomSampler(space: space)
        #expect(Self.run(&r1, trials: 10).history == Self.run(&r2, trials: 10).history)
    }

    @Test func tpeStartsRandomThenUsesTheModel() throws {
        let space = try SearchSpace(yaml: Self.space2D)
        var tpe = TPESampler(space: space)
        var random = RandomSampler(space: space)
        // Same seed, same stream for the start-up trials: identical to random.
        let history = (0..<5).map { _ in random.suggest(history: []) }
        for p in history { #expect(tpe.suggest(history: []) == p) }
    }

    @Test func tpeIgnoresFailedTrials() throws {
        let space = try SearchSpace(yaml: Self.space2D)
        var a = TPESampler(space: space)
        let (_, history) = Self.run(&a, trials: 15)
        let failed = CompletedTrial(number: 99, parameters: TrialParameters(["learning_rate": .double(0.5)]), value: nil, outcome: .failed)
        // Two copies at the same point of the stream: a failed trial must not change the proposal.
        var c = a, d = a
        #expect(c.suggest(history: history) == d.suggest(history: history + [failed]))
    }

    /// A running trial counts as a constant liar: the next suggestion, made while it runs,
    /// differs from what it would be without it and spreads out from it.
    @Test func tpeSpreadsConcurrentSuggestionsWithAConstantLiar() throws {
        let space = try SearchSpace(yaml: Self.space2D)
        var a = TPESampler(space: space)
        let (_, history) = Self.run(&a, trials: 15)
        var withoutLiar = a, withLiar = a
        var first = a
        let running = first.suggest(history: history)
        let pending = Dictionary(uniqueKeysWithValues: (15..<19).map { ($0, running) })
        #expect(withoutLiar.suggest(history: history) != withLiar.suggest(history: history, pending: pending))

        // Batches of 4 suggested together (4 workers asking at once), 40 trials, 6 seeds:
        // with the liar the members of a batch lie further apart in log learning rate.
        func spread(liar: Bool) throws -> Double {
            var total = 0.0
            for seed: UInt64 in 1...6 {
                var tpe = TPESampler(space: space, seed: seed)
                var done: [CompletedTrial] = []
                for batch in 0..<10 {
                    var pending: [Int: TrialParameters] = [:]
                    for k in 0..<4 { pending[batch * 4 + k] = tpe.suggest(history: done, pending: liar ? pending : [:]) }
                    let rates = pending.values.map { log10($0["learning_rate"]!.number!) }
                    total += rates.max()! - rates.min()!
                    done += pending.map { CompletedTrial(number: $0.key, parameters: $0.value, value: Self.objective($0.value)) }
                }
            }
            return total
        }
        let (liar, plain) = (try spread(liar: true), try spread(liar: false))
        #expect(liar > plain, "within-batch spread: with the liar \(liar), without \(plain)")
    }

    @Test func tpeFindsABetterOptimumThanRandomWithTheSameBudget() throws {
        var tpeBest = 0.0, randomBest = 0.0, tpeWins = 0
        let seeds: [UInt64] = [1, 2, 3, 4, 5, 6]
        for seed in seeds {
            let space = try SearchSpace(yaml: Self.space2D)
            var tpe = TPESampler(space: space, seed: seed)
            var random = RandomSampler(space: space, seed: seed)
            let t = Self.run(&tpe, trials: 40).best
            let r = Self.run(&random, trials: 40).best
            tpeBest += t; randomBest += r
            if t >= r { tpeWins += 1 }
        }
        let n = Double(seeds.count)
        #expect(tpeBest / n > randomBest / n, "mean best: TPE \(tpeBest / n), random \(randomBest / n)")
        #expect(tpeWins >= 4, "TPE won \(tpeWins) of \(seeds.count)")
        // The optimum is 0.9; the mean best of 40 random draws stays clearly below it.
        #expect(tpeBest / n - randomBest / n > 0.003)
    }

    @Test func tpeMinimizesWhenTheMetricIsLogLoss() throws {
        let text = Self.space2D.replacingOccurrences(of: "metric: auc", with: "metric: logloss")
        let space = try SearchSpace(yaml: text)
        var tpeWorst = 0.0, randomWorst = 0.0
        for seed: UInt64 in 1...4 {
            var tpe = TPESampler(space: space, seed: seed)
            var random = RandomSampler(space: space, seed: seed)
            // Log-loss = 1 − objective: minimizing it is maximizing the objective.
            var h: [CompletedTrial] = [], hr: [CompletedTrial] = []
            for n in 0..<40 {
                let p = tpe.suggest(history: h)
                h.append(CompletedTrial(number: n, parameters: p, value: 1 - Self.objective(p)))
                let q = random.suggest(history: hr)
                hr.append(CompletedTrial(number: n, parameters: q, value: 1 - Self.objective(q)))
            }
            tpeWorst += h.compactMap(\.value).min()!
            randomWorst += hr.compactMap(\.value).min()!
        }
        #expect(tpeWorst < randomWorst)
    }
}
