import Foundation

/// One feature a drift job watches: its name and whether its values are category codes.
/// Binary (0/1) features are best declared categorical.
public struct DriftFeatureSpec: Sendable, Equatable {
    public var name: String
    public var categorical: Bool

    public init(name: String, categorical: Bool) {
        self.name = name
        self.categorical = categorical
    }
}

/// Bins fixed once from the reference data, so that every shard of reference and
/// current rows counts into the same bins and shard histograms merge by adding counts.
///
/// Every feature has `binCount(feature:) = V + 2` bins laid out the same way:
/// value bins `0..<V`, then an overflow bin `V`, then the missing bin `V + 1`.
///
/// - Missing: NaN and ±∞ (no distance is defined for infinities; Evidently drops both
///   before testing).
/// - Numeric: the value bins are the reference's fine quantile bins. With the `n`
///   finite reference values sorted as `s[0] ≤ … ≤ s[n-1]` and `K = fineBins`, the cut
///   points are `s[⌈k·n/K⌉ − 1]` for `k = 0…K` (`s[0]` for `k = 0`: the smallest value
///   `x` with `F_ref(x) ≥ k/K`, numpy's `inverted_cdf` quantile), ascending and with
///   duplicates removed — so at most `K + 1` cut points, fewer when values repeat. The
///   first cut is the reference minimum and the last the reference maximum. A value `v`
///   goes to the first bin whose cut point is `≥ v` (values below the reference minimum
///   land in bin 0); a value above the reference maximum goes to the overflow bin.
///   Because every cut point is a reference value, the reference CDF evaluated at a cut
///   point from bin counts is exact.
/// - Categorical: the value bins are the sorted distinct finite reference values; a
///   value unseen in the reference goes to the overflow ("other") bin.
///
/// Guarantees: `bin(feature:value:)` is a pure function of the binning, so the same
/// value lands in the same bin on every worker; `init(decoding: encoded())` is equal to
/// the original; `fingerprint` identifies the binning in histograms built from it.
public struct DriftBinning: Sendable, Equatable {
    public private(set) var specs: [DriftFeatureSpec]
    /// Per feature: the cut points (numeric) or the categories (categorical), ascending.
    private var points: [[Float]]

    init(specs: [DriftFeatureSpec], points: [[Float]]) {
        precondition(specs.count == points.count, "one point list per feature")
        self.specs = specs
        self.points = points
    }

    /// Bins from reference columns (one `[Float]` per spec, all of the same length).
    /// Each column is sorted once (a radix sort of its finite values); features are
    /// processed on up to `threads` threads (0: all cores) with identical results.
    public static func fromReference(columns: [[Float]], specs: [DriftFeatureSpec], fineBins: Int = 1000,
                                     threads: Int = 0) -> DriftBinning {
        precondition(columns.count == specs.count, "one reference column per feature spec")
        let fine = max(1, fineBins)
        var points = [[Float]](repeating: [], count: specs.count)
        points.withUnsafeMutableBufferPointer { out in
            let box = UncheckedSendable(out)
            parallelFor(specs.count, threads: threads > 0 ? threads : availableCores) { f in
                let sorted = sortedFinite(columns[f])
                box.value[f] = specs[f].categorical ? distinct(sorted) : quantileCuts(sorted, fineBins: fine)
            }
        }
        return DriftBinning(specs: specs, points: points)
    }

    public var featureCount: Int { specs.count }

    /// Cut points of a numeric feature (empty for a categorical one).
    public func cutPoints(feature: Int) -> [Float] { specs[feature].categorical ? [] : points[feature] }

    /// Categories of a categorical feature (empty for a numeric one).
    public func categories(feature: Int) -> [Float] { specs[feature].categorical ? points[feature] : [] }

    /// Value bins of a feature (cut points or categories).
    public func valueBinCount(feature: Int) -> Int { points[feature].count }

    /// The overflow bin: above the reference maximum (numeric) or "other" (categorical).
    public func overflowBin(feature: Int) -> Int { points[feature].count }

    public func missingBin(feature: Int) -> Int { points[feature].count + 1 }

    /// Bins of a feature, including the overflow and missing bins.
    public func binCount(feature: Int) -> Int { points[feature].count + 2 }

    /// The index into `feature`'s counts that `value` is counted in.
    public func bin(feature: Int, value: Float) -> Int {
        points[feature].withUnsafeBufferPointer { p in
            specs[feature].categorical ? Self.categoryBin(value, p) : Self.numericBin(value, p)
        }
    }

    @inline(__always)
    static func numericBin(_ v: Float, _ cuts: UnsafeBufferPointer<Float>) -> Int {
        guard v.isFinite else { return cuts.count + 1 }
        return lowerBound(v, cuts)
    }

    @inline(__always)
    static func categoryBin(_ v: Float, _ categories: UnsafeBufferPointer<Float>) -> Int {
        guard v.isFinite else { return categories.count + 1 }
        let i = lowerBound(v, categories)
        return i < categories.count && categories[i] == v ? i : categories.count
    }

    /// First index whose element is `≥ v`, or `a.count`. The loop has no data-dependent
    /// branch (the select compiles to a conditional move), which is what keeps counting
    /// fast on random data.
    @inline(__always)
    static func lowerBound(_ v: Float, _ a: UnsafeBufferPointer<Float>) -> Int {
        var n = a.count
        if n == 0 { return 0 }
        var base = 0
        while n > 1 {
            let half = n >> 1
            base = a[base + half] < v ? base + half : base
            n -= half
        }
        return base + (a[base] < v ? 1 : 0)
    }

    /// First index in `a[start..<end]` whose element is `≥ v`, or `end`.
    @inline(__always)
    static func lowerBound(_ v: Float, _ a: UnsafeBufferPointer<Float>, from start: Int, to end: Int) -> Int {
        var n = end - start
        if n <= 0 { return start }
        var base = start
        while n > 1 {
            let half = n >> 1
            base = a[base + half] < v ? base + half : base
            n -= half
        }
        return base + (a[base] < v ? 1 : 0)
    }

    static func quantileCuts(_ sorted: [Float], fineBins k: Int) -> [Float] {
        let n = sorted.count
        guard n > 0 else { return [] }
        var cuts: [Float] = [sorted[0]]
        cuts.reserveCapacity(min(n, k + 1))
        for q in 1...k {
            let index = (q * n + k - 1) / k - 1
            let v = sorted[index]
            if v != cuts[cuts.count - 1] { cuts.append(v) }
        }
        return cuts
    }

    static func distinct(_ sorted: [Float]) -> [Float] {
        var out: [Float] = []
        for v in sorted where out.last != v { out.append(v) }
        return out
    }

    /// The finite values of `column`, ascending: a radix sort (``radixSort(_:)``) on
    /// order-preserving integer keys, several times faster than a comparison sort for the
    /// million-row columns a drift job sees.
    static func sortedFinite(_ column: [Float]) -> [Float] {
        var keys: [UInt32] = []
        keys.reserveCapacity(column.count)
        for v in column where v.isFinite { keys.append(floatSortKey(v)) }
        radixSort(&keys)
        return keys.map(floatFromSortKey)
    }

    // MARK: Encoding

    static let magic: [UInt8] = Array("TDBN".utf8)
    static let version: UInt16 = 1

    /// Compact binary form: magic "TDBN" · version (UInt16) · payload length (UInt64) ·
    /// payload · CRC-32 of everything before it. The payload holds per feature the name,
    /// the kind and the points as Float bit patterns, so decoding is bit-exact.
    public func encoded() -> Data {
        DriftEnvelope.seal(magic: Self.magic, version: Self.version, payload: payload())
    }

    /// Decodes `encoded()`; throws `DriftDataError` on truncated, corrupt, foreign or
    /// too-new bytes, and on points that are not ascending and finite.
    public init(decoding data: Data) throws {
        let what = "drift binning"
        var r = try DriftEnvelope.open(data, magic: Self.magic, version: Self.version, what: what)
        let features = try r.count(elementSize: 10)
        var specs: [DriftFeatureSpec] = []
        var points: [[Float]] = []
        for f in 0..<features {
            let name = try r.string()
            let kind = try r.u8()
            guard kind <= 1 else { throw r.malformed("feature \(f) has unknown kind \(kind)") }
            let n = try r.count(elementSize: 4)
            var p: [Float] = []
            p.reserveCapacity(n)
            for _ in 0..<n { p.append(Float(bitPattern: try r.u32())) }
            for i in p.indices where !p[i].isFinite || (i > 0 && !(p[i - 1] < p[i])) {
                throw r.malformed("feature \(f) ('\(name)') has points that are not finite and strictly ascending")
            }
            specs.append(DriftFeatureSpec(name: name, categorical: kind == 1))
            points.append(p)
        }
        try r.expectEnd()
        self.init(specs: specs, points: points)
    }

    func payload() -> [UInt8] {
        var w = ByteWriter()
        w.u32(UInt32(specs.count))
        for (spec, p) in zip(specs, points) {
            w.string(spec.name)
            w.u8(spec.categorical ? 1 : 0)
            w.u32(UInt32(p.count))
            for v in p { w.f32(v) }
        }
        return w.buffer
    }

    /// A 64-bit FNV-1a hash of the encoded payload. Histograms carry it so that merging
    /// shards counted against different binnings fails instead of adding unrelated counts.
    public var fingerprint: UInt64 {
        var h: UInt64 = 0xCBF2_9CE4_8422_2325
        for b in payload() { h = (h ^ UInt64(b)) &* 0x0000_0100_0000_01B3 }
        return h
    }
}

/// A lookup table that narrows the search for a value's fine bin to the few cut points
/// in its slice of the reference range, so counting does about one table read and a
/// couple of comparisons per value instead of a ten-step binary search.
///
/// The range from the first to the last cut point is split into `slots` equal slices by
/// a monotone function `slot(v)`; `starts[p]` is the first cut whose slot is `≥ p`. For
/// any `v`, cuts in earlier slots are `< v` and cuts in later slots are `> v` (monotony),
/// so the bin is found among the cuts of `v`'s own slot — the same bin the plain binary
/// search gives, for every value.
struct CutIndex {
    let first: Double
    let scale: Double
    let slots: Int
    let starts: [Int32]

    init(cuts: [Float]) {
        let n = cuts.count
        slots = max(16, min(1 << 16, 4 * n))
        first = Double(cuts.first ?? 0)
        let span = Double(cuts.last ?? 0) - first
        scale = span > 0 && span.isFinite ? Double(slots) / span : 0
        var starts = [Int32](repeating: Int32(n), count: slots + 1)
        var p = 0
        for (i, c) in cuts.enumerated() {
            let s = Self.slot(c, first: first, scale: scale, slots: slots)
            while p <= s { starts[p] = Int32(i); p += 1 }
        }
        self.starts = starts
    }

    @inline(__always)
    static func slot(_ v: Float, first: Double, scale: Double, slots: Int) -> Int {
        let x = (Double(v) - first) * scale
        return x <= 0 ? 0 : x >= Double(slots - 1) ? slots - 1 : Int(x)
    }
}
