import Foundation

/// Output format and pacing of a short.
public struct RenderSettings: Sendable, Equatable {
    public var width = 1080, height = 1920, fps = 30, sampleRate = 48_000
    /// Seconds of end card (listing id, price, "Tower Realty") after the photos.
    public var endCard = 2.0
    /// Seconds of silence after the speech before the end card begins.
    public var tail = 0.5
    /// Crossfade length between photos, seconds.
    public var crossfade = 0.6
    /// The shortest time a photo is shown outside its crossfade; fewer photos are used when
    /// the speech is too short to give each this much.
    public var minPhotoSeconds = 2.0
    public var maxDuration = 60.0
    public var preset = "veryfast"
    public var crf = 23
    /// Hard limit on one ffmpeg run; it is killed after this.
    public var timeout = 900.0

    public init() {}
}

public enum RenderError: Error, Equatable, CustomStringConvertible {
    /// `shouldStop` returned true; ffmpeg was killed and has exited.
    case cancelled
    case noPhotos
    case noFont
    /// The speech plus end card would exceed the maximum duration.
    case tooLong(planned: Double, limit: Double)

    public var description: String {
        switch self {
        case .cancelled: return "render cancelled"
        case .noPhotos: return "no photos to render"
        case .noFont: return "no Noto CJK font (install fonts-noto-cjk: Deploy/install-deps.sh --media)"
        case let .tooLong(p, l): return String(format: "the short would last %.1f s, over the %.0f s limit", p, l)
        }
    }
}

/// Renders a vertical short with ffmpeg and verifies it with ffprobe.
///
/// Guarantees: the output is verified (`ShortExpectation`: H.264 W×H at `fps`, one AAC
/// stream at `sampleRate`, duration ≤ the limit and within 0.5 s of `duration(speech:)`)
/// before `render` returns; progress fractions are non-decreasing, in 0…1 and end at 1;
/// when `shouldStop` turns true ffmpeg is killed (polled every 50 ms), has exited when
/// `render` throws `RenderError.cancelled`, and the partial output is removed.
public struct ShortRenderer: Sendable {
    public var settings: RenderSettings

    public init(settings: RenderSettings = RenderSettings()) { self.settings = settings }

    /// Total length of the short for a speech track of `speech` seconds, rounded up to whole frames.
    public func duration(speech: Double) -> Double {
        let raw = speech + settings.tail + settings.endCard
        return (raw * Double(settings.fps)).rounded(.up) / Double(settings.fps)
    }

    /// Renders `photos` (in order) with `speech` into `output`. Temporary files go to `workDir`.
    public func render(photos: [URL], speech: SpeechTrack, facts: ListingFacts, language: ShortLanguage,
                       output: URL, workDir: URL,
                       progress: @escaping @Sendable (Double) -> Void = { _ in },
                       shouldStop: @escaping @Sendable () -> Bool = { false }) async throws -> VideoProbe {
        let total = duration(speech: speech.duration)
        guard total <= settings.maxDuration else { throw RenderError.tooLong(planned: total, limit: settings.maxDuration) }
        let arguments = try prepare(photos: photos, speech: speech, facts: facts, language: language, output: output, workDir: workDir)
        try? FileManager.default.removeItem(at: output)

        let reporter = ProgressReporter(total: total, sink: progress)
        let (result, stopped) = try await ProcessRunner.run("ffmpeg", arguments, timeout: settings.timeout, in: workDir,
                                                            onStdout: { reporter.consume($0) }, shouldKill: shouldStop)
        if stopped {
            try? FileManager.default.removeItem(at: output)
            throw RenderError.cancelled
        }
        guard result.status == 0 else {
            throw ToolError.failed(tool: "ffmpeg", status: result.status, lastLines: result.stderrTail)
        }
        let probe = try await VideoProbe.probe(output)
        var expectation = ShortExpectation(expectedDuration: total, width: settings.width, height: settings.height)
        expectation.fps = Double(settings.fps); expectation.sampleRate = settings.sampleRate; expectation.maxDuration = settings.maxDuration
        try expectation.check(probe)
        reporter.finish()
        return probe
    }

    /// Writes the caption and text files into `workDir` and returns ffmpeg's arguments,
    /// which name them relative to `workDir` (ffmpeg runs there, so no path needs
    /// filtergraph escaping). Public so a benchmark can run the same command by hand.
    public func prepare(photos: [URL], speech: SpeechTrack, facts: ListingFacts, language: ShortLanguage,
                        output: URL, workDir: URL) throws -> [String] {
        guard !photos.isEmpty else { throw RenderError.noPhotos }
        guard let font = Tools.cjkFont() else { throw RenderError.noFont }
        try FileManager.default.createDirectory(at: workDir, withIntermediateDirectories: true)
        let s = settings, W = s.width, H = s.height, fps = Double(s.fps), f = s.crossfade
        let total = duration(speech: speech.duration)
        // Each photo is held at least `minPhotoSeconds` besides its crossfade; with short
        // speech the later photos are dropped rather than flashed by.
        let n = max(1, min(photos.count, Int((total - s.endCard - f) / s.minPhotoSeconds)))
        let photos = Array(photos.prefix(n))

        // Segment lengths: n photos and the end card, joined by n crossfades, add up to `total`;
        // the end card segment is longer by one crossfade so it is fully shown for `endCard` s.
        let photoSeconds = (total - s.endCard - f) / Double(n) + f
        let photoFrames = Int((photoSeconds * fps).rounded(.up))
        let cardSeconds = s.endCard + f + 1   // a spare second; the output is cut at `total`

        var inputs: [String] = []
        var graph: [String] = []
        for (i, photo) in photos.enumerated() {
            inputs += ["-i", photo.path]
            // Scale to twice the output before zoompan: zoompan crops on whole pixels, and at
            // 1× the slow zoom visibly jitters (TOOLCHAIN.md).
            graph.append("[\(i):v]scale=\(2 * W):\(2 * H):force_original_aspect_ratio=increase,crop=\(2 * W):\(2 * H),setsar=1,"
                         + "zoompan=\(kenBurns(i, frames: photoFrames)):d=\(photoFrames):s=\(W)x\(H):fps=\(s.fps),"
                         + "format=yuv420p,setpts=PTS-STARTPTS[p\(i)]")
        }
        inputs += ["-f", "lavfi", "-i", "color=c=0x102A43:s=\(W)x\(H):r=\(s.fps):d=\(fmt(cardSeconds))"]
        inputs += ["-i", speech.audio.path]
        let cardInput = n, audioInput = n + 1

        let text = OverlayText(facts: facts, language: language)
        try write(text.endCardLines[0], "card-id.txt", workDir)
        try write(text.endCardLines[1], "card-price.txt", workDir)
        try write(text.endCardLines[2], "card-brand.txt", workDir)
        try write(text.overlay, "overlay.txt", workDir)
        try ASSSubtitles(width: W, height: H, fontName: "Noto Sans CJK KR").document(speech.captions)
            .write(to: workDir.appendingPathComponent("captions.ass"), atomically: true, encoding: .utf8)

        let fontfile = "fontfile=\(font.path)"
        func centered(_ file: String, size: Int, y: String, color: String = "white") -> String {
            "drawtext=\(fontfile):textfile=\(file):fontsize=\(size):fontcolor=\(color):x=(w-text_w)/2:y=\(y)"
        }
        graph.append("[\(cardInput):v]format=yuv420p,"
                     + centered("card-id.txt", size: H / 28, y: "h*0.36") + ","
                     + centered("card-price.txt", size: H / 18, y: "h*0.44") + ","
                     + centered("card-brand.txt", size: H / 24, y: "h*0.56", color: "0xF0B429")
                     + ",setsar=1,setpts=PTS-STARTPTS[card]")

        // The crossfade chain: each xfade starts one crossfade before the joined stream ends.
        let transitions = ["fade", "slideleft", "smoothup", "circleopen", "fadeblack"]
        var joined = "p0", joinedSeconds = Double(photoFrames) / fps
        let segments = (1..<n).map { "p\($0)" } + ["card"]
        for (k, seg) in segments.enumerated() {
            let label = "x\(k)"
            graph.append("[\(joined)][\(seg)]xfade=transition=\(transitions[k % transitions.count]):duration=\(fmt(f)):offset=\(fmt(joinedSeconds - f))[\(label)]")
            joinedSeconds += (seg == "card" ? cardSeconds : Double(photoFrames) / fps) - f
            joined = label
        }
        let overlayEnd = fmt(total - s.endCard)
        graph.append("[\(joined)]drawtext=\(fontfile):textfile=overlay.txt:fontsize=\(H / 32):fontcolor=white:"
                     + "box=1:boxcolor=black@0.55:boxborderw=\(H / 80):x=(w-text_w)/2:y=h*0.08:enable='lt(t,\(overlayEnd))',"
                     + "subtitles=filename=captions.ass:fontsdir=\(font.deletingLastPathComponent().path),format=yuv420p[vout]")
        graph.append("[\(audioInput):a]aresample=\(s.sampleRate),apad[aout]")

        return ["-hide_banner", "-v", "error", "-nostats", "-progress", "pipe:1", "-y"] + inputs
            + ["-filter_complex", graph.joined(separator: ";"), "-map", "[vout]", "-map", "[aout]",
               "-c:v", "libx264", "-preset", s.preset, "-crf", String(s.crf), "-pix_fmt", "yuv420p", "-r", String(s.fps),
               "-c:a", "aac", "-b:a", "128k", "-ar", String(s.sampleRate), "-ac", "2",   // stereo: what Reels and Shorts expect
               "-t", fmt(total), "-movflags", "+faststart", output.path]
    }

    /// The pan/zoom of photo `i`: it cycles zoom in, zoom out, pan right, pan up, so
    /// consecutive photos move differently. `on` is zoompan's output frame number.
    func kenBurns(_ i: Int, frames: Int) -> String {
        let t = "on/\(max(1, frames - 1))"
        let cx = "x='iw/2-(iw/zoom/2)'", cy = "y='ih/2-(ih/zoom/2)'"
        switch i % 4 {
        case 0: return "z='1+0.15*\(t)':\(cx):\(cy)"
        case 1: return "z='1.15-0.15*\(t)':\(cx):\(cy)"
        case 2: return "z='1.12':x='(iw-iw/zoom)*\(t)':\(cy)"
        default: return "z='1.12':\(cx):y='(ih-ih/zoom)*(1-\(t))'"
        }
    }

    private func write(_ text: String, _ name: String, _ dir: URL) throws {
        try text.write(to: dir.appendingPathComponent(name), atomically: true, encoding: .utf8)
    }

    private func fmt(_ x: Double) -> String { String(format: "%.3f", x) }
}

/// The price/area overlay and the end card's three lines.
struct OverlayText {
    let overlay: String
    let endCardLines: [String]

    init(facts f: ListingFacts, language: ShortLanguage) {
        let area = Int(f.areaM2.rounded())
        switch language {
        case .korean:
            let price = Templates.koreanPrice(f.price)
            overlay = "\(price) · \(area)㎡ · 방 \(f.rooms)개"
            endCardLines = ["매물 \(f.id)번", price, "타워 부동산 Tower Realty"]
        case .english:
            let price = Templates.englishPrice(f.price)
            overlay = "\(price) · \(area) m² · \(f.rooms) rooms"
            endCardLines = ["Listing \(f.id)", price, "Tower Realty"]
        }
    }
}

/// Parses ffmpeg's `-progress` key=value stream into fractions of a known duration.
final class ProgressReporter: @unchecked Sendable {
    // Only the stdout reader thread calls consume; finish runs after it has ended.
    private let total: Double
    private let sink: @Sendable (Double) -> Void
    private var buffer = ""
    private var last = -1.0

    init(total: Double, sink: @escaping @Sendable (Double) -> Void) { self.total = total; self.sink = sink }

    func consume(_ chunk: Data) {
        buffer += String(decoding: chunk, as: UTF8.self)
        while let newline = buffer.firstIndex(of: "\n") {
            let line = buffer[..<newline].trimmingCharacters(in: .whitespaces)
            buffer.removeSubrange(...newline)
            if line.hasPrefix("out_time_us="), let us = Double(line.dropFirst("out_time_us=".count)), total > 0 {
                // Up to 0.99 while encoding: 1 is kept for "verified".
                emit(min(0.99, max(0, us / 1_000_000 / total)))
            }
        }
    }

    func finish() { emit(1) }

    private func emit(_ fraction: Double) {
        guard fraction > last else { return }    // non-decreasing, and no repeats
        last = fraction
        sink(fraction)
    }
}

/// Writes captions as an ASS subtitle document (libass renders it in ffmpeg's `subtitles` filter).
struct ASSSubtitles {
    let width: Int, height: Int, fontName: String

    func document(_ captions: [Caption]) -> String {
        let size = height / 24, margin = width / 14
        var s = """
        [Script Info]
        ScriptType: v4.00+
        PlayResX: \(width)
        PlayResY: \(height)
        WrapStyle: 0
        ScaledBorderAndShadow: yes

        [V4+ Styles]
        Format: Name, Fontname, Fontsize, PrimaryColour, SecondaryColour, OutlineColour, BackColour, Bold, Italic, Underline, StrikeOut, ScaleX, ScaleY, Spacing, Angle, BorderStyle, Outline, Shadow, Alignment, MarginL, MarginR, MarginV, Encoding
        Style: Caption,\(fontName),\(size),&H00FFFFFF,&H000000FF,&H00000000,&H64000000,-1,0,0,0,100,100,0,0,1,\(max(2, size / 14)),2,2,\(margin),\(margin),\(height / 5),1

        [Events]
        Format: Layer, Start, End, Style, Name, MarginL, MarginR, MarginV, Effect, Text

        """
        for c in captions {
            s += "Dialogue: 0,\(Self.time(c.start)),\(Self.time(c.end)),Caption,,0,0,0,,\(Self.escape(c.text))\n"
        }
        return s
    }

    /// h:mm:ss.cc, as ASS wants.
    static func time(_ t: Double) -> String {
        let cs = Int((max(0, t) * 100).rounded())
        return String(format: "%d:%02d:%02d.%02d", cs / 360_000, cs / 6000 % 60, cs / 100 % 60, cs % 100)
    }

    /// Braces start override blocks and a backslash starts an escape in ASS text; newlines end a line.
    static func escape(_ text: String) -> String {
        text.replacingOccurrences(of: "\\", with: "/").replacingOccurrences(of: "{", with: "(")
            .replacingOccurrences(of: "}", with: ")").replacingOccurrences(of: "\n", with: " ")
    }
}
