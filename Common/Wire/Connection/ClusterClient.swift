import Foundation
import Logging
import NIOCore

/// A typed, authenticated connection to the coordinator for every client process: the
/// operator's CLI, the gateway, tools. One request per call; coordinator refusals surface
/// as ``WireError``. Blob downloads are verified against their address.
///
/// With `reconnect`, a lost connection is re-established with backoff and jitter (a
/// gateway must outlive coordinator restarts): subscriptions are renewed and blob
/// downloads in flight start over on the new connection; requests made while it is down
/// fail with ``WireError/connectionClosed`` for the caller to retry.
public final class ClusterClient: @unchecked Sendable {
    public let host: String
    public let port: Int
    private let identity: TLSIdentity
    private let group: EventLoopGroup
    private let keepsReconnecting: Bool
    private let logger: Logger
    private let blobs: BlobFetcher
    private let lock = NSLock()
    private var current: WireClient?
    private var closed = false
    private var subscription: (models: [String], events: AsyncStream<WirePromotionEvent>.Continuation)?

    private init(host: String, port: Int, identity: TLSIdentity, group: EventLoopGroup, reconnect: Bool, logger: Logger) {
        self.host = host
        self.port = port
        self.identity = identity
        self.group = group
        self.keepsReconnecting = reconnect
        self.logger = logger
        self.blobs = BlobFetcher(cache: nil, logger: logger)
    }

    public static func connect(host: String, port: Int, identity: TLSIdentity, group: EventLoopGroup, reconnect: Bool = false,
                               logger: Logger = Logger(label: "tower.client")) async throws -> ClusterClient {
        let client = ClusterClient(host: host, port: port, identity: identity, group: group, reconnect: reconnect, logger: logger)
        try await client.open()
        return client
    }

    /// The role and name come from the certificate: the coordinator checks both.
    private func open() async throws {
        var hello = WireHello()
        hello.protocolVersion = WireProtocol.version
        hello.role = identity.role?.wire ?? .operator
        hello.name = identity.name
        hello.binaryVersion = WireProtocol.binaryVersion
        let connection = try await WireClient.connect(host: host, port: port, identity: identity, hello: hello, group: group,
                                                      onMessage: { [weak self] envelope in self?.handle(envelope) })
        let renew = lock.withLock { () -> [String]? in
            current = connection
            return subscription?.models
        }
        blobs.attach(connection)
        if let renew { _ = try await connection.request(.subscribe(.with { $0.models = renew })) }
        connection.closeFuture.whenComplete { [weak self] _ in self?.lost(connection) }
    }

    private func handle(_ envelope: WireEnvelope) {
        if blobs.receive(envelope) { return }
        if case let .promotionEvent(event) = envelope.body {
            lock.withLock { subscription?.events }?.yield(event)
        }
    }

    private func lost(_ connection: WireClient) {
        blobs.detach(connection)
        let (again, events) = lock.withLock { () -> (Bool, AsyncStream<WirePromotionEvent>.Continuation?) in
            // Without reconnecting, the dead connection stays: requests fail with why it died.
            if current === connection && keepsReconnecting { current = nil }
            return (keepsReconnecting && !closed, closed || !keepsReconnecting ? subscription?.events : nil)
        }
        events?.finish()
        guard again else {
            blobs.failAll(WireError.connectionClosed)
            return
        }
        Task { await self.reconnect() }
    }

    private func reconnect() async {
        var attempt = 0
        while !lock.withLock({ closed }) {
            attempt += 1
            try? await Task.sleep(nanoseconds: UInt64(ReconnectBackoff().delayMs(afterFailures: attempt) * 1_000_000))
            do {
                try await open()
                logger.info("reconnected to the coordinator", metadata: ["coordinator": "\(host):\(port)", "attempt": "\(attempt)"])
                return
            } catch let error as WireError where error.isPermanentRefusal {
                logger.error("the coordinator refused this client; not reconnecting", metadata: ["error": "\(error)"])
                blobs.failAll(error)
                return
            } catch {
                logger.warning("cannot reach the coordinator; retrying", metadata: ["error": "\(error)", "attempt": "\(attempt)"])
            }
        }
    }

    private func connection() throws -> WireClient {
        guard let current = lock.withLock({ current }) else { throw WireError.connectionClosed }
        return current
    }

    /// Sends a request on the current connection.
    public func request(_ body: WireEnvelope.Body, timeout: TimeAmount = .seconds(30)) async throws -> WireEnvelope.Body {
        try await connection().request(body, timeout: timeout)
    }

    /// Every alias move of the named models (all models when empty) from now on, until the
    /// client is closed (renewed across reconnects when the client reconnects).
    public func promotions(models: [String] = []) async throws -> AsyncStream<WirePromotionEvent> {
        let (stream, continuation) = AsyncStream<WirePromotionEvent>.makeStream()
        lock.withLock { subscription = (models, continuation) }
        _ = try await request(.subscribe(.with { $0.models = models }))
        return stream
    }

    /// Downloads a blob (an artifact or model file) by its SHA-256; the bytes are verified
    /// against the address before they are returned.
    public func blob(_ sha256: String) async throws -> Data {
        try await blobs.fetch(sha256)
    }

    /// Closes without waiting.
    public func close() {
        markClosed()?.close()
    }

    /// Closes cleanly (TLS close_notify both ways) and waits: call before the process exits.
    public func shutdown() async {
        await markClosed()?.shutdown()
    }

    /// Stops reconnecting; returns the connection to close.
    private func markClosed() -> WireClient? {
        lock.withLock {
            closed = true
            return current
        }
    }

    public func experiments() async throws -> [WireExperimentInfo] {
        guard case let .experimentList(list) = try await self.request(.listExperiments(WireListExperiments())) else { throw unexpected("ListExperiments") }
        return list.experiments
    }

    /// An experiment's runs: all of them (limit 0), the best `limit` when sorted, else the
    /// most recent; or only `ids`.
    public func runs(experiment: String, sortBy: String = "", ascending: Bool = false, limit: Int = 0, ids: [String] = []) async throws -> [WireRunInfo] {
        try await runPage(experiment: experiment, sortBy: sortBy, ascending: ascending, limit: limit, ids: ids).runs
    }

    /// Like ``runs(experiment:sortBy:ascending:limit:ids:)``, with the experiment's total.
    public func runPage(experiment: String, sortBy: String = "", ascending: Bool = false, limit: Int = 0, ids: [String] = []) async throws -> WireRunList {
        let request = WireListRuns.with {
            $0.experiment = experiment; $0.sortBy = sortBy; $0.ascending = ascending; $0.limit = UInt32(clamping: limit); $0.runIds = ids
        }
        guard case let .runList(list) = try await self.request(.listRuns(request)) else { throw unexpected("ListRuns") }
        return list
    }

    public func rerun(_ runID: String) async throws -> WireJobAccepted {
        guard case let .jobAccepted(accepted) = try await request(.rerunRun(.with { $0.runID = runID }), timeout: .minutes(5)) else { throw unexpected("RerunRun") }
        return accepted
    }

    public func models() async throws -> [WireModelSummary] {
        guard case let .modelList(list) = try await request(.listModels(WireListModels())) else { throw unexpected("ListModels") }
        return list.models
    }

    public func model(_ name: String) async throws -> WireModelDetail {
        guard case let .modelDetail(detail) = try await request(.getModel(.with { $0.name = name })) else { throw unexpected("GetModel") }
        return detail
    }

    public func promote(_ name: String, version: Int, reason: String, alias: String = "champion") async throws -> WireDecisionInfo {
        let request = WirePromote.with { $0.name = name; $0.version = UInt32(version); $0.reason = reason; $0.alias = alias }
        guard case let .promotionResult(result) = try await self.request(.promote(request)) else { throw unexpected("Promote") }
        return result.decision
    }

    public func rollback(_ name: String, reason: String, alias: String = "champion") async throws -> WireDecisionInfo {
        let request = WireRollback.with { $0.name = name; $0.reason = reason; $0.alias = alias }
        guard case let .promotionResult(result) = try await self.request(.rollback(request)) else { throw unexpected("Rollback") }
        return result.decision
    }

    public func submit(_ spec: WireJobSpec) async throws -> WireJobAccepted {
        var submit = WireSubmitJob()
        submit.spec = spec
        guard case let .jobAccepted(accepted) = try await request(.submitJob(submit), timeout: .minutes(10)) else { throw unexpected("SubmitJob") }
        return accepted
    }

    public func job(_ id: String) async throws -> WireJobSummary {
        guard case let .job(job) = try await request(.getJob(.with { $0.jobID = id })) else { throw unexpected("GetJob") }
        return job
    }

    public func jobs(limit: Int = 50) async throws -> [WireJobSummary] {
        guard case let .jobList(list) = try await request(.listJobs(.with { $0.limit = UInt32(clamping: limit) })) else { throw unexpected("ListJobs") }
        return list.jobs
    }

    public func workers() async throws -> [WireWorkerInfo] {
        guard case let .workerList(list) = try await request(.listWorkers(WireListWorkers())) else { throw unexpected("ListWorkers") }
        return list.workers
    }

    public func cancel(_ id: String) async throws -> WireJobSummary {
        guard case let .job(job) = try await request(.cancelJob(.with { $0.jobID = id })) else { throw unexpected("CancelJob") }
        return job
    }

    public func results(_ id: String) async throws -> [WireTaskResult] {
        guard case let .taskResults(list) = try await request(.getTaskResults(.with { $0.jobID = id }), timeout: .minutes(5)) else { throw unexpected("GetTaskResults") }
        return list.results
    }

    /// Polls the job until it ends, calling `progress` after every poll. A poll that fails
    /// for want of the coordinator is retried; after `maxFailedPolls` in a row it gives up
    /// with ``WireError/unreachable(_:)`` instead of polling forever.
    public func follow(_ id: String, every interval: Duration = .milliseconds(400), maxFailedPolls: Int = JobFollower.defaultMaxFailedPolls,
                       progress: (WireJobSummary) -> Void) async throws -> WireJobSummary {
        try await JobFollower(id: id, interval: interval, maxFailedPolls: maxFailedPolls).run(poll: { try await self.job(id) }, progress: progress)
    }

    // MARK: Feature store

    /// Uploads bytes as a content-addressed blob in 1 MiB chunks (the writes wait for the
    /// socket, so a large file never sits whole in the send buffer); returns its address
    /// once the coordinator has verified and stored it.
    public func upload(_ data: Data) async throws -> String {
        let hash = BlobStore.sha256Hex(data)
        let connection = try connection()
        let chunkBytes = WireProtocol.blobChunkBytes
        var offset = 0
        repeat {
            let end = min(data.count, offset + chunkBytes)
            var chunk = WireBlobChunk()
            chunk.sha256 = hash
            chunk.offset = UInt64(offset)
            chunk.totalSize = UInt64(data.count)
            chunk.data = data.subdata(in: offset..<end)
            chunk.last = end == data.count
            if chunk.last {
                _ = try await connection.request(.blobChunk(chunk), timeout: .minutes(5))
            } else {
                let promise = connection.channel.eventLoop.makePromise(of: Void.self)
                connection.send(.blobChunk(chunk), promise: promise)
                try await promise.futureResult.get()
            }
            offset = end
        } while offset < data.count
        return hash
    }

    /// Uploads a CSV file and loads it into the feature store's `table` (users, listings,
    /// events) in one transaction.
    public func ingest(table: String, csv: Data, fileName: String) async throws -> WireIngestResult {
        let hash = try await upload(csv)
        let request = WireIngest.with { $0.table = table; $0.sha256 = hash; $0.fileName = fileName }
        guard case let .ingestResult(result) = try await self.request(.ingest(request), timeout: .minutes(30)) else { throw unexpected("Ingest") }
        return result
    }

    public func buildTrainingSet(_ definition: WireTrainingSetDefinition) async throws -> WireTrainingSetInfo {
        guard case let .trainingSet(info) = try await request(.buildTrainingSet(.with { $0.definition = definition }), timeout: .minutes(30)) else {
            throw unexpected("BuildTrainingSet")
        }
        return info
    }

    public func recommendations(user: UInt64, job: String = "") async throws -> WireRecommendationList {
        guard case let .recommendationList(list) = try await request(.getRecommendations(.with { $0.userID = user; $0.jobID = job })) else {
            throw unexpected("GetRecommendations")
        }
        return list
    }

    public func send(events: [WireFeedbackEvent]) async throws -> WireEventsAccepted {
        guard case let .eventsAccepted(accepted) = try await request(.events(.with { $0.events = events })) else { throw unexpected("EventBatch") }
        return accepted
    }

    // MARK: Pipelines and drift

    public func pipelines() async throws -> [WirePipelineInfo] {
        guard case let .pipelineList(list) = try await request(.listPipelines(WireListPipelines())) else { throw unexpected("ListPipelines") }
        return list.pipelines
    }

    public func pipelineRuns(_ pipeline: String, limit: Int = 20) async throws -> [WirePipelineRunInfo] {
        let request = WireListPipelineRuns.with { $0.pipeline = pipeline; $0.limit = UInt32(clamping: limit) }
        guard case let .pipelineRunList(list) = try await self.request(.listPipelineRuns(request)) else { throw unexpected("ListPipelineRuns") }
        return list.runs
    }

    public func trigger(pipeline: String, reason: String) async throws -> WirePipelineRunInfo {
        guard case let .pipelineRun(run) = try await request(.triggerPipeline(.with { $0.pipeline = pipeline; $0.reason = reason })) else {
            throw unexpected("TriggerPipeline")
        }
        return run
    }

    public func driftReport(_ id: String = "") async throws -> WireDriftReportInfo {
        guard case let .driftReport(report) = try await request(.getDriftReport(.with { $0.reportID = id })) else { throw unexpected("GetDriftReport") }
        return report
    }

    /// The marketing shorts rendered so far, newest first.
    public func shorts() async throws -> [WireShortInfo] {
        guard case let .shortList(list) = try await request(.listShorts(WireListShorts())) else { throw unexpected("ListShorts") }
        return list.shorts
    }

    /// One short; its video is the blob `sha256` (fetch it with ``blob(_:)``).
    public func short(_ id: String) async throws -> WireShortInfo {
        guard case let .short(info) = try await request(.getShort(.with { $0.id = id })) else { throw unexpected("GetShort") }
        return info
    }

    /// Publishes a short to the configured platforms (or, with `dryRun`, says what that
    /// would do); the short as it ends up, with one action line per platform.
    public func approveShort(_ id: String, dryRun: Bool) async throws -> WireShortInfo {
        let approve = WireApproveShort.with { $0.id = id; $0.dryRun = dryRun }
        guard case let .short(info) = try await request(.approveShort(approve), timeout: .minutes(30)) else { throw unexpected("ApproveShort") }
        return info
    }

    private func unexpected(_ request: String) -> WireError {
        .malformedFrame(reason: "the coordinator answered \(request) with an unexpected message")
    }
}

extension WireJobState {
    public var isTerminal: Bool { self == .succeeded || self == .failed || self == .cancelled }
}
