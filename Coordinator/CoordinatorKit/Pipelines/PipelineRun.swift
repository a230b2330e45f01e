import Foundation

/// One run of a pipeline as a pure state machine: events in (``start(now:)``, step
/// results, ``tick(now:)``, ``cancel()``), ``Directive``s out. It has no clock and no I/O;
/// the caller launches and cancels jobs, arms a timer for ``nextDeadline`` and persists
/// the value (it is Codable) after every event, before acting on the directives.
///
/// Guarantees:
/// - A step is launched only after every step in its `after` succeeded; independent
///   steps are launched together, in the order the pipeline lists them.
/// - Attempts of a step are numbered from 1 and each number is launched at most once; a
///   report for any attempt but the one running is ignored, so a late result from an
///   abandoned attempt cannot change the run.
/// - A failed attempt is retried after `retry_backoff_seconds × 2^(attempt−1)`, capped at
///   an hour, until the step's retries are spent. An attempt still running at its
///   timeout is abandoned (``Directive/abandon(step:attempt:)``) and counts as failed with
///   reason `timed out after N s`.
/// - A step whose last attempt fails ends the run as failed, naming the step and its
///   last error: running steps are abandoned and marked cancelled, steps not yet started
///   are marked skipped. ``Directive/finished(_:)`` is emitted exactly once.
/// - After a restart, ``resume(now:)`` reports every step that was running with
///   ``Directive/reattach(step:attempt:)`` instead of launching it again.
public struct PipelineRun: Sendable, Equatable, Codable {
    public enum StepState: Sendable, Equatable, Codable {
        case pending
        /// `attempt` was launched at `since`.
        case running(attempt: Int, since: Date)
        /// `attempt` failed; the next one, `attempt + 1`, is due at `at`.
        case waitingToRetry(attempt: Int, at: Date)
        case succeeded(attempts: Int)
        case failed(attempts: Int, error: String)
        /// Stopped because the run ended while the step was running or waiting to retry.
        case cancelled(attempts: Int)
        /// Never started because the run ended first.
        case skipped
    }

    public enum Outcome: Sendable, Equatable, Codable {
        case succeeded
        /// Names the step that failed and its last error.
        case failed(String)
        case cancelled
    }

    public enum Directive: Sendable, Equatable {
        /// Submit the step's job as this attempt.
        case launch(step: String, attempt: Int)
        /// The step will be launched again at `date`: call ``tick(now:)`` then.
        case retryAt(step: String, date: Date)
        /// Cancel this attempt's job; its result no longer counts.
        case abandon(step: String, attempt: Int)
        /// After a restart: attach to this attempt's job if it still exists, else report
        /// the attempt failed.
        case reattach(step: String, attempt: Int)
        /// The run is over.
        case finished(Outcome)
    }

    public let steps: [PipelineStep]
    /// Parallel to ``steps``.
    public private(set) var states: [StepState]
    /// The last error of each step, parallel to ``steps``.
    public private(set) var lastErrors: [String?]
    public private(set) var startedAt: Date?
    public private(set) var outcome: Outcome?

    /// A run of steps from a validated ``PipelineDefinition`` (unique names, `after` naming
    /// steps of the list, no cycle).
    public init(steps: [PipelineStep]) {
        self.steps = steps
        states = Array(repeating: .pending, count: steps.count)
        lastErrors = Array(repeating: nil, count: steps.count)
    }

    public init(_ pipeline: PipelineDefinition) {
        self.init(steps: pipeline.steps)
    }

    public func state(of step: String) -> StepState? {
        steps.firstIndex { $0.name == step }.map { states[$0] }
    }

    /// The earliest time ``tick(now:)`` has something to do: a timeout or a due retry.
    public var nextDeadline: Date? {
        guard outcome == nil else { return nil }
        return states.indices.compactMap { i -> Date? in
            switch states[i] {
            case let .running(_, since): return since.addingTimeInterval(TimeInterval(steps[i].timeoutSeconds))
            case let .waitingToRetry(_, at): return at
            default: return nil
            }
        }.min()
    }

    // MARK: Events

    public mutating func start(now: Date) -> [Directive] {
        guard startedAt == nil, outcome == nil else { return [] }
        startedAt = now
        var out: [Directive] = []
        launchReady(now: now, into: &out)
        return out
    }

    public mutating func stepSucceeded(_ step: String, attempt: Int, now: Date) -> [Directive] {
        guard let i = running(step, attempt) else { return [] }
        states[i] = .succeeded(attempts: attempt)
        var out: [Directive] = []
        if states.allSatisfy({ if case .succeeded = $0 { return true } else { return false } }) {
            finish(.succeeded, into: &out)
        } else {
            launchReady(now: now, into: &out)
        }
        return out
    }

    public mutating func stepFailed(_ step: String, attempt: Int, reason: String, now: Date) -> [Directive] {
        guard let i = running(step, attempt) else { return [] }
        var out: [Directive] = []
        attemptFailed(i, attempt: attempt, reason: reason, now: now, into: &out)
        return out
    }

    /// Abandons attempts past their timeout and launches retries that are due.
    public mutating func tick(now: Date) -> [Directive] {
        guard startedAt != nil else { return [] }
        var out: [Directive] = []
        for i in steps.indices where outcome == nil {
            switch states[i] {
            case let .running(attempt, since) where now >= since.addingTimeInterval(TimeInterval(steps[i].timeoutSeconds)):
                out.append(.abandon(step: steps[i].name, attempt: attempt))
                attemptFailed(i, attempt: attempt, reason: "timed out after \(steps[i].timeoutSeconds) s", now: now, into: &out)
            case let .waitingToRetry(attempt, at) where now >= at:
                states[i] = .running(attempt: attempt, since: now)
                out.append(.launch(step: steps[i].name, attempt: attempt))
            default:
                break
            }
        }
        return out
    }

    public mutating func cancel() -> [Directive] {
        guard outcome == nil else { return [] }
        var out: [Directive] = []
        finish(.cancelled, into: &out)
        return out
    }

    /// Continues a run decoded after a coordinator restart: running attempts are to be
    /// re-attached (never launched again), pending retries re-armed, and whatever came due
    /// while the coordinator was down handled as ``tick(now:)`` would. A finished run
    /// repeats its ``Directive/finished(_:)`` so the caller can record it if it had not.
    public mutating func resume(now: Date) -> [Directive] {
        if let outcome { return [.finished(outcome)] }
        guard startedAt != nil else { return start(now: now) }
        var out: [Directive] = []
        for i in steps.indices {
            switch states[i] {
            case let .running(attempt, _): out.append(.reattach(step: steps[i].name, attempt: attempt))
            case let .waitingToRetry(_, at) where at > now: out.append(.retryAt(step: steps[i].name, date: at))
            default: break
            }
        }
        out += tick(now: now)
        if outcome == nil { launchReady(now: now, into: &out) }
        return out
    }

    /// The run as JSON, for the store.
    public func persisted() throws -> Data {
        let encoder = JSONEncoder()
        encoder.outputFormatting = .sortedKeys
        return try encoder.encode(self)
    }

    /// A run read back from ``persisted()``; continue it with ``resume(now:)``.
    public static func restored(from data: Data) throws -> PipelineRun {
        try JSONDecoder().decode(PipelineRun.self, from: data)
    }

    // MARK: Transitions

    /// The index of `step` if `attempt` is the attempt it is running, else nil (a stale
    /// or unknown report, or the run is over).
    func running(_ step: String, _ attempt: Int) -> Int? {
        guard outcome == nil, let i = steps.firstIndex(where: { $0.name == step }),
              case let .running(current, _) = states[i], current == attempt else { return nil }
        return i
    }

    mutating func launchReady(now: Date, into out: inout [Directive]) {
        let succeeded = Set(steps.indices.filter { if case .succeeded = states[$0] { return true } else { return false } }.map { steps[$0].name })
        for i in steps.indices where states[i] == .pending && steps[i].after.allSatisfy(succeeded.contains) {
            states[i] = .running(attempt: 1, since: now)
            out.append(.launch(step: steps[i].name, attempt: 1))
        }
    }

    mutating func attemptFailed(_ i: Int, attempt: Int, reason: String, now: Date, into out: inout [Directive]) {
        lastErrors[i] = reason
        let step = steps[i]
        if attempt <= step.retries {
            let at = now.addingTimeInterval(TimeInterval(step.backoff(afterAttempt: attempt)))
            states[i] = .waitingToRetry(attempt: attempt + 1, at: at)
            out.append(.retryAt(step: step.name, date: at))
        } else {
            states[i] = .failed(attempts: attempt, error: reason)
            let attempts = attempt == 1 ? "1 attempt" : "\(attempt) attempts"
            finish(.failed("step \"\(step.name)\" failed after \(attempts): \(reason)"), into: &out)
        }
    }

    mutating func finish(_ result: Outcome, into out: inout [Directive]) {
        for i in steps.indices {
            switch states[i] {
            case let .running(attempt, _):
                out.append(.abandon(step: steps[i].name, attempt: attempt))
                states[i] = .cancelled(attempts: attempt)
            case let .waitingToRetry(next, _):
                states[i] = .cancelled(attempts: next - 1)
            case .pending:
                states[i] = .skipped
            default:
                break
            }
        }
        outcome = result
        out.append(.finished(result))
    }
}
