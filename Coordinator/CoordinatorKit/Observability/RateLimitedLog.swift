import Foundation
import Logging

/// Logs a repeated warning at most once per interval per key, with how many were
/// suppressed: a flood of bad input must not become a flood of log lines.
struct RateLimitedLog {
    let interval: TimeInterval
    private var last: [String: (at: Date, suppressed: Int)] = [:]

    init(interval: TimeInterval) { self.interval = interval }

    mutating func log(_ logger: Logger, _ message: Logger.Message, key: String, level: Logger.Level = .warning, metadata: Logger.Metadata = [:]) {
        let now = Date()
        if let entry = last[key], now.timeIntervalSince(entry.at) < interval {
            last[key] = (entry.at, entry.suppressed + 1)
            return
        }
        var metadata = metadata
        if let suppressed = last[key]?.suppressed, suppressed > 0 { metadata["suppressed"] = "\(suppressed)" }
        last[key] = (now, 0)
        logger.log(level: level, message, metadata: metadata)
    }
}
