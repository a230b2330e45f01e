import Foundation
import Testing
import Wire
import WorkerKit
@testable import CoordinatorKit

extension ProcessClusterSuites {
/// `worker --metrics-listen`: a real worker process serves Prometheus text with every
/// metric of ``WorkerMetrics/catalog``, each with its `# HELP` line, counting the tasks it
/// ran by kind and outcome.
@Suite(.serialized, .timeLimit(.minutes(3))) struct WorkerMetricsTests {
    @Test func aWorkerServesItsMetrics() async throws {
        let c = try ProcessCluster(workers: ["w1"])
        defer { c.stopAll() }
        try c.startCoordinator()
        let metricsPort = try ProcessCluster.freePort()
        try c.startWorker("w1", slots: 2, extra: ["--metrics-listen", "127.0.0.1:\(metricsPort)"])
        let op = try await c.operatorClient()
        defer { op.close() }
        try await c.waitForWorkers(1, op)

        // Five echo tasks, one of which fails on its only attempt.
        let job = try await c.submitEcho(op, tasks: 5, sleepMs: 1, maxAttempts: 1, failIndex: 2)
        let end = try await op.follow(job, every: .milliseconds(50)) { _ in }
        #expect(end.state == .failed)

        let text = try await Self.scrape(metricsPort, until: { $0.contains(#"outcome="failed"} 1"#) && $0.contains("tower_worker_tasks_running 0.0") })
        let lines = Set(text.split(separator: "\n").map(String.init))
        for (name, help) in WorkerMetrics.catalog {
            #expect(lines.contains("# HELP \(name) \(help)"), "no help line for \(name) in\n\(text)")
        }
        #expect(lines.contains(#"tower_worker_tasks_total{kind="echo",outcome="succeeded"} 4"#), "\(text)")
        #expect(lines.contains(#"tower_worker_tasks_total{kind="echo",outcome="failed"} 1"#), "\(text)")
        #expect(lines.contains(#"tower_worker_task_duration_seconds_count{kind="echo"} 5"#), "\(text)")
        #expect(lines.contains("tower_worker_connected 1.0"), "\(text)")
        #expect(lines.contains("tower_worker_reconnects_total 0"), "\(text)")
    }

    /// A bad address is refused before the worker dials anything, naming the flag.
    @Test func aBadMetricsAddressIsRefused() async throws {
        let run = try await ProcessCluster.runToEnd(ProcessCluster.binDirectory.appendingPathComponent("worker"),
                                                    ["--coordinator", "127.0.0.1:1", "--cert", "w.pem", "--key", "w-key.pem", "--ca", "ca.pem",
                                                     "--metrics-listen", "localhost"], within: .seconds(30))
        #expect(run.status != 0)
        #expect(run.output.contains("--metrics-listen must be HOST:PORT, e.g. 127.0.0.1:9465, got localhost"), "\(run.output)")
    }

    /// The README's Observability section lists every worker metric.
    @Test func theReadmeListsEveryWorkerMetric() throws {
        let readme = try ReadmeWalk.readme()
        let missing = WorkerMetrics.catalog.map(\.key).filter { !readme.contains("`\($0)`") }
        #expect(missing.isEmpty, "README.md does not list \(missing)")
    }

    /// GETs /metrics until `ready` holds for the body (the last result reaches the
    /// worker's counters just after the job's end reaches the operator).
    static func scrape(_ port: Int, until ready: (String) -> Bool) async throws -> String {
        let url = URL(string: "http://127.0.0.1:\(port)/metrics")!
        var last = ""
        for _ in 0..<200 {
            let run = try await ProcessCluster.runToEnd(URL(fileURLWithPath: "/usr/bin/curl"), ["-s", url.absoluteString], within: .seconds(30))
            last = run.output
            if run.status == 0, ready(last) { return last }
            try await Task.sleep(for: .milliseconds(50))
        }
        throw WireError.timedOut(what: "worker metrics to show the job; last scrape:\n\(last)")
    }
}
}
