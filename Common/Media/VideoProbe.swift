import Foundation

/// One stream as ffprobe reports it.
public struct ProbedStream: Sendable, Equatable, Codable {
    /// "video", "audio", …
    public var codecType: String
    public var codecName: String
    public var width: Int?
    public var height: Int?
    /// Frames per second from `avg_frame_rate` (video only).
    public var frameRate: Double?
    public var sampleRate: Int?
}

/// What ffprobe says about a media file (`-show_streams -show_format -of json`).
public struct VideoProbe: Sendable, Equatable, Codable {
    /// The container's duration, seconds.
    public var duration: Double
    public var streams: [ProbedStream]

    public static func probe(_ url: URL, timeout: Double = 30) async throws -> VideoProbe {
        let data = try await ProcessRunner.check("ffprobe", ["-v", "error", "-show_streams", "-show_format", "-of", "json", url.path],
                                                 timeout: timeout)
        return try parse(data)
    }

    static func parse(_ data: Data) throws -> VideoProbe {
        guard let json = try? JSONSerialization.jsonObject(with: data) as? [String: Any],
              let format = json["format"] as? [String: Any],
              let duration = (format["duration"] as? String).flatMap(Double.init)
        else { throw ToolError.unreadableOutput(tool: "ffprobe", detail: "no format.duration") }
        let streams = (json["streams"] as? [[String: Any]] ?? []).map { s in
            ProbedStream(codecType: s["codec_type"] as? String ?? "", codecName: s["codec_name"] as? String ?? "",
                         width: s["width"] as? Int, height: s["height"] as? Int,
                         frameRate: (s["codec_type"] as? String) == "video" ? (s["avg_frame_rate"] as? String).flatMap(rate) : nil,
                         sampleRate: (s["sample_rate"] as? String).flatMap { Int($0) })
        }
        return VideoProbe(duration: duration, streams: streams)
    }

    /// "30/1" → 30; "0/0" → nil.
    static func rate(_ text: String) -> Double? {
        let parts = text.split(separator: "/").compactMap { Double($0) }
        guard parts.count == 2, parts[1] != 0 else { return Double(text) }
        return parts[0] / parts[1]
    }
}

/// One way a rendered file differs from what a short must be.
public enum ShortMismatch: Sendable, Equatable, CustomStringConvertible {
    case durationOverLimit(actual: Double, limit: Double)
    case durationOff(expected: Double, actual: Double)
    case videoStreamCount(Int)
    case videoCodec(String)
    case resolution(width: Int, height: Int)
    case frameRate(Double)
    case audioStreamCount(Int)
    case audioCodec(String)
    case sampleRate(Int)

    public var description: String {
        switch self {
        case let .durationOverLimit(a, l): return String(format: "duration %.2f s is over the %.0f s limit", a, l)
        case let .durationOff(e, a): return String(format: "duration %.2f s, expected %.2f s", a, e)
        case let .videoStreamCount(n): return "\(n) video streams, expected 1"
        case let .videoCodec(c): return "video codec \(c), expected h264"
        case let .resolution(w, h): return "resolution \(w)×\(h)"
        case let .frameRate(r): return String(format: "%.3f fps", r)
        case let .audioStreamCount(n): return "\(n) audio streams, expected 1"
        case let .audioCodec(c): return "audio codec \(c), expected aac"
        case let .sampleRate(r): return "audio at \(r) Hz"
        }
    }
}

/// A rendered file failed verification; `mismatches` names every difference found.
public struct ShortVerificationError: Error, Equatable, CustomStringConvertible {
    public var mismatches: [ShortMismatch]
    public var description: String { "the rendered short is wrong: " + mismatches.map(\.description).joined(separator: "; ") }
}

/// What a finished short must be. `check` throws `ShortVerificationError` listing every
/// mismatch, or returns silently when the probe matches.
public struct ShortExpectation: Sendable, Equatable {
    public var width = 1080, height = 1920, fps = 30.0, sampleRate = 48_000
    public var maxDuration = 60.0
    public var expectedDuration: Double
    public var tolerance = 0.5

    public init(expectedDuration: Double, width: Int = 1080, height: Int = 1920) {
        self.expectedDuration = expectedDuration; self.width = width; self.height = height
    }

    public func check(_ probe: VideoProbe) throws {
        var m: [ShortMismatch] = []
        if probe.duration > maxDuration { m.append(.durationOverLimit(actual: probe.duration, limit: maxDuration)) }
        if abs(probe.duration - expectedDuration) > tolerance { m.append(.durationOff(expected: expectedDuration, actual: probe.duration)) }
        let video = probe.streams.filter { $0.codecType == "video" }
        if video.count != 1 { m.append(.videoStreamCount(video.count)) }
        if let v = video.first {
            if v.codecName != "h264" { m.append(.videoCodec(v.codecName)) }
            if v.width != width || v.height != height { m.append(.resolution(width: v.width ?? 0, height: v.height ?? 0)) }
            if let r = v.frameRate, abs(r - fps) > 0.01 { m.append(.frameRate(r)) }
            if v.frameRate == nil { m.append(.frameRate(0)) }
        }
        let audio = probe.streams.filter { $0.codecType == "audio" }
        if audio.count != 1 { m.append(.audioStreamCount(audio.count)) }
        if let a = audio.first {
            if a.codecName != "aac" { m.append(.audioCodec(a.codecName)) }
            if a.sampleRate != sampleRate { m.append(.sampleRate(a.sampleRate ?? 0)) }
        }
        if !m.isEmpty { throw ShortVerificationError(mismatches: m) }
    }
}
