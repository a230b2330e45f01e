import Foundation
import Wire

/// The coordinator's side of one job kind: checks a submitted spec and splits it into
/// tasks, then turns the tasks' results into the job's summary when it ends.
public protocol JobPlanner: Sendable {
    var kind: String { get }
    /// Validates `spec` and returns the tasks to run. Errors are ``WireError/invalidArgument(_:)``
    /// naming the field, and nothing is stored when planning fails.
    func plan(spec: Data, blobs: BlobStore) throws -> [PlannedTask]
    /// The kind-specific summary stored with the finished job.
    func summarize(spec: Data, results: [TaskResultRow]) throws -> Data
}

/// The planners of every job kind this coordinator runs.
public struct JobPlanners: Sendable {
    private var byKind: [String: any JobPlanner]

    public init(_ planners: [any JobPlanner]) {
        byKind = Dictionary(uniqueKeysWithValues: planners.map { ($0.kind, $0) })
    }

    public static let builtIn = JobPlanners([EchoPlanner()])

    public var kinds: [String] { byKind.keys.sorted() }

    public func planner(for kind: String) throws -> any JobPlanner {
        guard let planner = byKind[kind] else {
            throw WireError.invalidArgument("unknown job kind \"\(kind)\"; this coordinator runs: \(kinds.joined(separator: ", "))")
        }
        return planner
    }
}
