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
}
