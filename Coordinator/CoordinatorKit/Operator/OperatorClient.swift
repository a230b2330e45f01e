import Foundation
import NIOCore
import NIOPosix
import Wire

/// The operator's typed view of a coordinator: every call is one request over an
/// authenticated connection, and coordinator refusals surface as ``WireError``.
public final class OperatorClient: @unchecked Sendable {
    private var client: WireClient!
    private let downloads = BlobDownloads()

    public static func connect(host: String, port: Int, identity: TLSIdentity, group: EventLoopGroup) async throws -> OperatorClient {
        var hello = WireHello()
        hello.protocolVersion = WireProtocol.version
        hello.role = identity.role?.wire ?? .operator
        hello.name = identity.name
        hello.binaryVersion = WireProtocol.binaryVersion
        let op = OperatorClient()
        let downloads = op.downloads
        op.client = try await WireClient.connect(host: host, port: port, identity: identity, hello: hello, group: group,
                                                 onMessage: { [weak op] envelope in
                                                     if case let .promotionEvent(event) = envelope.body { op?.events?.yield(event) }
                                                     downloads.receive(envelope)
                                                 })
        return op
    }

    private var events: AsyncStream<WirePromotionEvent>.Continuation?

    /// Every alias move of the named models (all models when empty) from now on, until the
    /// connection closes.
    public func promotions(models: [String] = []) async throws -> AsyncStream<WirePromotionEvent> {
        let (stream, continuation) = AsyncStream<WirePromotionEvent>.makeStream()
        events = continuation
        client.closeFuture.whenComplete { _ in continuation.finish() }
        _ = try await client.request(.subscribe(.with { $0.models = models }))
        return stream
    }

    private init() {}

    /// Downloads a blob (an artifact or model file) by its SHA-256; the bytes are verified
    /// against the address before they are returned.
    public func blob(_ sha256: String) async throws -> Data {
        let id = downloads.nextID()
        return try await withCheckedThrowingContinuation { continuation in
            downloads.start(id: id, hash: sha256, continuation: continuation)
            client.send(.blobRequest(.with { $0.sha256 = sha256 }), requestID: id)
        }
    }

    public func runs(experiment: String, sortBy: String = "", ascending: Bool = false) async throws -> [WireRunInfo] {
        let request = WireListRuns.with { $0.experiment = experiment; $0.sortBy = sortBy; $0.ascending = ascending }
        guard case let .runList(list) = try await client.request(.listRuns(request)) else { throw unexpected("ListRuns") }
        return list.runs
    }

    public func rerun(_ runID: String) async throws -> WireJobAccepted {
        guard case let .jobAccepted(accepted) = try await client.request(.rerunRun(.with { $0.runID = runID }), timeout: .minutes(5)) else { throw unexpected("RerunRun") }
        return accepted
    }

    public func models() async throws -> [WireModelSummary] {
        guard case let .modelList(list) = try await client.request(.listModels(WireListModels())) else { throw unexpected("ListModels") }
        return list.models
    }

    public func model(_ name: String) async throws -> WireModelDetail {
        guard case let .modelDetail(detail) = try await client.request(.getModel(.with { $0.name = name })) else { throw unexpected("GetModel") }
        return detail
    }

    public func promote(_ name: String, version: Int, reason: String, alias: String = "champion") async throws -> WireDecisionInfo {
        let request = WirePromote.with { $0.name = name; $0.version = UInt32(version); $0.reason = reason; $0.alias = alias }
        guard case let .promotionResult(result) = try await client.request(.promote(request)) else { throw unexpected("Promote") }
        return result.decision
    }

    public func rollback(_ name: String, reason: String, alias: String = "champion") async throws -> WireDecisionInfo {
        let request = WireRollback.with { $0.name = name; $0.reason = reason; $0.alias = alias }
        guard case let .promotionResult(result) = try await client.request(.rollback(request)) else { throw unexpected("Rollback") }
        return result.decision
    }

    public func close() { client.close() }

    /// Closes cleanly and waits: call before the process exits.
    public func shutdown() async { await client.shutdown() }

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
        guard case let .jobList(list) = try await client.request(.listJobs(.with { $0.limit = UInt32(clamping: limit) })) else { throw unexpected("ListJobs") }
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

    /// Polls the job until it ends, calling `progress` after every poll. A poll that fails
    /// for want of the coordinator is retried; after `maxFailedPolls` in a row it gives up
    /// with ``WireError/unreachable(_:)`` instead of polling forever.
    public func follow(_ id: String, every interval: Duration = .milliseconds(400), maxFailedPolls: Int = JobFollower.defaultMaxFailedPolls,
                       progress: (WireJobSummary) -> Void) async throws -> WireJobSummary {
        try await JobFollower(id: id, interval: interval, maxFailedPolls: maxFailedPolls).run(poll: { try await self.job(id) }, progress: progress)
    }

    private func unexpected(_ request: String) -> WireError {
        .malformedFrame(reason: "the coordinator answered \(request) with an unexpected message")
    }
}

/// Reassembles blobs the coordinator streams back to an operator, by request id.
final class BlobDownloads: @unchecked Sendable {
    private let lock = NSLock()
    private var next: UInt64 = 1 << 62
    private var active: [UInt64: (BlobAssembler, Data, CheckedContinuation<Data, Error>)] = [:]

    func nextID() -> UInt64 { lock.withLock { next += 1; return next } }

    func start(id: UInt64, hash: String, continuation: CheckedContinuation<Data, Error>) {
        lock.withLock { active[id] = (BlobAssembler(hash: hash), Data(), continuation) }
    }

    func receive(_ envelope: WireEnvelope) {
        let id = envelope.requestID
        switch envelope.body {
        case let .blobChunk(chunk):
            let finished: (CheckedContinuation<Data, Error>, Result<Data, Error>)? = lock.withLock {
                guard var (assembler, data, continuation) = active[id] else { return nil }
                guard chunk.sha256 == assembler.hash, chunk.offset == UInt64(data.count) else {
                    active[id] = nil
                    return (continuation, .failure(WireError.malformedFrame(reason: "blob chunk out of order")))
                }
                data.append(chunk.data)
                guard chunk.last else { active[id] = (assembler, data, continuation); return nil }
                active[id] = nil
                let actual = BlobStore.sha256Hex(data)
                _ = assembler
                return (continuation, actual == assembler.hash ? .success(data) : .failure(WireError.blobCorrupt(expected: assembler.hash, actual: actual)))
            }
            if let (continuation, result) = finished { continuation.resume(with: result) }
        case let .error(frame):
            if let entry = lock.withLock({ active.removeValue(forKey: id) }) {
                entry.2.resume(throwing: WireError.remote(code: frame.code, message: frame.message))
            }
        default:
            break
        }
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
