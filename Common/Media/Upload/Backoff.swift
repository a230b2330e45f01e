import Foundation

/// Exponential backoff between retries, with the sleep injectable so tests run instantly.
///
/// Guarantees: the n-th consecutive retry (1-based) waits `initial * multiplier^(n-1)`,
/// capped at `maximum`; at most `maxAttempts` consecutive retries are made before the
/// caller gives up. The clients reset the count whenever the server makes progress.
public struct Backoff: Sendable {
    public var initial: Duration
    public var multiplier: Double
    public var maximum: Duration
    public var maxAttempts: Int
    /// Waits for the given duration; `Task.sleep` by default, a recorder in tests.
    public var sleep: @Sendable (Duration) async throws -> Void

    public init(
        initial: Duration = .seconds(1),
        multiplier: Double = 2,
        maximum: Duration = .seconds(64),
        maxAttempts: Int = 6,
        sleep: @escaping @Sendable (Duration) async throws -> Void = { try await Task.sleep(for: $0) }
    ) {
        self.initial = initial
        self.multiplier = multiplier
        self.maximum = maximum
        self.maxAttempts = maxAttempts
        self.sleep = sleep
    }

    /// The wait before consecutive retry number `attempt` (1-based).
    public func delay(forAttempt attempt: Int) -> Duration {
        let factor = pow(multiplier, Double(max(0, attempt - 1)))
        let scaled = initial * factor
        return min(scaled, maximum)
    }
}

