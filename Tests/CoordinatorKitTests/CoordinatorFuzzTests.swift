import Foundation
import Logging
import NIOCore
import NIOPosix
import SwiftProtobuf
import Testing
import Wire
import WorkerKit
@testable import CoordinatorKit

/// The coordinator's message handling and HTTPS API under random input from every role
/// (issue 8, "Fuzzing beyond the frame decoder"). CI runs a few seconds' worth; `make fuzz`
/// runs the same fuzzers at scale through `tower-bench fuzz-messages` and `fuzz-api`.
/// Part of the serialized SecurityTests: these runs move the process-wide metrics that
/// MetricsTests reads.
extension SecurityTests {
    static func startFuzzTarget() async throws -> InProcessCoordinator {
        let cluster = try LocalCluster.temporary(prefix: "tower-fuzz")
        let ca = try cluster.issueCertificates(workers: ["w1"], extra: MessageFuzzer.certificates)
        var settings = cluster.coordinatorSettings()
        // Scripts that never say Hello must not be cut by the authentication deadline
        // on a loaded machine: that deadline has its own tests (HardeningTests).
        settings.connectionLimits.handshake_timeout_seconds = 120
        var logger = Logger(label: "fuzz")
        logger.logLevel = .critical
        let service = try CoordinatorService(settings: settings, group: MultiThreadedEventLoopGroup.singleton, logger: logger)
        try await service.start()
        return InProcessCoordinator(cluster: cluster, ca: ca, service: service)
    }

    static func fuzzPeers(_ c: InProcessCoordinator) throws -> [MessageFuzzer.Peer] {
        try MessageFuzzer.peers(of: c.cluster)
    }

    @Test(.timeLimit(.minutes(4))) func scriptsAreDeterministicFromTheSeedAndCoverEveryMessage() async throws {
        let c = try await Self.startFuzzTarget()
        defer { Task { await c.stop() } }
        let peers = try Self.fuzzPeers(c)
        // Compared as bytes (maps in key order): random metrics include NaN, which is never
        // equal to itself.
        func bytes(_ seed: UInt64) throws -> [Data] {
            try (0..<40).flatMap { n in
                let script = MessageFuzzer.script(seed: seed, connection: n, peers: peers)
                var options = BinaryEncodingOptions()
                options.useDeterministicOrdering = true
                return try script.steps.map { try $0.envelope.serializedData(options: options) + Data("\($0.expect)".utf8) } + [Data("\(script.peer)".utf8)]
            }
        }
        #expect(try bytes(42) == bytes(42))
        #expect(try bytes(42) != bytes(43))
        let many = (0..<200).flatMap { MessageFuzzer.script(seed: 7, connection: $0, peers: peers).steps }
        let sent = Set(many.map { Permissions.name(of: $0.envelope.body!) })
        #expect(sent == Set(MessageFuzzer.bodyNames), "never sent: \(Set(MessageFuzzer.bodyNames).subtracting(sent))")
        #expect(MessageFuzzer.bodyNames.count == 60)
        // Every kind of Hello the brief asks for appears: refused ones close the connection.
        let closes = Set(many.compactMap { step -> WireErrorCode? in if case let .closeWith(code) = step.expect { return code } else { return nil } })
        #expect(closes == [.versionMismatch, .forbidden])
        let requests = (0..<300).map { APIFuzzer.request(seed: 42, index: $0, roles: [.operator, .worker, .gateway]) }
        #expect(requests == (0..<300).map { APIFuzzer.request(seed: 42, index: $0, roles: [.operator, .worker, .gateway]) })
        #expect(Set(requests.map(\.peer)) == [0, 1, 2])
    }

    /// Random well-formed messages from every role, in random orders, over several
    /// connections; then the coordinator still runs a real worker's job.
    @Test(.timeLimit(.minutes(4))) func randomMessagesFromEveryRoleAreAnsweredAndLeaveTheCoordinatorServing() async throws {
        let c = try await Self.startFuzzTarget()
        defer { Task { await c.stop() } }
        let before = ProcessMemory.residentBytes()
        // Scripts follow the seed and the list of messages: a seed whose operators get a
        // job accepted, so workers are fuzzed with real leases too (re-pick it when a
        // message is added to tower.proto).
        let stats = try await MessageFuzzer.run(host: "127.0.0.1", port: c.port, peers: try Self.fuzzPeers(c),
                                                options: .init(messages: 1_500, concurrency: 6, seed: 11, maxMessagesPerConnection: 60))
        let after = ProcessMemory.residentBytes()
        print("message fuzzing: \(stats)\nRSS \(ProcessMemory.megabytes(before)) → \(ProcessMemory.megabytes(after))")
        #expect(stats.messages >= 1_500)
        #expect(stats.connectFailures == 0)
        #expect(stats.hangs == 0, "\(stats.problems)")
        #expect(stats.mismatches == 0, "\(stats.problems)")
        #expect(stats.answered == stats.promised)
        #expect(Set(stats.connectionsByRole.keys) == ["operator", "worker", "gateway"])
        #expect(stats.closedAsPromised > 0)
        #expect(stats.jobsAccepted > 0)
        #expect(stats.tasksReceived > 0)
        // Generous: the run holds its connections' buffers and a test process shares its
        // heap with other suites; a leak per message would be far above this.
        if let before, let after { #expect(after - before < 400 << 20) }

        try await Self.coordinatorStillServes(c)
    }

    /// Random HTTP requests of every shape from every role: each gets a status, never a
    /// 5xx, promised statuses are exact; then `/api/v1/models` still answers 200.
    @Test(.timeLimit(.minutes(4))) func randomHTTPRequestsGetAStatusAndLeaveTheAPIServing() async throws {
        let c = try await Self.startFuzzTarget()
        defer { Task { await c.stop() } }
        let identities = try ["operator", "fuzz-w1", "fuzz-gw"].map { try c.cluster.identity($0) }
        let before = ProcessMemory.residentBytes()
        let stats = try await APIFuzzer.run(host: "127.0.0.1", port: c.service.apiPort!, identities: identities,
                                            options: .init(requests: 250, concurrency: 4, seed: 0xA91))
        let after = ProcessMemory.residentBytes()
        print("API fuzzing: \(stats)\nRSS \(ProcessMemory.megabytes(before)) → \(ProcessMemory.megabytes(after))")
        #expect(stats.requests == 250)
        #expect(stats.connectFailures == 0)
        #expect(stats.hangs == 0, "\(stats.problems)")
        #expect(stats.noStatus == 0, "\(stats.problems)")
        #expect(stats.serverErrors == 0, "\(stats.problems)")
        #expect(stats.mismatches == 0, "\(stats.problems)")
        #expect(stats.invalidJSON == 0, "\(stats.problems)")
        #expect(stats.exact > 50)
        #expect(Set(stats.statuses.keys).isSuperset(of: [200, 400, 403, 404, 405]))
        if let before, let after { #expect(after - before < 400 << 20) }

        guard case let .status(status, _, body) = try await APIFuzzer.get("/api/v1/models", host: "127.0.0.1", port: c.service.apiPort!,
                                                                          identity: try c.cluster.identity("operator")) else {
            Issue.record("no answer to /api/v1/models after fuzzing")
            return
        }
        #expect(status == 200)
        #expect(try WireModelList(jsonUTF8Data: Data(body)).models.isEmpty)
    }

    /// After fuzzing: cancels what the fuzzers left queued (so the check does not wait
    /// behind it), then a real worker runs an echo job, and `workers` and `jobs` answer.
    static func coordinatorStillServes(_ c: InProcessCoordinator) async throws {
        let op = try await c.operatorClient()
        defer { op.close() }
        for job in try await op.jobs(limit: 1000) where job.state == .queued || job.state == .running {
            let end = try await op.cancel(job.jobID)
            #expect([.cancelled, .succeeded, .failed].contains(end.state), "\(job.jobID) ended \(end.state.label)")
        }
        let (agent, run) = try HardeningTests.runWorker(c, "w1", slots: 2)
        defer { agent.drain(); run.cancel() }
        try await HardeningTests.waitUntil("the worker to join") { try await op.workers().map(\.name) == ["w1"] }
        let id = try await op.submit(try HardeningTests.echo(tasks: 6, sleepMs: 0)).jobID
        let end = try await op.follow(id, every: .milliseconds(100)) { _ in }
        #expect(end.state == .succeeded, "\(end.error)")
        #expect(end.done == 6)
        #expect(try await op.jobs(limit: 1000).contains { $0.jobID == id && $0.state == .succeeded })
    }
}
