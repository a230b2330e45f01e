import Foundation
import Wire

/// Job summaries as operators read them: counts from the scheduler while a job runs and
/// from the store after, the kind's summary in the words of its descriptor, and why
/// queued tasks wait. Reads only; the core hands it a snapshot of what it alone knows.
struct JobView: Sendable {
    /// What the running core knows of an active job, taken on its event loop.
    struct Live: Sendable {
        var row: JobRow
        var progress: Scheduler.JobProgress
        var waiting: String?
        var planned: Int
        /// A coordinator-wide problem every live job is affected by (an unwritable store).
        var problem: String?
    }

    let store: ClusterStore
    let planners: JobPlanners

    func summary(_ row: JobRow, _ p: Scheduler.JobProgress, live: Live? = nil) -> WireJobSummary {
        var s = WireJobSummary()
        s.jobID = row.id
        s.kind = row.kind
        s.name = row.name
        s.state = WireJobState(row.state)
        s.total = UInt32(p.total)
        s.done = UInt32(p.done)
        s.failed = UInt32(p.failed)
        s.running = UInt32(max(0, p.leased))
        s.queued = UInt32(max(0, p.queued))
        // Summed over tasks, and a task failed for good counts max_attempts (up to
        // UInt32.max) attempts: a sum past the field's range reads as its maximum.
        s.retries = UInt32(clamping: p.retries)
        s.createdAtMs = Int64(row.createdAt.timeIntervalSince1970 * 1000)
        s.finishedAtMs = Int64((row.finishedAt?.timeIntervalSince1970 ?? 0) * 1000)
        s.error = live?.problem ?? row.error ?? p.firstError ?? ""
        s.summary = row.summary ?? Data()
        if let describe = try? planners.planner(for: row.kind).descriptor.describe {
            s.summaryLines = describe(s.summary)
        }
        s.waiting = live?.waiting ?? ""
        s.planned = UInt32(max(0, live?.planned ?? 0))
        return s
    }

    /// A job from the store (ended, or not running in this coordinator).
    func stored(_ id: String) throws -> WireJobSummary {
        guard let row = try store.job(id) else { throw WireError.notFound(what: "job \(id); `coordinator jobs` lists the known ones") }
        return summary(row, try storedProgress(row))
    }

    func list(limit: Int, live: [String: Live]) throws -> WireJobList {
        var list = WireJobList()
        for row in try store.jobs(limit: limit) {
            if let active = live[row.id] {
                list.jobs.append(summary(active.row, active.progress, live: active))
            } else {
                list.jobs.append(summary(row, try storedProgress(row)))
            }
        }
        return list
    }

    private func storedProgress(_ row: JobRow) throws -> Scheduler.JobProgress {
        let counts = try store.taskCounts(job: row.id)
        var p = Scheduler.JobProgress(total: row.total, maxAttempts: row.maxAttempts)
        (p.done, p.failed, p.retries) = (counts.done, counts.failed, counts.retries)
        p.cancelled = row.state == .cancelled ? row.total - counts.done - counts.failed : 0
        return p
    }
}

/// How a job whose tasks have all ended is concluded: its state by its kind's failure
/// rule, then its summary — and a summary that cannot be made (results that are not what
/// the job promised, such as echoed payloads that fail verification) fails the job.
enum JobEnding {
    static func conclude(progress p: Scheduler.JobProgress, rule: JobFailureRule,
                         summarize: () throws -> Data) -> (state: JobState, error: String?, summary: Data?) {
        // An operator's cancel is what ended the job, whatever the tasks did before it.
        let failed = p.cancelled == 0 && rule.jobFailed(done: p.done, failed: p.failed)
        var state: JobState = p.cancelled > 0 ? .cancelled : (failed ? .failed : .succeeded)
        let error = failed ? (p.firstError ?? "no task succeeded") : p.firstError
        guard state != .cancelled || p.done > 0 else { return (state, error, nil) }
        do {
            return (state, error, try summarize())
        } catch {
            state = .failed
            let message = "summary failed: \(error)"
            return (state, (p.firstError.map { $0 + "; " } ?? "") + message, nil)
        }
    }
}
