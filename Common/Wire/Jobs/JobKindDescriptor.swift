import Foundation
import SwiftProtobuf

/// When a job whose tasks have all ended counts as failed.
public enum JobFailureRule: Sendable, Equatable {
    /// Every task must succeed (a batch: one failed shard fails the job).
    case allMustSucceed
    /// Best effort: the job succeeds when at least this many tasks succeeded (a search,
    /// where a failed trial is part of searching).
    case atLeast(Int)

    public func jobFailed(done: Int, failed: Int) -> Bool {
        switch self {
        case .allMustSucceed: return failed > 0
        case let .atLeast(minimum): return done < max(1, minimum)
        }
    }
}

/// What every process knows of one job kind: its name, its spec and summary messages (in
/// tower.proto), the worker tools it needs, when it fails, and how its summary reads for
/// people. A kind's descriptor lives in `Common/Wire/Jobs/<Kind>.swift`; its planner (on
/// the coordinator) and runner (on the worker) name it, and nothing else in the generic
/// core knows the kind. See `Common/Wire/Jobs/README.md`.
public protocol JobKindDescriptor: Sendable {
    associatedtype Spec: SwiftProtobuf.Message
    associatedtype Summary: SwiftProtobuf.Message
    static var name: String { get }
    /// Tools a worker must have on its PATH to run this kind's tasks (e.g. "ffmpeg"); the
    /// scheduler sends tasks only to workers that advertise all of them.
    static var requiredTools: [String] { get }
    static var failureRule: JobFailureRule { get }
    /// The finished job's summary as lines for people (CLI, dashboard).
    static func describe(_ summary: Summary) -> [String]
    /// The finished job's summary as the JSON API serves it, and its schema in the API's
    /// OpenAPI document; a kind without one serves `summary: null`.
    static var summaryShape: JSONShape<Summary>? { get }
}

extension JobKindDescriptor {
    public static var requiredTools: [String] { [] }
    public static var failureRule: JobFailureRule { .allMustSucceed }
    public static var summaryShape: JSONShape<Summary>? { nil }

    /// A spec as sent by any client: the binary message, or its protobuf JSON mapping
    /// (what `coordinator submit KIND --spec FILE` sends). A proto3 message never starts
    /// with the byte `{` (it would be a group tag), so the two cannot be confused.
    public static func decodeSpec(_ data: Data) throws -> Spec {
        if data.first(where: { !$0.isWhitespace }) == UInt8(ascii: "{") {
            do { return try Spec(jsonUTF8Data: data) }
            catch { throw WireError.invalidArgument("the \(name) spec is not valid JSON for \(Spec.protoMessageName): \(error)") }
        }
        do { return try Spec(serializedBytes: data) }
        catch { throw WireError.invalidArgument("the \(name) spec is not a \(Spec.protoMessageName): \(error)") }
    }

    /// The type-erased form the per-side lists hold.
    public static var erased: AnyJobKind {
        AnyJobKind(name: name, requiredTools: requiredTools, failureRule: failureRule,
                   normalizeSpec: { try decodeSpec($0).serializedData() },
                   describe: { data in
                       guard !data.isEmpty else { return [] }
                       guard let summary = try? Summary(serializedBytes: data) else { return ["(summary unreadable: \(data.count) bytes)"] }
                       return describe(summary)
                   },
                   summaryJSON: { data in
                       // No summary yet (a job still running) is null, not a summary of zeros.
                       guard !data.isEmpty, let shape = summaryShape, let summary = try? Summary(serializedBytes: data) else { return .null }
                       return shape.render(summary)
                   },
                   summarySchema: summaryShape?.schema)
    }
}

/// A ``JobKindDescriptor`` without its message types, for lists of kinds.
public struct AnyJobKind: Sendable {
    public let name: String
    public let requiredTools: [String]
    public let failureRule: JobFailureRule
    /// The spec in its binary form, from either form a client may send.
    public let normalizeSpec: @Sendable (Data) throws -> Data
    public let describe: @Sendable (Data) -> [String]
    public let summaryJSON: @Sendable (Data) -> JSONValue
    /// The schema of `summaryJSON`'s objects; nil when the kind serves none.
    public let summarySchema: JSONValue?
}

private extension UInt8 {
    var isWhitespace: Bool { self == 0x20 || self == 0x0A || self == 0x0D || self == 0x09 }
}
