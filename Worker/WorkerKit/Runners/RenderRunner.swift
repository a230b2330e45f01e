import Foundation
import Media
import Wire

/// Job kind `render`: makes one listing's marketing short with the Media library (photos
/// → script → speech → ffmpeg → ffprobe verification) and returns the video's bytes.
/// Progress goes to the coordinator as `progress` (0…1, step = fraction × 1000); a task
/// asked to stop kills ffmpeg and ends.
public struct RenderRunner: TaskRunner {
    public let descriptor = RenderKind.erased
    public var maker: ShortMaker

    public init(maker: ShortMaker = ShortMaker()) {
        self.maker = maker
    }

    public func run(_ task: WireTaskAssignment, context: TaskContext) async throws -> Data {
        let input: WireRenderInput
        do { input = try WireRenderInput(serializedBytes: task.input) }
        catch { throw TaskError("render input is not a RenderInput message: \(error)", retryable: false) }
        let facts: ListingFacts
        do { facts = try JSONDecoder().decode(ListingFacts.self, from: input.factsJson) }
        catch { throw TaskError("render input's facts are not ListingFacts JSON: \(error)", retryable: false) }
        guard let language = ShortLanguage(rawValue: input.language.isEmpty ? "ko" : input.language) else {
            throw TaskError("render language must be ko or en, got \(input.language)", retryable: false)
        }

        let fm = FileManager.default
        let workDir = context.cacheDirectory
            .appendingPathComponent("render", isDirectory: true)
            .appendingPathComponent("\(task.jobID)-\(task.index)-\(UUID().uuidString.prefix(8))", isDirectory: true)
        try fm.createDirectory(at: workDir, withIntermediateDirectories: true)
        defer { try? fm.removeItem(at: workDir) }

        // Photos arrive as blobs; the file name keeps its order and a JPEG extension so
        // ffmpeg recognises it.
        var photos: [URL] = []
        for (i, sha) in input.photoSha256.enumerated() {
            if context.shouldStop() { throw CancellationError() }
            let url = workDir.appendingPathComponent(String(format: "photo-%02d.jpg", i + 1))
            try await context.blob(sha).write(to: url)
            photos.append(url)
        }

        let report = context.report
        let result: ShortResult
        do {
            result = try await maker.make(facts: facts, photos: photos, language: language, workDir: workDir.appendingPathComponent("work"),
                                          progress: { fraction in report(Int(fraction * 1000), ["progress": fraction]) },
                                          shouldStop: context.shouldStop)
        } catch RenderError.cancelled {
            throw CancellationError()
        }
        var output = WireRenderOutput()
        output.video = try Data(contentsOf: result.video)
        output.scriptLines = result.scriptLines
        output.durationSeconds = result.duration
        output.warnings = result.warnings
        output.worker = context.workerName
        return try output.serializedData()
    }
}
