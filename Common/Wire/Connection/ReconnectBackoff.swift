import Foundation

/// How long a client waits before its next attempt to reach the coordinator: exponential
/// from `initialMs` up to `maxMs`, with jitter (half to all of the step) so that many
/// clients cut off together do not come back together.
public struct ReconnectBackoff: Sendable {
    public var initialMs: Int
    public var maxMs: Int

    public init(initialMs: Int = 200, maxMs: Int = 10_000) {
        self.initialMs = initialMs
        self.maxMs = maxMs
    }

    /// The wait in milliseconds after `failures` failed attempts in a row (1 or more).
    public func delayMs(afterFailures failures: Int) -> Double {
        let ceiling = min(Double(maxMs), Double(initialMs) * pow(2, Double(min(max(failures, 1), 20) - 1)))
        return ceiling * Double.random(in: 0.5...1.0)
    }
}
