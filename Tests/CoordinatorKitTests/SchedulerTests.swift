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
        s.addWorker("a", slots: 2)
        s.addWorker("b", slots: 1)
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
        s.addWorker("a", slots: 2)
        #expect(s.assign(now: 0).count == 6)
    }

    @Test func completionIsIdempotent() {
        var s = scheduler(tasks: 1)
        s.addWorker("a", slots: 1)
        let a = s.assign(now: 0)[0]
        guard case let .recorded(end, revoke) = s.complete(a.task, from: "a") else { Issue.record("not recorded"); return }
        #expect(revoke == nil)
        #expect(end?.progress.done == 1)
        #expect(s.complete(a.task, from: "a") == .duplicate)
        #expect(s.complete(999, from: "a") == .unknownTask)
        #expect(s.progress(of: "j")?.done == 1)
    }

    @Test func expiredLeaseReturnsTheTaskAndCountsTheAttempt() {
        var s = scheduler(tasks: 1, lease: 1000)
        s.addWorker("a", slots: 1)
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
        s.addWorker("a", slots: 1)
        let a = s.assign(now: 0)[0]
        s.renew("a", running: [a.task], now: 900)
        #expect(s.expireLeases(now: 1500).isEmpty)
        // Another session cannot renew a lease it does not hold.
        s.renew("b", running: [a.task], now: 2500)
        #expect(s.expireLeases(now: 1900).count == 1)
    }

    @Test func taskFailsForGoodAfterMaxAttemptsAndTheJobSaysWhy() {
        var s = scheduler(tasks: 1, maxAttempts: 2)
        s.addWorker("a", slots: 1)
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
        s.addWorker("a", slots: 2)
        let t = s.assign(now: 0)[0].task
        guard case .failedForGood(_, nil) = s.fail(t, from: "a", message: "bad input", retryable: false) else {
            Issue.record("expected immediate failure"); return
        }
    }

    @Test func aLostWorkerReturnsItsLeases() {
        var s = scheduler(tasks: 3)
        s.addWorker("a", slots: 3)
        let assigned = s.assign(now: 0)
        let lost = s.removeWorker("a")
        #expect(lost.map(\.task) == assigned.map(\.task).sorted())
        #expect(lost.allSatisfy { $0.outcome == .requeued(attempts: 1) })
        s.addWorker("b", slots: 3)
        #expect(s.assign(now: 0).count == 3)
    }

    @Test func aLateResultFromAnExpiredLeaseStillCountsOnceAndRevokesTheRerun() {
        var s = scheduler(tasks: 1, lease: 100)
        s.addWorker("a", slots: 1)
        s.addWorker("b", slots: 1)
        let first = s.assign(now: 0)[0]
        _ = s.expireLeases(now: 100)
        let second = s.assign(now: 100)[0]
        #expect(second.task == first.task)
        // The first worker finishes after all; its result wins, the second is told to stop.
        guard case let .recorded(end, revoke) = s.complete(first.task, from: first.session) else { Issue.record("not recorded"); return }
        #expect(revoke == second.session || first.session == second.session)
        #expect(end?.progress.done == 1)
        #expect(s.complete(first.task, from: second.session) == .duplicate)
        #expect(s.leasedCount == 0)
    }

    @Test func drainingWorkerKeepsItsLeasesButGetsNoMore() {
        var s = scheduler(tasks: 4)
        s.addWorker("a", slots: 1)
        let t = s.assign(now: 0)[0].task
        s.drain("a")
        _ = s.complete(t, from: "a")
        #expect(s.assign(now: 0).isEmpty)
        #expect(s.running(on: "a").isEmpty)
    }

    @Test func cancelStopsRunningTasksAndEndsTheJob() {
        var s = scheduler(tasks: 4)
        s.addWorker("a", slots: 2)
        let assigned = s.assign(now: 0)
        let (revoked, end) = s.cancel(job: "j")
        #expect(Set(revoked.map(\.1)) == Set(assigned.map(\.task)))
        #expect(end?.progress.cancelled == 4)
        #expect(s.assign(now: 0).isEmpty)
        #expect(s.complete(assigned[0].task, from: "a") == .duplicate)
    }

    @Test func resumedJobKeepsAttemptsAndFinishedCounts() {
        var s = Scheduler(leaseTimeoutMs: 100, prefetchPerSlot: 1)
        s.addJob("j", maxAttempts: 2, pending: [(7, 1)], done: 5, failed: 1)
        #expect(s.progress(of: "j")?.total == 7)
        s.addWorker("a", slots: 1)
        let a = s.assign(now: 0)[0]
        #expect(a.attempt == 2)
        guard case let .failedForGood(_, end) = s.expireLeases(now: 100)[0].outcome else { Issue.record("expected failure"); return }
        #expect(end?.progress.failed == 2)
        #expect(end?.progress.done == 5)
    }

    @Test func tasksSpreadAcrossWorkersRoundRobin() {
        var s = Scheduler(leaseTimeoutMs: 100, prefetchPerSlot: 1)
        s.addJob("j", maxAttempts: 1, pending: (1...4).map { (TaskID($0), 0) })
        s.addWorker("a", slots: 4)
        s.addWorker("b", slots: 4)
        let sessions = s.assign(now: 0).map(\.session)
        #expect(sessions.filter { $0 == "a" }.count == 2)
        #expect(sessions.filter { $0 == "b" }.count == 2)
    }
}
