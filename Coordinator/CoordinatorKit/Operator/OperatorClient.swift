import Foundation
import Wire

/// The operator's client is the one cluster client every process uses.
public typealias OperatorClient = ClusterClient

/// Renders a job's progress as one line: bar, done/total, rate, ETA.
public struct ProgressLine {
    private let startedAt = Date()
    private var firstDone: UInt32?

    public init() {}

    /// A job that grows as it runs (a search) is measured against what it plans, and the
    /// line says how many tasks exist so far. A job that ended is measured as it ended —
    /// its own tasks over its own duration, the same "took" `coordinator job` prints — so
    /// a job followed after it finished reads the same as one followed from the start.
    public mutating func render(_ s: WireJobSummary, width: Int = 30) -> String {
        let growing = !s.state.isTerminal && s.planned > s.total
        let total = max(1, Int(growing ? s.planned : s.total))
        let finished = Int(s.done + s.failed)
        let filled = min(width, finished * width / total)
        let bar = String(repeating: "█", count: filled) + String(repeating: "░", count: width - filled)
        let pct = 100 * finished / total
        var line = "\(bar) \(finished)/\(total) \(pct)%  "
        if s.state.isTerminal, let took = s.tookSeconds {
            line += "\(Self.rate(Double(s.done) / took)) tasks/s  took \(String(format: "%.2f", took)) s"
        } else {
            if firstDone == nil { firstDone = s.done }
            let elapsed = max(0.001, Date().timeIntervalSince(startedAt))
            let rate = Double(Int(s.done) - Int(firstDone ?? 0)) / elapsed
            var eta = "--:--"
            if rate > 0 {
                let left = Double(total - finished) / rate
                eta = String(format: "%d:%02d", Int(left) / 60, Int(left) % 60)
            }
            line += "\(Self.rate(rate)) tasks/s  ETA \(eta)  running \(s.running)"
        }
        if growing { line += "  (\(s.total) started of \(s.planned) planned)" }
        if !s.waiting.isEmpty { line += "  waiting: \(s.waiting)" }
        if s.retries > 0 { line += "  retries \(s.retries)" }
        if s.failed > 0 { line += "  failed \(s.failed)" }
        return line
    }

    /// Whole tasks per second, with one decimal below ten so a slow job does not read 0.
    static func rate(_ value: Double) -> String {
        value < 10 ? String(format: "%.1f", value) : String(format: "%.0f", value)
    }
}

extension WireJobSummary {
    /// Seconds from creation to the end (at least a millisecond), nil while running: the
    /// one "took" the progress line and `coordinator job` print. (Subtracting the two
    /// times as epoch `Date`s instead rounded a 5 ms job to 0.00 s here and 0.01 there.)
    public var tookSeconds: Double? {
        finishedAtMs > 0 ? Double(max(1, finishedAtMs - createdAtMs)) / 1000 : nil
    }
}
