import Foundation

/// Quantile bins of one feature, learned from training data.
///
/// Guarantees: value bins are `0..<valueBinCount` with `bin(v) ≤ t ⇔ v ≤ upperBounds[t]`
/// for every non-NaN v (this is what lets a split found on bins be applied to raw
/// Float values at prediction time with identical results); NaN has its own bin,
/// `nanBin == valueBinCount`; there are at most 255 value bins so every bin fits a UInt8.
public struct FeatureBinning: Sendable, Equatable {
    /// Ascending; the last bound is +∞.
    public let upperBounds: [Float]

    public init(upperBounds: [Float]) {
        precondition(!upperBounds.isEmpty && upperBounds.count <= 255, "1…255 value bins")
        self.upperBounds = upperBounds
    }

    public var valueBinCount: Int { upperBounds.count }
    public var nanBin: Int { upperBounds.count }
    /// Value bins plus the NaN bin.
    public var totalBinCount: Int { upperBounds.count + 1 }

    @inline(__always)
    public func bin(_ v: Float) -> UInt8 {
        if v.isNaN { return UInt8(truncatingIfNeeded: upperBounds.count) }
        // First t with v ≤ upperBounds[t]. The loop's trip count depends only on the bin
        // count and the step is a conditional move, not a branch: binning every value of
        // a data set with a branchy search mispredicted about every other step.
        return upperBounds.withUnsafeBufferPointer { b in
            var base = 0, n = b.count
            while n > 1 {
                let half = n >> 1
                base = b[base + half - 1] < v ? base + half : base
                n -= half
            }
            return UInt8(truncatingIfNeeded: base)
        }
    }

    /// Values seen fewer times than this share a bin with their neighbours (LightGBM's
    /// `min_data_in_bin` default). A bin of one or two rows can never be split off on
    /// its own under any sensible `min_data_in_leaf`, yet every node's histogram carries
    /// it and every split search walks it. On the Ames sales (2,344 training rows, 73
    /// columns) one bin per distinct value gave 4,341 bins against LightGBM's 3,792.
    public static let minDataInBin = 3

    /// Bins from a sample of values: one bin per distinct value when there are at most
    /// `maxBin` (values seen fewer than `minDataInBin` times merged upwards into the
    /// next bin), otherwise greedy equal-frequency bins whose bounds sit halfway between
    /// neighbouring distinct values (a value that alone fills a bin gets its own bin),
    /// with no more bins than leave `minDataInBin` values in each on average.
    public static func fit(_ values: [Float], maxBin: Int, minDataInBin: Int = minDataInBin) -> FeatureBinning {
        var maxBin = min(255, max(2, maxBin))
        let sorted = sortedIgnoringNaN(values)
        if sorted.isEmpty { return FeatureBinning(upperBounds: [.infinity]) }
        var distinct: [Float] = []
        var counts: [Int] = []
        for v in sorted {
            if let last = distinct.last, last == v { counts[counts.count - 1] += 1 } else { distinct.append(v); counts.append(1) }
        }
        func between(_ a: Float, _ b: Float) -> Float {
            let mid = a + (b - a) / 2
            return (mid >= b || mid < a) ? a : mid
        }
        var bounds: [Float] = []
        let minData = max(1, minDataInBin)
        if distinct.count > maxBin { maxBin = max(2, min(maxBin, sorted.count / minData)) }
        if distinct.count <= maxBin {
            var inBin = 0
            for i in 0..<(distinct.count - 1) {
                inBin += counts[i]
                if inBin >= minData {
                    bounds.append(between(distinct[i], distinct[i + 1]))
                    inBin = 0
                }
            }
        } else {
            var remaining = sorted.count
            var binsLeft = maxBin
            var target = Double(remaining) / Double(binsLeft)
            var acc = 0
            for i in 0..<(distinct.count - 1) {
                acc += counts[i]
                let nextIsHeavy = Double(counts[i + 1]) >= target
                if Double(acc) >= target || nextIsHeavy {
                    bounds.append(between(distinct[i], distinct[i + 1]))
                    remaining -= acc
                    acc = 0
                    binsLeft -= 1
                    if binsLeft <= 1 { break }
                    target = Double(remaining) / Double(binsLeft)
                }
            }
        }
        bounds.append(.infinity)
        return FeatureBinning(upperBounds: bounds)
    }
}

/// `values` without NaN, ascending (−0 read as +0), by a radix sort of order-preserving
/// integer keys: binning sorts up to 200,000 values per feature before every training,
/// which with a comparison sort was a visible share of a short training.
func sortedIgnoringNaN(_ values: [Float]) -> [Float] {
    var keys: [UInt32] = []
    keys.reserveCapacity(values.count)
    for v in values where !v.isNaN { keys.append(floatSortKey(v == 0 ? 0 : v)) }
    radixSort(&keys)
    return keys.map(floatFromSortKey)
}

/// Maps a float's bits to an unsigned key with the same order (negative numbers
/// reversed, positives above them), so floats sort as integers.
@inline(__always)
func floatSortKey(_ v: Float) -> UInt32 {
    let bits = v.bitPattern
    return bits & 0x8000_0000 != 0 ? ~bits : bits | 0x8000_0000
}

@inline(__always)
func floatFromSortKey(_ key: UInt32) -> Float {
    Float(bitPattern: key & 0x8000_0000 != 0 ? key & 0x7FFF_FFFF : ~key)
}

/// Sorts `keys` ascending: an LSD radix sort of three 11-bit digits, all three counted in
/// one read of the keys, a pass skipped where every key has the same digit; a comparison
/// sort below 256 keys. Shared by training's binning and drift's reference bins.
func radixSort(_ keys: inout [UInt32]) {
    let n = keys.count
    if n < 256 {
        keys.sort()
        return
    }
    var scratch = [UInt32](repeating: 0, count: n)
    keys.withUnsafeMutableBufferPointer { kb in
        scratch.withUnsafeMutableBufferPointer { sb in
            var src = kb.baseAddress!, dst = sb.baseAddress!
            var counts = [Int](repeating: 0, count: 3 * 2048)
            counts.withUnsafeMutableBufferPointer { cb in
                let c = cb.baseAddress!
                for i in 0..<n {
                    let k = src[i]
                    c[Int(k & 2047)] += 1
                    c[2048 + Int((k >> 11) & 2047)] += 1
                    c[4096 + Int(k >> 22)] += 1
                }
                for pass in 0..<3 {
                    let pc = c + pass * 2048
                    let shift = UInt32(pass * 11)
                    if pc[Int((src[0] >> shift) & 2047)] == n { continue }
                    var sum = 0
                    for d in 0..<2048 { let x = pc[d]; pc[d] = sum; sum += x }
                    for i in 0..<n {
                        let k = src[i]
                        let d = Int((k >> shift) & 2047)
                        dst[pc[d]] = k
                        pc[d] += 1
                    }
                    swap(&src, &dst)
                }
            }
            if src != kb.baseAddress! { kb.baseAddress!.update(from: src, count: n) }
        }
    }
}

/// A data set's features as bin indices, one contiguous UInt8 column per feature
/// (column-major), which is the layout histogram building streams through.
final class BinnedMatrix: @unchecked Sendable {
    let rowCount: Int
    let featureCount: Int
    /// featureCount × rowCount, column-major. Immutable after init (hence Sendable).
    let bins: UnsafeMutablePointer<UInt8>

    /// `threads`: the training's own setting, so a one-thread run bins on one thread.
    init(_ data: Dataset, binnings: [FeatureBinning], threads: Int = availableCores) {
        rowCount = data.rowCount
        featureCount = binnings.count
        bins = .allocate(capacity: max(1, rowCount * featureCount))
        let n = rowCount
        let base = bins
        parallelFor(featureCount, threads: threads) { f in
            let b = binnings[f]
            let out = base + f * n
            data.columns[f].withUnsafeBufferPointer { col in
                for r in 0..<n { out[r] = b.bin(col[r]) }
            }
        }
    }

    /// Uninitialized codes, for a reader to fill (a binned training set's blob).
    init(rowCount: Int, featureCount: Int) {
        self.rowCount = rowCount
        self.featureCount = featureCount
        bins = .allocate(capacity: max(1, rowCount * featureCount))
    }

    deinit { bins.deallocate() }

    @inline(__always) func column(_ f: Int) -> UnsafeMutablePointer<UInt8> { bins + f * rowCount }
}

enum Binner {
    /// Rows used to learn bin bounds, like LightGBM's bin_construct_sample_cnt: enough
    /// for stable quantiles, bounded cost on large data.
    static let sampleLimit = 200_000

    static func fit(_ data: Dataset, maxBin: Int, minDataInBin: Int = FeatureBinning.minDataInBin, seed: UInt64,
                    threads: Int = availableCores) -> [FeatureBinning] {
        var chosenRows: [Int]? = nil
        if data.rowCount > sampleLimit {
            var rng = Xoshiro256(seed: seed &+ 0xB1_5EED)
            var chosen = [Bool](repeating: false, count: data.rowCount)
            var picked = 0
            while picked < sampleLimit {
                let i = rng.index(below: data.rowCount)
                if !chosen[i] { chosen[i] = true; picked += 1 }
            }
            chosenRows = chosen.indices.filter { chosen[$0] }
        }
        let sample = chosenRows
        var result = [FeatureBinning](repeating: FeatureBinning(upperBounds: [.infinity]), count: data.featureCount)
        result.withUnsafeMutableBufferPointer { out in
            let outBase = out.baseAddress!
            parallelFor(data.featureCount, threads: threads) { f in
                let col = data.columns[f]
                let values = sample.map { s in s.map { col[$0] } } ?? col
                (outBase + f).pointee = FeatureBinning.fit(values, maxBin: maxBin, minDataInBin: minDataInBin)
            }
        }
        return result
    }
}
