import Foundation

/// A finished, verified short.
public struct ShortResult: Sendable {
    public var video: URL
    public var script: ShortScript
    public var captions: [Caption]
    /// Seconds, as ffprobe measured the file.
    public var duration: Double
    /// The photos shown, in order (a generated title card when none was usable).
    public var chosenPhotos: [URL]
    public var photoReports: [PhotoReport]
    /// Things that went wrong without failing the short (unreadable photos, fallbacks).
    public var warnings: [String]
    public var probe: VideoProbe

    public var scriptLines: [String] { script.lines }
}

/// The whole pipeline for one listing: photos → script → speech → render → verify.
///
/// Guarantees: returns only a short that passed ffprobe verification; progress is
/// non-decreasing in 0…1 and reaches 1 exactly when it returns; `shouldStop` is checked
/// between steps and while ffmpeg runs, and cancellation throws `RenderError.cancelled`
/// with no child process left running. Missing or unreadable photos do not fail it: a
/// title card is generated instead, and each skipped photo is named in `warnings`.
public struct ShortMaker: Sendable {
    public var analyzer: PhotoAnalyzer
    public var writer: ScriptWriter
    public var speech: Speech
    public var renderer: ShortRenderer
    public var maxPhotos: Int

    public init(analyzer: PhotoAnalyzer = PhotoAnalyzer(), writer: ScriptWriter = ScriptWriter(), speech: Speech = Speech(),
                renderer: ShortRenderer = ShortRenderer(), maxPhotos: Int = 5) {
        self.analyzer = analyzer; self.writer = writer; self.speech = speech; self.renderer = renderer; self.maxPhotos = maxPhotos
    }

    public func make(facts: ListingFacts, photos: [URL], language: ShortLanguage, workDir: URL,
                     progress: @escaping @Sendable (Double) -> Void = { _ in },
                     shouldStop: @escaping @Sendable () -> Bool = { false }) async throws -> ShortResult {
        let report = MonotonicProgress(progress)
        func checkStop() throws { if shouldStop() { throw RenderError.cancelled } }
        try FileManager.default.createDirectory(at: workDir, withIntermediateDirectories: true)
        var warnings: [String] = []

        let selection = await analyzer.choose(photos, max: maxPhotos)
        warnings += selection.unreadable.map { "skipped photo \($0.url.lastPathComponent): \($0.reason)" }
        if selection.chosen.contains(where: { !$0.isAcceptable }) {
            warnings.append("no photo passed the quality checks; using the best of the rejected ones")
        }
        var chosen = selection.chosen.map(\.url)
        report(0.04)
        try checkStop()

        let script = await writer.write(facts, language: language)
        if let why = script.fallbackReason { warnings.append("LLM script not used (\(why)); used the templates") }
        report(0.06)
        try checkStop()

        let track = try await speech.speak(script, in: workDir.appendingPathComponent("speech"))
        if let why = track.fallbackReason { warnings.append("TTS endpoint not used (\(why)); used espeak-ng") }
        report(0.08)
        try checkStop()

        if chosen.isEmpty {
            if !photos.isEmpty { warnings.append("no photo could be read; using a title card") }
            chosen = [try await TitleCard.make(facts: facts, language: language, settings: renderer.settings, in: workDir)]
        }
        report(0.1)

        let video = workDir.appendingPathComponent("short-\(facts.id)-\(language.rawValue).mp4")
        let probe = try await renderer.render(photos: chosen, speech: track, facts: facts, language: language, output: video,
                                              workDir: workDir.appendingPathComponent("render"),
                                              progress: { report(0.1 + 0.9 * $0) }, shouldStop: shouldStop)
        report(1)
        return ShortResult(video: video, script: script, captions: track.captions, duration: probe.duration,
                           chosenPhotos: chosen, photoReports: selection.reports, warnings: warnings, probe: probe)
    }
}

/// A generated still (region, rooms and area, price) for a listing without usable photos.
enum TitleCard {
    static func make(facts: ListingFacts, language: ShortLanguage, settings: RenderSettings, in dir: URL) async throws -> URL {
        guard let font = Tools.cjkFont() else { throw RenderError.noFont }
        let text = OverlayText(facts: facts, language: language)
        let region = language == .korean ? (Templates.koreanRegions[facts.region] ?? facts.region) : facts.region
        try region.write(to: dir.appendingPathComponent("title-region.txt"), atomically: true, encoding: .utf8)
        try text.overlay.write(to: dir.appendingPathComponent("title-facts.txt"), atomically: true, encoding: .utf8)
        let out = dir.appendingPathComponent("title-card.png")
        let h = settings.height
        let draw = { (file: String, size: Int, y: String) in
            "drawtext=fontfile=\(font.path):textfile=\(file):fontsize=\(size):fontcolor=white:x=(w-text_w)/2:y=\(y)"
        }
        _ = try await ProcessRunner.check("ffmpeg", ["-v", "error", "-y", "-f", "lavfi", "-i",
                                                     "color=c=0x243B55:s=\(settings.width)x\(h)",
                                                     "-vf", draw("title-region.txt", h / 14, "h*0.38") + "," + draw("title-facts.txt", h / 34, "h*0.52"),
                                                     "-frames:v", "1", out.lastPathComponent],
                                          timeout: 60, in: dir)
        return out
    }
}

/// Forwards only increasing fractions in 0…1.
final class MonotonicProgress: @unchecked Sendable {
    private let lock = NSLock()
    private var last = -1.0
    private let sink: @Sendable (Double) -> Void
    init(_ sink: @escaping @Sendable (Double) -> Void) { self.sink = sink }
    func callAsFunction(_ fraction: Double) {
        let f = min(1, max(0, fraction))
        lock.lock()
        guard f > last else { lock.unlock(); return }
        last = f
        lock.unlock()
        sink(f)
    }
}
