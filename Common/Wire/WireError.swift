/// Everything that can go wrong on a Tower connection, each case carrying what a person
/// needs to act on it. Errors cross the wire as an `ErrorFrame` (see ``errorFrame``) and
/// come back as ``remote(code:message:)`` on the other side.
public enum WireError: Error, Equatable, CustomStringConvertible, Sendable {
    case frameTooLarge(claimed: UInt64, limit: UInt64)
    case truncatedFrame(expected: Int?, received: Int)
    case malformedFrame(reason: String)
    case unknownMessage
    case versionMismatch(ours: UInt32, theirs: UInt32)
    case forbidden(role: String, message: String)
    case unauthenticated(reason: String)
    case notFound(what: String)
    case invalidArgument(String)
    case blobCorrupt(expected: String, actual: String)
    case connectionClosed
    case unreachable(String)
    case timedOut(what: String)
    case remote(code: WireErrorCode, message: String)
    /// The coordinator's certificate does not name the address this side dialled.
    case hostNotInCertificate(host: String)

    public var description: String {
        switch self {
        case let .frameTooLarge(claimed, limit):
            return "frame of \(claimed) bytes exceeds the limit of \(limit) bytes (raise max_frame_bytes on both sides if this is legitimate)"
        case let .truncatedFrame(expected, received):
            if let expected { return "connection ended mid-frame: \(received) of \(expected) bytes received" }
            return "connection ended mid-frame: \(received) bytes of a header received"
        case let .malformedFrame(reason):
            return "malformed frame: \(reason)"
        case .unknownMessage:
            return "unknown message type (the peer runs a newer protocol revision; upgrade this side)"
        case let .versionMismatch(ours, theirs):
            return "protocol version mismatch: this side speaks version \(ours), the peer speaks version \(theirs); run the same Tower release on both"
        case let .forbidden(role, message):
            return "forbidden for role \(role): \(message)"
        case let .unauthenticated(reason):
            return "not authenticated: \(reason)"
        case let .notFound(what):
            return "not found: \(what)"
        case let .invalidArgument(message):
            return "invalid argument: \(message)"
        case let .blobCorrupt(expected, actual):
            return "blob content does not match its address: expected sha256 \(expected), got \(actual)"
        case .connectionClosed:
            return "connection closed"
        case let .unreachable(message):
            return message
        case let .timedOut(what):
            return "timed out waiting for \(what)"
        case let .hostNotInCertificate(host):
            return "the coordinator's certificate is not valid for \(host), the address dialled: on the coordinator host, re-issue it with `coordinator certs issue coordinator --role coordinator --host \(host) --replace` (one --host for every name or IP workers dial) and restart the coordinator, or dial a name its certificate lists"
        case let .remote(code, message):
            // The peer's message usually names its kind already.
            return message.hasPrefix(code.label) ? message : "\(code.label): \(message)"
        }
    }

    /// The code this error is sent as.
    public var code: WireErrorCode {
        switch self {
        case .frameTooLarge: return .frameTooLarge
        case .truncatedFrame, .malformedFrame: return .malformedFrame
        case .unknownMessage: return .unknownMessage
        case .versionMismatch: return .versionMismatch
        case .forbidden: return .forbidden
        case .unauthenticated, .hostNotInCertificate: return .unauthenticated
        case .notFound: return .notFound
        case .invalidArgument: return .invalidArgument
        case .blobCorrupt: return .blobCorrupt
        case .connectionClosed, .unreachable, .timedOut: return .internal
        case let .remote(code, _): return code
        }
    }

    public var errorFrame: WireErrorFrame {
        var frame = WireErrorFrame()
        frame.code = code
        if case let .remote(_, message) = self {
            frame.message = message
        } else {
            frame.message = description
        }
        return frame
    }
}

extension WireErrorCode {
    /// A short lowercase label for logs and CLI output.
    public var label: String {
        switch self {
        case .unspecified, .UNRECOGNIZED: return "error"
        case .frameTooLarge: return "frame too large"
        case .malformedFrame: return "malformed frame"
        case .unknownMessage: return "unknown message"
        case .versionMismatch: return "version mismatch"
        case .forbidden: return "forbidden"
        case .unauthenticated: return "unauthenticated"
        case .notFound: return "not found"
        case .invalidArgument: return "invalid argument"
        case .internal: return "internal error"
        case .shuttingDown: return "shutting down"
        case .blobCorrupt: return "blob corrupt"
        }
    }
}

extension WireError {
    /// A refusal no retry can fix (another protocol version, a refused or revoked
    /// certificate, a role not allowed): a reconnecting client stops instead of looping.
    public var isPermanentRefusal: Bool {
        switch self {
        case .versionMismatch, .forbidden, .unauthenticated: return true
        case let .remote(code, _): return [.versionMismatch, .unauthenticated, .forbidden].contains(code)
        default: return false
        }
    }
}
