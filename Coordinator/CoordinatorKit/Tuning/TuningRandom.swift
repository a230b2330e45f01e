import Foundation

/// Seeded random numbers for search and bootstrap decisions.
///
/// Guarantees: the same seed gives the same stream on every platform and Swift version
/// (SplitMix64 is fully specified here), so a search or a promotion decision can be
/// replayed exactly from its recorded seed. The standard library's generators give no
/// such promise across releases.
struct TuningRandom: RandomNumberGenerator, Sendable {
    private var state: UInt64

    init(seed: UInt64) { state = seed }

    /// A stream for one purpose, derived from a base seed and an index (a trial number,
    /// a bootstrap batch), so streams for neighbouring indices are unrelated and each
    /// draw can be reproduced without replaying the ones before it.
    init(seed: UInt64, stream: UInt64) {
        var mixer = TuningRandom(seed: seed ^ 0x6A09_E667_F3BC_C909)
        for _ in 0..<2 { _ = mixer.next() }
        state = mixer.next() ^ (stream &* 0x9E37_79B9_7F4A_7C15)
        _ = next()
    }

    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// Uniform in [0, 1) with 53 random bits.
    mutating func unit() -> Double { Double(next() >> 11) * 0x1.0p-53 }

    /// Uniform integer in 0..<bound without modulo bias (Lemire's multiply-shift with rejection).
    mutating func below(_ bound: Int) -> Int {
        precondition(bound > 0, "bound must be positive")
        let b = UInt64(bound)
        var m = next().multipliedFullWidth(by: b)
        if m.low < b {
            let threshold = (0 &- b) % b
            while m.low < threshold { m = next().multipliedFullWidth(by: b) }
        }
        return Int(m.high)
    }

    /// Standard normal draw (Box–Muller; one of the pair is discarded to keep the
    /// generator stateless beyond its seed).
    mutating func gaussian() -> Double {
        var u = unit()
        while u <= 0 { u = unit() }
        let v = unit()
        return (-2 * log(u)).squareRoot() * cos(2 * Double.pi * v)
    }
}
