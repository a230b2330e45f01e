import Foundation
import Testing
import Wire
@testable import CoordinatorKit

/// Part of the serialized SecurityTests: the metrics registry is process-wide, so no other
/// in-process coordinator may update the same gauges meanwhile.
extension SecurityTests {
    /// Prometheus scrapes the coordinator over plain HTTP on loopback.
    @Test func prometheusEndpointExportsClusterMetrics() async throws {
        TowerMetrics.bootstrap()
        let c = try await InProcessCoordinator.start(metrics: true)
        defer { Task { await c.stop() } }
        let op = try await c.operatorClient()
        var spec = WireJobSpec()
        spec.kind = JobKind.echo
        spec.spec = try WireEchoSpec.with { $0.tasks = 7 }.serializedData()
        _ = try await op.submit(spec)
        op.close()
        let port = try #require(c.service.metricsPort)
        let curl = Process()
        curl.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        curl.arguments = ["curl", "-sf", "http://127.0.0.1:\(port)/metrics"]
        let out = Pipe()
        curl.standardOutput = out
        try curl.run()
        curl.waitUntilExit()
        let text = String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        #expect(curl.terminationStatus == 0)
        #expect(text.contains("# TYPE tower_jobs_submitted_total counter"), "\(text)")
        // No worker is connected, so all seven tasks wait in the queue.
        #expect(text.contains("tower_tasks_queued 7"), "\(text)")
        // Every metric says what it counts, in the words of the catalog.
        let types = text.split(separator: "\n").filter { $0.hasPrefix("# TYPE tower_") }.map { $0.split(separator: " ")[2] }
        #expect(!types.isEmpty)
        for name in types {
            let help = try #require(TowerMetrics.catalog.first { $0.key == name }?.value, "\(name) is exported but not in the catalog")
            #expect(text.contains("# HELP \(name) \(help)\n# TYPE \(name) "), "\(name)")
        }
    }

    /// The README lists every metric the coordinator exports.
    @Test func theReadmeListsEveryMetric() throws {
        let readme = try String(contentsOf: URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("README.md"), encoding: .utf8)
        let missing = TowerMetrics.catalog.map(\.key).filter { !readme.contains("`\($0)`") }
        #expect(missing == [])
    }
}
