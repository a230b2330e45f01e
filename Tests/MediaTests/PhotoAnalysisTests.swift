import Foundation
import Testing
@testable import Media

@Suite("Photo analysis")
struct PhotoAnalysisTests {
    @Test("a sharp bright photo ranks above blurry, dark and tiny ones, which are rejected",
          .enabled(if: Fixtures.haveMediaTools, "needs ffmpeg and ffprobe"), .timeLimit(.minutes(1)))
    func ranksSharpAboveBlurryAndDark() async throws {
        let dir = try Fixtures.tempDir()
        defer { try? FileManager.default.removeItem(at: dir) }
        let blurry = try await Fixtures.photo("blurry.png", in: dir, filters: "gblur=sigma=12")
        let dark = try await Fixtures.photo("dark.png", in: dir, filters: "eq=brightness=-0.6")
        let sharp = try await Fixtures.photo("sharp.png", in: dir)
        let tiny = try await Fixtures.photo("tiny.png", in: dir, source: "testsrc2=size=320x240")

        let selection = await PhotoAnalyzer().choose([blurry, dark, sharp, tiny], max: 5)
        #expect(selection.chosen.map(\.url) == [sharp])
        #expect(selection.unreadable.isEmpty)
        let byName = Dictionary(uniqueKeysWithValues: selection.reports.map { ($0.url.lastPathComponent, $0) })
        #expect(byName["sharp.png"]?.rejections == [])
        #expect(byName["blurry.png"]?.rejections == [.blurry])
        #expect(byName["dark.png"]?.rejections == [.tooDark])
        #expect(byName["tiny.png"]?.rejections == [.tooSmall])
        let s = try #require(byName["sharp.png"])
        #expect(s.metrics.width == 1280 && s.metrics.height == 960)
        #expect(s.source == .local)
        #expect(s.quality > byName["blurry.png"]!.quality)
        #expect(s.quality > byName["dark.png"]!.quality)
        #expect(s.metrics.sharpness > 10 * byName["blurry.png"]!.metrics.sharpness)
        #expect(s.metrics.brightness > 0.4 && byName["dark.png"]!.metrics.brightness < 0.25)
        #expect(s.metrics.dominantColors.count == 3)
    }

    @Test("with only poor photos the best of them are still chosen, best first",
          .enabled(if: Fixtures.haveMediaTools, "needs ffmpeg and ffprobe"), .timeLimit(.minutes(1)))
    func poorPhotosAreUsedWhenNothingElseIsLeft() async throws {
        let dir = try Fixtures.tempDir()
        defer { try? FileManager.default.removeItem(at: dir) }
        let blurry = try await Fixtures.photo("blurry.png", in: dir, filters: "gblur=sigma=12")
        let dark = try await Fixtures.photo("dark.png", in: dir, filters: "eq=brightness=-0.6")
        let selection = await PhotoAnalyzer().choose([dark, blurry], max: 5)
        #expect(selection.chosen.count == 2)
        #expect(selection.chosen.allSatisfy { !$0.isAcceptable })
        #expect(selection.chosen[0].quality >= selection.chosen[1].quality)
        #expect(await PhotoAnalyzer().choose([dark, blurry], max: 1).chosen.count == 1)
    }

    @Test("a corrupt photo is skipped and named; the rest are used",
          .enabled(if: Fixtures.haveMediaTools, "needs ffmpeg and ffprobe"), .timeLimit(.minutes(1)))
    func corruptPhotoIsSkipped() async throws {
        let dir = try Fixtures.tempDir()
        defer { try? FileManager.default.removeItem(at: dir) }
        let corrupt = dir.appendingPathComponent("corrupt.jpg")
        try Data("this is not a JPEG".utf8).write(to: corrupt)
        let sharp = try await Fixtures.photo("sharp.png", in: dir)
        let selection = await PhotoAnalyzer().choose([corrupt, sharp])
        #expect(selection.chosen.map(\.url) == [sharp])
        #expect(selection.unreadable.map(\.url) == [corrupt])
        await #expect(throws: PhotoError.self) { try await PhotoAnalyzer().analyze(corrupt) }
    }

    @Test("a solid colour has that colour as its only dominant colour and no sharpness",
          .enabled(if: Fixtures.haveMediaTools, "needs ffmpeg and ffprobe"), .timeLimit(.minutes(1)))
    func solidColour() async throws {
        let dir = try Fixtures.tempDir()
        defer { try? FileManager.default.removeItem(at: dir) }
        let blue = try await Fixtures.photo("blue.png", in: dir, source: "color=c=0x3060C0:size=800x600")
        let m = try await PhotoAnalyzer.measure(blue)
        #expect(m.width == 800 && m.height == 600)
        #expect(m.dominantColors.count == 1)
        let c = try #require(m.dominantColors.first)
        #expect(abs(Int(c.red) - 0x30) <= 2 && abs(Int(c.green) - 0x60) <= 2 && abs(Int(c.blue) - 0xC0) <= 2)
        #expect(c.share == 1)
        #expect(m.sharpness < 1 && m.contrast < 0.01)
    }

    @Test("metrics of synthetic frames: a checkerboard is sharp, a flat frame is not")
    func pureMetrics() {
        let w = 16, h = 16
        var checker = [UInt8](repeating: 0, count: w * h * 3)
        for y in 0..<h { for x in 0..<w where (x + y) % 2 == 0 { for c in 0..<3 { checker[3 * (y * w + x) + c] = 255 } } }
        let m = PhotoAnalyzer.metrics(rgb: checker, width: w, height: h, originalWidth: 1000, originalHeight: 1000)
        #expect(abs(m.brightness - 0.5) < 1e-9)
        #expect(abs(m.contrast - 0.5) < 1e-9)
        #expect(m.sharpness == 1020 * 1020)          // every interior Laplacian is ±4·255
        #expect(m.dominantColors.map(\.hex) == ["#000000", "#FFFFFF"])
        let flat = PhotoAnalyzer.metrics(rgb: [UInt8](repeating: 128, count: w * h * 3), width: w, height: h, originalWidth: 1000, originalHeight: 1000)
        #expect(flat.sharpness == 0 && flat.contrast == 0)
    }
}

@Suite("Vision endpoint")
struct VisionClientTests {
    @Test("a refused connection falls back to the local score at once",
          .enabled(if: Fixtures.haveMediaTools, "needs ffmpeg and ffprobe"), .timeLimit(.minutes(1)))
    func refusedFallsBack() async throws {
        let dir = try Fixtures.tempDir()
        defer { try? FileManager.default.removeItem(at: dir) }
        let sharp = try await Fixtures.photo("sharp.png", in: dir)
        let vision = VisionClient(url: try refusedURL(), timeout: 5)
        // A refusal is a transport error at once, not the 5 s timeout (the error says
        // which; no clock is read: the machine's load would make that flaky).
        let failures = Recorder<EndpointError>()
        #expect(await vision.score(imageAt: sharp) { failures.append($0) } == nil)
        #expect(failures.values.count == 1)
        if case .transport = failures.values.first {} else { Issue.record("expected a transport error, got \(failures.values)") }
        let report = try await PhotoAnalyzer(vision: vision).analyze(sharp)
        #expect(report.source == .local)
        #expect(report.quality == PhotoPolicy().quality(report.metrics))
    }

    @Test("a hung endpoint falls back within its timeout", .timeLimit(.minutes(1)))
    func hungFallsBack() async throws {
        let server = try FakeHTTPServer { _ in .hang }
        defer { server.shutdown() }
        let dir = try Fixtures.tempDir()
        defer { try? FileManager.default.removeItem(at: dir) }
        let image = dir.appendingPathComponent("x.png")
        try Data([1, 2, 3]).write(to: image)
        let failures = Recorder<EndpointError>()
        let score = await VisionClient(url: server.baseURL.appendingPathComponent("score"), timeout: 1).score(imageAt: image) { failures.append($0) }
        #expect(score == nil)
        // The client's own timeout ended it (the test's time limit catches a hang).
        #expect(failures.values == [.timedOut(seconds: 1)])
        #expect(server.requests.count == 1)
    }

    @Test("an answering endpoint's score is used and it received the image as base64",
          .enabled(if: Fixtures.haveMediaTools, "needs ffmpeg and ffprobe"), .timeLimit(.minutes(1)))
    func answeringEndpoint() async throws {
        let server = try FakeHTTPServer { _ in .json(status: 200, body: #"{"quality": 0.875, "labels": ["kitchen"]}"#) }
        defer { server.shutdown() }
        let dir = try Fixtures.tempDir()
        defer { try? FileManager.default.removeItem(at: dir) }
        let sharp = try await Fixtures.photo("sharp.png", in: dir)
        let report = try await PhotoAnalyzer(vision: VisionClient(url: server.baseURL.appendingPathComponent("score"), timeout: 5,
                                                                  token: SecretToken("vision-secret"))).analyze(sharp)
        #expect(report.source == .vision)
        #expect(report.quality == 0.875)
        let request = try #require(server.requests.first)
        #expect(request.method == "POST" && request.uri == "/score")
        #expect(request.header("Authorization") == "Bearer vision-secret")
        let body = try #require(try JSONSerialization.jsonObject(with: request.body) as? [String: Any])
        #expect((body["image"] as? String).flatMap { Data(base64Encoded: $0) } == (try Data(contentsOf: sharp)))
    }
}
