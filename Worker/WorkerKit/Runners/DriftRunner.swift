import Foundation
import Learning
import Wire

/// Job kind `drift`: counts a range of one side's rows (reference or current) into
/// histograms on the job's fixed bins. Counting is all a worker does, so shards merge
/// exactly on the coordinator.
public struct DriftRunner: TaskRunner {
    public let descriptor = DriftKind.erased
    private let cache = DriftFrames()

    public init() {}

    public func run(_ task: WireTaskAssignment, context: TaskContext) async throws -> Data {
        let input: WireDriftInput
        do { input = try WireDriftInput(serializedBytes: task.input) }
        catch { throw TaskError("drift input is not a DriftInput message: \(error)", retryable: false) }
        let (binning, columns) = try await cache.load(binning: input.binningSha256, frame: input.frameSha256, context: context)
        let rows = columns.first?.count ?? 0
        guard input.begin <= input.end, input.end <= UInt64(rows) else {
            throw TaskError("drift range \(input.begin)..<\(input.end) is outside the frame's \(rows) rows", retryable: false)
        }
        guard columns.count == binning.specs.count else {
            throw TaskError("drift frame has \(columns.count) columns but the bins are for \(binning.specs.count)", retryable: false)
        }
        let histograms = DriftHistograms.count(columns: columns, rows: Int(input.begin)..<Int(input.end), binning: binning)
        var output = WireDriftOutput()
        output.side = input.side
        output.histograms = histograms.encoded()
        return try output.serializedData()
    }
}

/// Decoded bins and frames by content address, shared by a worker's drift tasks.
actor DriftFrames {
    private var binnings: [String: DriftBinning] = [:]
    private var frames: [String: [[Float]]] = [:]

    func load(binning: String, frame: String, context: TaskContext) async throws -> (DriftBinning, [[Float]]) {
        if binnings[binning] == nil {
            let bytes = try await context.blob(binning)
            do { binnings[binning] = try DriftBinning(decoding: bytes) }
            catch { throw TaskError("drift bins \(binning.prefix(12)): \(error)", retryable: false) }
        }
        if frames[frame] == nil {
            let bytes = try await context.blob(frame)
            do {
                // Two frames (reference and current) per job at most; older jobs' go.
                if frames.count >= 2 { frames.removeAll() }
                frames[frame] = try TrainingSetFile.decode(bytes, file: "drift frame").0.columns
            } catch { throw TaskError("drift frame \(frame.prefix(12)): \(error)", retryable: false) }
        }
        return (binnings[binning]!, frames[frame]!)
    }
}
