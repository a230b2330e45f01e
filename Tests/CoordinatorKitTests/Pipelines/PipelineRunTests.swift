import Foundation
import Testing
@testable import CoordinatorKit

@Suite struct PipelineRunTests {
    static let t0 = instant("2024-05-15T00:00:00Z")
    static func t(_ seconds: Double) -> Date { t0.addingTimeInterval(seconds) }

    static func chain(retries: Int = 2, backoff: Int = 30, timeout: Int = 3600) throws -> PipelineRun {
        PipelineRun(try PipelineDefinition(name: "nightly", steps: [
            PipelineStep(name: "training_set", kind: "training_set", retries: retries, retryBackoffSeconds: backoff, timeoutSeconds: timeout),
            PipelineStep(name: "hpo", kind: "hpo", after: ["training_set"]),
            PipelineStep(name: "score", kind: "score", after: ["hpo"]),
        ]))
    }

    /// prep → (left, right) → join
    static func diamond(retries: Int = 0) throws -> PipelineRun {
        PipelineRun(try PipelineDefinition(name: "diamond", steps: [
            PipelineStep(name: "prep", kind: "training_set"),
            PipelineStep(name: "left", kind: "hpo", retries: retries, after: ["prep"]),
            PipelineStep(name: "right", kind: "drift", retries: retries, after: ["prep"]),
            PipelineStep(name: "join", kind: "score", after: ["left", "right"]),
        ]))
    }

    @Test func aChainRunsStepByStep() throws {
        var run = try Self.chain()
        #expect(run.start(now: Self.t(0)) == [.launch(step: "training_set", attempt: 1)])
        #expect(run.start(now: Self.t(1)) == [])
        #expect(run.stepSucceeded("training_set", attempt: 1, now: Self.t(10)) == [.launch(step: "hpo", attempt: 1)])
        #expect(run.stepSucceeded("hpo", attempt: 1, now: Self.t(20)) == [.launch(step: "score", attempt: 1)])
        #expect(run.stepSucceeded("score", attempt: 1, now: Self.t(30)) == [.finished(.succeeded)])
        #expect(run.outcome == .succeeded)
        #expect(run.states == Array(repeating: .succeeded(attempts: 1), count: 3))
        #expect(run.nextDeadline == nil)
    }

    @Test func independentStepsRunConcurrently() throws {
        var run = try Self.diamond()
        #expect(run.start(now: Self.t(0)) == [.launch(step: "prep", attempt: 1)])
        #expect(run.stepSucceeded("prep", attempt: 1, now: Self.t(5)) == [.launch(step: "left", attempt: 1), .launch(step: "right", attempt: 1)])
        #expect(run.stepSucceeded("left", attempt: 1, now: Self.t(6)) == [])
        #expect(run.state(of: "join") == .pending)
        #expect(run.stepSucceeded("right", attempt: 1, now: Self.t(7)) == [.launch(step: "join", attempt: 1)])
        #expect(run.stepSucceeded("join", attempt: 1, now: Self.t(8)) == [.finished(.succeeded)])
    }

    @Test func aFailedStepIsRetriedWithDoublingBackoff() throws {
        var run = try Self.chain(retries: 2, backoff: 30)
        _ = run.start(now: Self.t(0))
        #expect(run.nextDeadline == Self.t(3600))
        #expect(run.stepFailed("training_set", attempt: 1, reason: "disk full", now: Self.t(10)) == [.retryAt(step: "training_set", date: Self.t(40))])
        #expect(run.state(of: "training_set") == .waitingToRetry(attempt: 2, at: Self.t(40)))
        #expect(run.nextDeadline == Self.t(40))
        #expect(run.tick(now: Self.t(39)) == [])
        #expect(run.tick(now: Self.t(40)) == [.launch(step: "training_set", attempt: 2)])
        #expect(run.stepFailed("training_set", attempt: 2, reason: "disk full", now: Self.t(50)) == [.retryAt(step: "training_set", date: Self.t(110))])
        #expect(run.tick(now: Self.t(110)) == [.launch(step: "training_set", attempt: 3)])
        #expect(run.stepSucceeded("training_set", attempt: 3, now: Self.t(120)) == [.launch(step: "hpo", attempt: 1)])
        #expect(run.state(of: "training_set") == .succeeded(attempts: 3))
        #expect(run.lastErrors[0] == "disk full")
    }

    @Test func backoffDoublesUpToAnHour() {
        let step = PipelineStep(name: "a", kind: "hpo", retryBackoffSeconds: 1000)
        #expect([1, 2, 3, 10, 200].map(step.backoff(afterAttempt:)) == [1000, 2000, 3600, 3600, 3600])
    }

    @Test func spentRetriesFailTheRunAndSkipLaterSteps() throws {
        var run = try Self.chain(retries: 1)
        _ = run.start(now: Self.t(0))
        _ = run.stepFailed("training_set", attempt: 1, reason: "disk full", now: Self.t(10))
        _ = run.tick(now: Self.t(40))
        let reason = "step \"training_set\" failed after 2 attempts: out of memory"
        #expect(run.stepFailed("training_set", attempt: 2, reason: "out of memory", now: Self.t(50)) == [.finished(.failed(reason))])
        #expect(run.outcome == .failed(reason))
        #expect(run.states == [.failed(attempts: 2, error: "out of memory"), .skipped, .skipped])
        #expect(run.tick(now: Self.t(10_000)) == [])
        #expect(run.stepSucceeded("training_set", attempt: 2, now: Self.t(60)) == [])
    }

    @Test func aFailingBranchAbandonsTheOtherOne() throws {
        var run = try Self.diamond()
        _ = run.start(now: Self.t(0))
        _ = run.stepSucceeded("prep", attempt: 1, now: Self.t(1))
        let reason = "step \"left\" failed after 1 attempt: bad params"
        #expect(run.stepFailed("left", attempt: 1, reason: "bad params", now: Self.t(2))
                == [.abandon(step: "right", attempt: 1), .finished(.failed(reason))])
        #expect(run.states == [.succeeded(attempts: 1), .failed(attempts: 1, error: "bad params"), .cancelled(attempts: 1), .skipped])
    }

    @Test func aTimedOutAttemptIsAbandonedAndRetried() throws {
        var run = try Self.chain(retries: 1, backoff: 30, timeout: 100)
        _ = run.start(now: Self.t(0))
        #expect(run.tick(now: Self.t(99)) == [])
        #expect(run.tick(now: Self.t(100)) == [.abandon(step: "training_set", attempt: 1), .retryAt(step: "training_set", date: Self.t(130))])
        #expect(run.lastErrors[0] == "timed out after 100 s")
        // The abandoned attempt's late result does not count.
        #expect(run.stepSucceeded("training_set", attempt: 1, now: Self.t(101)) == [])
        #expect(run.tick(now: Self.t(130)) == [.launch(step: "training_set", attempt: 2)])
        #expect(run.tick(now: Self.t(230)) == [
            .abandon(step: "training_set", attempt: 2),
            .finished(.failed("step \"training_set\" failed after 2 attempts: timed out after 100 s")),
        ])
    }

    @Test func cancelAbandonsRunningStepsOnce() throws {
        var run = try Self.diamond()
        _ = run.start(now: Self.t(0))
        _ = run.stepSucceeded("prep", attempt: 1, now: Self.t(1))
        #expect(run.cancel() == [.abandon(step: "left", attempt: 1), .abandon(step: "right", attempt: 1), .finished(.cancelled)])
        #expect(run.states == [.succeeded(attempts: 1), .cancelled(attempts: 1), .cancelled(attempts: 1), .skipped])
        #expect(run.cancel() == [])
        #expect(run.stepSucceeded("left", attempt: 1, now: Self.t(2)) == [])
    }

    @Test func staleOrUnknownReportsAreIgnored() throws {
        var run = try Self.chain()
        _ = run.start(now: Self.t(0))
        #expect(run.stepFailed("training_set", attempt: 2, reason: "x", now: Self.t(1)) == [])
        #expect(run.stepSucceeded("hpo", attempt: 1, now: Self.t(1)) == [])
        #expect(run.stepSucceeded("nope", attempt: 1, now: Self.t(1)) == [])
        #expect(run.state(of: "training_set") == .running(attempt: 1, since: Self.t(0)))
    }

    @Test func aRunSurvivesARestartAndReattachesInsteadOfRelaunching() throws {
        var run = try Self.diamond(retries: 1)
        _ = run.start(now: Self.t(0))
        _ = run.stepSucceeded("prep", attempt: 1, now: Self.t(10))
        _ = run.stepFailed("right", attempt: 1, reason: "worker lost", now: Self.t(20))
        let data = try run.persisted()
        let restored = try PipelineRun.restored(from: data)
        #expect(restored == run)

        var early = restored
        #expect(early.resume(now: Self.t(30)) == [.reattach(step: "left", attempt: 1), .retryAt(step: "right", date: Self.t(50))])
        // The job was gone: the caller reports the attempt failed, and it is retried as a new attempt.
        #expect(early.stepFailed("left", attempt: 1, reason: "job lost in restart", now: Self.t(31)) == [.retryAt(step: "left", date: Self.t(61))])

        var late = restored
        #expect(late.resume(now: Self.t(60)) == [.reattach(step: "left", attempt: 1), .launch(step: "right", attempt: 2)])
        #expect(late.stepSucceeded("left", attempt: 1, now: Self.t(61)) == [])
        #expect(late.stepSucceeded("right", attempt: 2, now: Self.t(62)) == [.launch(step: "join", attempt: 1)])
    }

    @Test func resumingBeforeTheStartOrAfterTheEnd() throws {
        var fresh = try PipelineRun.restored(from: try Self.chain().persisted())
        #expect(fresh.resume(now: Self.t(0)) == [.launch(step: "training_set", attempt: 1)])
        var done = try Self.chain()
        _ = done.start(now: Self.t(0))
        _ = done.cancel()
        var restored = try PipelineRun.restored(from: try done.persisted())
        #expect(restored.resume(now: Self.t(5)) == [.finished(.cancelled)])
    }
}
