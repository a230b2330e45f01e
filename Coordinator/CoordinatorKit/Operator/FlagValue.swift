import Wire

/// A command-line number that does not fit where it goes.
public enum FlagValueError: Error, Equatable, CustomStringConvertible, Sendable {
    case outOfRange(flag: String, value: Int, allowed: ClosedRange<Int>)

    public var description: String {
        switch self {
        case let .outOfRange(flag, value, allowed):
            return "\(flag) must be from \(allowed.lowerBound) to \(allowed.upperBound), got \(value)"
        }
    }
}

/// Checks a flag as the `Int` it was parsed to before narrowing it for the wire, so an
/// error shows the value the operator typed, not one wrapped or clamped on the way.
public enum FlagValue {
    public static func uint32(_ value: Int, flag: String, allowed: ClosedRange<Int>) throws -> UInt32 {
        precondition(allowed.lowerBound >= 0 && allowed.upperBound <= Int(UInt32.max), "range of \(flag) must fit UInt32")
        guard allowed.contains(value) else { throw FlagValueError.outOfRange(flag: flag, value: value, allowed: allowed) }
        return UInt32(value)
    }

    /// The flags of `submit echo` as the spec they describe.
    public static func echoSpec(tasks: Int, payloadBytes: Int, sleepMs: Int, blobBytes: Int, failIndex: Int?) throws -> WireEchoSpec {
        var spec = WireEchoSpec()
        spec.tasks = try uint32(tasks, flag: "--tasks", allowed: 1...EchoPlanner.maxTasks)
        spec.payloadBytes = try uint32(payloadBytes, flag: "--payload-bytes", allowed: 0...EchoPlanner.maxPayloadBytes)
        spec.sleepMs = try uint32(sleepMs, flag: "--sleep-ms", allowed: 0...EchoPlanner.maxSleepMs)
        spec.blobBytes = try uint32(blobBytes, flag: "--blob-bytes", allowed: 0...EchoPlanner.maxBlobBytes)
        if let failIndex {
            spec.failIndexPlusOne = try uint32(failIndex, flag: "--fail-index", allowed: 0...(tasks - 1)) + 1
        }
        return spec
    }
}
