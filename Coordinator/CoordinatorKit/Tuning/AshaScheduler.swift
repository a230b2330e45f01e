import Foundation

/// What the coordinator should tell the worker running a trial.
public enum AshaDecision: Sendable, Equatable {
    case `continue`
    /// Stop training now; the reason is a sentence for the run record.
    case stop(reason: String)

    public var shouldStop: Bool { if case .stop = self { return true } else { return false } }
}

/// Asynchronous successive halving (Li et al., "A System for Massively Parallel
/// Hyperparameter Tuning", 2020) as a pure state machine: it sees metric reports, keeps
/// the values recorded at each rung, and answers continue or stop. No clocks, no I/O.
///
/// Rungs are at `minIterations × reductionFactor^k` for k = 0, 1, … while strictly below
/// `maxIterations` (a trial at `maxIterations` has finished, there is nothing left to stop).
///
/// The rule at a rung: a trial's value is recorded there the first time it reports an
/// iteration at or past the rung (reports may skip iterations). Among the n values recorded
/// at that rung so far, including its own, the trial continues only if fewer than
/// ⌊n / reductionFactor⌋ values are strictly better than it — that is, it ranks in the top
/// 1/reductionFactor, ties resolved in its favour.
///
/// Grace: while a rung holds fewer than `reductionFactor` values, every trial reaching it
/// continues. "Top 1/η" means nothing among fewer than η results, and judging the early
/// arrivals against one or two others (keeping only the best so far, as an earlier rule
/// did) stopped good trials by the luck of arriving second: with η = 3 and two workers,
/// half of the first trials were stopped at the first rung whatever their quality. A
/// trial that is the best at every rung is never stopped.
///
/// Guarantees: decisions depend only on the sequence of reports (deterministic, replayable
/// from the recorded steps); a stopped trial stays stopped; NaN or infinite values stop a
/// trial (a diverged model should not occupy a worker); reports about iterations below
/// the next unrecorded rung change nothing.
public struct AshaScheduler: Sendable {
    public let settings: AshaSettings
    public let metric: ObjectiveMetric
    /// Iterations at which trials are compared, ascending.
    public let rungs: [Int]
    /// Values recorded at each rung (index matches `rungs`), keyed by trial.
    public private(set) var recorded: [[Int: Double]]
    /// Trials stopped so far, with the rung index they were stopped at.
    public private(set) var stopped: [Int: Int] = [:]

    public init(settings: AshaSettings, metric: ObjectiveMetric) {
        precondition(settings.minIterations >= 1 && settings.minIterations < settings.maxIterations && settings.reductionFactor >= 2,
                     "AshaSettings are validated by SearchSpace; min ≥ 1, min < max and reduction_factor ≥ 2")
        self.settings = settings
        self.metric = metric
        var r: [Int] = []
        var it = settings.minIterations
        while it < settings.maxIterations {
            r.append(it)
            let (next, overflow) = it.multipliedReportingOverflow(by: settings.reductionFactor)
            if overflow { break }
            it = next
        }
        rungs = r
        recorded = Array(repeating: [:], count: r.count)
    }

    /// Builds the scheduler a space asks for, or nil when it has no `asha` section.
    public init?(space: SearchSpace) {
        guard let a = space.asha else { return nil }
        self.init(settings: a, metric: space.metric)
    }

    /// Takes a trial's validation metric after `iteration` iterations (1-based, as the
    /// learning library counts them) and decides whether it keeps training.
    public mutating func report(trial: Int, iteration: Int, value: Double) -> AshaDecision {
        if let rung = stopped[trial] {
            return .stop(reason: "trial \(trial) was already stopped at rung \(rungs[rung]) iterations")
        }
        guard value.isFinite else {
            stopped[trial] = rungs.lastIndex(where: { $0 <= iteration }) ?? 0
            return .stop(reason: "the validation \(metric.rawValue) is \(value) at iteration \(iteration): the model diverged")
        }
        for k in rungs.indices where rungs[k] <= iteration && recorded[k][trial] == nil {
            recorded[k][trial] = value
            let values = recorded[k].values
            let n = values.count
            guard n >= settings.reductionFactor else { continue }
            let keep = n / settings.reductionFactor
            let better = values.reduce(0) { $0 + (metric.isBetter($1, than: value) ? 1 : 0) }
            if better >= keep {
                stopped[trial] = k
                return .stop(reason: "at rung \(rungs[k]) iterations, \(metric.rawValue) \(String(format: "%.5f", value)) ranks \(better + 1) of \(n); only the top \(keep) continue (reduction factor \(settings.reductionFactor))")
            }
        }
        return .continue
    }

    /// Forgets a trial whose training failed, so its partial results no longer raise the
    /// bar for others. (A trial retried after a lost worker need not be forgotten: its
    /// rungs already recorded are skipped, and a stopped trial stays stopped.)
    public mutating func forget(trial: Int) {
        for k in recorded.indices { recorded[k][trial] = nil }
        stopped[trial] = nil
    }
}
