import Foundation
import Testing
import NIOPosix
import Wire
@testable import CoordinatorKit

/// A cluster of real processes: the `coordinator` and `worker` executables this package
/// built, with real certificates, on loopback.
final class ProcessCluster: @unchecked Sendable {
    let cluster: LocalCluster
    let port: Int
    private(set) var coordinator: Process?
    private(set) var workers: [String: Process] = [:]

    static var binDirectory: URL {
        if let dir = ProcessInfo.processInfo.environment["TOWER_BIN_DIR"] { return URL(fileURLWithPath: dir) }
        // The test bundle lives in the same build directory as the executables.
        var dir = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
        while dir.path != "/" && !FileManager.default.fileExists(atPath: dir.appendingPathComponent("coordinator").path) {
            dir = dir.deletingLastPathComponent()
        }
        return dir
    }

    init(workers: [String]) throws {
        cluster = try LocalCluster.temporary(prefix: "tower-cluster")
        try cluster.issueCertificates(workers: workers)
        port = try Self.freePort()
    }

    static func freePort() throws -> Int {
        let channel = try ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton).bind(host: "127.0.0.1", port: 0).wait()
        let port = channel.localAddress!.port!
        try channel.close().wait()
        return port
    }

    /// A coordinator and the named workers, all connected, with an operator's client.
    static func running(workers: [String], slots: Int = 4) async throws -> (ProcessCluster, OperatorClient) {
        let c = try ProcessCluster(workers: workers)
        try c.startCoordinator()
        for name in workers { try c.startWorker(name, slots: slots) }
        let op = try await c.operatorClient()
        try await c.waitForWorkers(workers.count, op)
        return (c, op)
    }

    func startCoordinator(extra: [String] = []) throws {
        let args = ["serve", "--listen", "127.0.0.1:\(port)", "--data-dir", cluster.data.path,
                    "--cert", cluster.certificate("coordinator"), "--key", cluster.key("coordinator"), "--ca", cluster.ca,
                    "--metrics-listen", "", "--api-listen", "127.0.0.1:0", "--lease-timeout", "5", "--heartbeat-interval", "0.5"] + extra
        coordinator = try LocalCluster.spawn(Self.binDirectory.appendingPathComponent("coordinator"), args,
                                             log: cluster.directory.appendingPathComponent("coordinator.log"))
    }

    func startWorker(_ name: String, slots: Int = 4, environment: [String: String] = [:], extra: [String] = []) throws {
        workers[name] = try LocalCluster.spawn(Self.binDirectory.appendingPathComponent("worker"),
                                               cluster.workerArguments(name, port: port, slots: slots, extra: extra),
                                               log: cluster.directory.appendingPathComponent("\(name).log"), environment: environment)
    }

    func kill9(_ process: Process?) {
        guard let process, process.isRunning else { return }
        let pid = process.processIdentifier
        kill(pid, SIGKILL)
        // Not waitUntilExit: Foundation's Process can miss the exit of a child that was
        // stopped and continued (the partition tests SIGSTOP the coordinator), and then
        // waits forever — a full run hung 17 minutes in this defer. Bounded, and the pid
        // itself says when the process is gone.
        let deadline = Date() + 10
        while process.isRunning, Date() < deadline {
            if kill(pid, 0) != 0 && errno == ESRCH { return }
            usleep(20_000)
        }
    }

    /// Connects an operator, retrying while the coordinator starts.
    func operatorClient() async throws -> OperatorClient {
        var lastError: Error?
        for _ in 0..<100 {
            do {
                return try await OperatorClient.connect(host: "127.0.0.1", port: port, identity: try cluster.identity("operator"), group: MultiThreadedEventLoopGroup.singleton)
            } catch {
                lastError = error
                try await Task.sleep(for: .milliseconds(100))
            }
        }
        throw lastError!
    }

    func waitForWorkers(_ count: Int, _ op: OperatorClient) async throws {
        for _ in 0..<200 {
            if try await op.workers().count >= count { return }
            try await Task.sleep(for: .milliseconds(50))
        }
        throw WireError.timedOut(what: "\(count) workers to connect")
    }

    /// Polls until `condition` holds or the bounded wait ends; the wait is a safety net,
    /// not an assertion about speed.
    func waitUntil(_ what: String, _ condition: () async throws -> Bool) async throws {
        for _ in 0..<1200 {
            if try await condition() { return }
            try await Task.sleep(for: .milliseconds(50))
        }
        throw WireError.timedOut(what: what)
    }

    func submitEcho(_ op: OperatorClient, tasks: Int, sleepMs: Int, blobBytes: Int = 0, maxAttempts: Int = 0, failIndex: Int? = nil) async throws -> String {
        var spec = WireEchoSpec()
        spec.tasks = UInt32(tasks)
        spec.payloadBytes = 64
        spec.sleepMs = UInt32(sleepMs)
        spec.blobBytes = UInt32(blobBytes)
        spec.failIndexPlusOne = failIndex.map { UInt32($0 + 1) } ?? 0
        var job = WireJobSpec()
        job.kind = JobKind.echo
        job.spec = try spec.serializedData()
        job.maxAttempts = UInt32(maxAttempts)
        return try await op.submit(job).jobID
    }

    /// Reads the coordinator's SQLite file directly: what is really on disk.
    func storedResults(_ job: String) throws -> [TaskResultRow] {
        try ClusterStore(path: cluster.data.appendingPathComponent("tower.sqlite").path).results(job: job)
    }

    func log(_ name: String) -> String {
        (try? String(contentsOf: cluster.directory.appendingPathComponent("\(name).log"), encoding: .utf8)) ?? ""
    }

    /// Waits (bounded) for a process to exit; a hang fails the test instead of blocking it.
    func waitForExit(_ process: Process, within limit: Duration = .seconds(30)) async throws {
        let deadline = ContinuousClock.now + limit
        while process.isRunning {
            guard ContinuousClock.now < deadline else { throw WireError.timedOut(what: "\(process.executableURL?.lastPathComponent ?? "process") to exit") }
            try await Task.sleep(for: .milliseconds(50))
        }
    }

    /// Runs an operator command of the `coordinator` executable against this cluster.
    func runOperatorCommand(_ arguments: [String]) async throws -> (status: Int32, output: String) {
        let run = try await Self.runToEnd(Self.binDirectory.appendingPathComponent("coordinator"), arguments + [
            "--coordinator", "127.0.0.1:\(port)", "--cert", cluster.certificate("operator"), "--key", cluster.key("operator"), "--ca", cluster.ca,
        ])
        return (run.status, run.output)
    }

    /// What a finished process printed: stdout and stderr as a terminal shows them
    /// (`output`), or apart when asked for.
    struct Finished {
        var status: Int32
        var output: String
        var stderr: String
    }

    /// Runs `executable` to its end, bounded in time (a hang fails the test instead of
    /// blocking it), its output captured in files rather than pipes so that a chatty
    /// process cannot stall on a full pipe. With `separateStderr`, `output` is stdout only.
    static func runToEnd(_ executable: URL, _ arguments: [String], in directory: URL? = nil, environment: [String: String]? = nil,
                         separateStderr: Bool = false, within limit: Duration = .seconds(60)) async throws -> Finished {
        let process = Process()
        process.executableURL = executable
        process.arguments = arguments
        if let directory { process.currentDirectoryURL = directory }
        if let environment { process.environment = environment }
        let base = FileManager.default.temporaryDirectory.appendingPathComponent("tower-run-\(UUID().uuidString.prefix(8))")
        let out = base.appendingPathExtension("out"), err = base.appendingPathExtension("err")
        FileManager.default.createFile(atPath: out.path, contents: nil)
        FileManager.default.createFile(atPath: err.path, contents: nil)
        let outHandle = try FileHandle(forWritingTo: out)
        let errHandle = separateStderr ? try FileHandle(forWritingTo: err) : outHandle
        process.standardOutput = outHandle
        process.standardError = errHandle
        try process.run()
        let deadline = ContinuousClock.now + limit
        while process.isRunning {
            guard ContinuousClock.now < deadline else {
                process.terminate()
                throw WireError.timedOut(what: "\(executable.lastPathComponent) \(arguments.joined(separator: " ")) to exit")
            }
            try await Task.sleep(for: .milliseconds(50))
        }
        try outHandle.close()
        if separateStderr { try errHandle.close() }
        return Finished(status: process.terminationStatus, output: try String(contentsOf: out, encoding: .utf8),
                        stderr: try String(contentsOf: err, encoding: .utf8))
    }

    func stopAll() {
        for p in workers.values { kill9(p) }
        kill9(coordinator)
    }
}

/// Every suite that starts processes runs inside this one, one test at a time: two
/// clusters training side by side on two cores would starve each other's heartbeats.
@Suite(.serialized) struct ProcessClusterSuites {}
