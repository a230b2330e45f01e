import Foundation
import Testing
@testable import Media

@Suite("Speech")
struct SpeechTests {
    @Test("the WAV header's duration equals ffprobe's within 10 ms, per line and joined",
          .enabled(if: Fixtures.haveSpeech, "needs espeak-ng and ffprobe"), .timeLimit(.minutes(1)))
    func headerDurationMatchesFFprobe() async throws {
        let dir = try Fixtures.tempDir()
        defer { try? FileManager.default.removeItem(at: dir) }
        let script = ScriptWriter().template(Fixtures.richFacts, language: .english)
        let track = try await Speech().speak(script, in: dir)
        let probed = try await VideoProbe.probe(track.audio)
        #expect(abs(probed.duration - track.duration) < 0.010, "header \(track.duration) s, ffprobe \(probed.duration) s")
        let line0 = dir.appendingPathComponent("line-0.wav")
        let info = try WAVInfo.parse(try Data(contentsOf: line0))
        #expect(abs(try await VideoProbe.probe(line0).duration - info.duration) < 0.010)
        #expect(abs(track.captions[0].end - info.duration) < 1e-9)
        // Captions follow each other with exactly the pause between them and end with the audio.
        for (a, b) in zip(track.captions, track.captions.dropFirst()) {
            #expect(abs(b.start - a.end - SpeechRate.linePause) < 0.001)
        }
        #expect(abs(track.captions.last!.end - track.duration) < 1e-9)
        #expect(track.captions.map(\.text) == script.lines)
    }

    @Test("spoken scripts last 15–30 s in both languages, rich and sparse facts",
          .enabled(if: Fixtures.haveSpeech, "needs espeak-ng and ffprobe"), .timeLimit(.minutes(1)),
          arguments: [ShortLanguage.english, .korean])
    func spokenLengthFits(language: ShortLanguage) async throws {
        let dir = try Fixtures.tempDir()
        defer { try? FileManager.default.removeItem(at: dir) }
        for facts in [Fixtures.richFacts, Fixtures.sparseFacts] {
            let script = ScriptWriter().template(facts, language: language)
            let track = try await Speech().speak(script, in: dir.appendingPathComponent("\(facts.id)"))
            #expect((15.0...30.0).contains(track.duration),
                    "\(language) listing \(facts.id): spoken \(track.duration) s, estimated \(script.estimatedSeconds) s")
        }
    }

    @Test("WAV parsing skips unknown chunks and reads a streamed (unknown) data size to the end")
    func wavParsing() throws {
        let info = WAVInfo(sampleRate: 22050, channels: 1, bitsPerSample: 16, byteRate: 44100, dataOffset: 44, dataSize: 0)
        let samples = Data(count: 44100)
        var withList = info.header(dataSize: samples.count)
        // Insert a LIST chunk (odd size, so padded) between fmt and data.
        let list = Data("LIST".utf8) + Data([3, 0, 0, 0]) + Data("abc".utf8) + Data([0])
        withList.insert(contentsOf: list, at: 36)
        let parsed = try WAVInfo.parse(withList + samples)
        #expect(parsed.duration == 1.0 && parsed.dataOffset == 56 && parsed.sampleRate == 22050)
        var streamed = info.header(dataSize: 0)
        streamed.replaceSubrange(40..<44, with: [0xFF, 0xFF, 0xFF, 0xFF])
        #expect(try WAVInfo.parse(streamed + samples.prefix(22050)).duration == 0.5)
        #expect(throws: SpeechError.badWAV("not a RIFF/WAVE file")) { try WAVInfo.parse(Data("hello world!".utf8)) }
    }

    /// One second of silence at 16 kHz mono, as a TTS endpoint might answer.
    static let oneSecondWAV: Data = {
        let info = WAVInfo(sampleRate: 16000, channels: 1, bitsPerSample: 16, byteRate: 32000, dataOffset: 44, dataSize: 0)
        return info.header(dataSize: 32000) + Data(count: 32000)
    }()

    @Test("a TTS endpoint's WAVs are used line by line and the captions follow their lengths", .timeLimit(.minutes(1)))
    func ttsEndpointUsed() async throws {
        let server = try FakeHTTPServer { _ in .bytes(status: 200, body: Self.oneSecondWAV, contentType: "audio/wav") }
        defer { server.shutdown() }
        let dir = try Fixtures.tempDir()
        defer { try? FileManager.default.removeItem(at: dir) }
        let script = ShortScript(language: .korean, lines: ["하나.", "둘.", "셋."], source: .template, estimatedSeconds: 3)
        let track = try await Speech(tts: TTSClient(url: server.baseURL.appendingPathComponent("tts"), timeout: 5)).speak(script, in: dir)
        #expect(track.source == .endpoint && track.fallbackReason == nil)
        #expect(abs(track.duration - (3 + 2 * SpeechRate.linePause)) < 1e-9)
        #expect(track.captions.map(\.start) == [0, 1.25, 2.5])
        let bodies = server.requests.compactMap { try? JSONSerialization.jsonObject(with: $0.body) as? [String: String] }
        #expect(bodies == [["text": "하나.", "language": "ko"], ["text": "둘.", "language": "ko"], ["text": "셋.", "language": "ko"]])
    }

    @Test("a hung or wrong TTS endpoint falls back to espeak-ng for every line, within the timeout",
          .enabled(if: Fixtures.haveSpeech, "needs espeak-ng and ffprobe"), .timeLimit(.minutes(1)))
    func ttsFallback() async throws {
        let hung = try FakeHTTPServer { _ in .hang }
        // Answers the first line properly and the second with JSON: the short must not mix voices.
        let wrong = try FakeHTTPServer { r in
            r.body.count < 40 ? .bytes(status: 200, body: Self.oneSecondWAV, contentType: "audio/wav") : .json(status: 200, body: "{}")
        }
        defer { hung.shutdown(); wrong.shutdown() }
        let dir = try Fixtures.tempDir()
        defer { try? FileManager.default.removeItem(at: dir) }
        let script = ShortScript(language: .english, lines: ["Hi.", "A longer second line."], source: .template, estimatedSeconds: 3)
        for (server, reason) in [(hung, "no answer within 1.0 s"), (wrong, "not a PCM WAV")] {
            // The reason names the 1 s timeout for the hung endpoint; no clock is read.
            let track = try await Speech(tts: TTSClient(url: server.baseURL, timeout: 1)).speak(script, in: dir)
            #expect(track.source == .espeak)
            #expect(track.fallbackReason?.contains(reason) == true, "\(track.fallbackReason ?? "nil")")
            let espeakOnly = try await Speech().speak(script, in: dir.appendingPathComponent("plain"))
            #expect(abs(track.duration - espeakOnly.duration) < 1e-9)
        }
    }
}
