import Foundation
import NIOCore

/// Feeds random and mutated frames to ``FrameAssembler`` and the envelope parser.
/// Used by the test suite (a small count) and `tower-bench fuzz` (a million or more).
public enum FrameFuzzer {
    public struct Stats: Sendable, CustomStringConvertible {
        public var cases = 0
        public var decoded = 0
        public var incomplete = 0
        public var tooLarge = 0
        public var malformed = 0
        public var unknown = 0
        public var description: String {
            "\(cases) cases: \(decoded) envelopes, \(incomplete) incomplete, \(tooLarge) too large, \(malformed) malformed, \(unknown) unknown type"
        }
    }

    /// A small, fast, seedable generator (xorshift64*): the same seed gives the same corpus.
    struct Generator {
        var state: UInt64
        mutating func next() -> UInt64 {
            state ^= state >> 12; state ^= state << 25; state ^= state >> 27
            return state &* 2_685_821_657_736_338_717
        }
        mutating func below(_ n: Int) -> Int { Int(next() % UInt64(max(1, n))) }
    }

    public static func run(cases: Int, seed: UInt64, maxFrameBytes: Int = 4096) throws -> Stats {
        var rng = Generator(state: seed | 1)
        var stats = Stats()
        let seeds = try seedFrames()
        for _ in 0..<cases {
            var bytes: [UInt8]
            switch rng.below(4) {
            case 0:
                // Pure noise.
                bytes = (0..<rng.below(64)).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
            case 1:
                // A valid frame with a length prefix that lies.
                bytes = seeds[rng.below(seeds.count)]
                let lie = UInt32(truncatingIfNeeded: rng.next() >> UInt64(rng.below(40)))
                withUnsafeBytes(of: lie.bigEndian) { for i in 0..<4 { bytes[i] = $0[i] } }
            default:
                // A valid frame with bytes flipped, inserted or cut.
                bytes = seeds[rng.below(seeds.count)]
                for _ in 0..<(1 + rng.below(4)) {
                    switch rng.below(3) {
                    case 0 where !bytes.isEmpty: bytes[rng.below(bytes.count)] ^= UInt8(truncatingIfNeeded: 1 << rng.below(8))
                    case 1: bytes.insert(UInt8(truncatingIfNeeded: rng.next()), at: rng.below(bytes.count + 1))
                    default: if bytes.count > 1 { bytes.removeSubrange(rng.below(bytes.count)..<bytes.count) }
                    }
                }
            }
            stats.cases += 1
            // Two reads split at a random point, so split headers and partly received
            // frames are fuzzed as well as whole ones.
            let cut = rng.below(bytes.count + 1)
            var assembler = FrameAssembler(maxFrameBytes: maxFrameBytes)
            do {
                for range in [0..<cut, cut..<bytes.count] {
                    var read = ByteBuffer(bytes: bytes[range])
                    try assembler.feed(&read) { payload in
                        do {
                            _ = try WireEnvelope(frame: payload)
                            stats.decoded += 1
                        } catch WireError.unknownMessage {
                            stats.unknown += 1
                        } catch {
                            stats.malformed += 1
                        }
                    }
                }
                if assembler.truncation != nil { stats.incomplete += 1 }
            } catch WireError.frameTooLarge {
                stats.tooLarge += 1
            }
        }
        return stats
    }

    /// Well-formed frames of every shape the protocol uses, as mutation seeds.
    static func seedFrames() throws -> [[UInt8]] {
        var hello = WireHello()
        hello.protocolVersion = WireProtocol.version
        hello.role = .worker
        hello.name = "fuzz"
        hello.capabilities.labels = ["zone": "a"]
        var task = WireTaskAssignment()
        task.taskID = 12345
        task.input = Data(repeating: 7, count: 40)
        task.blobs = [String(repeating: "a", count: 64)]
        var outcome = WireTaskOutcome()
        outcome.taskID = 9
        outcome.output = Data([1, 2, 3])
        var results = WireResultBatch()
        results.outcomes = [outcome, outcome]
        let bodies: [WireEnvelope.Body] = [
            .hello(hello), .tasks(.with { $0.tasks = [task] }), .results(results),
            .heartbeat(.with { $0.runningTaskIds = [1, 2, 3] }), .error(WireError.unknownMessage.errorFrame),
            .blobChunk(.with { $0.sha256 = "ab"; $0.data = Data(count: 100); $0.last = true }),
            .submitJob(.with { $0.spec.kind = "echo"; $0.spec.spec = Data(count: 8) }),
        ]
        return try bodies.enumerated().map { i, body in
            let payload = try WireEnvelope(requestID: UInt64(i + 1), body).framePayload()
            var out = withUnsafeBytes(of: UInt32(payload.readableBytes).bigEndian) { Array($0) }
            out += payload.readableBytesView
            return out
        }
    }
}
