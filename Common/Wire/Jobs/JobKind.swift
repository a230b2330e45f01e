import Foundation

/// The names of the job kinds built into this release; each kind's descriptor (in this
/// folder) says everything else about it.
public enum JobKind {
    public static let echo = EchoKind.name
    public static let hpo = HPOKind.name
    /// Every kind compiled in, for lists that a process extends with its own.
    public static let builtIn: [AnyJobKind] = [EchoKind.erased, HPOKind.erased, ScoreKind.erased, DriftKind.erased, RenderKind.erased]
}

/// A failure a runner reports on purpose. `retryable: false` means running the task again
/// cannot help (bad input), so the coordinator fails it at once instead of retrying.
public struct TaskError: Error, CustomStringConvertible, Sendable {
    public var message: String
    public var retryable: Bool
    public init(_ message: String, retryable: Bool = true) {
        self.message = message
        self.retryable = retryable
    }
    public var description: String { message }
}

extension WireEchoSpec {
    /// The payload task `index` carries: deterministic, so a result can be checked
    /// against its input without storing both.
    /// Why `payload` is not the one task `index` was given, or nil when it is.
    public static func payloadMismatch(_ payload: Data, index: Int, bytes: Int) -> String? {
        let expected = Self.payload(index: index, bytes: bytes)
        guard payload != expected else { return nil }
        let first = zip(payload, expected).enumerated().first { $0.element.0 != $0.element.1 }?.offset ?? min(payload.count, expected.count)
        return "task \(index)'s payload is not the one its job generated (\(payload.count) of \(expected.count) bytes, first difference at byte \(first)): the bytes were altered between the coordinator and the worker; check the hosts' memory and network, then submit the job again"
    }

    public static func payload(index: Int, bytes: Int) -> Data {
        var data = Data(count: bytes)
        var state = UInt64(truncatingIfNeeded: index) &* 0x9E37_79B9_7F4A_7C15 &+ 1
        data.withUnsafeMutableBytes { raw in
            for i in 0..<raw.count {
                state ^= state << 13; state ^= state >> 7; state ^= state << 17
                raw[i] = UInt8(truncatingIfNeeded: state)
            }
        }
        return data
    }
}
