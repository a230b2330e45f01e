import Foundation

/// The polling loop behind `--follow`, apart from the connection so that its give-up rule
/// is testable: refusals from the coordinator (unknown job, forbidden) end it at once,
/// while failures to reach the coordinator are retried up to ``maxFailedPolls`` in a row.
public struct JobFollower: Sendable {
    public static let defaultMaxFailedPolls = 5

    public var id: String
    public var interval: Duration
    public var maxFailedPolls: Int

    public init(id: String, interval: Duration = .milliseconds(400), maxFailedPolls: Int = Self.defaultMaxFailedPolls) {
        self.id = id
        self.interval = interval
        self.maxFailedPolls = max(1, maxFailedPolls)
    }

    /// The error `follow` ends with when the coordinator stopped answering.
    public static func unreachable(job id: String, polls: Int, lastError: Error) -> WireError {
        .unreachable("lost the coordinator while following job \(id): \(polls) polls in a row failed (last: \(lastError)); the job keeps running if the coordinator does. Check that the coordinator is running and reachable, then follow again with `coordinator job \(id) --follow`")
    }

    public func run(poll: () async throws -> WireJobSummary, progress: (WireJobSummary) -> Void) async throws -> WireJobSummary {
        var failures = 0
        while true {
            do {
                let summary = try await poll()
                failures = 0
                progress(summary)
                if summary.state.isTerminal { return summary }
            } catch let error where Self.isConnectivity(error) {
                failures += 1
                if failures >= maxFailedPolls { throw Self.unreachable(job: id, polls: failures, lastError: error) }
            }
            try await Task.sleep(for: interval)
        }
    }

    /// Whether `error` says the coordinator could not be reached or did not answer, as
    /// opposed to an answer refusing the request.
    public static func isConnectivity(_ error: Error) -> Bool {
        switch error as? WireError {
        case let .remote(code, _)?:
            // A coordinator shutting down is about to be gone; anything else it says is
            // its answer.
            return code == .shuttingDown
        case .forbidden?, .unauthenticated?, .notFound?, .invalidArgument?, .versionMismatch?:
            return false
        default:
            return !(error is CancellationError)
        }
    }
}
