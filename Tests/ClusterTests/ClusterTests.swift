import Foundation
import Testing
import Wire
@testable import CoordinatorKit

/// The real executables as separate processes: a coordinator, two workers, TLS on loopback.
extension ProcessClusterSuites {
@Suite(.serialized) struct ClusterTests {
    /// Every task has exactly one stored result, and it is the payload it was given.
    func expectEveryTaskOnce(_ c: ProcessCluster, job: String, tasks: Int) throws {
        let rows = try c.storedResults(job)
        #expect(rows.count == tasks)
        #expect(rows.map(\.index) == Array(0..<tasks))
        #expect(rows.allSatisfy { $0.state == .done && $0.resultCount == 1 })
        for row in rows {
            let output = try WireEchoOutput(serializedBytes: row.output ?? Data())
            #expect(output.payload == WireEchoSpec.payload(index: row.index, bytes: 64))
        }
    }

    @Test func twoWorkersComplete200Tasks() async throws {
        let (c, op) = try await ProcessCluster.running(workers: ["w1", "w2"])
        defer { op.close(); c.stopAll() }
        let job = try await c.submitEcho(op, tasks: 200, sleepMs: 2, blobBytes: 3 << 20)
        let end = try await op.follow(job, every: .milliseconds(100)) { _ in }
        #expect(end.state == .succeeded)
        #expect(end.done == 200)
        let summary = try WireEchoSummary(serializedBytes: end.summary)
        #expect(summary.tasks == 200)
        // Both workers took part, and each fetched the shared blob once into its cache.
        #expect(summary.tasksPerWorker.keys.sorted() == ["w1", "w2"])
        for name in ["w1", "w2"] {
            let cache = try BlobStore(root: c.cluster.directory.appendingPathComponent("cache-\(name)"))
            let outputs = try c.storedResults(job).filter { $0.worker == name }
            let hash = try WireEchoOutput(serializedBytes: outputs[0].output!).blobSha256
            #expect(cache.contains(hash))
        }
        try expectEveryTaskOnce(c, job: job, tasks: 200)
    }

    @Test func killingAWorkerMidJobLosesNothing() async throws {
        let (c, op) = try await ProcessCluster.running(workers: ["w1", "w2"])
        defer { op.close(); c.stopAll() }
        // 100 ms per task: the job lasts seconds, so the kill lands mid-job even when a
        // loaded machine answers the progress poll late.
        let job = try await c.submitEcho(op, tasks: 200, sleepMs: 100)
        try await c.waitUntil("a quarter of the job") { try await op.job(job).done >= 50 }
        c.kill9(c.workers["w1"])
        let end = try await op.follow(job, every: .milliseconds(100)) { _ in }
        #expect(end.state == .succeeded)
        #expect(end.done == 200)
        // The killed worker held leases; they were retried elsewhere.
        #expect(end.retries > 0)
        try expectEveryTaskOnce(c, job: job, tasks: 200)
        #expect(try c.storedResults(job).filter { $0.attempts > 1 }.allSatisfy { $0.worker == "w2" })
    }

    @Test func killingTheCoordinatorMidJobResumesOnRestart() async throws {
        let c = try ProcessCluster(workers: ["w1", "w2"])
        defer { c.stopAll() }
        try c.startCoordinator()
        try c.startWorker("w1")
        try c.startWorker("w2")
        var op = try await c.operatorClient()
        try await c.waitForWorkers(2, op)
        // 100 ms per task: the job lasts seconds, so the kill lands mid-job even when a
        // loaded machine answers the progress poll late.
        let job = try await c.submitEcho(op, tasks: 200, sleepMs: 100)
        try await c.waitUntil("a quarter of the job") { try await op.job(job).done >= 50 }
        op.close()
        c.kill9(c.coordinator)
        let doneBefore = try c.storedResults(job).filter { $0.state == .done }
        #expect(doneBefore.count > 0)

        // Same data directory, same port: the workers reconnect on their own.
        try c.startCoordinator()
        op = try await c.operatorClient()
        defer { op.close() }
        let end = try await op.follow(job, every: .milliseconds(100)) { _ in }
        #expect(end.state == .succeeded)
        #expect(end.done == 200)
        try expectEveryTaskOnce(c, job: job, tasks: 200)
        // What was stored before the crash is untouched.
        let after = Dictionary(uniqueKeysWithValues: try c.storedResults(job).map { ($0.index, $0) })
        for row in doneBefore { #expect(after[row.index]?.output == row.output) }
        #expect(c.log("coordinator").contains("resumed job"))
    }

    @Test func aTaskThatKeepsFailingFailsTheJobWithTheReason() async throws {
        let (c, op) = try await ProcessCluster.running(workers: ["w1"])
        defer { op.close(); c.stopAll() }
        let job = try await c.submitEcho(op, tasks: 10, sleepMs: 0, maxAttempts: 2, failIndex: 3)
        let end = try await op.follow(job, every: .milliseconds(100)) { _ in }
        #expect(end.state == .failed)
        #expect(end.done == 9)
        #expect(end.failed == 1)
        #expect(end.error.contains("after 2 attempt"))
        #expect(end.error.contains("diagnostic failure"))
    }

    @Test func sigtermDrainsAWorker() async throws {
        let (c, op) = try await ProcessCluster.running(workers: ["w1", "w2"], slots: 2)
        defer { op.close(); c.stopAll() }
        let job = try await c.submitEcho(op, tasks: 40, sleepMs: 300)
        try await c.waitUntil("w1 running tasks") { try await op.workers().first { $0.name == "w1" }?.running ?? 0 > 0 }
        let w1 = c.workers["w1"]!
        w1.terminate()
        w1.waitUntilExit()
        #expect(w1.terminationStatus == 0)
        let end = try await op.follow(job, every: .milliseconds(100)) { _ in }
        #expect(end.state == .succeeded)
        // Draining finished its running tasks instead of abandoning them.
        #expect(end.retries == 0)
        #expect(c.log("w1").contains("drained"))
        try expectEveryTaskOnce(c, job: job, tasks: 40)
    }

    @Test func operatorCommandLineFollowsAJob() async throws {
        let c = try ProcessCluster(workers: ["w1"])
        defer { c.stopAll() }
        try c.startCoordinator()
        try c.startWorker("w1")
        let op = try await c.operatorClient()
        try await c.waitForWorkers(1, op)
        op.close()
        let process = Process()
        process.executableURL = ProcessCluster.binDirectory.appendingPathComponent("coordinator")
        process.arguments = ["submit", "echo", "--tasks", "30", "--follow", "--coordinator", "127.0.0.1:\(c.port)",
                             "--cert", c.cluster.certificate("operator"), "--key", c.cluster.key("operator"), "--ca", c.cluster.ca]
        let out = Pipe()
        process.standardOutput = out
        try process.run()
        process.waitUntilExit()
        let text = String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        #expect(process.terminationStatus == 0)
        #expect(text.contains("30/30 100%"))
        #expect(text.contains("succeeded"))
        #expect(text.contains("30 payloads verified"))
    }
}

@Suite(.serialized) struct HungWorkerTests {
    /// A worker that stops answering (SIGSTOP: hung, or behind a cut network) loses its
    /// leases after the lease timeout; its tasks finish elsewhere, and the results it sends
    /// when it wakes up are ignored as duplicates.
    @Test func aHungWorkersLeasesExpireAndItsLateResultsAreIgnored() async throws {
        let (c, op) = try await ProcessCluster.running(workers: ["w1", "w2"], slots: 2)
        defer { op.close(); c.stopAll() }
        let job = try await c.submitEcho(op, tasks: 40, sleepMs: 400)
        try await c.waitUntil("w1 running tasks") { try await op.workers().first { $0.name == "w1" }?.running ?? 0 > 0 }
        let w1 = c.workers["w1"]!
        kill(w1.processIdentifier, SIGSTOP)
        let end = try await op.follow(job, every: .milliseconds(100)) { _ in }
        #expect(end.state == .succeeded)
        #expect(end.retries > 0)
        kill(w1.processIdentifier, SIGCONT)
        try await c.waitUntil("w1 to deliver its late results") {
            c.log("coordinator").contains("ignored a duplicate result") || c.log("coordinator").contains("ignored a result for a task that is not running")
        }
        #expect(c.log("coordinator").contains("silent for a lease period"))
        let rows = try c.storedResults(job)
        #expect(rows.count == 40 && rows.allSatisfy { $0.resultCount == 1 })
    }
}
}
