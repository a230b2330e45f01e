import Foundation

/// The format and length of a PCM WAV file, read from its RIFF header.
public struct WAVInfo: Sendable, Equatable {
    public var sampleRate: Int
    public var channels: Int
    public var bitsPerSample: Int
    public var byteRate: Int
    /// Byte offset and size of the `data` chunk's samples.
    public var dataOffset: Int
    public var dataSize: Int
    /// data chunk size / byte rate.
    public var duration: Double { byteRate > 0 ? Double(dataSize) / Double(byteRate) : 0 }

    /// Parses the RIFF chunks (skipping any besides `fmt ` and `data`). A data size of 0 or
    /// 0xFFFFFFFF — written by a streaming encoder that could not seek back — means "to
    /// the end of the file".
    public static func parse(_ bytes: Data) throws -> WAVInfo {
        let b = [UInt8](bytes)
        func u32(_ i: Int) -> Int { Int(b[i]) | Int(b[i + 1]) << 8 | Int(b[i + 2]) << 16 | Int(b[i + 3]) << 24 }
        func u16(_ i: Int) -> Int { Int(b[i]) | Int(b[i + 1]) << 8 }
        func tag(_ i: Int) -> String { String(decoding: b[i..<i + 4], as: UTF8.self) }
        guard b.count >= 12, tag(0) == "RIFF", tag(8) == "WAVE" else { throw SpeechError.badWAV("not a RIFF/WAVE file") }
        var i = 12
        var fmt: (rate: Int, channels: Int, bits: Int, byteRate: Int)?
        while i + 8 <= b.count {
            let id = tag(i), size = u32(i + 4), body = i + 8
            if id == "fmt " {
                guard size >= 16, body + 16 <= b.count else { throw SpeechError.badWAV("short fmt chunk") }
                guard u16(body) == 1 else { throw SpeechError.badWAV("not PCM (format \(u16(body)))") }
                fmt = (u32(body + 4), u16(body + 2), u16(body + 14), u32(body + 8))
            } else if id == "data" {
                guard let fmt else { throw SpeechError.badWAV("data before fmt") }
                let available = b.count - body
                let dataSize = (size == 0 || size == 0xFFFF_FFFF) ? available : min(size, available)
                return WAVInfo(sampleRate: fmt.rate, channels: fmt.channels, bitsPerSample: fmt.bits, byteRate: fmt.byteRate,
                               dataOffset: body, dataSize: dataSize)
            }
            i = body + size + (size & 1)    // chunks are word-aligned
        }
        throw SpeechError.badWAV("no data chunk")
    }

    /// A 44-byte canonical PCM header for `dataSize` bytes of samples in this format.
    func header(dataSize: Int) -> Data {
        var d = Data()
        func put32(_ v: Int) { withUnsafeBytes(of: UInt32(v).littleEndian) { d.append(contentsOf: $0) } }
        func put16(_ v: Int) { withUnsafeBytes(of: UInt16(v).littleEndian) { d.append(contentsOf: $0) } }
        d.append(contentsOf: Array("RIFF".utf8)); put32(36 + dataSize); d.append(contentsOf: Array("WAVEfmt ".utf8))
        put32(16); put16(1); put16(channels); put32(sampleRate); put32(byteRate); put16(channels * bitsPerSample / 8); put16(bitsPerSample)
        d.append(contentsOf: Array("data".utf8)); put32(dataSize)
        return d
    }
}

public enum SpeechError: Error, Equatable, CustomStringConvertible {
    case badWAV(String)
    case emptyScript
    case formatMismatch(String)
    public var description: String {
        switch self {
        case .badWAV(let m): return "unreadable WAV: \(m)"
        case .emptyScript: return "the script has no lines to speak"
        case .formatMismatch(let m): return "speech lines differ in format: \(m)"
        }
    }
}

/// One caption: a script line and when it is spoken, seconds from the start of the audio.
public struct Caption: Sendable, Equatable, Codable {
    public var text: String
    public var start: Double
    public var end: Double
}

/// A spoken script: one WAV of all lines with pauses between them, and captions timed
/// by the measured length of each line's audio.
public struct SpeechTrack: Sendable, Equatable {
    public enum Source: String, Sendable, Codable { case espeak, endpoint }
    public var audio: URL
    public var captions: [Caption]
    /// Measured from the WAV header of `audio`.
    public var duration: Double
    public var source: Source = .espeak
    /// Why the TTS endpoint's voice was not used, when one was configured.
    public var fallbackReason: String?

    public init(audio: URL, captions: [Caption], duration: Double, source: Source = .espeak, fallbackReason: String? = nil) {
        self.audio = audio; self.captions = captions; self.duration = duration; self.source = source; self.fallbackReason = fallbackReason
    }
}

/// Speaks a script with espeak-ng, or with an optional TTS endpoint.
///
/// Guarantees: each line is synthesised on its own, so caption i starts exactly where its
/// audio starts in the joined WAV (cumulative measured durations plus `pause`), and the
/// track's duration is the joined file's data size over its byte rate. With an endpoint,
/// either every line comes from it or — after its first failure — every line comes from
/// espeak-ng, so one short never mixes two voices.
public struct Speech: Sendable {
    public var tts: TTSClient?
    /// Silence between lines, seconds.
    public var pause: Double
    /// espeak-ng's words per minute; nil keeps its default (175), which SpeechRate is calibrated for.
    public var wordsPerMinute: Int?
    public var timeout: Double

    public init(pause: Double = SpeechRate.linePause, wordsPerMinute: Int? = nil, timeout: Double = 30, tts: TTSClient? = nil) {
        self.pause = pause; self.wordsPerMinute = wordsPerMinute; self.timeout = timeout; self.tts = tts
    }

    /// Speaks `script` into `directory` (line-N.wav and speech.wav).
    public func speak(_ script: ShortScript, in directory: URL) async throws -> SpeechTrack {
        guard !script.lines.isEmpty else { throw SpeechError.emptyScript }
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        var fallbackReason: String?
        if let tts {
            do {
                var parts: [(info: WAVInfo, bytes: Data)] = []
                for line in script.lines {
                    let bytes = try await tts.synthesize(line, language: script.language)
                    parts.append((try WAVInfo.parse(bytes), bytes))
                }
                var track = try join(parts, lines: script.lines, in: directory)
                track.source = .endpoint
                return track
            } catch {
                fallbackReason = "\(error)"
            }
        }
        var track = try join(try await espeak(script, in: directory), lines: script.lines, in: directory)
        track.fallbackReason = fallbackReason
        return track
    }

    private func espeak(_ script: ShortScript, in directory: URL) async throws -> [(info: WAVInfo, bytes: Data)] {
        var parts: [(info: WAVInfo, bytes: Data)] = []
        for (i, line) in script.lines.enumerated() {
            let file = directory.appendingPathComponent("line-\(i).wav")
            var args = ["-v", script.language.espeakVoice, "-w", file.path]
            if let wordsPerMinute { args += ["-s", String(wordsPerMinute)] }
            // The text goes after "--" so a line starting with "-" is not read as an option.
            _ = try await ProcessRunner.check("espeak-ng", args + ["--", line], timeout: timeout)
            let bytes = try Data(contentsOf: file)
            parts.append((try WAVInfo.parse(bytes), bytes))
        }
        return parts
    }

    /// Joins per-line WAVs of one format with `pause` of silence between them.
    private func join(_ parts: [(info: WAVInfo, bytes: Data)], lines: [String], in directory: URL) throws -> SpeechTrack {
        let format = parts[0].info
        for p in parts where (p.info.sampleRate, p.info.channels, p.info.bitsPerSample) != (format.sampleRate, format.channels, format.bitsPerSample) {
            throw SpeechError.formatMismatch("\(p.info.sampleRate) Hz/\(p.info.channels) ch vs \(format.sampleRate) Hz/\(format.channels) ch")
        }
        let frameBytes = format.channels * format.bitsPerSample / 8
        let pauseBytes = Int((pause * Double(format.sampleRate)).rounded()) * frameBytes
        var samples = Data()
        var captions: [Caption] = []
        for (i, p) in parts.enumerated() {
            if i > 0 { samples.append(Data(count: pauseBytes)) }
            let start = Double(samples.count) / Double(format.byteRate)
            let base = p.bytes.startIndex   // WAVInfo offsets count from the first byte, whatever Data's indices are
            samples.append(p.bytes[(base + p.info.dataOffset)..<(base + p.info.dataOffset + p.info.dataSize)])
            captions.append(Caption(text: lines[i], start: start, end: Double(samples.count) / Double(format.byteRate)))
        }
        let joined = directory.appendingPathComponent("speech.wav")
        try (format.header(dataSize: samples.count) + samples).write(to: joined, options: .atomic)
        let info = try WAVInfo.parse(try Data(contentsOf: joined))
        return SpeechTrack(audio: joined, captions: captions, duration: info.duration)
    }
}
