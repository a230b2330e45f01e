import Foundation
import Testing
@testable import CoordinatorKit

@Suite struct PipelineClockTests {
    static func hourly(catchUp: Bool = false, maxActiveRuns: Int = 1) throws -> PipelineClock {
        PipelineClock(schedule: try CronSchedule("0 * * * *", timeZone: zone("UTC")), catchUp: catchUp, maxActiveRuns: maxActiveRuns)
    }

    static func at(_ time: String) -> Date { instant("2024-05-15T\(time):00Z") }

    @Test func aNewPipelineWaitsForItsFirstFireTime() throws {
        let clock = try Self.hourly()
        let first = clock.decide(lastSlot: nil, now: Self.at("10:20"), activeRuns: 0)
        #expect(first == .init(start: [], skipped: 0, lastSlot: Self.at("10:20"), wakeAt: Self.at("11:00")))
        let due = clock.decide(lastSlot: first.lastSlot, now: Self.at("11:00"), activeRuns: 0)
        #expect(due == .init(start: [Self.at("11:00")], skipped: 0, lastSlot: Self.at("11:00"), wakeAt: Self.at("12:00")))
    }

    @Test func normalCadenceStartsEachSlotOnce() throws {
        let clock = try Self.hourly()
        #expect(clock.decide(lastSlot: Self.at("11:00"), now: Self.at("11:30"), activeRuns: 0)
                == .init(start: [], skipped: 0, lastSlot: Self.at("11:00"), wakeAt: Self.at("12:00")))
        #expect(clock.decide(lastSlot: Self.at("11:00"), now: Self.at("12:00"), activeRuns: 0)
                == .init(start: [Self.at("12:00")], skipped: 0, lastSlot: Self.at("12:00"), wakeAt: Self.at("13:00")))
        // The previous run still going does not matter when max_active_runs allows two.
        #expect(try Self.hourly(maxActiveRuns: 2).decide(lastSlot: Self.at("12:00"), now: Self.at("13:00"), activeRuns: 1).start
                == [Self.at("13:00")])
    }

    @Test func downtimeWithoutCatchUpRunsOnlyTheLatestSlot() throws {
        let clock = try Self.hourly()
        // Down from 11:00 to 15:10: 12:00, 13:00 and 14:00 are skipped, 15:00 runs.
        #expect(clock.decide(lastSlot: Self.at("11:00"), now: Self.at("15:10"), activeRuns: 0)
                == .init(start: [Self.at("15:00")], skipped: 3, lastSlot: Self.at("15:00"), wakeAt: Self.at("16:00")))
    }

    @Test func withoutAFreeRunSlotNothingStartsAndNothingIsSkipped() throws {
        let clock = try Self.hourly()
        let busy = clock.decide(lastSlot: Self.at("11:00"), now: Self.at("13:10"), activeRuns: 1)
        #expect(busy == .init(start: [], skipped: 0, lastSlot: Self.at("11:00"), wakeAt: Self.at("12:00")))
        // When the run ends, the latest slot due by then runs.
        #expect(clock.decide(lastSlot: busy.lastSlot, now: Self.at("14:05"), activeRuns: 0)
                == .init(start: [Self.at("14:00")], skipped: 2, lastSlot: Self.at("14:00"), wakeAt: Self.at("15:00")))
    }

    @Test func catchUpRunsEveryMissedSlotInOrderWithinMaxActiveRuns() throws {
        let clock = try Self.hourly(catchUp: true, maxActiveRuns: 2)
        let now = Self.at("15:10")
        let first = clock.decide(lastSlot: Self.at("11:00"), now: now, activeRuns: 0)
        #expect(first == .init(start: [Self.at("12:00"), Self.at("13:00")], skipped: 0, lastSlot: Self.at("13:00"), wakeAt: Self.at("14:00")))
        #expect(clock.decide(lastSlot: first.lastSlot, now: now, activeRuns: 2)
                == .init(start: [], skipped: 0, lastSlot: Self.at("13:00"), wakeAt: Self.at("14:00")))
        let second = clock.decide(lastSlot: first.lastSlot, now: Self.at("15:20"), activeRuns: 1)
        #expect(second == .init(start: [Self.at("14:00")], skipped: 0, lastSlot: Self.at("14:00"), wakeAt: Self.at("15:00")))
        let third = clock.decide(lastSlot: second.lastSlot, now: Self.at("15:30"), activeRuns: 0)
        #expect(third == .init(start: [Self.at("15:00")], skipped: 0, lastSlot: Self.at("15:00"), wakeAt: Self.at("16:00")))
    }

    @Test func onlyScheduledPipelinesHaveAClock() throws {
        let steps = [PipelineStep(name: "a", kind: "hpo")]
        #expect(PipelineClock(try PipelineDefinition(name: "manual", steps: steps)) == nil)
        let nightly = try PipelineDefinition(name: "nightly", schedule: CronSchedule("@daily", timeZone: zone("Asia/Seoul")),
                                             catchUp: true, maxActiveRuns: 3, steps: steps)
        let clock = try #require(PipelineClock(nightly))
        #expect(clock.catchUp == true)
        #expect(clock.maxActiveRuns == 3)
        #expect(clock.decide(lastSlot: nil, now: instant("2024-05-15T10:00:00+09:00"), activeRuns: 0).wakeAt
                == instant("2024-05-16T00:00:00+09:00"))
    }
}
