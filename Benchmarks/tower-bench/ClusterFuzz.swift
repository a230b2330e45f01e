import ArgumentParser
import CoordinatorKit
import Foundation
import Logging
import NIOCore
import NIOPosix
import Wire
import WorkerKit

/// A coordinator in this process with certificates for every role the fuzzers use, and the
/// checks that it still serves afterwards. A crash of the coordinator ends this process:
/// finishing at all is the "no crash" result.
struct FuzzTarget {
    let cluster: LocalCluster
    let service: CoordinatorService

    static func start() async throws -> FuzzTarget {
        let cluster = try LocalCluster.temporary(prefix: "tower-fuzz")
        try cluster.issueCertificates(workers: ["w1"], extra: MessageFuzzer.certificates)
        var settings = cluster.coordinatorSettings()
        // Scripts that never say Hello are not cut by the authentication deadline (which
        // has its own tests), so every close the fuzzer sees is one it provoked.
        settings.connectionLimits.handshake_timeout_seconds = 300
        var logger = Logger(label: "fuzz")
        logger.logLevel = .critical
        let service = try CoordinatorService(settings: settings, group: MultiThreadedEventLoopGroup.singleton, logger: logger)
        try await service.start()
        return FuzzTarget(cluster: cluster, service: service)
    }

    func stop() async {
        await service.shutdown()
        try? FileManager.default.removeItem(at: cluster.directory)
    }

    /// Cancels what the fuzzer left queued, runs an echo job on a real worker, and reads
    /// `workers`, `jobs` and the API's `/api/v1/models`. Throws on any failure.
    func stillServes() async throws -> String {
        let op = try await OperatorClient.connect(host: "127.0.0.1", port: service.port!, identity: try cluster.identity("operator"),
                                                  group: MultiThreadedEventLoopGroup.singleton)
        defer { op.close() }
        var cancelled = 0
        for job in try await op.jobs(limit: 1000) where job.state == .queued || job.state == .running {
            _ = try await op.cancel(job.jobID)
            cancelled += 1
        }
        var config = WorkerConfig(host: "127.0.0.1", port: service.port!, identity: try cluster.identity("w1"), name: "w1", slots: 2,
                                  cacheDirectory: cluster.directory.appendingPathComponent("cache-w1"))
        config.backoffInitialMs = 50
        var logger = Logger(label: "worker")
        logger.logLevel = .critical
        let agent = try WorkerAgent(config: config, group: MultiThreadedEventLoopGroup.singleton, logger: logger)
        let run = Task { try await agent.run() }
        defer { agent.drain(); run.cancel() }
        let deadline = ContinuousClock.now + .seconds(60)
        while try await op.workers().map(\.name) != ["w1"] {
            guard ContinuousClock.now < deadline else { throw ValidationError("the real worker did not join after fuzzing") }
            try await Task.sleep(for: .milliseconds(50))
        }
        var spec = WireEchoSpec()
        spec.tasks = 8
        spec.payloadBytes = 64
        var job = WireJobSpec()
        job.kind = JobKind.echo
        job.spec = try spec.serializedData()
        let id = try await op.submit(job).jobID
        let end = try await op.follow(id, every: .milliseconds(100)) { _ in }
        guard end.state == .succeeded, end.done == 8 else { throw ValidationError("echo job after fuzzing ended \(end.state.label): \(end.error)") }
        guard try await op.jobs(limit: 1000).contains(where: { $0.jobID == id }) else { throw ValidationError("`jobs` does not list the echo job") }
        guard case let .status(status, _, _) = try await APIFuzzer.get("/api/v1/models", host: "127.0.0.1", port: service.apiPort!,
                                                                      identity: try cluster.identity("operator")), status == 200 else {
            throw ValidationError("/api/v1/models does not answer 200 after fuzzing")
        }
        return "cancelled \(cancelled) leftover jobs; echo job of 8 tasks succeeded on a real worker; workers, jobs and /api/v1/models answer"
    }
}

struct MessageFuzz: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "fuzz-messages",
                                                    abstract: "Random well-formed messages from every role against an in-process coordinator.")
    @Option var messages = 40_000
    @Option var connections = 8
    @Option var seed: UInt64 = 0x70E7

    func run() async throws {
        let target = try await FuzzTarget.start()
        let peers = try MessageFuzzer.peers(of: target.cluster)
        // Memory is read after a short warm-up, so one-time allocations (TLS contexts,
        // SQLite caches, the first connections) do not read as growth.
        _ = try await MessageFuzzer.run(host: "127.0.0.1", port: target.service.port!, peers: peers,
                                        options: .init(messages: 300, concurrency: connections, seed: seed ^ 0xFFFF))
        var stats = MessageFuzzer.Stats()
        let (rss, seconds) = try await inQuarters { quarter in
            stats.merge(try await MessageFuzzer.run(host: "127.0.0.1", port: target.service.port!, peers: peers,
                                                    options: .init(messages: messages / 4, concurrency: connections, seed: seed &+ UInt64(quarter))))
        }
        let before = rss.first!, after = rss.last!
        let check = try await target.stillServes()
        await target.stop()
        print("\n\(stats)")
        printTable("coordinator message fuzzing (seed \(seed), \(connections) concurrent connections)",
                   ["messages", "connections", "answered/promised", "jobs accepted", "crashes", "hangs", "mismatches", "seconds", "RSS before", "RSS after"],
                   [["\(stats.messages)", "\(stats.connections)", "\(stats.answered)/\(stats.promised)", "\(stats.jobsAccepted)", "0",
                     "\(stats.hangs)", "\(stats.mismatches)", format(seconds, 1), ProcessMemory.megabytes(before), ProcessMemory.megabytes(after)]])
        print("RSS after each quarter: \(rss.map(ProcessMemory.megabytes).joined(separator: " → "))")
        print(check)
        guard stats.hangs == 0, stats.mismatches == 0, stats.connectFailures == 0 else { throw ExitCode.failure }
    }
}

struct APIFuzz: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "fuzz-api",
                                                    abstract: "Random HTTP requests from every role against an in-process coordinator's HTTPS API.")
    @Option var requests = 4_000
    @Option var concurrency = 4
    @Option var seed: UInt64 = 0x70E7

    func run() async throws {
        let target = try await FuzzTarget.start()
        let identities = try ["operator", "fuzz-w1", "fuzz-gw"].map { try target.cluster.identity($0) }
        _ = try await APIFuzzer.run(host: "127.0.0.1", port: target.service.apiPort!, identities: identities,
                                    options: .init(requests: 100, concurrency: concurrency, seed: seed ^ 0xFFFF))
        var stats = APIFuzzer.Stats()
        let (rss, seconds) = try await inQuarters { quarter in
            stats.merge(try await APIFuzzer.run(host: "127.0.0.1", port: target.service.apiPort!, identities: identities,
                                                options: .init(requests: requests / 4, concurrency: concurrency, seed: seed &+ UInt64(quarter))))
        }
        let before = rss.first!, after = rss.last!
        let check = try await target.stillServes()
        await target.stop()
        print("\n\(stats)")
        printTable("HTTPS API fuzzing (seed \(seed), \(concurrency) concurrent requests)",
                   ["requests", "exact status", "crashes", "hangs", "no status", "5xx", "mismatches", "bad JSON", "seconds", "RSS before", "RSS after"],
                   [["\(stats.requests)", "\(stats.exact)", "0", "\(stats.hangs)", "\(stats.noStatus)", "\(stats.serverErrors)", "\(stats.mismatches)",
                     "\(stats.invalidJSON)", format(seconds, 1), ProcessMemory.megabytes(before), ProcessMemory.megabytes(after)]])
        print("RSS after each quarter: \(rss.map(ProcessMemory.megabytes).joined(separator: " → "))")
        print(check)
        guard stats.hangs == 0, stats.noStatus == 0, stats.serverErrors == 0, stats.mismatches == 0, stats.invalidJSON == 0,
              stats.connectFailures == 0 else { throw ExitCode.failure }
    }
}

/// Runs `quarter` four times (0...3), reading memory before and after each: a leak shows as
/// growth that goes on, warm-up as growth that stops. Returns the readings and the seconds.
func inQuarters(_ quarter: (Int) async throws -> Void) async throws -> (rss: [Int?], seconds: Double) {
    var rss = [ProcessMemory.residentBytes()]
    let started = Date()
    for n in 0..<4 {
        try await quarter(n)
        rss.append(ProcessMemory.residentBytes())
    }
    return (rss, Date().timeIntervalSince(started))
}

