import Foundation

/// Counts of rows in the bins of a `DriftBinning`, mergeable exactly: one shard's
/// histograms plus another's equal the histograms of both shards counted at once, bit
/// for bit, in any order and any split.
///
/// Per feature: one `UInt64` count per bin (every row lands in exactly one bin, missing
/// included, so each feature's counts add up to `rowCount`). Per numeric feature also the
/// minimum and maximum, the sum and the sum of squares of the finite values. The sums are
/// kept exactly — per binary exponent of the Float, an integer sum of significands (and of
/// squared significands) — because Double additions would round differently in every
/// split, and the report must not depend on how rows were sharded. They are exact up to
/// 2^39 finite values per feature.
public struct DriftHistograms: Sendable, Equatable {
    /// The `fingerprint` of the binning the rows were counted against.
    public private(set) var binningFingerprint: UInt64
    public private(set) var rowCount: UInt64
    private var features: [FeatureCounts]

    struct FeatureCounts: Sendable, Equatable {
        var counts: [UInt64]
        var moments: ExactMoments?
    }

    /// Empty histograms for `binning`: the neutral element of `merge`.
    public init(binning: DriftBinning) {
        binningFingerprint = binning.fingerprint
        rowCount = 0
        features = (0..<binning.featureCount).map { f in
            FeatureCounts(counts: [UInt64](repeating: 0, count: binning.binCount(feature: f)),
                          moments: binning.specs[f].categorical ? nil : ExactMoments())
        }
    }

    private init(binningFingerprint: UInt64, rowCount: UInt64, features: [FeatureCounts]) {
        self.binningFingerprint = binningFingerprint
        self.rowCount = rowCount
        self.features = features
    }

    /// Counts `rows` of `columns` (one column per feature of `binning`, in its order).
    /// Cost is O(rows × features × log bins) with no allocation per value; features are
    /// counted on up to `threads` threads (0: all cores) with identical results.
    public static func count(columns: [[Float]], rows: Range<Int>, binning: DriftBinning,
                             threads: Int = 0) -> DriftHistograms {
        precondition(columns.count == binning.featureCount, "one column per binned feature")
        precondition(rows.lowerBound >= 0 && columns.allSatisfy { rows.upperBound <= $0.count }, "rows within every column")
        var features = [FeatureCounts](repeating: FeatureCounts(counts: [], moments: nil), count: columns.count)
        features.withUnsafeMutableBufferPointer { out in
            let box = UncheckedSendable(out)
            parallelFor(columns.count, threads: threads > 0 ? threads : availableCores) { f in
                box.value[f] = countFeature(columns[f], rows: rows, binning: binning, feature: f)
            }
        }
        return DriftHistograms(binningFingerprint: binning.fingerprint, rowCount: UInt64(rows.count), features: features)
    }

    private static func countFeature(_ column: [Float], rows: Range<Int>, binning: DriftBinning,
                                      feature f: Int) -> FeatureCounts {
        var counts = [UInt64](repeating: 0, count: binning.binCount(feature: f))
        if binning.specs[f].categorical {
            let categories = binning.categories(feature: f)
            column.withUnsafeBufferPointer { xs in
                categories.withUnsafeBufferPointer { cb in
                    counts.withUnsafeMutableBufferPointer { c in
                        for r in rows { c[DriftBinning.categoryBin(xs[r], cb)] &+= 1 }
                    }
                }
            }
            return FeatureCounts(counts: counts, moments: nil)
        }
        let cuts = binning.cutPoints(feature: f)
        let missingBin = cuts.count + 1
        let index = CutIndex(cuts: cuts)
        let (first, scale, slots) = (index.first, index.scale, index.slots)
        var sums = [Int64](repeating: 0, count: ExactMoments.exponents)
        var high = [UInt64](repeating: 0, count: ExactMoments.exponents)
        var low = [UInt64](repeating: 0, count: ExactMoments.exponents)
        var lo = Float.infinity, hi = -Float.infinity
        column.withUnsafeBufferPointer { xs in
            cuts.withUnsafeBufferPointer { cb in
              index.starts.withUnsafeBufferPointer { starts in
                counts.withUnsafeMutableBufferPointer { c in
                    sums.withUnsafeMutableBufferPointer { s in
                        high.withUnsafeMutableBufferPointer { h in
                            low.withUnsafeMutableBufferPointer { l in
                                for r in rows {
                                    let v = xs[r]
                                    guard v.isFinite else { c[missingBin] &+= 1; continue }
                                    let p = CutIndex.slot(v, first: first, scale: scale, slots: slots)
                                    c[DriftBinning.lowerBound(v, cb, from: Int(starts[p]), to: Int(starts[p + 1]))] &+= 1
                                    lo = min(lo, v)
                                    hi = max(hi, v)
                                    let (e, m) = ExactMoments.decompose(v)
                                    s[e] &+= v.sign == .minus ? -Int64(m) : Int64(m)
                                    let sq = m &* m
                                    h[e] &+= sq >> 24
                                    l[e] &+= sq & 0xFF_FFFF
                                }
                            }
                        }
                    }
                }
              }
            }
        }
        return FeatureCounts(counts: counts, moments: ExactMoments(minimum: lo, maximum: hi, sums: sums,
                                                                   squaresHigh: high, squaresLow: low))
    }

    /// Adds `other`'s counts to these. Throws, leaving `self` unchanged, when the two were
    /// not counted against the same binning: first the shape is compared (feature count,
    /// then each feature's bin count and kind), then the binning fingerprint.
    public mutating func merge(_ other: DriftHistograms) throws {
        guard features.count == other.features.count else {
            throw DriftDataError.featureCountMismatch(expected: features.count, found: other.features.count)
        }
        for f in features.indices {
            let (a, b) = (features[f], other.features[f])
            guard a.counts.count == b.counts.count else {
                throw DriftDataError.binCountMismatch(feature: f, expected: a.counts.count, found: b.counts.count)
            }
            guard (a.moments == nil) == (b.moments == nil) else { throw DriftDataError.featureKindMismatch(feature: f) }
        }
        guard binningFingerprint == other.binningFingerprint else {
            throw DriftDataError.binningMismatch(expected: binningFingerprint, found: other.binningFingerprint)
        }
        rowCount &+= other.rowCount
        for f in features.indices {
            let b = other.features[f]
            for i in b.counts.indices { features[f].counts[i] &+= b.counts[i] }
            if let m = b.moments { features[f].moments?.add(m) }
        }
    }

    // MARK: Reading

    public var featureCount: Int { features.count }

    /// Counts per bin of `feature`, laid out as `DriftBinning` describes.
    public func counts(feature: Int) -> [UInt64] { features[feature].counts }

    /// Rows whose value was NaN or infinite.
    public func missing(feature: Int) -> UInt64 { features[feature].counts.last ?? 0 }

    /// Rows with a finite value (everything but the missing bin).
    public func nonMissing(feature: Int) -> UInt64 { rowCount &- missing(feature: feature) }

    /// Sum of the finite values of a numeric feature (0 for a categorical one), rounded
    /// once per binary exponent from the exact sum, in a fixed order.
    public func sum(feature: Int) -> Double { features[feature].moments?.sum ?? 0 }

    /// Sum of squares of the finite values of a numeric feature (0 for a categorical one).
    public func sumOfSquares(feature: Int) -> Double { features[feature].moments?.sumOfSquares ?? 0 }

    /// Smallest finite value of a numeric feature; nil when there is none.
    public func minimum(feature: Int) -> Float? {
        features[feature].moments.flatMap { $0.minimum.isFinite ? $0.minimum : nil }
    }

    /// Largest finite value of a numeric feature; nil when there is none.
    public func maximum(feature: Int) -> Float? {
        features[feature].moments.flatMap { $0.maximum.isFinite ? $0.maximum : nil }
    }

    /// Population standard deviation (ddof 0, as `np.std`) of the finite values of a
    /// numeric feature: √max(0, Σx²/n − (Σx/n)²); 0 when there are no finite values.
    public func standardDeviation(feature: Int) -> Double {
        let n = Double(nonMissing(feature: feature))
        guard n > 0, let m = features[feature].moments else { return 0 }
        let mean = m.sum / n
        return max(0, m.sumOfSquares / n - mean * mean).squareRoot()
    }

    // MARK: Encoding

    static let magic: [UInt8] = Array("TDHG".utf8)
    static let version: UInt16 = 1

    /// Compact binary form, framed like `DriftBinning.encoded()` (magic "TDHG"): the
    /// binning fingerprint, the row count, then per feature its kind, its counts as
    /// variable-length integers and, for a numeric feature, min, max and the non-zero
    /// exact-sum entries. Decoding gives back an equal value.
    public func encoded() -> Data {
        var w = ByteWriter()
        w.u64(binningFingerprint)
        w.u64(rowCount)
        w.u32(UInt32(features.count))
        for fc in features {
            w.u8(fc.moments == nil ? 0 : 1)
            w.u32(UInt32(fc.counts.count))
            for c in fc.counts { w.varint(c) }
            guard let m = fc.moments else { continue }
            w.f32(m.minimum)
            w.f32(m.maximum)
            let used = (0..<ExactMoments.exponents).filter { m.sums[$0] != 0 || m.squaresHigh[$0] != 0 || m.squaresLow[$0] != 0 }
            w.u16(UInt16(used.count))
            for e in used {
                w.u8(UInt8(e))
                let s = m.sums[e]
                w.varint(UInt64(bitPattern: (s << 1) ^ (s >> 63)))
                w.varint(m.squaresHigh[e])
                w.varint(m.squaresLow[e])
            }
        }
        return DriftEnvelope.seal(magic: Self.magic, version: Self.version, payload: w.buffer)
    }

    /// Decodes `encoded()`; throws `DriftDataError` on truncated, corrupt, foreign or
    /// too-new bytes, and when a feature's counts do not add up to the row count.
    public init(decoding data: Data) throws {
        var r = try DriftEnvelope.open(data, magic: Self.magic, version: Self.version, what: "drift histograms")
        let fingerprint = try r.u64()
        let rows = try r.u64()
        let featureCount = try r.count(elementSize: 5)
        var features: [FeatureCounts] = []
        for f in 0..<featureCount {
            let kind = try r.u8()
            guard kind <= 1 else { throw r.malformed("feature \(f) has unknown kind \(kind)") }
            let n = try r.count(elementSize: 1)
            guard n >= 2 else { throw r.malformed("feature \(f) has \(n) bins; every feature has overflow and missing bins") }
            var counts = [UInt64](repeating: 0, count: n)
            var total: UInt64 = 0
            for i in 0..<n {
                counts[i] = try r.varint()
                total &+= counts[i]
            }
            guard total == rows else { throw r.malformed("feature \(f) counts \(total) rows of \(rows)") }
            var moments: ExactMoments? = nil
            if kind == 1 {
                var m = ExactMoments()
                m.minimum = Float(bitPattern: try r.u32())
                m.maximum = Float(bitPattern: try r.u32())
                let used = Int(try r.u16())
                for _ in 0..<used {
                    let e = Int(try r.u8())
                    let z = try r.varint()
                    m.sums[e] = Int64(bitPattern: z >> 1) ^ -Int64(bitPattern: z & 1)
                    m.squaresHigh[e] = try r.varint()
                    m.squaresLow[e] = try r.varint()
                }
                moments = m
            }
            features.append(FeatureCounts(counts: counts, moments: moments))
        }
        try r.expectEnd()
        self.init(binningFingerprint: fingerprint, rowCount: rows, features: features)
    }
}

/// Exact running sums of Float values and their squares. A finite Float is
/// `±m · 2^(e − 150)` with an integer significand `m < 2^24` and a biased exponent
/// `e` in 1…254 (subnormals use e = 1); per `e` the signed sum of `m` and the sum of `m²`
/// (split into its high and low 24 bits so neither overflows before 2^39 values) are
/// integers, so adding them is exact and associative.
struct ExactMoments: Sendable, Equatable {
    static let exponents = 256
    var minimum = Float.infinity
    var maximum = -Float.infinity
    var sums = [Int64](repeating: 0, count: exponents)
    var squaresHigh = [UInt64](repeating: 0, count: exponents)
    var squaresLow = [UInt64](repeating: 0, count: exponents)

    init() {}

    init(minimum: Float, maximum: Float, sums: [Int64], squaresHigh: [UInt64], squaresLow: [UInt64]) {
        self.minimum = minimum
        self.maximum = maximum
        self.sums = sums
        self.squaresHigh = squaresHigh
        self.squaresLow = squaresLow
    }

    @inline(__always)
    static func decompose(_ v: Float) -> (exponent: Int, significand: UInt64) {
        let bits = v.bitPattern
        let e = Int((bits >> 23) & 0xFF)
        let fraction = UInt64(bits & 0x7F_FFFF)
        return e == 0 ? (1, fraction) : (e, fraction | 0x80_0000)
    }

    mutating func add(_ other: ExactMoments) {
        minimum = min(minimum, other.minimum)
        maximum = max(maximum, other.maximum)
        for e in 0..<Self.exponents {
            sums[e] &+= other.sums[e]
            squaresHigh[e] &+= other.squaresHigh[e]
            squaresLow[e] &+= other.squaresLow[e]
        }
    }

    var sum: Double {
        var total = 0.0
        for e in 0..<Self.exponents where sums[e] != 0 {
            total += Double(sign: .plus, exponent: e - 150, significand: Double(sums[e]))
        }
        return total
    }

    var sumOfSquares: Double {
        var total = 0.0
        for e in 0..<Self.exponents where squaresHigh[e] != 0 || squaresLow[e] != 0 {
            let scale = 2 * (e - 150)
            total += Double(sign: .plus, exponent: scale + 24, significand: Double(squaresHigh[e]))
            total += Double(sign: .plus, exponent: scale, significand: Double(squaresLow[e]))
        }
        return total
    }
}
