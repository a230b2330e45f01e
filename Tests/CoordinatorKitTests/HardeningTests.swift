import Foundation
import GRDB
import Logging
import NIOCore
import NIOPosix
import Testing
import Wire
import WorkerKit
@testable import CoordinatorKit

/// Defects found from outside (issue 8): results bound to leases, worker identity from the
/// certificate, a store that stops being writable, limits on peers that never authenticate.
/// Inside the serialized SecurityTests: its coordinators share the process-wide metrics
/// registry with the metrics test, which must not see their gauges.
extension SecurityTests {
@Suite(.serialized, .timeLimit(.minutes(2))) struct HardeningTests {
    static func start(_ configure: (inout CoordinatorSettings) -> Void = { _ in }) async throws -> InProcessCoordinator {
        let cluster = try LocalCluster.temporary(prefix: "tower-harden")
        let ca = try cluster.issueCertificates(workers: ["w1", "w2"])
        var settings = cluster.coordinatorSettings()
        settings.leaseTimeoutMs = 1500
        settings.heartbeatIntervalMs = 200
        settings.connectionLimits.handshake_timeout_seconds = 60
        configure(&settings)
        var logger = Logger(label: "test")
        logger.logLevel = .critical
        let service = try CoordinatorService(settings: settings, group: MultiThreadedEventLoopGroup.singleton, logger: logger)
        try await service.start()
        return InProcessCoordinator(cluster: cluster, ca: ca, service: service)
    }

    /// A real worker agent in this process.
    static func runWorker(_ c: InProcessCoordinator, _ name: String, slots: Int = 2) throws -> (WorkerAgent, Task<Void, Error>) {
        var config = WorkerConfig(host: "127.0.0.1", port: c.port, identity: try c.cluster.identity(name), name: name, slots: slots,
                                  cacheDirectory: c.cluster.directory.appendingPathComponent("cache-\(name)"))
        config.backoffInitialMs = 50
        config.backoffMaxMs = 200
        var logger = Logger(label: "worker")
        logger.logLevel = .critical
        let agent = try WorkerAgent(config: config, group: MultiThreadedEventLoopGroup.singleton, logger: logger)
        return (agent, Task { try await agent.run() })
    }

    /// A worker connection without an agent: the test answers (or forges) results itself.
    /// It sends no heartbeats, so its coordinator needs a long lease.
    static func rawWorker(_ c: InProcessCoordinator, _ name: String) async throws -> (WireClient, AssignmentBox) {
        let assigned = AssignmentBox()
        let client = try await WireClient.connect(host: "127.0.0.1", port: c.port, identity: try c.cluster.identity(name),
                                                  hello: c.hello(.worker, name: name), group: MultiThreadedEventLoopGroup.singleton,
                                                  onMessage: { envelope in if case let .tasks(batch) = envelope.body { assigned.add(batch.tasks) } })
        return (client, assigned)
    }

    static func echo(tasks: Int, sleepMs: Int) throws -> WireJobSpec {
        var spec = WireEchoSpec()
        spec.tasks = UInt32(tasks)
        spec.payloadBytes = 64
        spec.sleepMs = UInt32(sleepMs)
        var job = WireJobSpec()
        job.kind = JobKind.echo
        job.spec = try spec.serializedData()
        return job
    }

    static func waitUntil(_ what: String, _ condition: () async throws -> Bool) async throws {
        for _ in 0..<600 {
            if try await condition() { return }
            try await Task.sleep(for: .milliseconds(50))
        }
        throw WireError.timedOut(what: what)
    }

    // MARK: Results bound to leases (item 3) and identity (item 4)

    @Test func aSecondWorkerCertificateCannotForgeAResult() async throws {
        // The raw clients below send no heartbeats: a long lease keeps w1 from being
        // dropped as silent on a busy machine.
        let c = try await Self.start { s in
            s.leaseTimeoutMs = 120_000
            s.heartbeatIntervalMs = 5_000
        }
        defer { Task { await c.stop() } }
        let (w1, assigned) = try await Self.rawWorker(c, "w1")
        defer { w1.close() }
        let op = try await c.operatorClient()
        defer { op.close() }
        let job = try await op.submit(try Self.echo(tasks: 1, sleepMs: 0)).jobID
        try await Self.waitUntil("the task to reach w1") { assigned.tasks.count == 1 }
        let task = assigned.tasks[0]

        // w2 has a valid worker certificate but was never given the task.
        let w2 = try await c.connect("w2", role: .worker)
        defer { w2.close() }
        var forged = WireTaskOutcome()
        forged.taskID = task.taskID
        forged.attempt = task.attempt
        forged.output = Data("forged".utf8)
        w2.send(.results(.with { $0.outcomes = [forged] }))
        try await Self.waitUntil("the forged result to be refused") {
            try await c.service.core.loop.submit { c.service.core.refusedResultCount }.get() == 1
        }
        #expect(try await op.job(job).done == 0)

        // The lease holder's result is the one stored.
        var real = WireTaskOutcome()
        real.taskID = task.taskID
        real.attempt = task.attempt
        real.output = Data("real".utf8)
        w1.send(.results(.with { $0.outcomes = [real] }))
        let end = try await op.follow(job, every: .milliseconds(50)) { _ in }
        #expect(end.done == 1)
        c.service.core.flushStore()
        let rows = try c.service.core.store.results(job: job)
        #expect(rows.map(\.output) == [Data("real".utf8)])
        #expect(rows.map(\.worker) == ["w1"])
    }

    @Test func aHelloNamingAnotherWorkerIsRefusedAndTheConnectionClosed() async throws {
        let c = try await Self.start()
        defer { Task { await c.stop() } }
        do {
            _ = try await WireClient.connect(host: "127.0.0.1", port: c.port, identity: try c.cluster.identity("w2"),
                                             hello: c.hello(.worker, name: "w1"), group: MultiThreadedEventLoopGroup.singleton)
            Issue.record("a worker posing as another was accepted")
        } catch let WireError.remote(code, message) {
            #expect(code == .forbidden)
            #expect(message == "forbidden for role worker: Hello names \"w1\" but the certificate was issued to \"w2\"; drop --name or issue a certificate for \"w1\"")
        }
    }

    @Test func aHelloClaimingAnotherRoleClosesTheConnection() async throws {
        let c = try await Self.start()
        defer { Task { await c.stop() } }
        let raw = try await RawTLSClient.connect(port: c.port, identity: try c.cluster.identity("w1"))
        try await raw.write(WireEnvelope(requestID: 7, .hello(c.hello(.operator, name: "w1"))))
        let answer = try await raw.next()
        guard case let .error(frame) = answer?.body else { Issue.record("expected an error frame, got \(String(describing: answer))"); return }
        #expect(answer?.requestID == 7)
        #expect(frame.code == .forbidden)
        #expect(await raw.waitUntilClosed())
    }

    @Test func anUnknownMessageIsAnsweredWithItsRequestID() async throws {
        let c = try await Self.start()
        defer { Task { await c.stop() } }
        let raw = try await RawTLSClient.connect(port: c.port, identity: try c.cluster.identity("operator"))
        try await raw.write(WireEnvelope(requestID: 1, .hello(c.hello(.operator, name: "operator"))))
        _ = try await raw.next()
        // Field 1 = request id 42, field 999 = a body this build does not know.
        var bytes: [UInt8] = [0x08, 42, 0xBA, 0x3E, 0x00]
        bytes = withUnsafeBytes(of: UInt32(bytes.count).bigEndian) { Array($0) } + bytes
        try await raw.write(bytes)
        let answer = try await raw.next()
        guard case let .error(frame) = answer?.body else { Issue.record("expected an error frame"); return }
        #expect(answer?.requestID == 42)
        #expect(frame.code == WireError.unknownMessage.errorFrame.code)
    }

    // MARK: A store that cannot be written (item 2)

    @Test func aStoreThatTurnsReadOnlyMidJobRefusesResultsAndLosesNothing() async throws {
        let c = try await Self.start()
        defer { Task { await c.stop() } }
        let (agent, run) = try Self.runWorker(c, "w1", slots: 2)
        defer { agent.drain(); run.cancel() }
        let op = try await c.operatorClient()
        defer { op.close() }
        let core = c.service.core
        let job = try await op.submit(try Self.echo(tasks: 40, sleepMs: 30)).jobID
        try await Self.waitUntil("a few results") { try await op.job(job).done >= 5 }

        // The writer's connection refuses writes from now on, as a read-only file would.
        try await core.store.pool.writeWithoutTransaction { db in try db.execute(sql: "PRAGMA query_only = 1") }
        try await Self.waitUntil("the coordinator to say the store cannot be written") {
            try await op.job(job).error.contains("cannot be written")
        }
        let summary = try await op.job(job)
        #expect(summary.error.hasPrefix("the store \(core.store.path) cannot be written"))
        #expect(summary.error.hasSuffix("results are refused until it recovers — check the disk and the file's permissions"))
        try await Self.waitUntil("a result to be refused") { try await core.loop.submit { core.resultsRefusedUnstored }.get() > 0 }
        #expect(summary.state == .running)

        try await core.store.pool.writeWithoutTransaction { db in try db.execute(sql: "PRAGMA query_only = 0") }
        let end = try await op.follow(job, every: .milliseconds(100)) { _ in }
        #expect(end.state == .succeeded)
        #expect(end.done == 40)
        #expect(end.error == "")
        let rows = try core.store.results(job: job)
        #expect(rows.count == 40)
        #expect(rows.allSatisfy { $0.state == .done && $0.resultCount == 1 })
        #expect(try core.store.job(job)?.state == .succeeded)
    }

    // MARK: Bookkeeping across restarts (item 11)

    @Test func leasesAreStoredSoAttemptsAndRetriesSurviveARestart() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("tower-bookkeeping-\(UUID())")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        let store = try ClusterStore(path: dir.appendingPathComponent("t.sqlite").path)
        let job = JobRow(id: "j", kind: "echo", name: "j", spec: Data(), state: .running, total: 3, maxAttempts: 3,
                         createdAt: Date(), finishedAt: nil, error: nil, summary: nil, submittedBy: "t")
        let ids = try store.insertJob(job, tasks: [PlannedTask(input: Data()), PlannedTask(input: Data()), PlannedTask(input: Data())])
        try store.apply([
            .leased(task: ids[0], attempts: 1, worker: "w1"),
            .leased(task: ids[1], attempts: 1, worker: "w1"),
            .attemptFailed(task: ids[1], attempts: 1, error: "lost"),
            .leased(task: ids[1], attempts: 2, worker: "w2"),
            .done(task: ids[0], attempts: 1, output: Data(), worker: "w1", durationUs: 1),
        ])
        let pending = try store.pendingTasks(job: "j")
        #expect(pending.map(\.attempts) == [2, 0])
        #expect(pending.map(\.leasedTo) == ["w2", nil])
        // One retry spent on task 1, and the lease lost with the coordinator is another.
        #expect(try store.taskCounts(job: "j").retries == 2)
        // A redelivered result never lowers the attempts recorded.
        try store.apply([.done(task: ids[1], attempts: 1, output: Data(), worker: "w2", durationUs: 1)])
        #expect(try store.results(job: "j").map(\.attempts) == [1, 2, 0])
    }

    // MARK: Peers that never authenticate (item 5)

    @Test func silentConnectionsAndHalfHandshakesAreClosedAndTheClusterKeepsWorking() async throws {
        let c = try await Self.start { s in
            s.connectionLimits.handshake_timeout_seconds = 1
            s.connectionLimits.max_unauthenticated = 120
            s.connectionLimits.max_unauthenticated_per_address = 100
        }
        defer { Task { await c.stop() } }
        // From another loopback address than the workers and operators use.
        var flood: [Int32] = []
        defer { flood.forEach { close($0) } }
        for i in 0..<300 {
            guard let fd = RawSocket.connect(from: "127.0.0.2", to: c.port) else { continue }
            if i % 3 == 0 {
                // The start of a TLS ClientHello record, then nothing.
                _ = [UInt8]([0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00]).withUnsafeBytes { send(fd, $0.baseAddress, $0.count, 0) }
            }
            flood.append(fd)
        }
        #expect(flood.count >= 100)

        // During the flood a worker and an operator still get in, and a job runs.
        let (agent, run) = try Self.runWorker(c, "w1", slots: 2)
        defer { agent.drain(); run.cancel() }
        let op = try await c.operatorClient()
        defer { op.close() }
        try await Self.waitUntil("the worker to join") { try await op.workers().count == 1 }
        let job = try await op.submit(try Self.echo(tasks: 20, sleepMs: 0)).jobID
        let end = try await op.follow(job, every: .milliseconds(50)) { _ in }
        #expect(end.state == .succeeded)

        // Every flood connection is closed by the coordinator: accepted ones at the
        // handshake deadline, those over the cap at once.
        try await Self.waitUntil("every silent connection to be closed") { flood.allSatisfy(RawSocket.isClosedByPeer) }
        #expect(c.service.clusterConnections.unauthenticatedCount == 0)
    }

    @Test func aFrameThatStopsArrivingClosesTheConnection() async throws {
        let c = try await Self.start { s in s.connectionLimits.frame_stall_timeout_seconds = 0.5 }
        defer { Task { await c.stop() } }
        let raw = try await RawTLSClient.connect(port: c.port, identity: try c.cluster.identity("operator"))
        try await raw.write(WireEnvelope(requestID: 1, .hello(c.hello(.operator, name: "operator"))))
        _ = try await raw.next()
        // A header announcing 100 bytes, 10 of them, then silence.
        try await raw.write([0, 0, 0, 100] + [UInt8](repeating: 1, count: 10))
        let answer = try await raw.next()
        guard case let .error(frame) = answer?.body else { Issue.record("expected an error frame"); return }
        #expect(frame.code == .malformedFrame)
        #expect(await raw.waitUntilClosed())
    }
}
}

typealias HardeningTests = SecurityTests.HardeningTests

final class AssignmentBox: @unchecked Sendable {
    private let lock = NSLock()
    private var stored: [WireTaskAssignment] = []
    func add(_ tasks: [WireTaskAssignment]) { lock.withLock { stored += tasks } }
    var tasks: [WireTaskAssignment] { lock.withLock { stored } }
}

/// Plain TCP sockets, to play peers that never speak TLS.
enum RawSocket {
    static func connect(from source: String, to port: Int) -> Int32? {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { return nil }
        var local = sockaddr_in()
        local.sin_family = sa_family_t(AF_INET)
        inet_pton(AF_INET, source, &local.sin_addr)
        var remote = sockaddr_in()
        remote.sin_family = sa_family_t(AF_INET)
        remote.sin_port = in_port_t(UInt16(port).bigEndian)
        inet_pton(AF_INET, "127.0.0.1", &remote.sin_addr)
        let ok = withUnsafePointer(to: &local) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } } == 0
            && withUnsafePointer(to: &remote) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } } == 0
        if !ok { close(fd); return nil }
        return fd
    }

    /// True once the peer closed or reset the connection (a read returns 0 or an error).
    static func isClosedByPeer(_ fd: Int32) -> Bool {
        var byte: UInt8 = 0
        let n = recv(fd, &byte, 1, Int32(MSG_DONTWAIT))
        return n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK)
    }
}
