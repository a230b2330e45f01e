import Foundation
import NIOCore
import Testing
@testable import Wire

@Suite struct FrameFuzzTests {
    /// Random and mutated frames through the decoder and the envelope parser: every input
    /// ends in a frame, a request for more bytes, or a typed error — never a crash. The
    /// full million-case run is `make fuzz`.
    @Test func randomAndMutatedFramesNeverCrash() throws {
        let stats = try FrameFuzzer.run(cases: 20_000, seed: 0xC0FFEE)
        #expect(stats.cases == 20_000)
        // The corpus exercises every outcome, or the fuzzer is not reaching the code.
        #expect(stats.decoded > 0)
        #expect(stats.tooLarge > 0)
        #expect(stats.malformed > 0)
        #expect(stats.incomplete > 0)
    }
}
