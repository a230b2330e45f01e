import Foundation

/// A trial the coordinator should start: its number, the sampled values (for the run
/// record) and the settings under the learning library's keys (for the worker).
public struct TrialPlan: Sendable, Equatable, Codable {
    public var number: Int
    public var parameters: TrialParameters
    public var settings: [String: String]
}

/// Why no trial may start now.
public enum TrialAdmission: Sendable, Equatable {
    case start
    /// Every one of `max_trials` has been started.
    case trialLimitReached
    /// `max_concurrent` trials are running; wait for one to end.
    case concurrencyLimitReached
    /// The time budget is spent; no new trial starts (running ones may finish).
    case timeBudgetSpent
}

/// One hyperparameter search as a pure state machine: it decides when a trial may start
/// and with which parameters, passes per-iteration metrics to ASHA, and keeps the
/// results. The coordinator's job planner is the I/O shell around it; time enters only as
/// the `elapsedSeconds` argument, so every decision can be replayed in a test.
///
/// Guarantees:
/// - at most `maxTrials` trials are ever started and at most `maxConcurrent` run at once;
/// - no trial starts once `elapsedSeconds ≥ timeBudgetSeconds` (running trials are left to
///   finish: they are bounded by their iterations, and stopping them would waste the work);
/// - trial numbers are 0, 1, 2, … in start order, and the n-th trial's parameters depend
///   only on the seed and the trials finished and running when it was planned;
/// - a failed trial counts towards `maxTrials` (a space whose every trial fails must still
///   end) and is kept with its error; the search goes on;
/// - finishing or failing a trial twice (a retried task reporting again) changes nothing.
public struct HyperparameterSearch: Sendable {
    public let space: SearchSpace
    private var sampler: any Sampler
    public private(set) var asha: AshaScheduler?
    /// Trials started and not yet finished or failed.
    public private(set) var running: [Int: TrialParameters] = [:]
    /// Finished, stopped and failed trials, in the order they ended.
    public private(set) var history: [CompletedTrial] = []
    /// Errors of failed trials by trial number.
    public private(set) var failures: [Int: String] = [:]
    public private(set) var started = 0
    /// Last value each running trial reported, which is its result if ASHA stops it.
    private var lastReported: [Int: Double] = [:]

    public init(space: SearchSpace) {
        self.space = space
        sampler = makeSampler(for: space)
        asha = AshaScheduler(space: space)
    }

    /// Whether a trial may start now, and if not why.
    public func admission(elapsedSeconds: Double) -> TrialAdmission {
        if started >= space.maxTrials { return .trialLimitReached }
        if let budget = space.timeBudgetSeconds, elapsedSeconds >= budget { return .timeBudgetSpent }
        if running.count >= space.maxConcurrent { return .concurrencyLimitReached }
        return .start
    }

    /// Plans the next trial if one may start, and counts it as running.
    public mutating func nextTrial(elapsedSeconds: Double) -> TrialPlan? {
        guard admission(elapsedSeconds: elapsedSeconds) == .start else { return nil }
        let parameters = sampler.suggest(history: history, pending: running)
        let number = started
        started += 1
        running[number] = parameters
        return TrialPlan(number: number, parameters: parameters, settings: space.parameters(for: parameters))
    }

    /// Counts trial `number` as started with `parameters`, as a search resumed from its
    /// stored trials rebuilds itself (finish or fail it next if it had ended).
    public mutating func resume(trial number: Int, parameters: TrialParameters) {
        guard !history.contains(where: { $0.number == number }) else { return }
        running[number] = parameters
        started = max(started, number + 1)
    }

    /// The parameters trial `number` was started with.
    public func parameters(of number: Int) -> TrialParameters? {
        running[number] ?? history.first { $0.number == number }?.parameters
    }

    /// Trials that have ended (finished, stopped or failed).
    public var ended: Int { history.count }

    /// A running trial's validation metric after `iteration` iterations. Without ASHA the
    /// answer is always `.continue`. Reports for trials not running are answered `.stop`
    /// (a late report for a trial already ended must not restart anything).
    public mutating func report(trial: Int, iteration: Int, value: Double) -> AshaDecision {
        guard running[trial] != nil else { return .stop(reason: "trial \(trial) is not running") }
        lastReported[trial] = value
        guard var a = asha else { return .continue }
        let decision = a.report(trial: trial, iteration: iteration, value: value)
        asha = a
        return decision
    }

    /// A trial ended with its final validation metric: `.completed` when it trained to the
    /// end, `.stopped` when ASHA stopped it (the value defaults to its last report).
    public mutating func finish(trial: Int, value: Double?, outcome: CompletedTrial.Outcome = .completed) {
        guard let parameters = running.removeValue(forKey: trial) else { return }
        let v = value ?? lastReported[trial]
        lastReported[trial] = nil
        history.append(CompletedTrial(number: trial, parameters: parameters, value: v, outcome: v == nil ? .failed : outcome))
    }

    /// A trial whose training threw; recorded with the error, the search goes on.
    public mutating func fail(trial: Int, error: String) {
        guard let parameters = running.removeValue(forKey: trial) else { return }
        lastReported[trial] = nil
        failures[trial] = error
        asha?.forget(trial: trial)
        history.append(CompletedTrial(number: trial, parameters: parameters, value: nil, outcome: .failed))
    }

    /// True when no trial runs and none may start any more (limit or budget reached).
    public func isFinished(elapsedSeconds: Double) -> Bool {
        guard running.isEmpty else { return false }
        let a = admission(elapsedSeconds: elapsedSeconds)
        return a == .trialLimitReached || a == .timeBudgetSpent
    }

    /// The best trial that trained to the end (stopped trials have undertrained models and
    /// are not candidates for promotion); ties go to the earlier trial.
    public var best: CompletedTrial? {
        history.filter { $0.outcome == .completed && ($0.value?.isFinite ?? false) }
            .sorted { $0.number < $1.number }
            .reduce(nil) { (best: CompletedTrial?, t) in
                guard let b = best else { return t }
                return space.metric.isBetter(t.value!, than: b.value!) ? t : b
            }
    }
}
