import Foundation

/// Decides when a scheduled pipeline's runs start, given the last slot it accounted for
/// and the current time. Pure: no clock, no timers — the caller passes `now`, persists
/// ``Decision/lastSlot`` and calls again at ``Decision/wakeAt`` or when a run ends.
///
/// Guarantees:
/// - A pipeline seen for the first time does not run at once: its first run is for the
///   first fire time after that moment.
/// - Each slot is started at most once: started slots are never after `now`, and the
///   returned ``Decision/lastSlot`` only moves forward.
/// - Without catch-up, slots missed while the coordinator was down produce exactly one
///   run, for the latest of them; the others are counted in ``Decision/skipped``.
/// - With catch-up, every missed slot runs, oldest first, never more than
///   `maxActiveRuns` at once (counting the runs the caller reports active).
/// - With no free run slot nothing starts and nothing is skipped; the due slot waits.
public struct PipelineClock: Sendable, Equatable {
    public var schedule: CronSchedule
    public var catchUp: Bool
    public var maxActiveRuns: Int

    public init(schedule: CronSchedule, catchUp: Bool = false, maxActiveRuns: Int = 1) {
        self.schedule = schedule
        self.catchUp = catchUp
        self.maxActiveRuns = maxActiveRuns
    }

    /// The clock of a scheduled pipeline; nil for one that runs only when triggered.
    public init?(_ pipeline: PipelineDefinition) {
        guard let schedule = pipeline.schedule else { return nil }
        self.init(schedule: schedule, catchUp: pipeline.catchUp, maxActiveRuns: pipeline.maxActiveRuns)
    }

    public struct Decision: Equatable, Sendable {
        /// Slots (scheduled times) to start a run for now, oldest first.
        public var start: [Date]
        /// Missed slots passed over for good because catch-up is off.
        public var skipped: Int
        /// The slot up to which every fire time is started or skipped; pass it back as
        /// `lastSlot` next time (persist it). For a pipeline never seen before it is `now`.
        public var lastSlot: Date
        /// The next slot not yet started: call again then. When it is not after `now`, it
        /// is waiting for a run to finish; call again when one does. Nil: no fire time left.
        public var wakeAt: Date?

        public init(start: [Date], skipped: Int, lastSlot: Date, wakeAt: Date?) {
            self.start = start
            self.skipped = skipped
            self.lastSlot = lastSlot
            self.wakeAt = wakeAt
        }
    }

    /// - Parameters:
    ///   - lastSlot: the ``Decision/lastSlot`` of the previous decision, or nil if the
    ///     pipeline was never seen.
    ///   - activeRuns: runs of this pipeline in flight now.
    public func decide(lastSlot: Date?, now: Date, activeRuns: Int) -> Decision {
        guard let last = lastSlot else {
            return Decision(start: [], skipped: 0, lastSlot: now, wakeAt: schedule.next(after: now))
        }
        let capacity = max(0, maxActiveRuns - activeRuns)
        var pending = schedule.next(after: last)
        if catchUp {
            var start: [Date] = []
            var cursor = last
            while let slot = pending, slot <= now, start.count < capacity {
                start.append(slot)
                cursor = slot
                pending = schedule.next(after: slot)
            }
            return Decision(start: start, skipped: 0, lastSlot: cursor, wakeAt: pending)
        }
        // Without catch-up only the latest due slot matters; walk to it counting the rest.
        var latest: Date?
        var due = 0
        while let slot = pending, slot <= now {
            latest = slot
            due += 1
            pending = schedule.next(after: slot)
        }
        guard let slot = latest else { return Decision(start: [], skipped: 0, lastSlot: last, wakeAt: pending) }
        guard capacity > 0 else {
            // Decide nothing yet: when a run ends, the latest slot due by then is the one to run.
            return Decision(start: [], skipped: 0, lastSlot: last, wakeAt: schedule.next(after: last))
        }
        return Decision(start: [slot], skipped: due - 1, lastSlot: slot, wakeAt: pending)
    }
}
