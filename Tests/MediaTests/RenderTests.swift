import Foundation
import Testing
@testable import Media

/// Renders are serialised: two at once on two cores would only slow each other down and
/// make the timing assertions meaningless.
@Suite("Render", .serialized)
struct RenderTests {
    @Test("ShortMaker.make on three generated photos gives a verified 1080×1920 short; progress rises to 1",
          .enabled(if: Fixtures.canRender, "needs ffmpeg, ffprobe, espeak-ng and fonts-noto-cjk"), .timeLimit(.minutes(5)))
    func fullShort() async throws {
        let dir = try Fixtures.tempDir()
        defer { try? FileManager.default.removeItem(at: dir) }
        let photos = [
            try await Fixtures.photo("a.png", in: dir),
            try await Fixtures.photo("b.png", in: dir, filters: "hue=h=120"),
            try await Fixtures.photo("c.png", in: dir, source: "testsrc=size=1600x1200"),
        ]
        let progress = Recorder<Double>()
        let start = Date()
        let result = try await ShortMaker().make(facts: Fixtures.richFacts, photos: photos, language: .korean,
                                                 workDir: dir.appendingPathComponent("work"), progress: { progress.append($0) })
        let seconds = Date().timeIntervalSince(start)
        print("MediaTests: \(String(format: "%.1f", result.duration)) s short made in \(String(format: "%.1f", seconds)) s")
        // MEDIA_KEEP=/some/file.mp4 keeps the short for a look by eye.
        if let keep = ProcessInfo.processInfo.environment["MEDIA_KEEP"] {
            try? FileManager.default.removeItem(atPath: keep)
            try FileManager.default.copyItem(at: result.video, to: URL(fileURLWithPath: keep))
        }

        // Check the file independently of the renderer's own verification.
        let probe = try await VideoProbe.probe(result.video)
        let video = try #require(probe.streams.first { $0.codecType == "video" })
        let audio = try #require(probe.streams.first { $0.codecType == "audio" })
        #expect(probe.streams.count == 2)
        #expect(video.codecName == "h264" && video.width == 1080 && video.height == 1920 && video.frameRate == 30)
        #expect(audio.codecName == "aac" && audio.sampleRate == 48000)
        #expect(probe.duration <= 60)
        let speech = try #require(result.captions.last?.end)
        #expect(abs(probe.duration - ShortRenderer().duration(speech: speech)) < 0.2)
        #expect(Set(result.chosenPhotos) == Set(photos))
        #expect(result.script.lines.count == result.captions.count)

        let values = progress.values
        #expect(values.last == 1)
        #expect(zip(values, values.dropFirst()).allSatisfy { $0 < $1 }, "progress went back: \(values)")
        #expect(values.count > 5, "expected progress during the render, got \(values)")
    }

    @Test("a listing without photos gets a title-card short",
          .enabled(if: Fixtures.canRender, "needs ffmpeg, ffprobe, espeak-ng and fonts-noto-cjk"), .timeLimit(.minutes(3)))
    func noPhotosTitleCard() async throws {
        let dir = try Fixtures.tempDir()
        defer { try? FileManager.default.removeItem(at: dir) }
        var settings = RenderSettings()
        settings.width = 360; settings.height = 640   // small: this test is about the path, not the pixels
        let result = try await ShortMaker(renderer: ShortRenderer(settings: settings))
            .make(facts: Fixtures.sparseFacts, photos: [], language: .english, workDir: dir)
        #expect(result.chosenPhotos.map(\.lastPathComponent) == ["title-card.png"])
        let video = try #require(result.probe.streams.first { $0.codecType == "video" })
        #expect(video.width == 360 && video.height == 640)
    }

    @Test("verifying a 640×480 file names exactly the wrong resolution",
          .enabled(if: Fixtures.haveMediaTools, "needs ffmpeg and ffprobe"), .timeLimit(.minutes(1)))
    func verificationNamesMismatch() async throws {
        let dir = try Fixtures.tempDir()
        defer { try? FileManager.default.removeItem(at: dir) }
        let file = dir.appendingPathComponent("small.mp4")
        _ = try await ProcessRunner.check("ffmpeg", ["-v", "error", "-y", "-f", "lavfi", "-i", "testsrc2=size=640x480:rate=30:duration=3",
                                                     "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000:duration=3",
                                                     "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p",
                                                     "-c:a", "aac", "-ar", "48000", "-shortest", file.path], timeout: 60)
        let probe = try await VideoProbe.probe(file)
        #expect(throws: ShortVerificationError(mismatches: [.resolution(width: 640, height: 480)])) {
            try ShortExpectation(expectedDuration: 3).check(probe)
        }
        // And one that is wrong in every way it can be at once.
        #expect(throws: ShortVerificationError(mismatches: [.durationOverLimit(actual: 61, limit: 60), .durationOff(expected: 20, actual: 61),
                                                            .videoStreamCount(0), .audioStreamCount(0)])) {
            try ShortExpectation(expectedDuration: 20).check(VideoProbe(duration: 61, streams: []))
        }
    }

    @Test("cancellation kills ffmpeg promptly and removes the partial file",
          .enabled(if: Fixtures.canRender, "needs ffmpeg, ffprobe, espeak-ng and fonts-noto-cjk"), .timeLimit(.minutes(2)))
    func cancellation() async throws {
        let dir = try Fixtures.tempDir()
        defer { try? FileManager.default.removeItem(at: dir) }
        let photo = try await Fixtures.photo("a.png", in: dir)
        let stop = Flag()
        let result: Result<ShortResult, Error>
        do {
            // Stop once the render has visibly started (progress past the preparation steps).
            result = .success(try await ShortMaker().make(facts: Fixtures.richFacts, photos: [photo], language: .english,
                                                          workDir: dir.appendingPathComponent("work"),
                                                          progress: { if $0 > 0.1 { stop.set() } }, shouldStop: { stop.isSet }))
        } catch {
            result = .failure(error)
        }
        let returned = Date()
        #expect(throws: RenderError.cancelled) { try result.get() }
        let stoppedAt = try #require(stop.time)
        #expect(returned.timeIntervalSince(stoppedAt) < 2, "took \(returned.timeIntervalSince(stoppedAt)) s to stop")
        #expect(!FileManager.default.fileExists(atPath: dir.appendingPathComponent("work/short-4217-en.mp4").path))
        // Only this render's ffmpeg (its command line names this test's directory): other
        // tests running in parallel start ffmpeg children of their own.
        #expect(childProcesses(named: "ffmpeg", mentioning: dir.path).isEmpty, "ffmpeg still running after cancellation")
    }

    /// Our own children with this command name, from /proc (Linux): a precise check that a
    /// killed child is gone, without touching anyone else's processes.
    private func childProcesses(named name: String, mentioning text: String) -> [Int32] {
        let me = getpid()
        let entries = (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []
        return entries.compactMap(Int32.init).filter { pid in
            guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
                  let close = stat.lastIndex(of: ")") else { return false }
            let comm = stat[stat.index(after: stat.firstIndex(of: "(")!)..<close]
            let fields = stat[stat.index(after: close)...].split(separator: " ")
            guard comm == name && fields.count > 1 && Int32(fields[1]) == me else { return false }
            let cmdline = (try? Data(contentsOf: URL(fileURLWithPath: "/proc/\(pid)/cmdline"))).map { String(decoding: $0, as: UTF8.self) } ?? ""
            return cmdline.contains(text)
        }
    }

    @Test("ffmpeg failing surfaces its last lines in a typed error",
          .enabled(if: Fixtures.canRender, "needs ffmpeg, ffprobe, espeak-ng and fonts-noto-cjk"), .timeLimit(.minutes(1)))
    func ffmpegFailure() async throws {
        let dir = try Fixtures.tempDir()
        defer { try? FileManager.default.removeItem(at: dir) }
        let track = try await Speech().speak(ShortScript(language: .english, lines: ["Hello."], source: .template, estimatedSeconds: 1),
                                             in: dir)
        let missing = dir.appendingPathComponent("missing.png")
        do {
            _ = try await ShortRenderer().render(photos: [missing], speech: track, facts: Fixtures.sparseFacts, language: .english,
                                                 output: dir.appendingPathComponent("out.mp4"), workDir: dir)
            Issue.record("render of a missing photo succeeded")
        } catch let ToolError.failed(tool, status, lines) {
            #expect(tool == "ffmpeg" && status != 0)
            #expect(lines.contains("missing.png"), "\(lines)")
        }
    }

    @Test("short speech shows fewer photos, each for at least minPhotoSeconds",
          .enabled(if: Tools.cjkFont() != nil, "needs fonts-noto-cjk"))
    func photosLimitedByLength() throws {
        let dir = try Fixtures.tempDir()
        defer { try? FileManager.default.removeItem(at: dir) }
        let photos = (0..<5).map { dir.appendingPathComponent("p\($0).png") }
        func inputs(speech: Double) throws -> Int {
            let track = SpeechTrack(audio: dir.appendingPathComponent("s.wav"), captions: [], duration: speech)
            let args = try ShortRenderer().prepare(photos: photos, speech: track, facts: Fixtures.sparseFacts, language: .english,
                                                   output: dir.appendingPathComponent("o.mp4"), workDir: dir)
            return zip(args, args.dropFirst()).filter { $0.0 == "-i" && $0.1.hasSuffix(".png") }.count
        }
        // The short lasts speech + 0.5 s tail + 2 s end card; photos share it less the end card
        // and one crossfade, at least 2 s each.
        #expect(try inputs(speech: 3) == 1)      // 2.9 s for photos → one
        #expect(try inputs(speech: 4.5) == 2)    // 4.4 s → two
        #expect(try inputs(speech: 6.1) == 3)    // 6.0 s → three
        #expect(try inputs(speech: 25) == 5)
    }

    @Test("progress lines parse into non-decreasing fractions of the duration")
    func progressParsing() {
        let seen = Recorder<Double>()
        let r = ProgressReporter(total: 10, sink: { seen.append($0) })
        r.consume(Data("frame=1\nout_time_us=2500000\nprogress=continue\nout_time_us=N/A\nout_ti".utf8))
        r.consume(Data("me_us=5000000\nout_time_us=4000000\nout_time_us=20000000\nprogress=end\n".utf8))
        r.finish()
        #expect(seen.values == [0.25, 0.5, 0.99, 1])
    }

    @Test("ASS captions: times as h:mm:ss.cc, override braces neutralised")
    func assCaptions() {
        #expect(ASSSubtitles.time(3725.456) == "1:02:05.46")
        let doc = ASSSubtitles(width: 1080, height: 1920, fontName: "Noto Sans CJK KR")
            .document([Caption(text: "가격 {12억}", start: 0, end: 1.5)])
        #expect(doc.contains("Dialogue: 0,0:00:00.00,0:00:01.50,Caption,,0,0,0,,가격 (12억)\n"))
        #expect(doc.contains("PlayResX: 1080\nPlayResY: 1920"))
    }
}
