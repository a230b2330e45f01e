import Foundation
import Testing
import Wire
@testable import CoordinatorKit

/// Smaller defects of issue 8: each asserts the exact refusal.
@Suite struct EchoVerificationTests {
    func store() throws -> ClusterStore {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("tower-echo-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        return try ClusterStore(path: dir.appendingPathComponent("t.sqlite").path)
    }

    @Test func aPayloadThatFailsVerificationIsNamed() throws {
        let good = WireEchoSpec.payload(index: 3, bytes: 64)
        #expect(WireEchoSpec.payloadMismatch(good, index: 3, bytes: 64) == nil)
        var bad = good
        bad[17] ^= 0xFF
        #expect(WireEchoSpec.payloadMismatch(bad, index: 3, bytes: 64)
                == "task 3's payload is not the one its job generated (64 of 64 bytes, first difference at byte 17): the bytes were altered between the coordinator and the worker; check the hosts' memory and network, then submit the job again")
        #expect(WireEchoSpec.payloadMismatch(good.prefix(10), index: 3, bytes: 64)
                == "task 3's payload is not the one its job generated (10 of 64 bytes, first difference at byte 10): the bytes were altered between the coordinator and the worker; check the hosts' memory and network, then submit the job again")
    }

    @Test func anEchoJobWithAnAlteredPayloadEndsFailedNotSucceeded() throws {
        let s = try store()
        let spec = try WireEchoSpec.with { $0.tasks = 2; $0.payloadBytes = 32 }.serializedData()
        let job = JobRow(id: "j1", kind: JobKind.echo, name: "n", spec: spec, state: .queued, total: 2, maxAttempts: 1,
                         createdAt: Date(), finishedAt: nil, error: nil, summary: nil, submittedBy: "op")
        let ids = try s.insertJob(job, tasks: [PlannedTask(input: Data()), PlannedTask(input: Data())])
        var altered = WireEchoSpec.payload(index: 1, bytes: 32)
        altered[0] ^= 1
        func output(_ payload: Data) throws -> Data { try WireEchoOutput.with { $0.payload = payload; $0.worker = "w1" }.serializedData() }
        let planner = EchoPlanner()
        try s.apply([
            .done(task: ids[0], attempts: 1, output: try output(WireEchoSpec.payload(index: 0, bytes: 32)), worker: "w1", durationUs: 1),
            .done(task: ids[1], attempts: 1, output: try output(altered), worker: "w1", durationUs: 1),
        ])
        // How the core concludes a job whose tasks all ended.
        var progress = Scheduler.JobProgress(total: 2, maxAttempts: 1)
        progress.done = 2
        let end = JobEnding.conclude(progress: progress, rule: EchoKind.failureRule) {
            try planner.summarize(spec: spec, results: try s.results(job: "j1"))
        }
        try s.apply([.finished(job: "j1", state: end.state, error: end.error, summary: end.summary)])
        let row = try #require(try s.job("j1"))
        let mismatch = try #require(WireEchoSpec.payloadMismatch(altered, index: 1, bytes: 32))
        #expect(row.state == .failed)
        #expect(row.error == "summary failed: \(WireError.invalidArgument(mismatch))")
        #expect(row.summary == nil)
    }
}

@Suite struct RollbackHistoryTests {
    @Test func repeatedRollbacksWalkTheChampionHistoryBack() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("tower-rollback-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        let t = ModelRegistry(try ClusterStore(path: dir.appendingPathComponent("t.sqlite").path))
        for _ in 1...3 { _ = try t.registerVersion(model: "m", runID: nil, sha256: "s", metrics: [:]) }
        try t.decide(model: "m", alias: "champion", version: 1, expected: nil, promoted: true, action: "auto", reasons: [], numbers: [:], actor: "p")
        try t.decide(model: "m", alias: "champion", version: 2, expected: 1, promoted: true, action: "auto", reasons: [], numbers: [:], actor: "p")
        try t.decide(model: "m", alias: "champion", version: 3, expected: 2, promoted: true, action: "auto", reasons: [], numbers: [:], actor: "p")
        // A declined candidate is not part of the alias's history.
        try t.decide(model: "m", alias: "champion", version: 2, expected: 3, promoted: false, action: "auto", reasons: [], numbers: [:], actor: "p")
        let first = try t.rollback(model: "m", actor: "alice", reason: "bad clicks")
        #expect((first.version, first.previousVersion) == (2, 3))
        let second = try t.rollback(model: "m", actor: "alice", reason: "still bad")
        #expect((second.version, second.previousVersion) == (1, 2))
        #expect(try t.alias("m", "champion") == 1)
        #expect(throws: RegistryError.nothingToRollBack(model: "m", alias: "champion")) {
            try t.rollback(model: "m", actor: "alice", reason: "too far")
        }
        // Promoting again after rollbacks starts a new branch of history.
        try t.decide(model: "m", alias: "champion", version: 3, expected: 1, promoted: true, action: "manual", reasons: [], numbers: [:], actor: "alice")
        #expect(try t.rollback(model: "m", actor: "alice", reason: "again").version == 1)
    }

    @Test func theHistoryReplayIsAStack() {
        let moves: [(version: Int, action: String)] = [(1, "auto"), (2, "auto"), (3, "manual"), (2, "rollback")]
        #expect(ModelRegistry.rollbackTarget(history: moves, current: 2) == 1)
        #expect(ModelRegistry.rollbackTarget(history: moves + [(1, "rollback")], current: 1) == nil)
        #expect(ModelRegistry.rollbackTarget(history: [], current: 1) == nil)
    }
}

@Suite struct OperatorFlagTests {
    @Test func echoFlagsAreCheckedBeforeNarrowing() throws {
        #expect(throws: FlagValueError.outOfRange(flag: "--tasks", value: -1, allowed: 1...EchoPlanner.maxTasks)) {
            try FlagValue.echoSpec(tasks: -1, payloadBytes: 1024, sleepMs: 0, blobBytes: 0, failIndex: nil)
        }
        #expect(throws: FlagValueError.outOfRange(flag: "--payload-bytes", value: 999_999_999_999, allowed: 0...EchoPlanner.maxPayloadBytes)) {
            try FlagValue.echoSpec(tasks: 10, payloadBytes: 999_999_999_999, sleepMs: 0, blobBytes: 0, failIndex: nil)
        }
        #expect(FlagValueError.outOfRange(flag: "--tasks", value: -1, allowed: 1...5_000_000).description == "--tasks must be from 1 to 5000000, got -1")
        #expect(FlagValueError.outOfRange(flag: "--payload-bytes", value: 999_999_999_999, allowed: 0...16_777_216).description
                == "--payload-bytes must be from 0 to 16777216, got 999999999999")
        #expect(throws: FlagValueError.outOfRange(flag: "--fail-index", value: 5, allowed: 0...4)) {
            try FlagValue.echoSpec(tasks: 5, payloadBytes: 8, sleepMs: 0, blobBytes: 0, failIndex: 5)
        }
        let spec = try FlagValue.echoSpec(tasks: 5, payloadBytes: 8, sleepMs: 2, blobBytes: 0, failIndex: 4)
        #expect(spec.tasks == 5 && spec.payloadBytes == 8 && spec.sleepMs == 2 && spec.failIndexPlusOne == 5)
    }
}

@Suite struct JobFollowerTests {
    final class Polls: @unchecked Sendable {
        var count = 0
    }

    @Test func followGivesUpAfterBoundedFailedPollsNamingTheCoordinator() async throws {
        let polls = Polls()
        let follower = JobFollower(id: "j-42", interval: .milliseconds(1), maxFailedPolls: 3)
        await #expect(throws: JobFollower.unreachable(job: "j-42", polls: 3, lastError: WireError.connectionClosed)) {
            _ = try await follower.run(poll: { polls.count += 1; throw WireError.connectionClosed }, progress: { _ in })
        }
        #expect(polls.count == 3)
        #expect(JobFollower.unreachable(job: "j-42", polls: 3, lastError: WireError.connectionClosed).description
                == "lost the coordinator while following job j-42: 3 polls in a row failed (last: connection closed); the job keeps running if the coordinator does. Check that the coordinator is running and reachable, then follow again with `coordinator job j-42 --follow`")
    }

    @Test func aRefusalEndsFollowAtOnceAndATransientFailureDoesNot() async throws {
        let polls = Polls()
        let follower = JobFollower(id: "j", interval: .milliseconds(1), maxFailedPolls: 2)
        await #expect(throws: WireError.remote(code: .notFound, message: "not found: job j")) {
            _ = try await follower.run(poll: { polls.count += 1; throw WireError.remote(code: .notFound, message: "not found: job j") }, progress: { _ in })
        }
        #expect(polls.count == 1)
        // One failure, then the job ends: the failure is forgiven.
        let flaky = Polls()
        let end = try await follower.run(poll: {
            flaky.count += 1
            if flaky.count == 1 { throw WireError.timedOut(what: "GetJob") }
            return WireJobSummary.with { $0.jobID = "j"; $0.state = .succeeded }
        }, progress: { _ in })
        #expect(end.state == .succeeded && flaky.count == 2)
        #expect(JobFollower.isConnectivity(WireError.remote(code: .shuttingDown, message: "shutting down")))
        #expect(!JobFollower.isConnectivity(WireError.remote(code: .forbidden, message: "no")))
    }
}

@Suite struct ListLimitTests {
    @Test func aJobListingIsCappedWhoeverAsks() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("tower-limit-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        let s = try ClusterStore(path: dir.appendingPathComponent("t.sqlite").path)
        for i in 0..<(ClusterStore.maxListedJobs + 5) {
            _ = try s.insertJob(JobRow(id: "j\(i)", kind: "echo", name: "n", spec: Data(), state: .queued, total: 0, maxAttempts: 1,
                                       createdAt: Date(), finishedAt: nil, error: nil, summary: nil, submittedBy: "op"), tasks: [])
        }
        #expect(try s.jobs(limit: Int(UInt32.max)).count == 1000)
        #expect(try s.jobs(limit: 7).count == 7)
        #expect(try s.jobs(limit: 0).count == 1)
    }
}
