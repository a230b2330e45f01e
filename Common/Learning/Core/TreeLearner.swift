import Foundation

/// Gradient and hessian sums and the row count of one histogram bin, in the fixed-point
/// units of `GradientQuantizer`. Integer sums are exact, so a bin's value does not depend
/// on how its rows were split among threads or in which order partial histograms were
/// added — the property that lets histograms be built over row ranges in parallel and
/// still give the same model at any thread count — and parent − child is exactly the
/// sibling's histogram.
protocol HistogramEntry {
    static var zero: Self { get }
    var g: Int64 { get }
    var h: Int64 { get }
    var c: Int64 { get }
    /// What a row whose quantized hessian is `h` adds besides its gradient.
    static func rowTerm(hessian h: Int64) -> Int64
    mutating func add(gradient: Int64, rowTerm: Int64)
    mutating func add(_ other: Self)
    mutating func subtract(_ other: Self)
}

/// 24 bytes: sums of any number of rows.
struct HistogramBin: HistogramEntry {
    var g: Int64
    var h: Int64
    var c: Int64
    static let zero = HistogramBin(g: 0, h: 0, c: 0)
    @inline(__always) static func rowTerm(hessian h: Int64) -> Int64 { h }
    @inline(__always) mutating func add(gradient: Int64, rowTerm: Int64) { g &+= gradient; h &+= rowTerm; c &+= 1 }
    @inline(__always) mutating func add(_ o: Self) { g &+= o.g; h &+= o.h; c &+= o.c }
    @inline(__always) mutating func subtract(_ o: Self) { g &-= o.g; h &-= o.h; c &-= o.c }
}

/// 16 bytes, for training sets of at most `maxRows` rows: the count rides in the low 16
/// bits of the hessian sum (Σh · 2^16 + rows). A row's fixed-point hessian is at most
/// 2^30 in magnitude, so |Σh| · 2^16 < 2^16 · 2^30 · 2^16 = 2^62 and nothing carries into
/// or out of the count: the same sums, bit for bit, as `HistogramBin`, in two thirds of
/// the memory. Small wide data sets spend most of a training clearing, adding,
/// subtracting and scanning histograms (Ames, 73 columns: 4,000 bins per node).
struct PackedHistogramBin: HistogramEntry {
    static let maxRows = 65_535
    var g: Int64
    var hc: Int64
    static let zero = PackedHistogramBin(g: 0, hc: 0)
    @inline(__always) var h: Int64 { hc >> 16 }
    @inline(__always) var c: Int64 { hc & 0xFFFF }
    @inline(__always) static func rowTerm(hessian h: Int64) -> Int64 { h << 16 | 1 }
    @inline(__always) mutating func add(gradient: Int64, rowTerm: Int64) { g &+= gradient; hc &+= rowTerm }
    @inline(__always) mutating func add(_ o: Self) { g &+= o.g; hc &+= o.hc }
    @inline(__always) mutating func subtract(_ o: Self) { g &-= o.g; hc &-= o.hc }
}

/// Per-iteration fixed-point form of gradients and hessians: each is scaled by a power of
/// two chosen so the largest magnitude maps to about 2^30 and rounded to an Int32. The
/// rounding error (≤ 2^-31 of the largest gradient) is far below Float's own resolution
/// for the gradients that matter, and sums of up to 2^33 rows fit an Int64.
struct GradientQuantizer {
    let gradientScale: Double
    let hessianScale: Double
    /// 1 / scale: exact, the scales being powers of two, so multiplying by it gives the
    /// same bits as dividing by the scale, without a division in the split search.
    let gradientUnit: Double
    let hessianUnit: Double

    init(maxGradient: Double, maxHessian: Double) {
        gradientScale = Self.scale(for: maxGradient)
        hessianScale = Self.scale(for: maxHessian)
        gradientUnit = 1 / gradientScale
        hessianUnit = 1 / hessianScale
    }

    /// The largest power of two s with maxAbs · s ≤ 2^30 (a power of two so that
    /// converting back is an exact multiplication).
    static func scale(for maxAbs: Double) -> Double {
        guard maxAbs > 0, maxAbs.isFinite else { return 1 }
        let target = Double(1 << 30) / maxAbs
        return Double(sign: .plus, exponent: target.exponent, significand: 1)
    }

    /// Round-half-even to an integer by adding 1.5·2^52, which leaves the rounded value in
    /// the low bits; exact for |x| < 2^31 and much cheaper than a call to libm's `round`
    /// (which took a tenth of the training time on few-feature data).
    @inline(__always) static func round(_ x: Double) -> Int32 {
        Int32(truncatingIfNeeded: Int64(bitPattern: (x + 6_755_399_441_055_744.0).bitPattern))
    }

    @inline(__always) func g(_ q: Int64) -> Double { Double(q) * gradientUnit }
    @inline(__always) func h(_ q: Int64) -> Double { Double(q) * hessianUnit }
}

/// The best split found for one leaf.
struct SplitCandidate {
    var gain: Double = -.infinity
    var feature: Int = -1
    var thresholdBin: Int = 0
    var defaultLeft = false
    var leftG: Int64 = 0, leftH: Int64 = 0, leftC: Int64 = 0
    var isValid: Bool { feature >= 0 }
}

struct TreeLearnerSettings {
    var numLeaves: Int
    var maxDepth: Int
    var minDataInLeaf: Int
    var minSumHessianInLeaf: Double
    var lambdaL2: Double
    var minGainToSplit: Double
    var learningRate: Double
    var threads: Int
    /// Below this much work (rows × features plus bins searched) a node is handled on one
    /// thread: waking the others would cost more than it saves. Tests set it to 0 to
    /// drive every parallel path on small data.
    var minParallelWork = 24_000
    /// Rows per thread from which a node with too few features to share out is
    /// histogrammed by row ranges instead (each thread its own histogram, then summed).
    var minRowsPerThread = 4_096
    /// Rows per chunk of the parallel partition; a node of fewer than two chunks is
    /// partitioned on one thread.
    var partitionChunk = 8_192
    /// Training sets of at most this many rows get `PackedHistogramBin`s (never more
    /// than its `maxRows`); tests set 0 to drive `HistogramBin` on small data.
    var packedHistogramMaxRows = PackedHistogramBin.maxRows
}

/// Grows one regression tree leaf-wise on binned data from per-row gradients and
/// hessians (the second-order boosting step of LightGBM / XGBoost).
///
/// How it stays fast: rows of each leaf are a contiguous range of one index array
/// (re-partitioned in place at every split); gradients are gathered into leaf order
/// once per histogram so the inner loop reads them sequentially; only the smaller child's
/// histogram is built, the larger one is the parent's minus the smaller's.
///
/// How threads pay at every node size: a node with enough features has them shared out
/// in groups (each thread builds, subtracts and searches its own features — no merge);
/// a large node with few features is cut into row ranges, each thread building a whole
/// histogram of its range, then the ranges' histograms are summed and searched per
/// feature in parallel; small nodes stay on one thread. Histograms hold exact integer
/// sums (`HistogramEntry`), so every strategy gives the same bits and the model does not
/// depend on the thread count.
final class HistogramTreeLearner {
    let data: BinnedMatrix
    let binnings: [FeatureBinning]
    let settings: TreeLearnerSettings
    let offsets: [Int]
    let totalBins: Int
    private let indices: UnsafeMutablePointer<Int32>
    private let scratch: UnsafeMutablePointer<Int32>
    private let scratch2: UnsafeMutablePointer<Int32>
    private let quantizedG: UnsafeMutablePointer<Int32>
    private let quantizedH: UnsafeMutablePointer<Int32>
    private let orderedG: UnsafeMutablePointer<Int32>
    private let orderedH: UnsafeMutablePointer<Int32>
    /// One histogram set per leaf slot, of `PackedHistogramBin` when the training set is
    /// small enough (`packed`), else of `HistogramBin`; bound to that type at init.
    private let histograms: UnsafeMutableRawPointer
    /// One whole histogram per extra thread, for row-range building; same entry type.
    private let threadHistograms: UnsafeMutableRawPointer
    private let packed: Bool
    private var quantizer = GradientQuantizer(maxGradient: 1, maxHessian: 1)
    /// Per feature: value bins (NaN bin excluded) and the binned column. Read in the
    /// innermost loops, where going through `binnings[f]` (a struct holding an array)
    /// cost a retain and release per feature and node.
    private let valueBins: UnsafeMutablePointer<Int>
    private let columns: UnsafeMutablePointer<UnsafePointer<UInt8>>
    /// Feature groups of the last `features` count, for one thread and for `threads`.
    private var groupsFor: (count: Int, serial: [[Int]], parallel: [[Int]]) = (-1, [], [])

    /// After `grow`: each leaf's rows are `rowIndices[leafBegin[l] ..< leafBegin[l] + leafRowCount[l]]`.
    private(set) var leafBegin: [Int] = []
    private(set) var leafRowCount: [Int] = []
    var rowIndices: UnsafePointer<Int32> { UnsafePointer(indices) }

    init(data: BinnedMatrix, binnings: [FeatureBinning], settings: TreeLearnerSettings) {
        self.data = data
        self.binnings = binnings
        self.settings = settings
        var offsets: [Int] = []
        var total = 0
        for b in binnings { offsets.append(total); total += b.totalBinCount }
        self.offsets = offsets
        self.totalBins = total
        let n = max(1, data.rowCount)
        indices = .allocate(capacity: n)
        scratch = .allocate(capacity: n)
        scratch2 = .allocate(capacity: n)
        quantizedG = .allocate(capacity: n)
        quantizedH = .allocate(capacity: n)
        orderedG = .allocate(capacity: n)
        orderedH = .allocate(capacity: n)
        let slots = max(2, settings.numLeaves)
        let entries = slots * max(1, total), extra = max(1, settings.threads - 1) * max(1, total)
        packed = data.rowCount <= min(settings.packedHistogramMaxRows, PackedHistogramBin.maxRows)
        func allocate<E: HistogramEntry>(_: E.Type, _ count: Int) -> UnsafeMutableRawPointer {
            let raw = UnsafeMutableRawPointer.allocate(byteCount: count * MemoryLayout<E>.stride, alignment: MemoryLayout<E>.alignment)
            raw.bindMemory(to: E.self, capacity: count).initialize(repeating: .zero, count: count)
            return raw
        }
        histograms = packed ? allocate(PackedHistogramBin.self, entries) : allocate(HistogramBin.self, entries)
        threadHistograms = packed ? allocate(PackedHistogramBin.self, extra) : allocate(HistogramBin.self, extra)
        valueBins = .allocate(capacity: max(1, binnings.count))
        columns = .allocate(capacity: max(1, binnings.count))
        for (f, b) in binnings.enumerated() {
            valueBins[f] = b.valueBinCount
            columns[f] = UnsafePointer(data.column(f))
        }
    }

    deinit {
        indices.deallocate(); scratch.deallocate(); scratch2.deallocate()
        quantizedG.deallocate(); quantizedH.deallocate(); orderedG.deallocate(); orderedH.deallocate()
        histograms.deallocate(); threadHistograms.deallocate()
        valueBins.deallocate(); columns.deallocate()
    }

    private struct Leaf {
        var begin: Int
        var count: Int
        var g: Int64
        var h: Int64
        var depth: Int
        var slot: Int = -1
        var best = SplitCandidate()
        /// Internal node whose child this leaf is (-1 for the root) and on which side.
        var parent: Int = -1
        var isLeft = false
    }

    /// Converts this iteration's gradients to fixed point (see `GradientQuantizer`). The
    /// scale comes from the largest magnitudes over all rows, a maximum, so it does not
    /// depend on how the rows were split among threads.
    private func quantize(gradients: UnsafePointer<Float>, hessians: UnsafePointer<Float>) -> (g: Int64, h: Int64) {
        let n = data.rowCount
        let threads = settings.threads
        let blocks = max(1, (n + 16_383) / 16_384)
        var maxima = [Float](repeating: 0, count: 2 * blocks)
        maxima.withUnsafeMutableBufferPointer { m in
            let out = m.baseAddress!
            parallelFor(blocks, threads: n >= 32_768 ? threads : 1) { b in
                var mg: Float = 0, mh: Float = 0
                for i in (b * 16_384)..<min(n, (b + 1) * 16_384) {
                    mg = max(mg, abs(gradients[i])); mh = max(mh, abs(hessians[i]))
                }
                out[2 * b] = mg; out[2 * b + 1] = mh
            }
        }
        var mg: Float = 0, mh: Float = 0
        for b in 0..<blocks { mg = max(mg, maxima[2 * b]); mh = max(mh, maxima[2 * b + 1]) }
        let q = GradientQuantizer(maxGradient: Double(mg), maxHessian: Double(mh))
        quantizer = q
        let qg = quantizedG, qh = quantizedH
        let gs = q.gradientScale, hs = q.hessianScale
        // Sums over all rows come with the conversion (integer sums, so blocking does not
        // matter); they are the root's sums when there is no bag.
        var sums = [Int64](repeating: 0, count: 2 * blocks)
        sums.withUnsafeMutableBufferPointer { sb in
            let out = sb.baseAddress!
            parallelFor(blocks, threads: n >= 32_768 ? threads : 1) { b in
                var sg: Int64 = 0, sh: Int64 = 0
                for i in (b * 16_384)..<min(n, (b + 1) * 16_384) {
                    let a = GradientQuantizer.round(Double(gradients[i]) * gs)
                    let c = GradientQuantizer.round(Double(hessians[i]) * hs)
                    qg[i] = a; qh[i] = c
                    sg &+= Int64(a); sh &+= Int64(c)
                }
                out[2 * b] = sg; out[2 * b + 1] = sh
            }
        }
        var g: Int64 = 0, h: Int64 = 0
        for b in 0..<blocks { g &+= sums[2 * b]; h &+= sums[2 * b + 1] }
        return (g, h)
    }

    /// Grows a tree on `bag` (all rows when nil) using only `features`.
    func grow(gradients: UnsafePointer<Float>, hessians: UnsafePointer<Float>, bag: [Int32]?,
              features: [Int]) -> RegressionTree {
        let s = settings
        var (g, h) = quantize(gradients: gradients, hessians: hessians)
        let q = quantizer
        let rootCount: Int
        if let bag {
            rootCount = bag.count
            bag.withUnsafeBufferPointer { indices.update(from: $0.baseAddress!, count: bag.count) }
            g = 0; h = 0
            for k in 0..<rootCount {
                let i = Int(indices[k])
                g &+= Int64(quantizedG[i]); h &+= Int64(quantizedH[i])
            }
        } else {
            rootCount = data.rowCount
            for i in 0..<rootCount { indices[i] = Int32(i) }
        }
        if groupsFor.count != features.count {
            let positions = Array(features.indices)
            groupsFor = (features.count, Self.featureGroups(positions, threads: 1),
                         Self.featureGroups(positions, threads: s.threads))
        }
        var tree = RegressionTree()
        var leaves = [Leaf(begin: 0, count: rootCount, g: g, h: h, depth: 0)]
        var nextSlot = 0
        if canSplit(leaves[0]) {
            leaves[0].slot = nextSlot; nextSlot += 1
            leaves[0].best = buildAndSearch(buildSlot: 0, begin: 0, count: rootCount, identity: bag == nil,
                                            subtractFrom: nil,
                                            searches: [SearchRequest(slot: 0, g: g, h: h, c: Int64(rootCount))],
                                            features: features)[0]
        }

        while leaves.count < s.numLeaves {
            var chosen = -1
            var bestGain = -Double.infinity
            for (i, leaf) in leaves.enumerated() where leaf.best.isValid && leaf.best.gain > bestGain {
                chosen = i; bestGain = leaf.best.gain
            }
            if chosen < 0 { break }
            let parent = leaves[chosen]
            let split = parent.best
            let leftCount = partition(begin: parent.begin, count: parent.count, split: split)
            let node = tree.nodeCount
            let rightLeaf = leaves.count
            tree.splitFeature.append(Int32(split.feature))
            tree.thresholdBin.append(UInt8(split.thresholdBin))
            tree.threshold.append(binnings[split.feature].upperBounds[split.thresholdBin])
            tree.defaultLeft.append(split.defaultLeft)
            tree.leftChild.append(~Int32(chosen))
            tree.rightChild.append(~Int32(rightLeaf))
            tree.splitGain.append(Float(split.gain))
            tree.nodeCover.append(Double(parent.count))
            if parent.parent >= 0 {
                if parent.isLeft { tree.leftChild[parent.parent] = Int32(node) } else { tree.rightChild[parent.parent] = Int32(node) }
            }
            var left = Leaf(begin: parent.begin, count: leftCount, g: split.leftG, h: split.leftH,
                            depth: parent.depth + 1, parent: node, isLeft: true)
            var right = Leaf(begin: parent.begin + leftCount, count: parent.count - leftCount,
                             g: parent.g - split.leftG, h: parent.h - split.leftH,
                             depth: parent.depth + 1, parent: node, isLeft: false)
            let leftCan = canSplit(left), rightCan = canSplit(right)
            if leftCan || rightCan {
                // Build the smaller child's histogram, derive the larger one as parent minus
                // smaller, and search both for their best split.
                let smallerIsLeft = left.count <= right.count
                let newSlot = nextSlot
                nextSlot += 1
                let smaller = smallerIsLeft ? left : right
                let largerCan = smallerIsLeft ? rightCan : leftCan
                if smallerIsLeft { left.slot = newSlot; if rightCan { right.slot = parent.slot } }
                else { right.slot = newSlot; if leftCan { left.slot = parent.slot } }
                let found = buildAndSearch(
                    buildSlot: newSlot, begin: smaller.begin, count: smaller.count, identity: false,
                    subtractFrom: largerCan ? parent.slot : nil,
                    searches: [leftCan ? SearchRequest(slot: left.slot, g: left.g, h: left.h, c: Int64(left.count)) : nil,
                               rightCan ? SearchRequest(slot: right.slot, g: right.g, h: right.h, c: Int64(right.count)) : nil],
                    features: features)
                left.best = found[0]
                right.best = found[1]
            }
            leaves[chosen] = left
            leaves.append(right)
        }

        tree.leafValue = leaves.map { leaf in
            let denominator = q.h(leaf.h) + s.lambdaL2
            return denominator > 0 ? -q.g(leaf.g) / denominator * s.learningRate : 0
        }
        tree.leafCover = leaves.map { Double($0.count) }
        leafBegin = leaves.map(\.begin)
        leafRowCount = leaves.map(\.count)
        return tree
    }

    private func canSplit(_ leaf: Leaf) -> Bool {
        leaf.count >= 2 * max(1, settings.minDataInLeaf)
            && (settings.maxDepth <= 0 || leaf.depth < settings.maxDepth)
            && quantizer.h(leaf.h) >= 2 * settings.minSumHessianInLeaf
    }

    struct SearchRequest {
        var slot: Int
        var g: Int64
        var h: Int64
        var c: Int64
    }

    /// Builds the histogram of rows `begin..<begin+count` into `buildSlot`, optionally
    /// subtracts it from `subtractFrom` (turning the parent's histogram into the larger
    /// sibling's), then finds the best split for each request. The per-feature winners
    /// are reduced in feature order, so the result equals a serial scan.
    private func buildAndSearch(buildSlot: Int, begin: Int, count: Int, identity: Bool, subtractFrom parentSlot: Int?,
                                searches: [SearchRequest?], features: [Int]) -> [SplitCandidate] {
        packed
            ? buildAndSearch(PackedHistogramBin.self, buildSlot: buildSlot, begin: begin, count: count, identity: identity,
                             subtractFrom: parentSlot, searches: searches, features: features)
            : buildAndSearch(HistogramBin.self, buildSlot: buildSlot, begin: begin, count: count, identity: identity,
                             subtractFrom: parentSlot, searches: searches, features: features)
    }

    private func buildAndSearch<E: HistogramEntry>(_: E.Type, buildSlot: Int, begin: Int, count: Int, identity: Bool,
                                                   subtractFrom parentSlot: Int?, searches: [SearchRequest?],
                                                   features: [Int]) -> [SplitCandidate] {
        let histograms = self.histograms.assumingMemoryBound(to: E.self)
        let hist = histograms + buildSlot * totalBins
        let parentHist = parentSlot.map { histograms + $0 * totalBins }
        let idx = UnsafePointer(indices + begin)
        let featureCount = features.count
        let searchCount = searches.reduce(0) { $0 + ($1 == nil ? 0 : 1) }
        let work = count * featureCount + searchCount * featureCount * 256
        let threads = settings.threads > 1 && work >= settings.minParallelWork ? settings.threads : 1
        let offsets = self.offsets, valueBins = self.valueBins, columns = self.columns
        var candidates = [SplitCandidate](repeating: SplitCandidate(), count: searches.count * featureCount)

        // Zeroes a feature group's histograms in the histogram set at `target` and adds
        // `count` rows (positions `idx`, gradients `og`/`oh`) into them.
        func histogram(_ group: [Int], into target: UnsafeMutablePointer<E>, idx: UnsafePointer<Int32>,
                       og: UnsafePointer<Int32>, oh: UnsafePointer<Int32>, count: Int) {
            for j in group {
                let f = features[j]
                (target + offsets[f]).update(repeating: .zero, count: valueBins[f] + 1)
            }
            Self.accumulate(group, features: features, columns: columns, offsets: offsets, into: target,
                            idx: idx, og: og, oh: oh, count: count)
        }

        // Subtract and search one feature; the feature's histogram in `hist` is complete.
        func finish(_ j: Int, _ cand: UnsafeMutablePointer<SplitCandidate>) {
            let f = features[j]
            if let parentHist {
                let p = parentHist + offsets[f], c = hist + offsets[f]
                for b in 0...valueBins[f] { p[b].subtract(c[b]) }
            }
            for (si, request) in searches.enumerated() {
                guard let request else { continue }
                cand[si * featureCount + j] = self.bestSplit(E.self, feature: f, slot: request.slot,
                                                             g: request.g, h: request.h, c: request.c)
            }
        }

        let rowParallel = threads > 1 && featureCount < 4 * threads && count >= settings.minRowsPerThread * threads
        candidates.withUnsafeMutableBufferPointer { out in
            let cand = out.baseAddress!
            if rowParallel {
                // Few features: each thread histograms a contiguous row range (thread 0
                // straight into the slot), then features are shared out to add the
                // ranges' histograms, subtract and search.
                let ranges = threads
                let extra = threadHistograms.assumingMemoryBound(to: E.self), total = totalBins
                let groups = groupsFor.serial
                parallelFor(ranges, threads: threads) { t in
                    let lo = count * t / ranges, hi = count * (t + 1) / ranges
                    let target = t == 0 ? hist : extra + (t - 1) * total
                    self.gather(identity: identity, begin: begin, range: lo..<hi)
                    let og = UnsafePointer(self.orderedG + lo), oh = UnsafePointer(self.orderedH + lo)
                    for group in groups { histogram(group, into: target, idx: idx + lo, og: og, oh: oh, count: hi - lo) }
                }
                parallelFor(featureCount, threads: threads) { j in
                    let f = features[j]
                    let c = hist + offsets[f]
                    for t in 1..<ranges {
                        let e = extra + (t - 1) * total + offsets[f]
                        for b in 0...valueBins[f] { c[b].add(e[b]) }
                    }
                    finish(j, cand)
                }
            } else {
                // The gather is the one pass of a node that every feature group waits for,
                // so it is shared out from a modest size on.
                if threads > 1 && count >= 16_384 {
                    parallelChunks(count, threads: threads, minChunk: 8_192) { range in
                        self.gather(identity: identity, begin: begin, range: range)
                    }
                } else {
                    gather(identity: identity, begin: begin, range: 0..<count)
                }
                let og = UnsafePointer(orderedG), oh = UnsafePointer(orderedH)
                let groups = threads > 1 ? groupsFor.parallel : groupsFor.serial
                parallelFor(groups.count, threads: threads) { gi in
                    histogram(groups[gi], into: hist, idx: idx, og: og, oh: oh, count: count)
                    for j in groups[gi] { finish(j, cand) }
                }
            }
        }
        return searches.indices.map { si in
            var best = SplitCandidate()
            for j in 0..<featureCount {
                let c = candidates[si * featureCount + j]
                if c.isValid && c.gain > best.gain { best = c }
            }
            return best.gain > max(0, settings.minGainToSplit) ? best : SplitCandidate()
        }
    }

    /// Copies the quantized gradients of a node's rows `range` (positions within the
    /// node) into leaf order, so the per-feature passes read them sequentially.
    private func gather(identity: Bool, begin: Int, range: Range<Int>) {
        let og = orderedG, oh = orderedH, qg = quantizedG, qh = quantizedH
        if identity {
            (og + range.lowerBound).update(from: qg + begin + range.lowerBound, count: range.count)
            (oh + range.lowerBound).update(from: qh + begin + range.lowerBound, count: range.count)
        } else {
            let idx = indices + begin
            for k in range {
                let i = Int(idx[k])
                og[k] = qg[i]
                oh[k] = qh[i]
            }
        }
    }

    /// Features split into groups of up to four that are accumulated in one pass over
    /// the rows: the row index and gradients are loaded once per group, and the four
    /// histograms are independent, so their read-modify-write chains overlap. The group
    /// count is a multiple of the thread count so threads get equal work.
    static func featureGroups(_ features: [Int], threads: Int) -> [[Int]] {
        let n = features.count
        if n == 0 { return [] }
        var groupCount = (n + 3) / 4
        if threads > 1 { groupCount = min(n, ((groupCount + threads - 1) / threads) * threads) }
        var groups: [[Int]] = []
        var start = 0
        for g in 0..<groupCount {
            let size = n / groupCount + (g < n % groupCount ? 1 : 0)
            groups.append(Array(features[start..<(start + size)]))
            start += size
        }
        return groups
    }

    /// Adds `count` rows (positions `idx`, gradients `og`/`oh`) into the histograms of
    /// the features at `group` (positions in `features`) in the histogram set `target`.
    @inline(__always)
    static func accumulate<E: HistogramEntry>(_ group: [Int], features: [Int], columns: UnsafePointer<UnsafePointer<UInt8>>,
                                              offsets: [Int], into target: UnsafeMutablePointer<E>,
                                              idx: UnsafePointer<Int32>, og: UnsafePointer<Int32>, oh: UnsafePointer<Int32>,
                                              count: Int) {
        @inline(__always) func column(_ k: Int) -> UnsafePointer<UInt8> { columns[features[group[k]]] }
        @inline(__always) func hist(_ k: Int) -> UnsafeMutablePointer<E> { target + offsets[features[group[k]]] }
        switch group.count {
        case 4:
            let c0 = column(0), c1 = column(1), c2 = column(2), c3 = column(3)
            let h0 = hist(0), h1 = hist(1), h2 = hist(2), h3 = hist(3)
            for k in 0..<count {
                let i = Int(idx[k])
                let g = Int64(og[k]), h = E.rowTerm(hessian: Int64(oh[k]))
                let b0 = Int(c0[i]), b1 = Int(c1[i]), b2 = Int(c2[i]), b3 = Int(c3[i])
                h0[b0].add(gradient: g, rowTerm: h)
                h1[b1].add(gradient: g, rowTerm: h)
                h2[b2].add(gradient: g, rowTerm: h)
                h3[b3].add(gradient: g, rowTerm: h)
            }
        case 3:
            let c0 = column(0), c1 = column(1), c2 = column(2)
            let h0 = hist(0), h1 = hist(1), h2 = hist(2)
            for k in 0..<count {
                let i = Int(idx[k])
                let g = Int64(og[k]), h = E.rowTerm(hessian: Int64(oh[k]))
                let b0 = Int(c0[i]), b1 = Int(c1[i]), b2 = Int(c2[i])
                h0[b0].add(gradient: g, rowTerm: h)
                h1[b1].add(gradient: g, rowTerm: h)
                h2[b2].add(gradient: g, rowTerm: h)
            }
        case 2:
            let c0 = column(0), c1 = column(1)
            let h0 = hist(0), h1 = hist(1)
            for k in 0..<count {
                let i = Int(idx[k])
                let g = Int64(og[k]), h = E.rowTerm(hessian: Int64(oh[k]))
                let b0 = Int(c0[i]), b1 = Int(c1[i])
                h0[b0].add(gradient: g, rowTerm: h)
                h1[b1].add(gradient: g, rowTerm: h)
            }
        default:
            for k in 0..<group.count {
                let c = column(k), hb = hist(k)
                for r in 0..<count {
                    let b = Int(c[Int(idx[r])])
                    hb[b].add(gradient: Int64(og[r]), rowTerm: E.rowTerm(hessian: Int64(oh[r])))
                }
            }
        }
    }

    /// Best threshold of one feature for a leaf whose histogram is in `slot`: maximises
    /// G_L²/(H_L+λ) + G_R²/(H_R+λ) − G²/(H+λ), trying NaN rows on either side. Ties keep
    /// the first threshold, so the result is deterministic.
    private func bestSplit<E: HistogramEntry>(_: E.Type, feature f: Int, slot: Int, g gq: Int64, h hq: Int64,
                                              c cq: Int64) -> SplitCandidate {
        let s = settings
        let q = quantizer
        let lambda = s.lambdaL2
        let minData = Int64(max(1, s.minDataInLeaf))
        let minHess = s.minSumHessianInLeaf
        let g = q.g(gq), h = q.h(hq), c = Double(cq)
        let parentScore = g * g / (h + lambda)
        // A child must hold min_data_in_leaf rows both by count and by hessian weight
        // (hessian × rows-per-unit-hessian of this leaf). Rows the model is already sure
        // of carry almost no hessian; a leaf made of them alone would get a huge value
        // −G/H and wreck calibration. LightGBM has the same effective rule because it
        // estimates counts from hessians.
        let minChildHessian = max(minHess, Double(minData) * h / max(c, 1))
        var best = SplitCandidate()
        let nb = valueBins[f]
        let hb = histograms.assumingMemoryBound(to: E.self) + slot * totalBins + offsets[f]
        let nan = hb[nb]
        if nb < 2 && nan.c == 0 { return best }
        var lgq: Int64 = 0, lhq: Int64 = 0, lc: Int64 = 0
        for t in 0..<nb {
            // An empty bin after the first leaves the left sums as they were at the
            // previous threshold, so every candidate here equals one already tried (with
            // the same conditions), and ties keep the first: skipping it changes nothing.
            // Small nodes over 255-bin features are mostly empty bins, and small data
            // sets are mostly small nodes.
            let bin = hb[t]
            if t > 0 && bin.c == 0 { continue }
            lgq &+= bin.g; lhq &+= bin.h; lc &+= bin.c
            if t == nb - 1 && nan.c == 0 { break }
            // NaN rows go right.
            let rc = cq - lc
            if rc < minData { break }
            let lg = q.g(lgq), lh = q.h(lhq)
            if lc >= minData && lh >= minChildHessian && h - lh >= minChildHessian {
                let rg = g - lg, rh = h - lh
                let gain = lg * lg / (lh + lambda) + rg * rg / (rh + lambda) - parentScore
                if gain > best.gain {
                    best = SplitCandidate(gain: gain, feature: f, thresholdBin: t, defaultLeft: false,
                                          leftG: lgq, leftH: lhq, leftC: lc)
                }
            }
            // NaN rows go left (not at the last bin, where that would leave nothing right).
            if nan.c > 0 && t < nb - 1 {
                let g2q = lgq &+ nan.g, h2q = lhq &+ nan.h, c2 = lc &+ nan.c
                let g2 = q.g(g2q), h2 = q.h(h2q)
                if c2 >= minData && cq - c2 >= minData && h2 >= minChildHessian && h - h2 >= minChildHessian {
                    let rg = g - g2, rh = h - h2
                    let gain = g2 * g2 / (h2 + lambda) + rg * rg / (rh + lambda) - parentScore
                    if gain > best.gain {
                        best = SplitCandidate(gain: gain, feature: f, thresholdBin: t, defaultLeft: true,
                                              leftG: g2q, leftH: h2q, leftC: c2)
                    }
                }
            }
        }
        return best
    }

    /// Stable in-place partition of a leaf's rows; returns the number going left. Large
    /// leaves are partitioned in fixed-size chunks in parallel (each chunk splits into
    /// two scratch areas, then chunks are copied to offsets from prefix sums); a stable
    /// partition is unique, so the result does not depend on the thread count.
    private func partition(begin: Int, count: Int, split: SplitCandidate) -> Int {
        let col = UnsafePointer(data.column(split.feature))
        let nanBin = UInt8(binnings[split.feature].nanBin)
        let t = UInt8(split.thresholdBin)
        let defaultLeft = split.defaultLeft
        let chunk = max(1, settings.partitionChunk)
        let chunks = (count + chunk - 1) / chunk
        let indices = self.indices, leftScratch = self.scratch, rightScratch = self.scratch2
        var leftCounts = [Int](repeating: 0, count: max(1, chunks))
        let threads = chunks >= 2 ? settings.threads : 1
        leftCounts.withUnsafeMutableBufferPointer { lc in
            let counts = lc.baseAddress!
            parallelFor(chunks, threads: threads) { c in
                let lo = begin + c * chunk, hi = min(begin + count, lo + chunk)
                var l = lo, r = lo
                // Branch-free: the side is data-dependent and unpredictable, so both
                // scratch areas are written and only the matching cursor advances.
                // (nanBin is above every value bin, so `b <= t` already excludes NaN.)
                for k in lo..<hi {
                    let i = indices[k]
                    let b = col[Int(i)]
                    let goLeft = (b <= t) || (defaultLeft && b == nanBin)
                    leftScratch[l] = i
                    rightScratch[r] = i
                    let step = goLeft ? 1 : 0
                    l += step
                    r += 1 - step
                }
                counts[c] = l - lo
            }
        }
        let totalLeft = leftCounts.reduce(0, +)
        var leftOffsets = [Int](repeating: 0, count: max(1, chunks)), rightOffsets = leftOffsets
        var lAcc = begin, rAcc = begin + totalLeft
        for c in 0..<chunks {
            leftOffsets[c] = lAcc
            rightOffsets[c] = rAcc
            let size = min(chunk, count - c * chunk)
            lAcc += leftCounts[c]
            rAcc += size - leftCounts[c]
        }
        parallelFor(chunks, threads: threads) { c in
            let lo = begin + c * chunk, size = min(chunk, count - c * chunk)
            let nl = leftCounts[c]
            (indices + leftOffsets[c]).update(from: leftScratch + lo, count: nl)
            (indices + rightOffsets[c]).update(from: rightScratch + lo, count: size - nl)
        }
        return totalLeft
    }
}

extension RegressionTree {
    /// Leaf reached by row `r` of binned data (training-time traversal; agrees with the
    /// Float traversal by the binning guarantee).
    @inline(__always)
    func leaf(binned data: BinnedMatrix, row r: Int, nanBins: [Int]) -> Int {
        var node = root
        while node >= 0 {
            let i = Int(node)
            let f = Int(splitFeature[i])
            let b = Int(data.column(f)[r])
            let goLeft = b == nanBins[f] ? defaultLeft[i] : b <= Int(thresholdBin[i])
            node = goLeft ? leftChild[i] : rightChild[i]
        }
        return Int(~node)
    }
}
