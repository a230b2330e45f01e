import Foundation
import Learning
import Media
import Testing
import Wire
@testable import CoordinatorKit

/// Job kind `render` on real processes and the real ffmpeg: a listing ingested through the
/// CLI with two photos in the coordinator's photos directory becomes a verified
/// 1080×1920 H.264/AAC short, listed by `coordinator shorts` and fetched by `shorts get`.
extension ProcessClusterSuites {
@Suite(.serialized, .timeLimit(.minutes(5))) struct RenderTests {
    static func onPath(_ tool: String) -> Bool {
        (ProcessInfo.processInfo.environment["PATH"] ?? "").split(separator: ":").contains {
            FileManager.default.isExecutableFile(atPath: "\($0)/\(tool)")
        }
    }

    static var mediaTools: Bool { RenderKind.requiredTools.allSatisfy(onPath) }

    /// A small market's files in the cluster's directory, with an empty `photos/` beside
    /// them: the listings file names its photos `photos/<id>-N.jpg`, relative to the
    /// directory given to `serve --photos-dir`. Returns that directory, the photos
    /// directory and the first listing's id.
    static func market(in c: ProcessCluster, seed: UInt64) throws -> (URL, URL, Int) {
        let market = DemoMarket(.init(users: 6, listings: 3, interactions: 20, days: 3, seed: seed)).generate()
        let dir = c.cluster.directory.appendingPathComponent("market")
        try FeatureStoreFiles.write(market, start: Date().timeIntervalSince1970 - 3 * 86_400, to: dir)
        let photos = dir.appendingPathComponent("photos")
        try FileManager.default.createDirectory(at: photos, withIntermediateDirectories: true)
        return (dir, photos, try #require(market.listings.first?.id))
    }

    /// Runs a tool to the end; its standard output.
    static func run(_ tool: String, _ arguments: [String]) throws -> (status: Int32, output: String) {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        p.arguments = [tool] + arguments
        let pipe = Pipe()
        p.standardOutput = pipe
        p.standardError = FileHandle.nullDevice
        try p.run()
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        return (p.terminationStatus, String(decoding: data, as: UTF8.self))
    }

    @Test(.enabled(if: RenderTests.mediaTools, "needs ffmpeg, ffprobe and espeak-ng on PATH"))
    func rendersAListingIntoAVerifiedShort() async throws {
        let c = try ProcessCluster(workers: ["w1"])
        defer { c.stopAll() }
        let (dir, photos, id) = try Self.market(in: c, seed: 11)
        for (n, pattern) in [(1, "testsrc2"), (2, "smptebars")] {
            let file = photos.appendingPathComponent("\(id)-\(n).jpg").path
            let made = try Self.run("ffmpeg", ["-v", "error", "-y", "-f", "lavfi", "-i", "\(pattern)=size=1280x960", "-frames:v", "1", file])
            #expect(made.status == 0)
        }

        try c.startCoordinator(extra: ["--photos-dir", dir.path])
        try c.startWorker("w1", slots: 1)
        let op = try await c.operatorClient()
        defer { op.close() }
        try await c.waitForWorkers(1, op)

        let (ingested, ingestOutput) = try await c.runOperatorCommand(["ingest", "listings", dir.appendingPathComponent("listings.csv").path])
        #expect(ingested == 0, "\(ingestOutput)")

        // An unknown listing is refused when the job is submitted, naming it.
        let (refused, refusal) = try await c.runOperatorCommand(["submit", "render", "--listing", "987654"])
        #expect(refused != 0)
        #expect(refusal.trimmingCharacters(in: .whitespacesAndNewlines) == "error: invalid argument: render: unknown listing 987654", "\(refusal)")

        let (status, output) = try await c.runOperatorCommand(["submit", "render", "--listing", "\(id)", "--language", "en", "--follow"])
        #expect(status == 0, "\(output)\n--- worker log:\n\(c.log("w1"))")
        let jobID = try #require(output.split(separator: "\n").first.flatMap { $0.split(separator: " ").dropFirst().first }.map(String.init))
        let shortID = "short-\(jobID)-0"

        // The job's summary names the short; the stored row waits for review.
        let job = try await op.job(jobID)
        #expect(job.state == .succeeded, "\(job.error)")
        let summary = try WireRenderSummary(serializedBytes: job.summary)
        #expect(summary.shortIds == [shortID] && summary.rendered == 1)
        // Both photos reached the worker and were used: no title card, nothing skipped.
        let result = try #require(try await op.results(jobID).first)
        let rendered = try WireRenderOutput(serializedBytes: result.output)
        #expect(rendered.worker == "w1")
        #expect(!rendered.warnings.contains { $0.contains("title card") || $0.contains("skipped photo") }, "\(rendered.warnings)")
        let short = try await op.short(shortID)
        // The video is stored once, as the short's blob; the result keeps its address.
        #expect(rendered.video.isEmpty && rendered.videoSha256 == short.sha256 && rendered.videoBytes == short.bytes)
        #expect(short.listingID == UInt64(id) && short.state == "pending_review" && short.language == "en")
        #expect(short.durationSeconds > 5 && short.durationSeconds <= 60)
        #expect(!short.scriptLines.isEmpty)

        let (listed, list) = try await c.runOperatorCommand(["shorts"])
        #expect(listed == 0, "\(list)")
        let row = try #require(list.split(separator: "\n").first { $0.hasPrefix(shortID) }, "\(list)")
        #expect(row.contains("pending_review") && row.contains(" \(id) "), "\(row)")

        let out = c.cluster.directory.appendingPathComponent("short.mp4")
        let (got, getOutput) = try await c.runOperatorCommand(["shorts", "get", shortID, "--out", out.path])
        #expect(got == 0, "\(getOutput)")
        let video = try Data(contentsOf: out)
        #expect(UInt64(video.count) == short.bytes)

        let streams = try Self.run("ffprobe", ["-v", "error", "-show_entries", "stream=codec_type,codec_name,width,height",
                                                "-of", "csv=p=0", out.path])
        #expect(streams.status == 0)
        let lines = Set(streams.output.split(separator: "\n").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty })
        #expect(lines == ["h264,video,1080,1920", "aac,audio"], "\(streams.output)")

        // Unknown short ids are refused by name.
        let (missing, missingOutput) = try await c.runOperatorCommand(["shorts", "get", "short-nope"])
        #expect(missing != 0)
        #expect(missingOutput.contains("not found: short short-nope"), "\(missingOutput)")
    }

    /// Where a render can go wrong on a cluster: no worker has the tools (the job waits
    /// and says why), ffmpeg fails on the worker (the task fails with ffmpeg's own last
    /// lines after the attempts the job allows), a listing photo is corrupt (skipped with
    /// a warning; the short is made from the rest).
    @Test(.enabled(if: RenderTests.mediaTools, "needs ffmpeg, ffprobe and espeak-ng on PATH"))
    func renderFaultsWaitFailWithFfmpegsWordsOrSkipTheBadPhoto() async throws {
        let c = try ProcessCluster(workers: ["bare", "broken", "w1"])
        defer { c.stopAll() }
        let (dir, photos, id) = try Self.market(in: c, seed: 12)
        // Its first photo is not a JPEG at all; its second is.
        try Data("not a JPEG: the agent uploaded a web page".utf8).write(to: photos.appendingPathComponent("\(id)-1.jpg"))
        let made = try Self.run("ffmpeg", ["-v", "error", "-y", "-f", "lavfi", "-i", "testsrc2=size=1280x960", "-frames:v", "1",
                                           photos.appendingPathComponent("\(id)-2.jpg").path])
        #expect(made.status == 0)

        try c.startCoordinator(extra: ["--photos-dir", dir.path])
        let op = try await c.operatorClient()
        defer { op.close() }
        let (ingested, ingestOutput) = try await c.runOperatorCommand(["ingest", "listings", dir.appendingPathComponent("listings.csv").path])
        #expect(ingested == 0, "\(ingestOutput)")
        func submit(attempts: UInt32) async throws -> String {
            var spec = WireRenderSpec()
            spec.listingIds = [UInt64(id)]
            spec.language = "en"
            return try await op.submit(.with { $0.kind = RenderKind.name; $0.name = "fault"; $0.maxAttempts = attempts; $0.spec = try! spec.serializedData() }).jobID
        }

        // 1. A worker without the media tools takes no render task; the job says why.
        try c.startWorker("bare", slots: 1, environment: ["PATH": c.cluster.directory.appendingPathComponent("no-tools").path])
        try await c.waitForWorkers(1, op)
        let waiting = try await submit(attempts: 2)
        try await c.waitUntil("the render job to say why it waits") { try await op.job(waiting).waiting != "" }
        #expect(try await op.job(waiting).waiting == "no connected worker has espeak-ng, ffmpeg, ffprobe (missing everywhere: espeak-ng, ffmpeg, ffprobe)")
        _ = try await op.cancel(waiting)

        // 2. The real ffmpeg, refusing every render (an option it does not know): the
        // task fails after its two attempts, with ffmpeg's words in the error.
        let tools = c.cluster.directory.appendingPathComponent("broken-tools")
        try FileManager.default.createDirectory(at: tools, withIntermediateDirectories: true)
        let ffmpeg = try #require(Tools.path("ffmpeg"))
        try """
            #!/bin/sh
            for a in "$@"; do [ "$a" = "-progress" ] && exec \(ffmpeg) -nosuchoption 1 "$@"; done
            exec \(ffmpeg) "$@"
            """.write(to: tools.appendingPathComponent("ffmpeg"), atomically: true, encoding: .utf8)
        chmod(tools.appendingPathComponent("ffmpeg").path, 0o755)
        for tool in ["ffprobe", "espeak-ng"] {
            try FileManager.default.createSymbolicLink(atPath: tools.appendingPathComponent(tool).path, withDestinationPath: try #require(Tools.path(tool)))
        }
        try c.startWorker("broken", slots: 1, environment: ["PATH": tools.path])
        try await c.waitForWorkers(2, op)
        let failing = try await submit(attempts: 2)
        try await c.waitUntil("the failing render to end") { try await op.job(failing).state == .failed }
        let failed = try #require(try await op.results(failing).first)
        #expect(failed.attempts == 2, "\(failed)")
        #expect(failed.error == "ffmpeg exited with status 1: Unrecognized option 'nosuchoption'. | Error splitting the argument list: Option not found",
                "\(failed.error)")
        c.kill9(c.workers["broken"])

        // 3. A working worker: the corrupt photo is skipped with a warning naming it.
        try c.startWorker("w1", slots: 1)
        let good = try await submit(attempts: 1)
        try await c.waitUntil("the render to end") { [.succeeded, .failed].contains(try await op.job(good).state) }
        let job = try await op.job(good)
        #expect(job.state == .succeeded, "\(job.error)\n\(c.log("w1").suffix(2000))")
        let output = try WireRenderOutput(serializedBytes: try #require(try await op.results(good).first).output)
        #expect(output.worker == "w1")
        #expect(output.warnings.contains { $0.contains("photo-01.jpg") }, "\(output.warnings)")
        #expect(!output.warnings.contains { $0.contains("title card") }, "\(output.warnings)")
    }
}
}
