import Foundation
import Wire

/// The worker's side of one job kind: turns a task's input into its output.
///
/// Runners are called concurrently, up to the worker's slots. Throw ``TaskError`` with
/// `retryable: false` for input that can never succeed; any other error is retried on
/// another attempt. Long runners must check `context.shouldStop()` (and `Task.isCancelled`
/// when they await): it turns true when the coordinator stops the task early or cancels it
/// (its job was cancelled, or another worker finished it first), and a cancelled task's
/// slot is free only once its runner returns.
public protocol TaskRunner: Sendable {
    /// The kind this runner runs, from `Common/Wire/Jobs`; its required tools are what the
    /// worker looks for on its host and advertises.
    var descriptor: AnyJobKind { get }
    func run(_ task: WireTaskAssignment, context: TaskContext) async throws -> Data
}

extension TaskRunner {
    public var kind: String { descriptor.name }
}

/// What a runner may use besides its input.
public struct TaskContext: Sendable {
    public let workerName: String
    /// Fetches a blob by its SHA-256 address: from the local cache, or from the
    /// coordinator (verified, then cached).
    public let blob: @Sendable (String) async throws -> Data
    /// Reports intermediate metrics (sent in batches; the coordinator may answer by
    /// asking the task to stop early).
    public let report: @Sendable (_ step: Int, _ metrics: [String: Double]) -> Void
    /// True once the coordinator asked this task to stop early (finish now and return the
    /// result so far) or cancelled it (its result is discarded).
    public let shouldStop: @Sendable () -> Bool
    /// A directory private to this worker for caches (e.g. unpacked data sets).
    public let cacheDirectory: URL
}

/// The runners of every job kind this worker binary knows.
public enum TaskRunners {
    public static let builtIn: [any TaskRunner] = [EchoRunner(), TrialRunner(), ScoreRunner(), DriftRunner(), RenderRunner()]
}
