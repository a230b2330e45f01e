import Foundation
import Logging

/// The `--log-level` every Tower executable takes, falling back to `TOWER_LOG_LEVEL`.
public enum LogLevelSetting {
    public static let help = "Log level: trace, debug, info, notice, warning, error or critical (env TOWER_LOG_LEVEL; default info)."

    /// The level asked for; a misspelt one is refused, naming where it came from, rather
    /// than silently read as info.
    public static func parse(_ flag: String?, environment: [String: String] = ProcessInfo.processInfo.environment) throws -> Logger.Level {
        let (text, source) = flag.map { ($0, "--log-level") } ?? environment["TOWER_LOG_LEVEL"].map { ($0, "TOWER_LOG_LEVEL") } ?? ("info", "")
        guard let level = Logger.Level(rawValue: text.lowercased()) else {
            throw LogLevelError(source: source, value: text)
        }
        return level
    }

    /// Human-readable lines with key=value metadata on stderr, at `level`.
    public static func bootstrap(_ level: Logger.Level) {
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = level
            return handler
        }
    }
}

public struct LogLevelError: Error, Equatable, CustomStringConvertible {
    public var source: String
    public var value: String
    public var description: String {
        "\(source) must be one of \(Logger.Level.allCases.map(\.rawValue).joined(separator: ", ")), got \(value)"
    }
}
