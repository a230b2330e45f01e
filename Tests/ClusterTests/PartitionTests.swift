import Foundation
import Logging
import Testing
import Wire
@testable import CoordinatorKit

/// Liveness at the edges (issue 14) and reconnects during bulk transfers (issue 8), with the
/// real executables.
extension ProcessClusterSuites {
@Suite(.serialized, .timeLimit(.minutes(3))) struct PartitionTests {
    /// A frozen worker loses exactly the leases it held: the tick that drops it hands it
    /// nothing new, so no task spends an attempt on it after its leases expire.
    @Test func aFrozenWorkerGetsNoTaskAfterItsLeasesExpire() async throws {
        let (c, op) = try await ProcessCluster.running(workers: ["w1", "w2"], slots: 2)
        defer { op.close(); c.stopAll() }
        let job = try await c.submitEcho(op, tasks: 60, sleepMs: 300)
        try await c.waitUntil("w1 running tasks") { try await op.workers().first { $0.name == "w1" }?.running ?? 0 > 0 }
        let w1 = c.workers["w1"]!
        kill(w1.processIdentifier, SIGSTOP)
        defer { kill(w1.processIdentifier, SIGCONT) }
        // Results already on the wire may land; after that what w1 holds is fixed.
        try await Task.sleep(for: .milliseconds(500))
        let held = try await op.workers().first { $0.name == "w1" }?.running ?? 0
        #expect(held > 0)
        let end = try await op.follow(job, every: .milliseconds(100)) { _ in }
        #expect(end.state == .succeeded)
        #expect(end.retries == held)
        let log = c.log("coordinator")
        #expect(log.contains("silent for a lease period"))
        #expect(!log.contains("disconnected\""))
    }

    /// After heartbeats go unanswered the worker cuts the connection itself instead of
    /// waiting on a TLS close the frozen coordinator will never answer.
    @Test func aWorkerDropsAFrozenCoordinatorAtTheHeartbeatDeadline() async throws {
        let (c, op) = try await ProcessCluster.running(workers: ["w1"], slots: 1)
        defer { op.close(); c.stopAll() }
        let coordinator = c.coordinator!
        kill(coordinator.processIdentifier, SIGSTOP)
        defer { kill(coordinator.processIdentifier, SIGCONT) }
        try await c.waitUntil("the heartbeat to go unanswered") { c.log("w1").contains("heartbeat unanswered") }
        // A graceful close would hold the connection for NIOSSL's 5 s shutdown timeout;
        // this bound is a hang detector below it, not a speed measurement.
        let deadline = ContinuousClock.now + .seconds(3)
        while !c.log("w1").contains("lost the coordinator; reconnecting") {
            guard ContinuousClock.now < deadline else { Issue.record("the worker kept the dead connection open"); return }
            try await Task.sleep(for: .milliseconds(20))
        }
    }

    /// Operator commands close TLS properly and SIGTERM shuts the coordinator down in
    /// order: its log has no unclean shutdown and nothing scheduled on a dead event loop.
    @Test func aNormalRunLeavesACleanLog() async throws {
        let c = try ProcessCluster(workers: ["w1"])
        defer { c.stopAll() }
        try c.startCoordinator()
        try c.startWorker("w1", slots: 2)
        let op = try await c.operatorClient()
        try await c.waitForWorkers(1, op)
        await op.shutdown()
        let submit = try await c.runOperatorCommand(["submit", "echo", "--tasks", "20", "--follow"])
        #expect(submit.status == 0)
        #expect(submit.output.contains("20 payloads verified"))
        #expect(try await c.runOperatorCommand(["jobs"]).status == 0)
        #expect(try await c.runOperatorCommand(["workers"]).status == 0)
        let worker = c.workers["w1"]!
        worker.terminate()
        try await c.waitForExit(worker)
        let coordinator = c.coordinator!
        coordinator.terminate()
        try await c.waitForExit(coordinator)
        #expect(coordinator.terminationStatus == 0)
        let log = c.log("coordinator")
        #expect(log.contains("coordinator stopped; the store is flushed"))
        #expect(!log.contains("uncleanShutdown"))
        #expect(!log.contains("Cannot schedule tasks"))
        #expect(!c.log("w1").contains("Cannot schedule tasks"))
    }

    /// Killing the coordinator in the middle of a multi-chunk blob transfer: the worker
    /// asks again on the next connection and every task finishes.
    @Test func aBlobTransferCutByACoordinatorCrashStartsOverAndEveryTaskFinishes() async throws {
        let c = try ProcessCluster(workers: ["w1"])
        defer { c.stopAll() }
        try c.startCoordinator()
        try c.startWorker("w1", slots: 2)
        var op = try await c.operatorClient()
        try await c.waitForWorkers(1, op)
        let job = try await c.submitEcho(op, tasks: 6, sleepMs: 0, blobBytes: 128 << 20)
        try await c.waitUntil("the worker to ask for the blob") { c.log("w1").contains("fetching a blob from the coordinator") }
        c.kill9(c.coordinator)
        op.close()
        try c.startCoordinator()
        op = try await c.operatorClient()
        defer { op.close() }
        let end = try await op.follow(job, every: .milliseconds(100)) { _ in }
        #expect(end.state == .succeeded)
        #expect(end.done == 6)
        #expect(c.log("w1").contains("fetching a blob again after reconnecting"))
        let rows = try c.storedResults(job)
        #expect(rows.count == 6 && rows.allSatisfy { $0.state == .done && $0.resultCount == 1 && $0.attempts >= 1 })
    }

    /// A heartbeat answer queued behind a large blob transfer is late, not lost: with a
    /// heartbeat deadline far shorter than the transfer, the worker keeps the connection
    /// (frames keep arriving) and the job finishes at its first attempt.
    @Test func aHeartbeatAnswerStuckBehindABlobTransferDoesNotDropTheConnection() async throws {
        let c = try ProcessCluster(workers: ["w1"])
        defer { c.stopAll() }
        try c.startCoordinator(extra: ["--heartbeat-interval", "0.25"])
        try c.startWorker("w1", slots: 2)
        let op = try await c.operatorClient()
        defer { op.close() }
        try await c.waitForWorkers(1, op)
        let job = try await c.submitEcho(op, tasks: 4, sleepMs: 0, blobBytes: 128 << 20)
        let end = try await op.follow(job, every: .milliseconds(100)) { _ in }
        #expect(end.state == .succeeded)
        #expect(end.retries == 0)
        #expect(!c.log("w1").contains("heartbeat unanswered"))
    }

    /// The one cluster client, reconnecting: a gateway-style subscriber keeps receiving
    /// promotions across a coordinator crash, and a blob download cut by the crash
    /// completes, verified, from the restarted coordinator.
    @Test func aReconnectingClientKeepsItsSubscriptionAndFinishesItsDownload() async throws {
        let c = try ProcessCluster(workers: [])
        defer { c.stopAll() }
        try c.startCoordinator()
        let admin = try await c.operatorClient()
        await admin.shutdown()
        // A registered model and a large artifact, written where the coordinator keeps them.
        let data = c.cluster.data
        let tracking = ModelRegistry(try ClusterStore(path: data.appendingPathComponent("tower.sqlite").path))
        let blob = try #require(FileHandle(forReadingAtPath: "/dev/urandom")).readData(ofLength: 96 << 20)
        let hash = try BlobStore(root: data.appendingPathComponent("blobs")).put(blob)
        for _ in 1...2 { _ = try tracking.registerVersion(model: "match", runID: nil, sha256: hash, metrics: [:]) }

        let messages = RecordedLog()
        let client = try await ClusterClient.connect(host: "127.0.0.1", port: c.port, identity: try c.cluster.identity("operator"),
                                                     group: .singletonMultiThreadedEventLoopGroup, reconnect: true,
                                                     logger: Logger(label: "client") { _ in RecordedLog.Handler(log: messages) })
        defer { client.close() }
        let events = try await client.promotions(models: ["match"])
        let download = Task { try await client.blob(hash) }
        try await Task.sleep(for: .milliseconds(30))
        c.kill9(c.coordinator)
        try c.startCoordinator()

        let fetched = try await download.value
        #expect(fetched == blob)
        #expect(messages.contains("fetching a blob again after reconnecting"))
        #expect(messages.contains("reconnected to the coordinator"))
        // The subscription was renewed on the new connection.
        let op = try await c.operatorClient()
        defer { op.close() }
        _ = try await op.promote("match", version: 2, reason: "after the restart")
        var iterator = events.makeAsyncIterator()
        let event = await iterator.next()
        #expect(event?.model == "match")
        #expect(event?.version == 2)
    }
}
}

/// Log messages kept for a test to read.
final class RecordedLog: @unchecked Sendable {
    private let lock = NSLock()
    private var messages: [String] = []

    func contains(_ text: String) -> Bool { lock.withLock { messages.contains { $0.contains(text) } } }

    struct Handler: LogHandler {
        let log: RecordedLog
        var metadata: Logger.Metadata = [:]
        var logLevel: Logger.Level = .info
        subscript(metadataKey key: String) -> Logger.Metadata.Value? {
            get { metadata[key] }
            set { metadata[key] = newValue }
        }
        func log(level: Logger.Level, message: Logger.Message, metadata: Logger.Metadata?, source: String, file: String, function: String, line: UInt) {
            log.lock.withLock { log.messages.append(message.description) }
        }
    }
}
