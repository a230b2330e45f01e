import Foundation
import Logging
import NIOPosix
import SwiftProtobuf
import Testing
import Wire
import WorkerKit
@testable import CoordinatorKit

// A job kind that exists only in this test target: its descriptor, planner and runner
// below are all it takes, and nothing in Coordinator/, Worker/ or Common/ knows it. Its
// messages are protobuf's well-known Struct, so it needs no tower.proto change either.

/// Uppercases words with a tool only some hosts have.
enum ToyKind: JobKindDescriptor {
    typealias Spec = Google_Protobuf_Struct
    typealias Summary = Google_Protobuf_Struct
    static let name = "toy"
    static let requiredTools = ["tower-toy-tool"]

    static func describe(_ s: Google_Protobuf_Struct) -> [String] {
        ["toy: \(s.fields["joined"]?.stringValue ?? "")"]
    }
}

/// One task per word of the spec's `words`.
struct ToyPlanner: JobPlanner {
    let descriptor = ToyKind.erased

    func plan(spec data: Data, context: JobContext) throws -> [PlannedTask] {
        let spec = try ToyKind.decodeSpec(data)
        guard let words = spec.fields["words"]?.listValue.values.map(\.stringValue), !words.isEmpty else {
            throw WireError.invalidArgument("toy.words must be a non-empty list of words")
        }
        return words.map { PlannedTask(input: Data($0.utf8)) }
    }

    func summarize(spec: Data, results: [TaskResultRow]) throws -> Data {
        var summary = Google_Protobuf_Struct()
        let joined = results.map { String(decoding: $0.output ?? Data(), as: UTF8.self) }.joined(separator: " ")
        summary.fields["joined"] = Google_Protobuf_Value(stringValue: joined)
        return try summary.serializedData()
    }
}

/// Runs the tool on the word.
struct ToyRunner: TaskRunner {
    let descriptor = ToyKind.erased

    func run(_ task: WireTaskAssignment, context: TaskContext) async throws -> Data {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["tower-toy-tool", String(decoding: task.input, as: UTF8.self)]
        let out = Pipe()
        process.standardOutput = out
        try process.run()
        let data = out.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        guard process.terminationStatus == 0 else { throw TaskError("tower-toy-tool failed on this host", retryable: true) }
        return Data(String(decoding: data, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines).utf8)
    }
}

/// The worker process of the toy kind: this test binary run again with
/// `TOWER_TOY_WORKER` set executes only ``ToyWorkerHost``, which serves as a worker with
/// the built-in runners plus ``ToyRunner`` until it is killed.
@Suite struct ToyWorkerHost {
    static var environment: [String: String] { ProcessInfo.processInfo.environment }

    @Test(.enabled(if: environment["TOWER_TOY_WORKER"] != nil, "runs only as a spawned worker process"))
    func serveAsAToyWorker() async throws {
        let env = Self.environment
        let name = try #require(env["TOWER_TOY_WORKER"])
        let config = WorkerConfig(host: "127.0.0.1", port: Int(try #require(env["TOWER_TOY_PORT"]))!,
                                  identity: try TLSIdentity(certificate: try #require(env["TOWER_TOY_CERT"]), key: try #require(env["TOWER_TOY_KEY"]),
                                                            ca: try #require(env["TOWER_TOY_CA"])),
                                  name: name, slots: 2, cacheDirectory: URL(fileURLWithPath: try #require(env["TOWER_TOY_CACHE"])))
        var logger = Logger(label: "toy-worker")
        logger.logLevel = .info
        let agent = try WorkerAgent(config: config, runners: TaskRunners.builtIn + [ToyRunner()], group: MultiThreadedEventLoopGroup.singleton, logger: logger)
        try await agent.run()
    }

    /// Starts this test binary as a toy worker; `path` is the PATH it sees.
    static func spawn(_ name: String, cluster: LocalCluster, port: Int, path: String) throws -> Process {
        try LocalCluster.spawn(URL(fileURLWithPath: CommandLine.arguments[0]),
                               ["--testing-library", "swift-testing", "--filter", "serveAsAToyWorker"],
                               log: cluster.directory.appendingPathComponent("\(name).log"),
                               environment: ["TOWER_TOY_WORKER": name, "TOWER_TOY_PORT": "\(port)",
                                             "TOWER_TOY_CERT": cluster.certificate(name), "TOWER_TOY_KEY": cluster.key(name),
                                             "TOWER_TOY_CA": cluster.ca, "PATH": path,
                                             "TOWER_TOY_CACHE": cluster.directory.appendingPathComponent("cache-\(name)").path])
    }
}

extension ProcessClusterSuites {
@Suite(.serialized, .timeLimit(.minutes(3))) struct ToyKindTests {
    /// A kind defined only here runs end to end on a real coordinator and two worker
    /// processes; only the worker whose host has the kind's tool gets its tasks; with no
    /// such worker the job waits, says why, and spends no attempt.
    @Test func aKindDefinedOnlyInTheTestsRunsWhereItsToolIs() async throws {
        let cluster = try LocalCluster.temporary(prefix: "tower-toy")
        try cluster.issueCertificates(workers: ["w1", "w2"])
        var settings = cluster.coordinatorSettings()
        settings.leaseTimeoutMs = 3000
        settings.heartbeatIntervalMs = 300
        var logger = Logger(label: "toy-coordinator")
        logger.logLevel = .critical
        let service = try CoordinatorService(settings: settings, planners: JobPlanners([EchoPlanner(), ToyPlanner()]),
                                             group: MultiThreadedEventLoopGroup.singleton, logger: logger)
        try await service.start()
        defer { Task { await service.shutdown() } }
        let port = service.port!

        // The tool, on w1's PATH only.
        let tools = cluster.directory.appendingPathComponent("tools")
        try FileManager.default.createDirectory(at: tools, withIntermediateDirectories: true)
        let tool = tools.appendingPathComponent("tower-toy-tool")
        try """
            #!/bin/sh
            if [ "$1" = "--version" ] || [ "$1" = "-version" ]; then echo "tower-toy-tool 1.0"; exit 0; fi
            echo "$1" | tr a-z A-Z
            """.write(to: tool, atomically: true, encoding: .utf8)
        chmod(tool.path, 0o755)
        let basePath = "/usr/local/bin:/usr/bin:/bin"

        let op = try await OperatorClient.connect(host: "127.0.0.1", port: port, identity: try cluster.identity("operator"), group: MultiThreadedEventLoopGroup.singleton)
        defer { op.close() }
        var processes: [Process] = []
        defer { for p in processes where p.isRunning { kill(p.processIdentifier, SIGKILL) } }

        // Only w2, without the tool: the job waits and says why, spending nothing.
        processes.append(try ToyWorkerHost.spawn("w2", cluster: cluster, port: port, path: basePath))
        try await Self.waitUntil("w2 to join") { try await op.workers().count == 1 }
        var job = WireJobSpec()
        job.kind = "toy"
        job.spec = try SpecFile.json(from: "words: [tower, runs, toys, anywhere, its, tool, is]")
        let id = try await op.submit(job).jobID
        try await Self.waitUntil("the job to say why it waits") { try await op.job(id).waiting != "" }
        let waiting = try await op.job(id)
        #expect(waiting.waiting == "no connected worker has tower-toy-tool (missing everywhere: tower-toy-tool)")
        #expect(waiting.running == 0 && waiting.retries == 0 && waiting.queued == 7)
        #expect(try service.core.store.pendingTasks(job: id).allSatisfy { $0.attempts == 0 })
        let w2 = try #require(try await op.workers().first)
        #expect(Set(w2.capabilities.jobKinds) == ["echo", "hpo", "score", "drift", "render", "toy"])
        #expect(!w2.capabilities.tools.contains("tower-toy-tool"))

        // w1 has the tool: every task runs there and none fails.
        processes.append(try ToyWorkerHost.spawn("w1", cluster: cluster, port: port, path: "\(tools.path):\(basePath)"))
        let end = try await op.follow(id, every: .milliseconds(100)) { _ in }
        #expect(end.state == .succeeded)
        #expect(end.retries == 0 && end.failed == 0)
        #expect(end.summaryLines == ["toy: TOWER RUNS TOYS ANYWHERE ITS TOOL IS"])
        let rows = try service.core.store.results(job: id)
        #expect(rows.allSatisfy { $0.worker == "w1" && $0.attempts == 1 })
        let w1 = try #require(try await op.workers().first { $0.name == "w1" })
        #expect(w1.capabilities.toolVersions["tower-toy-tool"] == "tower-toy-tool 1.0")

        // The operator's command line submits it too, from a YAML spec, with no toy code
        // in the `coordinator` binary.
        let specFile = cluster.directory.appendingPathComponent("toy.yaml")
        try "words: [plug, in]\n".write(to: specFile, atomically: true, encoding: .utf8)
        let cli = Process()
        cli.executableURL = ProcessCluster.binDirectory.appendingPathComponent("coordinator")
        cli.arguments = ["submit", "toy", "--spec", specFile.path, "--follow", "--coordinator", "127.0.0.1:\(port)",
                         "--cert", cluster.certificate("operator"), "--key", cluster.key("operator"), "--ca", cluster.ca]
        let out = Pipe()
        cli.standardOutput = out
        try cli.run()
        let text = String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        cli.waitUntilExit()
        #expect(cli.terminationStatus == 0)
        #expect(text.contains("toy: PLUG IN"))
    }

    static func waitUntil(_ what: String, _ condition: () async throws -> Bool) async throws {
        for _ in 0..<400 {
            if try await condition() { return }
            try await Task.sleep(for: .milliseconds(50))
        }
        throw WireError.timedOut(what: what)
    }
}
}
