import ArgumentParser
import CoordinatorKit
import Foundation
import Logging
import NIOCore
import NIOPosix
import Wire

/// No-op tasks through a real coordinator (in this process) and real worker processes:
/// tasks per second with many in flight, and the assignment-to-result round trip with one
/// in flight.
struct TaskThroughput: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "tasks", abstract: "No-op task throughput and round-trip latency through the coordinator.")
    @Option var tasks = 100_000
    @Option var workers = 2
    @Option var slots = 64
    @Option(name: .customLong("latency-tasks")) var latencyTasks = 3_000

    func run() async throws {
        var rows: [[String]] = []
        rows.append(try await measure(label: "throughput: \(workers) workers × \(slots) slots", tasks: tasks, workers: workers, slots: slots, prefetch: 2))
        rows.append(try await measure(label: "round trip: 1 worker, 1 in flight", tasks: latencyTasks, workers: 1, slots: 1, prefetch: 1))
        printTable("no-op tasks through the coordinator (TLS 1.3, SQLite WAL, loopback, worker processes)",
                   ["setup", "tasks", "wall s", "tasks/s", "round trip p50 µs", "p99 µs"], rows)
        print("Ray's published microbenchmark for reference: ~8,000 tasks/s from one async client, ~21,000 from many (other hardware).")
    }

    func measure(label: String, tasks: Int, workers: Int, slots: Int, prefetch: Int) async throws -> [String] {
        let cluster = try LocalCluster.temporary(prefix: "tower-bench")
        defer { try? FileManager.default.removeItem(at: cluster.directory) }
        let names = (1...workers).map { "bench-\($0)" }
        try cluster.issueCertificates(workers: names)
        var settings = cluster.coordinatorSettings()
        settings.prefetchPerSlot = prefetch
        var logger = Logger(label: "bench")
        logger.logLevel = .error
        let service = try CoordinatorService(settings: settings, logger: logger)
        try await service.start()
        let samples = SampleBox()
        try await service.core.loop.submit { service.core.roundTripObserver = { samples.add($0) } }.get()
        let workerBinary = LocalCluster.binaryDirectory.appendingPathComponent("worker")
        let processes = try names.map {
            try LocalCluster.spawn(workerBinary, cluster.workerArguments($0, port: service.port!, slots: slots, extra: ["--log-level", "error"]))
        }
        defer { processes.forEach { $0.terminate() } }
        let op = try await OperatorClient.connect(host: "127.0.0.1", port: service.port!, identity: try cluster.identity("operator"), group: MultiThreadedEventLoopGroup.singleton)
        while try await op.workers().count < workers { try await Task.sleep(for: .milliseconds(50)) }
        var spec = WireEchoSpec()
        spec.tasks = UInt32(tasks)
        var job = WireJobSpec()
        job.kind = JobKind.echo
        job.spec = try spec.serializedData()
        // The clock includes planning and storing the tasks: that is part of the cost.
        let started = DispatchTime.now()
        let accepted = try await op.submit(job)
        var progress = ProgressLine()
        let end = try await op.follow(accepted.jobID, every: .milliseconds(20)) { s in
            FileHandle.standardError.write(Data("\r\(progress.render(s))".utf8))
        }
        let seconds = Double(DispatchTime.now().uptimeNanoseconds - started.uptimeNanoseconds) / 1e9
        FileHandle.standardError.write(Data("\n".utf8))
        guard end.state == .succeeded else { throw ValidationError("benchmark job ended \(end.state.label): \(end.error)") }
        op.close()
        await service.shutdown()
        let sorted = samples.sorted()
        return [label, "\(tasks)", format(seconds, 2), format(Double(tasks) / seconds),
                format(Double(percentile(sorted, 0.5)) / 1000, 1), format(Double(percentile(sorted, 0.99)) / 1000, 1)]
    }
}

final class SampleBox: @unchecked Sendable {
    private let lock = NSLock()
    private var values: [UInt64] = []
    func add(_ v: UInt64) { lock.withLock { values.append(v) } }
    func reset() { lock.withLock { values.removeAll() } }
    func sorted() -> [UInt64] { lock.withLock { values.sorted() } }
}
