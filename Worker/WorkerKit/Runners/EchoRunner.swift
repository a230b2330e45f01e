import Foundation
import Wire

/// Job kind `echo`: returns the payload it was given, after the requested sleep, having
/// read the shared blob (through the cache) when the task names one.
public struct EchoRunner: TaskRunner {
    public let descriptor = EchoKind.erased

    public init() {}

    public func run(_ task: WireTaskAssignment, context: TaskContext) async throws -> Data {
        let input: WireEchoInput
        do { input = try WireEchoInput(serializedBytes: task.input) }
        catch { throw TaskError("echo input is not an EchoInput message: \(error)", retryable: false) }
        if input.fail {
            throw TaskError("diagnostic failure requested for task \(task.index)", retryable: true)
        }
        // Verified here so that a corrupted payload fails its task, visibly, instead of
        // being echoed back and counted as done.
        if let mismatch = WireEchoSpec.payloadMismatch(input.payload, index: Int(task.index), bytes: input.payload.count) {
            throw TaskError(mismatch, retryable: false)
        }
        if input.sleepMs > 0 {
            try await Task.sleep(nanoseconds: UInt64(input.sleepMs) * 1_000_000)
        }
        var output = WireEchoOutput()
        output.payload = input.payload
        output.worker = context.workerName
        if !input.blobSha256.isEmpty {
            output.blobSha256 = BlobStore.sha256Hex(try await context.blob(input.blobSha256))
        }
        return try output.serializedData()
    }
}
