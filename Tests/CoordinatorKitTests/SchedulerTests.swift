import Testing
import Wire
@testable import CoordinatorKit

/// The scheduling state machine without sockets or clocks: every transition is driven by
/// a call and a `now`.
@Suite struct SchedulerTests {
    func scheduler(tasks: Int = 4, maxAttempts: Int = 3, lease: UInt64 = 1000) -> Scheduler {
        var s = Scheduler(leaseTimeoutMs: lease, prefetchPerSlot: 1)
        s.addJob("j", maxAttempts: maxAttempts, pending: (1...tasks).map { (TaskID($0), 0) })
        return s
    }

    @Test func assignmentFillsFreeSlotsOnly() {
        var s = scheduler(tasks: 5)
        s.addWorker("a", name: "a", slots: 2, now: 0)
        s.addWorker("b", name: "b", slots: 1, now: 0)
        let first = s.assign(now: 0)
        #expect(first.count == 3)
        #expect(Set(first.map(\.task)).count == 3)
        #expect(first.filter { $0.session == "a" }.count == 2)
        #expect(s.assign(now: 0).isEmpty)
        #expect(s.progress(of: "j")?.leased == 3)
        #expect(s.progress(of: "j")?.queued == 2)
    }

    @Test func prefetchLetsAWorkerHoldMoreThanItsSlots() {
        var s = Scheduler(leaseTimeoutMs: 1000, prefetchPerSlot: 3)
        s.addJob("j", maxAttempts: 1, pending: (1...10).map { (TaskID($0), 0) })
        s.addWorker("a", name: "a", slots: 2, now: 0)
        #expect(s.assign(now: 0).count == 6)
    }

    @Test func completionIsIdempotent() {
        var s = scheduler(tasks: 1)
        s.addWorker("a", name: "a", slots: 1, now: 0)
        let a = s.assign(now: 0)[0]
        guard case let .recorded(_, end, revoke) = s.complete(a.task, attempt: a.attempt, from: "a", worker: "a") else { Issue.record("not recorded"); return }
        #expect(revoke == nil)
        #expect(end?.progress.done == 1)
        #expect(s.complete(a.task, attempt: a.attempt, from: "a", worker: "a") == .duplicate)
        #expect(s.complete(999, attempt: 1, from: "a", worker: "a") == .unknownTask)
        #expect(s.progress(of: "j")?.done == 1)
    }

    @Test func expiredLeaseReturnsTheTaskAndCountsTheAttempt() {
        var s = scheduler(tasks: 1, lease: 1000)
        s.addWorker("a", name: "a", slots: 1, now: 0)
        let first = s.assign(now: 0)[0]
        #expect(first.attempt == 1)
        #expect(s.expireLeases(now: 999).isEmpty)
        let lost = s.expireLeases(now: 1000)
        #expect(lost == [.init(task: first.task, session: "a", outcome: .requeued(attempts: 1))])
        #expect(s.state(of: first.task) == .queued)
        let second = s.assign(now: 1000)[0]
        #expect(second.task == first.task && second.attempt == 2)
    }

    @Test func heartbeatRenewalKeepsALeaseAlive() {
        var s = scheduler(tasks: 1, lease: 1000)
        s.addWorker("a", name: "a", slots: 1, now: 0)
        let a = s.assign(now: 0)[0]
        s.renew("a", running: [a.task], now: 900)
        #expect(s.expireLeases(now: 1500).isEmpty)
        // Another session cannot renew a lease it does not hold.
        s.renew("b", running: [a.task], now: 2500)
        #expect(s.expireLeases(now: 1900).count == 1)
    }

    @Test func taskFailsForGoodAfterMaxAttemptsAndTheJobSaysWhy() {
        var s = scheduler(tasks: 1, maxAttempts: 2)
        s.addWorker("a", name: "a", slots: 1, now: 0)
        let t = s.assign(now: 0)[0].task
        #expect(s.fail(t, from: "a", message: "boom", retryable: true) == .requeued(attempts: 1))
        _ = s.assign(now: 0)
        guard case let .failedForGood(attempts, end) = s.fail(t, from: "a", message: "boom again", retryable: true) else {
            Issue.record("expected failure for good"); return
        }
        #expect(attempts == 2)
        #expect(end?.progress.failed == 1)
        #expect(end?.progress.firstError?.contains("boom again") == true)
        #expect(s.state(of: t) == .failed)
    }

    @Test func nonRetryableFailureFailsAtOnce() {
        var s = scheduler(tasks: 2, maxAttempts: 5)
        s.addWorker("a", name: "a", slots: 2, now: 0)
        let t = s.assign(now: 0)[0].task
        guard case .failedForGood(_, nil) = s.fail(t, from: "a", message: "bad input", retryable: false) else {
            Issue.record("expected immediate failure"); return
        }
    }

    @Test func aLostWorkerReturnsItsLeases() {
        var s = scheduler(tasks: 3)
        s.addWorker("a", name: "a", slots: 3, now: 0)
        let assigned = s.assign(now: 0)
        let lost = s.removeWorker("a")
        #expect(lost.map(\.task) == assigned.map(\.task).sorted())
        #expect(lost.allSatisfy { $0.outcome == .requeued(attempts: 1) })
        s.addWorker("b", name: "b", slots: 3, now: 0)
        #expect(s.assign(now: 0).count == 3)
    }

    @Test func aLateResultFromAnExpiredLeaseStillCountsOnceAndRevokesTheRerun() {
        var s = scheduler(tasks: 1, lease: 100)
        s.addWorker("a", name: "a", slots: 1, now: 0)
        s.addWorker("b", name: "b", slots: 1, now: 0)
        let first = s.assign(now: 0)[0]
        _ = s.expireLeases(now: 100)
        let second = s.assign(now: 100)[0]
        #expect(second.task == first.task)
        // The first worker finishes after all; its result wins, the second is told to stop.
        guard case let .recorded(attempts, end, revoke) = s.complete(first.task, attempt: first.attempt, from: first.session, worker: first.session) else { Issue.record("not recorded"); return }
        #expect(revoke == second.session || first.session == second.session)
        #expect(attempts == 2)
        #expect(end?.progress.done == 1)
        #expect(s.complete(first.task, attempt: second.attempt, from: second.session, worker: second.session) == .duplicate)
        #expect(s.leasedCount == 0)
    }

    @Test func drainingWorkerKeepsItsLeasesButGetsNoMore() {
        var s = scheduler(tasks: 4)
        s.addWorker("a", name: "a", slots: 1, now: 0)
        let t = s.assign(now: 0)[0]
        s.drain("a")
        _ = s.complete(t.task, attempt: t.attempt, from: "a", worker: "a")
        #expect(s.assign(now: 0).isEmpty)
        #expect(s.running(on: "a").isEmpty)
    }

    @Test func cancelStopsRunningTasksAndEndsTheJob() {
        var s = scheduler(tasks: 4)
        s.addWorker("a", name: "a", slots: 2, now: 0)
        let assigned = s.assign(now: 0)
        let (revoked, end) = s.cancel(job: "j")
        #expect(Set(revoked.map(\.1)) == Set(assigned.map(\.task)))
        #expect(end?.progress.cancelled == 4)
        #expect(s.assign(now: 0).isEmpty)
        #expect(s.complete(assigned[0].task, attempt: 1, from: "a", worker: "a") == .duplicate)
    }

    @Test func resumedJobKeepsAttemptsAndFinishedCounts() {
        var s = Scheduler(leaseTimeoutMs: 100, prefetchPerSlot: 1)
        s.addJob("j", maxAttempts: 2, pending: [(7, 1)], done: 5, failed: 1)
        #expect(s.progress(of: "j")?.total == 7)
        s.addWorker("a", name: "a", slots: 1, now: 0)
        let a = s.assign(now: 0)[0]
        #expect(a.attempt == 2)
        guard case let .failedForGood(_, end) = s.expireLeases(now: 100)[0].outcome else { Issue.record("expected failure"); return }
        #expect(end?.progress.failed == 2)
        #expect(end?.progress.done == 5)
    }

    @Test func tasksSpreadAcrossWorkersRoundRobin() {
        var s = Scheduler(leaseTimeoutMs: 100, prefetchPerSlot: 1)
        s.addJob("j", maxAttempts: 1, pending: (1...4).map { (TaskID($0), 0) })
        s.addWorker("a", name: "a", slots: 4, now: 0)
        s.addWorker("b", name: "b", slots: 4, now: 0)
        let sessions = s.assign(now: 0).map(\.session)
        #expect(sessions.filter { $0 == "a" }.count == 2)
        #expect(sessions.filter { $0 == "b" }.count == 2)
    }

    // MARK: Results bound to leases

    @Test func aResultFromASessionThatWasNeverGivenTheTaskIsRefused() {
        var s = scheduler(tasks: 2)
        s.addWorker("w1#1", name: "w1", slots: 1, now: 0)
        s.addWorker("w2#2", name: "w2", slots: 1, now: 0)
        let leases = s.assign(now: 0)
        let onW1 = leases.first { $0.session == "w1#1" }!
        // w2 forges w1's result: refused, and the task stays leased to w1.
        #expect(s.complete(onW1.task, attempt: onW1.attempt, from: "w2#2", worker: "w2") == .refused)
        #expect(s.state(of: onW1.task) == .leased)
        #expect(s.progress(of: "j")?.done == 0)
        // Nor may w1 claim an attempt it was not given.
        #expect(s.complete(onW1.task, attempt: onW1.attempt + 1, from: "w1#1", worker: "w1") == .refused)
        guard case .recorded = s.complete(onW1.task, attempt: onW1.attempt, from: "w1#1", worker: "w1") else { Issue.record("lease holder refused"); return }
    }

    @Test func theSameWorkerRedeliversAfterReconnectingUnderANewSession() {
        var s = scheduler(tasks: 1)
        s.addWorker("w1#1", name: "w1", slots: 1, now: 0)
        let a = s.assign(now: 0)[0]
        _ = s.removeWorker("w1#1")
        s.addWorker("w1#3", name: "w1", slots: 1, now: 10)
        guard case let .recorded(attempts, end, _) = s.complete(a.task, attempt: a.attempt, from: "w1#3", worker: "w1") else {
            Issue.record("redelivery refused"); return
        }
        #expect(attempts == 1)
        #expect(end?.progress.done == 1)
    }

    @Test func aResumedJobAcceptsTheResultOfAnAttemptGrantedBeforeTheRestart() {
        var s = Scheduler(leaseTimeoutMs: 1000, prefetchPerSlot: 1)
        s.addJob("j", maxAttempts: 3, pending: [(7, 2)], retries: 1, grants: [7: .init(worker: "w1", attempt: 2)])
        #expect(s.progress(of: "j")?.retries == 1)
        s.addWorker("w2#1", name: "w2", slots: 1, now: 0)
        #expect(s.complete(7, attempt: 2, from: "w2#1", worker: "w2") == .refused)
        s.addWorker("w1#2", name: "w1", slots: 1, now: 0)
        guard case let .recorded(attempts, _, _) = s.complete(7, attempt: 2, from: "w1#2", worker: "w1") else { Issue.record("refused"); return }
        #expect(attempts == 2)
    }

    // MARK: Silent workers

    @Test func aWorkerDroppedForSilenceGetsNothingInTheSameTick() {
        var s = Scheduler(leaseTimeoutMs: 1000, prefetchPerSlot: 1)
        s.addJob("j", maxAttempts: 3, pending: (1...6).map { (TaskID($0), 0) })
        s.addWorker("a", name: "a", slots: 2, now: 0)
        s.addWorker("b", name: "b", slots: 2, now: 0)
        let first = s.assign(now: 0)
        #expect(first.count == 4)
        // b keeps talking; a falls silent.
        s.renew("b", running: first.filter { $0.session == "b" }.map(\.task), now: 900)
        let expiry = s.expire(now: 1001)
        #expect(expiry.silentWorkers == ["a"])
        #expect(expiry.lost.count == 2)
        #expect(expiry.lost.allSatisfy { $0.session == "a" && $0.outcome == .requeued(attempts: 1) })
        #expect(!s.isWorker("a"))
        // The next assignment in the same tick goes to b only (it has no free slot yet).
        #expect(s.assign(now: 1001).isEmpty)
        #expect(s.progress(of: "j")?.retries == 2)
    }

    @Test func aWorkerThatKeepsHeartbeatingIsNotDropped() {
        var s = scheduler(tasks: 1, lease: 1000)
        s.addWorker("a", name: "a", slots: 1, now: 0)
        s.heard(from: "a", now: 800)
        #expect(s.expire(now: 1500) == Scheduler.Expiry())
        #expect(s.isWorker("a"))
    }

    // MARK: Capabilities

    @Test func tasksGoOnlyToWorkersWithTheKindAndItsTools() {
        var s = Scheduler(leaseTimeoutMs: 1000, prefetchPerSlot: 1)
        s.addJob("render", maxAttempts: 3, pending: (1...4).map { (TaskID($0), 0) }, needs: .init(kind: "render", tools: ["ffmpeg"]))
        s.addJob("echo", maxAttempts: 3, pending: (11...12).map { (TaskID($0), 0) }, needs: .init(kind: "echo"))
        s.addWorker("plain", name: "plain", slots: 4, now: 0, offer: .init(kinds: ["echo", "render"], tools: []))
        s.addWorker("media", name: "media", slots: 4, now: 0, offer: .init(kinds: ["echo", "render"], tools: ["ffmpeg", "ffprobe"]))
        let assigned = s.assign(now: 0)
        #expect(assigned.filter { $0.task < 10 }.allSatisfy { $0.session == "media" })
        #expect(assigned.filter { $0.task < 10 }.count == 4)
        // The job nobody else can run does not hold up the one anybody can.
        #expect(assigned.filter { $0.task > 10 }.count == 2)
        #expect(s.waiting("render") == nil)
    }

    @Test func aJobNoWorkerCanRunWaitsSaysWhyAndSpendsNoAttempt() {
        var s = Scheduler(leaseTimeoutMs: 1000, prefetchPerSlot: 1)
        s.addJob("r", maxAttempts: 1, pending: [(1, 0)], needs: .init(kind: "render", tools: ["ffmpeg", "ffprobe"]))
        #expect(s.waiting("r") == "no worker is connected")
        s.addWorker("a", name: "a", slots: 2, now: 0, offer: .init(kinds: ["echo"]))
        #expect(s.assign(now: 0).isEmpty)
        #expect(s.waiting("r") == "no connected worker runs job kind render")
        s.addWorker("b", name: "b", slots: 2, now: 0, offer: .init(kinds: ["render"], tools: ["ffprobe"]))
        #expect(s.assign(now: 0).isEmpty)
        #expect(s.waiting("r") == "no connected worker has ffmpeg, ffprobe (missing everywhere: ffmpeg)")
        #expect(s.attempts(of: 1) == 0)
        #expect(s.progress(of: "r")?.retries == 0)
        s.addWorker("c", name: "c", slots: 1, now: 0, offer: .init(kinds: ["render"], tools: ["ffmpeg", "ffprobe"]))
        #expect(s.assign(now: 0).map(\.session) == ["c"])
        #expect(s.waiting("r") == nil)
    }
}
