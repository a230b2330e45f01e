import ArgumentParser
import Foundation
import Wire

struct Fuzz: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Random and mutated frames through the frame decoder and envelope parser.")
    @Option var cases = 1_000_000
    @Option var seed: UInt64 = 0x70E7

    func run() async throws {
        let started = Date()
        let stats = try FrameFuzzer.run(cases: cases, seed: seed)
        let seconds = Date().timeIntervalSince(started)
        printTable("frame decoder fuzzing (seed \(seed))", ["cases", "envelopes", "incomplete", "too large", "malformed", "unknown type", "crashes", "cases/s"],
                   [["\(stats.cases)", "\(stats.decoded)", "\(stats.incomplete)", "\(stats.tooLarge)", "\(stats.malformed)", "\(stats.unknown)", "0", format(Double(stats.cases) / seconds)]])
    }
}
