import Foundation
import Logging
import Metrics
import NIOCore
import NIOPosix
import Wire

/// How a worker reaches its coordinator and what it offers.
public struct WorkerConfig: Sendable {
    public var host: String
    public var port: Int
    public var identity: TLSIdentity
    public var name: String
    public var slots: Int
    public var labels: [String: String] = [:]
    public var cacheDirectory: URL
    public var maxFrameBytes = WireFraming.defaultMaxFrameBytes
    public var backoffInitialMs = 200
    public var backoffMaxMs = 10_000

    public init(host: String, port: Int, identity: TLSIdentity, name: String, slots: Int, cacheDirectory: URL) {
        self.host = host
        self.port = port
        self.identity = identity
        self.name = name
        self.slots = slots
        self.cacheDirectory = cacheDirectory
    }

    /// A per-user cache, one per certificate name: never the working directory (which
    /// litters checkouts), and two workers on one host do not share a cache directory.
    public static func defaultCacheDirectory(name: String, environment: [String: String] = ProcessInfo.processInfo.environment) -> URL {
        let base: URL
        if let cache = environment["XDG_CACHE_HOME"], !cache.isEmpty {
            base = URL(fileURLWithPath: cache)
        } else {
            let home = environment["HOME"].flatMap { $0.isEmpty ? nil : $0 } ?? NSHomeDirectory()
            base = URL(fileURLWithPath: home).appendingPathComponent(".cache")
        }
        return base.appendingPathComponent("tower/worker-\(name)")
    }
}

/// A worker process's agent: keeps a connection to the coordinator (reconnecting with
/// exponential backoff and jitter), runs the tasks it is given concurrently up to its
/// slots, renews their leases with heartbeats, and sends results in batches.
///
/// Guarantees: a finished task's result is kept until a connection accepts it, so a
/// coordinator restart or a network cut loses no finished work; after ``drain()`` no new
/// task starts, running ones finish and report, then ``run()`` returns.
public final class WorkerAgent: @unchecked Sendable {
    public let config: WorkerConfig
    private let runners: [String: any TaskRunner]
    /// What this worker advertises in every Hello.
    public let capabilities: WireCapabilities
    private let cache: BlobStore
    private let group: EventLoopGroup
    private let logger: Logger

    private let lock = NSLock()
    private var client: WireClient?
    private var running: [TaskID: Task<Void, Never>] = [:]
    /// Leased tasks beyond our slots (the coordinator prefetches), started as slots free up.
    private var backlog: [WireTaskAssignment] = []
    private var cancelled: Set<TaskID> = []
    private var unsent: [WireTaskOutcome] = []
    private var unsentProgress: [WireTaskProgress] = []
    private var stopRequested: Set<TaskID> = []
    private var flushScheduled = false
    private var draining = false
    /// Blobs tasks wait for, fetched once into the cache; survives reconnects.
    private let blobs: BlobFetcher
    private var idle: [CheckedContinuation<Void, Never>] = []

    /// What `worker --metrics-listen` exports.
    public let metrics: WorkerMetrics

    public init(config: WorkerConfig, runners: [any TaskRunner] = TaskRunners.builtIn, group: EventLoopGroup, logger: Logger,
                metrics: WorkerMetrics = WorkerMetrics()) throws {
        self.config = config
        self.metrics = metrics
        self.runners = Dictionary(uniqueKeysWithValues: runners.map { ($0.kind, $0) })
        // Probed once: tools do not come and go while a worker runs.
        let capabilities = WireCapabilities.probeHost(slots: config.slots, labels: config.labels, jobKinds: runners.map(\.kind).sorted(),
                                                      tools: runners.flatMap(\.descriptor.requiredTools))
        self.capabilities = capabilities
        logger.info("worker capabilities", metadata: ["kinds": "\(capabilities.jobKinds.joined(separator: ","))",
                                                      "tools": "\(capabilities.tools.map { "\($0) (\(capabilities.toolVersions[$0] ?? "?"))" }.joined(separator: ", "))"])
        self.cache = try BlobStore(root: config.cacheDirectory)
        self.blobs = BlobFetcher(cache: cache, logger: logger)
        self.group = group
        self.logger = logger
    }

    // MARK: Connection loop

    /// Connects and serves until drained. Throws only for errors no retry can fix: a
    /// refused or revoked certificate, or another protocol version.
    public func run() async throws {
        var failures = 0
        while true {
            if isDrained { break }
            do {
                let client = try await connect()
                failures = 0
                try? await client.closeFuture.get()
                lock.withLock { if self.client === client { self.client = nil } }
                metrics.connected.record(0)
                // Blob transfers in flight died with the connection: they start over on the
                // next one (the waiting tasks keep waiting, not hang).
                blobs.detach(client)
                if isDrained { break }
                logger.warning("lost the coordinator; reconnecting", metadata: ["coordinator": "\(config.host):\(config.port)"])
                metrics.reconnects.increment()
            } catch let error as WireError where error.isPermanentRefusal {
                logger.error("the coordinator refused this worker", metadata: ["error": "\(error)"])
                throw error
            } catch {
                if lock.withLock({ draining }) && runningCount == 0 { break }
                logger.warning("cannot reach the coordinator", metadata: ["error": "\(error)"])
            }
            failures += 1
            let delay = ReconnectBackoff(initialMs: config.backoffInitialMs, maxMs: config.backoffMaxMs).delayMs(afterFailures: failures)
            logger.info("retrying", metadata: ["in_ms": "\(Int(delay))", "attempt": "\(failures)"])
            try? await Task.sleep(nanoseconds: UInt64(delay * 1_000_000))
        }
        await waitUntilIdle()
        logger.info("worker drained and stopped")
    }

    private func connect() async throws -> WireClient {
        var hello = WireHello()
        hello.protocolVersion = WireProtocol.version
        hello.role = .worker
        hello.name = config.name
        hello.binaryVersion = WireProtocol.binaryVersion
        hello.capabilities = capabilities
        let client = try await WireClient.connect(
            host: config.host, port: config.port, identity: config.identity, hello: hello,
            maxFrameBytes: config.maxFrameBytes, group: group,
            onMessage: { [weak self] envelope in self?.handle(envelope) })
        let (pending, isDraining) = lock.withLock { () -> ([WireTaskOutcome], Bool) in
            self.client = client
            let pending = self.unsent
            self.unsent.removeAll()
            return (pending, self.draining)
        }
        metrics.connected.record(1)
        logger.info("connected to the coordinator", metadata: ["session": "\(client.welcome.sessionID)", "redelivered": "\(pending.count)"])
        if !pending.isEmpty {
            deliver(pending, over: client)
        }
        blobs.attach(client)
        if isDraining { client.send(.drain(WireDrain())) }
        startHeartbeats(client)
        return client
    }

    /// Heartbeats run on the connection's event loop, a thread of their own: a worker
    /// whose cores are busy training must still renew its leases.
    private func startHeartbeats(_ client: WireClient) {
        let interval = TimeAmount.milliseconds(Int64(max(50, Int(client.welcome.heartbeatIntervalMs))))
        client.channel.eventLoop.scheduleRepeatedTask(initialDelay: interval, delay: interval) { [weak self] task in
            guard let self, self.lock.withLock({ self.client === client }) else {
                task.cancel()
                return
            }
            var beat = WireHeartbeat()
            beat.runningTaskIds = self.lock.withLock { Array(self.running.keys) + self.backlog.map(\.taskID) }
            client.requestFuture(.heartbeat(beat), timeout: interval * 3).whenFailure { error in
                guard case WireError.timedOut = error else {
                    // The connection itself failed: it is already closing.
                    task.cancel()
                    return
                }
                // An answer stuck behind a blob transfer is not a dead coordinator: only
                // silence on the whole connection is — checked again one interval later,
                // since a loop that was busy may not have read what already arrived.
                guard client.silence >= interval * 3 else { return }
                client.channel.eventLoop.scheduleTask(in: interval) {
                    guard client.silence >= interval * 4, client.channel.isActive else { return }
                    self.logger.warning("heartbeat unanswered; dropping the connection", metadata: ["error": "\(error)"])
                    task.cancel()
                    // A coordinator that does not answer heartbeats will not answer a TLS
                    // close_notify either: cut the socket and start reconnecting now.
                    client.abort()
                }
            }
        }
    }

    // MARK: Draining

    /// Stops taking tasks; running ones finish and report, then ``run()`` returns.
    public func drain() {
        let (client, count) = lock.withLock { () -> (WireClient?, Int) in
            draining = true
            return (self.client, running.count)
        }
        logger.info("draining: finishing running tasks, accepting none", metadata: ["running": "\(count)"])
        client?.send(.drain(WireDrain()))
        closeIfDrained()
    }

    private var runningCount: Int { lock.withLock { running.count + backlog.count } }

    private var isDrained: Bool {
        lock.withLock { draining && running.isEmpty && backlog.isEmpty && unsent.isEmpty }
    }

    private func closeIfDrained() {
        let client = lock.withLock { () -> WireClient? in
            guard draining, running.isEmpty, backlog.isEmpty, unsent.isEmpty, !flushScheduled else { return nil }
            return self.client
        }
        guard let client else { return }
        // Close after the last results are written: a write queued before close is sent.
        client.channel.eventLoop.execute {
            client.channel.flush()
            client.close()
        }
    }

    private func waitUntilIdle() async {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let now = lock.withLock { () -> Bool in
                if running.isEmpty && backlog.isEmpty { return true }
                idle.append(continuation)
                return false
            }
            if now { continuation.resume() }
        }
    }

    // MARK: Messages

    private func handle(_ envelope: WireEnvelope) {
        switch envelope.body {
        case let .tasks(batch):
            for task in batch.tasks { start(task) }
        case let .cancelTasks(cancel):
            let tasks = lock.withLock { () -> [Task<Void, Never>] in
                let ids = Set(cancel.taskIds)
                if cancel.stopEarly {
                    // Keep the result: the runner sees shouldStop() and returns early.
                    stopRequested.formUnion(ids)
                    return []
                }
                backlog.removeAll { ids.contains($0.taskID) }
                ids.forEach { if running[$0] != nil { cancelled.insert($0) } }
                return cancel.taskIds.compactMap { running[$0] }
            }
            tasks.forEach { $0.cancel() }
            logger.info("tasks cancelled by the coordinator", metadata: ["count": "\(cancel.taskIds.count)", "reason": "\(cancel.reason)"])
        case .blobChunk:
            blobs.receive(envelope)
        case let .error(error):
            if !blobs.receive(envelope) {
                logger.warning("coordinator reported an error", metadata: ["code": "\(error.code.label)", "message": "\(error.message)"])
            }
        default:
            break
        }
    }

    private func start(_ assignment: WireTaskAssignment) {
        guard let runner = runners[assignment.kind] else {
            report(assignment, .failure(TaskError("worker \(config.name) has no runner for job kind \(assignment.kind)", retryable: true)), startedAt: .now())
            return
        }
        // Tasks that arrive after we announced draining were leased before the coordinator
        // read the Drain; running them is cheaper than handing them back (which would cost
        // each an attempt), and the coordinator sends no more after the Drain.
        lock.lock()
        if running.count < config.slots {
            launch(assignment, runner: runner)
        } else {
            backlog.append(assignment)
        }
        lock.unlock()
    }

    /// Starts a runner for `assignment`. Called with the lock held.
    private func launch(_ assignment: WireTaskAssignment, runner: any TaskRunner) {
        let id = assignment.taskID, attempt = assignment.attempt
        let context = TaskContext(
            workerName: config.name,
            blob: { [weak self] hash in
                guard let self else { throw WireError.connectionClosed }
                return try await self.blob(hash)
            },
            report: { [weak self] step, metrics in self?.progress(id, attempt: attempt, step: step, metrics: metrics) },
            // A cancelled task stops the same way a stopped one does: training threads never
            // see Swift task cancellation, but they ask this every iteration.
            shouldStop: { [weak self] in
                guard let self else { return true }
                return self.lock.withLock { self.stopRequested.contains(id) || self.cancelled.contains(id) }
            },
            cacheDirectory: config.cacheDirectory)
        let startedAt = DispatchTime.now()
        running[assignment.taskID] = Task {
            let result: Result<Data, Error>
            do { result = .success(try await runner.run(assignment, context: context)) }
            catch { result = .failure(error) }
            self.report(assignment, result, startedAt: startedAt)
        }
        metrics.running.record(running.count)
    }

    private func report(_ assignment: WireTaskAssignment, _ result: Result<Data, Error>, startedAt: DispatchTime) {
        var outcome = WireTaskOutcome()
        outcome.taskID = assignment.taskID
        outcome.attempt = assignment.attempt
        outcome.durationUs = (DispatchTime.now().uptimeNanoseconds - startedAt.uptimeNanoseconds) / 1000
        switch result {
        case let .success(output):
            outcome.output = output
        case let .failure(error):
            var failure = WireTaskFailure()
            if let taskError = error as? TaskError {
                failure.message = taskError.message
                failure.retryable = taskError.retryable
            } else {
                failure.message = "\(error)"
                failure.retryable = true
            }
            outcome.failure = failure
        }
        let ranFor = DispatchTime.now().uptimeNanoseconds - startedAt.uptimeNanoseconds
        if case .success = result { metrics.finished(kind: assignment.kind, succeeded: true, nanoseconds: ranFor) }
        else { metrics.finished(kind: assignment.kind, succeeded: false, nanoseconds: ranFor) }
        let (client, schedule, wakers) = lock.withLock { () -> (WireClient?, Bool, [CheckedContinuation<Void, Never>]) in
            running[assignment.taskID] = nil
            stopRequested.remove(assignment.taskID)
            while running.count < config.slots, !backlog.isEmpty {
                let next = backlog.removeFirst()
                if let runner = runners[next.kind] { launch(next, runner: runner) }
            }
            metrics.running.record(running.count)
            if cancelled.remove(assignment.taskID) != nil {
                // The coordinator no longer wants this result.
            } else {
                unsent.append(outcome)
            }
            var wakers: [CheckedContinuation<Void, Never>] = []
            if running.isEmpty && backlog.isEmpty { wakers = idle; idle.removeAll() }
            let schedule = !flushScheduled && self.client != nil && !unsent.isEmpty
            if schedule { flushScheduled = true }
            return (self.client, schedule, wakers)
        }
        wakers.forEach { $0.resume() }
        if schedule, let client {
            // Results finished in the same event-loop tick leave as one ResultBatch.
            client.channel.eventLoop.execute { self.flushResults(client) }
        } else {
            closeIfDrained()
        }
    }

    private func flushResults(_ client: WireClient) {
        let outcomes = lock.withLock { () -> [WireTaskOutcome] in
            flushScheduled = false
            guard self.client === client else { return [] }
            let batch = unsent
            unsent.removeAll(keepingCapacity: true)
            return batch
        }
        if !outcomes.isEmpty {
            deliver(outcomes, over: client)
        }
        closeIfDrained()
    }

    /// Queues a progress report; reports made in the same event-loop tick leave together.
    /// Progress is advisory: reports made while disconnected are dropped.
    private func progress(_ id: TaskID, attempt: UInt32, step: Int, metrics: [String: Double]) {
        var p = WireTaskProgress()
        p.taskID = id
        p.attempt = attempt
        p.step = UInt32(step)
        p.metrics = metrics
        let client = lock.withLock { () -> WireClient? in
            guard let client = self.client else { return nil }
            unsentProgress.append(p)
            return unsentProgress.count == 1 ? client : nil
        }
        guard let client else { return }
        client.channel.eventLoop.execute {
            let batch = self.lock.withLock { () -> [WireTaskProgress] in
                defer { self.unsentProgress.removeAll() }
                return self.unsentProgress
            }
            if !batch.isEmpty { client.send(.progress(.with { $0.progress = batch })) }
        }
    }

    /// Sends results; if the connection is already closing they are kept for the next one.
    private func deliver(_ outcomes: [WireTaskOutcome], over client: WireClient) {
        var batch = WireResultBatch()
        batch.outcomes = outcomes
        let promise = client.channel.eventLoop.makePromise(of: Void.self)
        promise.futureResult.whenFailure { [weak self] _ in
            guard let self else { return }
            self.lock.withLock { self.unsent.insert(contentsOf: outcomes, at: 0) }
        }
        client.send(.results(batch), promise: promise)
    }

    // MARK: Blobs

    /// A blob from the local cache, or fetched once from the coordinator however many
    /// tasks ask for it at the same time.
    func blob(_ hash: String) async throws -> Data {
        try await blobs.fetch(hash)
    }
}
