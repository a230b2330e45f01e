import Foundation
import Testing
@testable import Media

/// The render benchmark: ShortRenderer against the same ffmpeg command run by
/// hand. Off by default (two ~20 s renders); `MEDIA_BENCH=1 swift test --filter RenderBenchmark`.
@Suite("Render benchmark", .serialized)
struct RenderBenchmark {
    @Test("render overhead against the same ffmpeg command by hand",
          .enabled(if: ProcessInfo.processInfo.environment["MEDIA_BENCH"] != nil && Fixtures.canRender,
                   "set MEDIA_BENCH=1; needs ffmpeg, ffprobe, espeak-ng and fonts-noto-cjk"),
          .timeLimit(.minutes(10)))
    func overhead() async throws {
        let dir = try Fixtures.tempDir()
        defer { try? FileManager.default.removeItem(at: dir) }
        let photos = [try await Fixtures.photo("a.png", in: dir),
                      try await Fixtures.photo("b.png", in: dir, filters: "hue=h=120"),
                      try await Fixtures.photo("c.png", in: dir, source: "testsrc=size=1600x1200")]
        let script = ScriptWriter().template(Fixtures.sparseFacts, language: .english)
        let track = try await Speech().speak(script, in: dir.appendingPathComponent("speech"))
        let renderer = ShortRenderer()

        let t0 = Date()
        let probe = try await renderer.render(photos: photos, speech: track, facts: Fixtures.sparseFacts, language: .english,
                                              output: dir.appendingPathComponent("tower.mp4"), workDir: dir.appendingPathComponent("r1"))
        let viaRenderer = Date().timeIntervalSince(t0)

        let byHandDir = dir.appendingPathComponent("r2")
        let args = try renderer.prepare(photos: photos, speech: track, facts: Fixtures.sparseFacts, language: .english,
                                        output: dir.appendingPathComponent("hand.mp4"), workDir: byHandDir)
            .filter { $0 != "pipe:1" && $0 != "-progress" }
        let t1 = Date()
        let out = try await ProcessRunner.run("ffmpeg", args, timeout: 600, in: byHandDir).0
        let byHand = Date().timeIntervalSince(t1)
        #expect(out.status == 0)
        print(String(format: "RenderBenchmark: %.1f s short; ShortRenderer %.1f s (incl. ffprobe), ffmpeg by hand %.1f s, ratio %.3f",
                     probe.duration, viaRenderer, byHand, viaRenderer / byHand))
    }
}
