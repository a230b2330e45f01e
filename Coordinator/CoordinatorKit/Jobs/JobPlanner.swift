import Foundation
import GRDB
import Wire

/// The coordinator's side of one job kind: checks a submitted spec and splits it into
/// tasks, then turns the tasks' results into the job's summary when it ends.
public protocol JobPlanner: Sendable {
    /// The kind this planner plans, from `Common/Wire/Jobs`.
    var descriptor: AnyJobKind { get }
    /// Validates `spec` and returns the tasks to run (kinds that work on the feature store
    /// or the registry read them from `context`). Errors are ``WireError/invalidArgument(_:)``
    /// naming the field, and nothing is stored when planning fails.
    func plan(spec: Data, context: JobContext) throws -> [PlannedTask]
    /// The kind-specific summary stored with the finished job.
    func summarize(spec: Data, results: [TaskResultRow]) throws -> Data
    /// Adaptive kinds return a controller that sees progress and results while the job
    /// runs; `existing` holds the results stored so far (non-empty when a restarted
    /// coordinator resumes the job).
    func controller(for job: JobRow, existing: [TaskResultRow], context: JobContext) throws -> (any JobController)?
    /// A job that repeats one tracked run of this kind, for `coordinator runs rerun`; nil
    /// when the kind cannot repeat a run.
    func rerun(_ run: RunSummary, runID: String) throws -> WireJobSpec?
}

extension JobController {
    public func validate(output: Data) throws {}
}

extension JobPlanner {
    public var kind: String { descriptor.name }

    public func rerun(_ run: RunSummary, runID: String) throws -> WireJobSpec? { nil }

    public func controller(for job: JobRow, existing: [TaskResultRow], context: JobContext) throws -> (any JobController)? { nil }
}

/// What a job controller may use of the coordinator.
public struct JobContext: Sendable {
    public let store: ClusterStore
    public let blobs: BlobStore
    public let tracking: TrackingStore
    public let registry: ModelRegistry
    public let dataDirectory: URL
    /// Starts pipelines on a job's behalf (drift starts retraining); nil when the
    /// coordinator runs none.
    public var pipelines: (any PipelineTriggering)?

    public init(store: ClusterStore, blobs: BlobStore, tracking: TrackingStore, registry: ModelRegistry, dataDirectory: URL,
                pipelines: (any PipelineTriggering)? = nil) {
        self.store = store
        self.blobs = blobs
        self.tracking = tracking
        self.registry = registry
        self.dataDirectory = dataDirectory
        self.pipelines = pipelines
    }

    public var features: FeatureStore { FeatureStore(store) }
}

/// How a job starts a pipeline: drift-triggered retraining goes through here.
public protocol PipelineTriggering: Sendable {
    /// Starts the configured retraining pipeline because of drift report `reportID`,
    /// unless one was started for drift within the debounce interval. Returns the new
    /// run's id, or nil when debounced (the reason is logged and recorded).
    func retrainForDrift(reportID: String, jobID: String) throws -> String?
}

/// What a controller wants done after a task ended: tasks to add to the job, and writes
/// that belong with the task's result — applied in the same transaction, so the job's
/// records (e.g. a tracked run) can never disagree with its results after a crash.
public struct JobDirective {
    public var tasks: [PlannedTask]
    public var record: (@Sendable (Database) throws -> Void)?
    /// What to store as the task's result instead of the worker's output (a kind whose
    /// output carries a large payload stores the payload elsewhere, once); nil = as sent.
    public var storedOutput: Data?

    public init(tasks: [PlannedTask] = [], record: (@Sendable (Database) throws -> Void)? = nil, storedOutput: Data? = nil) {
        self.tasks = tasks
        self.record = record
        self.storedOutput = storedOutput
    }
}

/// Per-job logic of an adaptive kind, beyond splitting into tasks. Called on the
/// coordinator's core event loop (keep it quick); ``finish(results:)`` runs off the loop.
public protocol JobController: AnyObject {
    /// A running task's progress. Return false to stop it early (its result so far is kept).
    func progress(index: Int, step: Int, metrics: [String: Double]) -> Bool
    /// Checks a result before it is accepted; a result that throws fails its task for good
    /// with that error instead of being stored as a success.
    func validate(output: Data) throws
    /// A task's result: tasks to add, and writes to store with the result.
    func completed(index: Int, output: Data) -> JobDirective
    /// A task failed for good: tasks to add (e.g. another trial), and writes to store
    /// with the failure.
    func failed(index: Int, error: String) -> JobDirective
    /// Once every task has ended: the job's summary (heavy work such as evaluating and
    /// promoting the winner belongs here).
    func finish(results: [TaskResultRow]) throws -> Data
    /// How many tasks the job expects in all while it grows (0 if unknown).
    var plannedTotal: Int { get }
}

extension JobController {
    public var plannedTotal: Int { 0 }
}

/// The planners of every job kind this coordinator runs.
public struct JobPlanners: Sendable {
    private var byKind: [String: any JobPlanner]

    public init(_ planners: [any JobPlanner]) {
        byKind = Dictionary(uniqueKeysWithValues: planners.map { ($0.kind, $0) })
    }

    public var kinds: [String] { byKind.keys.sorted() }

    /// The descriptors of every kind planned here.
    public var descriptors: [AnyJobKind] { kinds.compactMap { byKind[$0]?.descriptor } }

    public func planner(for kind: String) throws -> any JobPlanner {
        guard let planner = byKind[kind] else {
            throw WireError.invalidArgument("unknown job kind \"\(kind)\"; this coordinator runs: \(kinds.joined(separator: ", "))")
        }
        return planner
    }
}
