import Foundation
import NIOCore
import NIOPosix
import Wire

/// The operator's typed view of a coordinator: every call is one request over an
/// authenticated connection, and coordinator refusals surface as ``WireError``.
public final class OperatorClient: @unchecked Sendable {
    private let client: WireClient

    public static func connect(host: String, port: Int, identity: TLSIdentity, group: EventLoopGroup) async throws -> OperatorClient {
        var hello = WireHello()
        hello.protocolVersion = WireProtocol.version
        hello.role = identity.role?.wire ?? .operator
        hello.name = identity.name
        hello.binaryVersion = WireProtocol.binaryVersion
        let client = try await WireClient.connect(host: host, port: port, identity: identity, hello: hello, group: group)
        return OperatorClient(client: client)
    }

    init(client: WireClient) { self.client = client }

    public func close() { client.close() }

    public func submit(_ spec: WireJobSpec) async throws -> WireJobAccepted {
        var submit = WireSubmitJob()
        submit.spec = spec
        guard case let .jobAccepted(accepted) = try await client.request(.submitJob(submit), timeout: .minutes(10)) else { throw unexpected("SubmitJob") }
        return accepted
    }

    public func job(_ id: String) async throws -> WireJobSummary {
        guard case let .job(job) = try await client.request(.getJob(.with { $0.jobID = id })) else { throw unexpected("GetJob") }
        return job
    }

    public func jobs(limit: Int = 50) async throws -> [WireJobSummary] {
        guard case let .jobList(list) = try await client.request(.listJobs(.with { $0.limit = UInt32(limit) })) else { throw unexpected("ListJobs") }
        return list.jobs
    }

    public func workers() async throws -> [WireWorkerInfo] {
        guard case let .workerList(list) = try await client.request(.listWorkers(WireListWorkers())) else { throw unexpected("ListWorkers") }
        return list.workers
    }

    public func cancel(_ id: String) async throws -> WireJobSummary {
        guard case let .job(job) = try await client.request(.cancelJob(.with { $0.jobID = id })) else { throw unexpected("CancelJob") }
        return job
    }

    public func results(_ id: String) async throws -> [WireTaskResult] {
        guard case let .taskResults(list) = try await client.request(.getTaskResults(.with { $0.jobID = id }), timeout: .minutes(5)) else { throw unexpected("GetTaskResults") }
        return list.results
    }

    /// Polls the job until it ends, calling `progress` after every poll.
    public func follow(_ id: String, every interval: Duration = .milliseconds(400), progress: (WireJobSummary) -> Void) async throws -> WireJobSummary {
        while true {
            let summary = try await job(id)
            progress(summary)
            if summary.state.isTerminal { return summary }
            try await Task.sleep(for: interval)
        }
    }

    private func unexpected(_ request: String) -> WireError {
        .malformedFrame(reason: "the coordinator answered \(request) with an unexpected message")
    }
}

extension WireJobState {
    public var isTerminal: Bool { self == .succeeded || self == .failed || self == .cancelled }
}

/// Renders a job's progress as one line: bar, done/total, rate, ETA.
public struct ProgressLine {
    private let startedAt = Date()
    private var firstDone: UInt32?

    public init() {}

    public mutating func render(_ s: WireJobSummary, width: Int = 30) -> String {
        let total = max(1, Int(s.total))
        let finished = Int(s.done + s.failed)
        let filled = min(width, finished * width / total)
        let bar = String(repeating: "█", count: filled) + String(repeating: "░", count: width - filled)
        if firstDone == nil { firstDone = s.done }
        let elapsed = max(0.001, Date().timeIntervalSince(startedAt))
        let rate = Double(Int(s.done) - Int(firstDone ?? 0)) / elapsed
        var eta = "--:--"
        if rate > 0 {
            let left = Double(total - finished) / rate
            eta = String(format: "%d:%02d", Int(left) / 60, Int(left) % 60)
        }
        let pct = 100 * finished / total
        var line = "\(bar) \(finished)/\(s.total) \(pct)%  \(String(format: "%.0f", rate)) tasks/s  ETA \(eta)  running \(s.running)"
        if s.retries > 0 { line += "  retries \(s.retries)" }
        if s.failed > 0 { line += "  failed \(s.failed)" }
        return line
    }
}
