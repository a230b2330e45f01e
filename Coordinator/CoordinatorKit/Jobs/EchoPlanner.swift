import Foundation
import Wire

/// Job kind `echo`: the diagnostic job. Task `i` carries a deterministic payload; the
/// summary counts tasks per worker and checks every echoed payload against its input.
public struct EchoPlanner: JobPlanner {
    public let descriptor = EchoKind.erased
    public static let maxTasks = 5_000_000
    public static let maxPayloadBytes = 16 << 20
    public static let maxSleepMs = 3_600_000
    /// The shared blob is generated in the coordinator's memory.
    public static let maxBlobBytes = 1 << 30
    /// Every task's payload is planned, stored and held in memory at once, so their sum is
    /// bounded too: each number within its own limit can still ask for terabytes.
    public static let maxTotalPayloadBytes = 1 << 30

    public init() {}

    public func plan(spec data: Data, context: JobContext) throws -> [PlannedTask] {
        let spec = try decode(data)
        guard (1...Self.maxTasks).contains(Int(spec.tasks)) else {
            throw WireError.invalidArgument("echo.tasks must be between 1 and \(Self.maxTasks), got \(spec.tasks)")
        }
        guard Int(spec.payloadBytes) <= Self.maxPayloadBytes else {
            throw WireError.invalidArgument("echo.payload_bytes must be at most \(Self.maxPayloadBytes), got \(spec.payloadBytes)")
        }
        guard Int(spec.tasks) * Int(spec.payloadBytes) <= Self.maxTotalPayloadBytes else {
            throw WireError.invalidArgument("echo.tasks × echo.payload_bytes must be at most \(Self.maxTotalPayloadBytes) bytes (the payloads are held in memory), got \(spec.tasks) × \(spec.payloadBytes) = \(Int(spec.tasks) * Int(spec.payloadBytes))")
        }
        guard Int(spec.sleepMs) <= Self.maxSleepMs else {
            throw WireError.invalidArgument("echo.sleep_ms must be at most \(Self.maxSleepMs), got \(spec.sleepMs)")
        }
        guard Int(spec.blobBytes) <= Self.maxBlobBytes else {
            throw WireError.invalidArgument("echo.blob_bytes must be at most \(Self.maxBlobBytes), got \(spec.blobBytes)")
        }
        var blob = ""
        if spec.blobBytes > 0 {
            blob = try context.blobs.put(WireEchoSpec.payload(index: -1, bytes: Int(spec.blobBytes)))
        }
        return try (0..<Int(spec.tasks)).map { index in
            var input = WireEchoInput()
            input.payload = WireEchoSpec.payload(index: index, bytes: Int(spec.payloadBytes))
            input.sleepMs = spec.sleepMs
            input.blobSha256 = blob
            input.fail = spec.failIndexPlusOne == UInt32(index + 1)
            return PlannedTask(input: try input.serializedData(), blobs: blob.isEmpty ? [] : [blob])
        }
    }

    public func summarize(spec data: Data, results: [TaskResultRow]) throws -> Data {
        let spec = try decode(data)
        var summary = WireEchoSummary()
        for row in results where row.state == .done {
            let output = try WireEchoOutput(serializedBytes: row.output ?? Data())
            if let mismatch = WireEchoSpec.payloadMismatch(output.payload, index: row.index, bytes: Int(spec.payloadBytes)) {
                throw WireError.invalidArgument(mismatch)
            }
            summary.tasks += 1
            summary.payloadBytes += UInt64(output.payload.count)
            summary.tasksPerWorker[output.worker, default: 0] += 1
        }
        return try summary.serializedData()
    }

    private func decode(_ data: Data) throws -> WireEchoSpec {
        do { return try WireEchoSpec(serializedBytes: data) }
        catch { throw WireError.invalidArgument("echo spec is not a valid EchoSpec message: \(error)") }
    }
}
