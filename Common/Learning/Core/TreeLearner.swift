import Foundation

/// Gradient and hessian sums and the row count of one histogram bin.
struct HistogramBin {
    var g: Double
    var h: Double
    var c: Double
}

/// The best split found for one leaf.
struct SplitCandidate {
    var gain: Double = -.infinity
    var feature: Int = -1
    var thresholdBin: Int = 0
    var defaultLeft = false
    var leftG = 0.0, leftH = 0.0, leftC = 0.0
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
}

/// Grows one regression tree leaf-wise on binned data from per-row gradients and
/// hessians (the second-order boosting step of LightGBM / XGBoost).
///
/// How it stays fast: rows of each leaf are a contiguous range of one index array
/// (re-partitioned in place at every split); gradients are gathered into leaf order
/// once per histogram so the inner loop reads them sequentially; only the smaller child's
/// histogram is built, the larger one is the parent's minus the smaller's; histogram
/// building is spread over features across threads with a fixed assignment, so results
/// do not depend on scheduling.
final class HistogramTreeLearner {
    let data: BinnedMatrix
    let binnings: [FeatureBinning]
    let settings: TreeLearnerSettings
    let offsets: [Int]
    let totalBins: Int
    private let indices: UnsafeMutablePointer<Int32>
    private let scratch: UnsafeMutablePointer<Int32>
    private let scratch2: UnsafeMutablePointer<Int32>
    private let orderedG: UnsafeMutablePointer<Float>
    private let orderedH: UnsafeMutablePointer<Float>
    private let histograms: UnsafeMutablePointer<HistogramBin>

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
        orderedG = .allocate(capacity: n)
        orderedH = .allocate(capacity: n)
        let slots = max(2, settings.numLeaves)
        histograms = .allocate(capacity: slots * max(1, total))
        histograms.initialize(repeating: HistogramBin(g: 0, h: 0, c: 0), count: slots * max(1, total))
    }

    deinit {
        indices.deallocate(); scratch.deallocate(); scratch2.deallocate(); orderedG.deallocate(); orderedH.deallocate()
        histograms.deallocate()
    }

    private struct Leaf {
        var begin: Int
        var count: Int
        var g: Double
        var h: Double
        var depth: Int
        var slot: Int = -1
        var best = SplitCandidate()
        /// Internal node whose child this leaf is (-1 for the root) and on which side.
        var parent: Int = -1
        var isLeft = false
    }

    /// Grows a tree on `bag` (all rows when nil) using only `features`.
    func grow(gradients: UnsafePointer<Float>, hessians: UnsafePointer<Float>, bag: [Int32]?,
              features: [Int]) -> RegressionTree {
        let s = settings
        let rootCount: Int
        if let bag {
            rootCount = bag.count
            bag.withUnsafeBufferPointer { indices.update(from: $0.baseAddress!, count: bag.count) }
        } else {
            rootCount = data.rowCount
            for i in 0..<rootCount { indices[i] = Int32(i) }
        }
        var g = 0.0, h = 0.0
        for k in 0..<rootCount {
            let i = Int(indices[k])
            g += Double(gradients[i]); h += Double(hessians[i])
        }
        var tree = RegressionTree()
        var leaves = [Leaf(begin: 0, count: rootCount, g: g, h: h, depth: 0)]
        var nextSlot = 0
        if canSplit(leaves[0]) {
            leaves[0].slot = nextSlot; nextSlot += 1
            leaves[0].best = buildAndSearch(buildSlot: 0, begin: 0, count: rootCount, identity: bag == nil,
                                            subtractFrom: nil,
                                            searches: [SearchRequest(slot: 0, g: g, h: h, c: Double(rootCount))],
                                            gradients: gradients, hessians: hessians, features: features)[0]
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
                // smaller, and search both for their best split — all in one parallel pass
                // over feature groups.
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
                    searches: [leftCan ? SearchRequest(slot: left.slot, g: left.g, h: left.h, c: Double(left.count)) : nil,
                               rightCan ? SearchRequest(slot: right.slot, g: right.g, h: right.h, c: Double(right.count)) : nil],
                    gradients: gradients, hessians: hessians, features: features)
                left.best = found[0]
                right.best = found[1]
            }
            leaves[chosen] = left
            leaves.append(right)
        }

        tree.leafValue = leaves.map { leaf in
            let denominator = leaf.h + s.lambdaL2
            return denominator > 0 ? -leaf.g / denominator * s.learningRate : 0
        }
        tree.leafCover = leaves.map { Double($0.count) }
        leafBegin = leaves.map(\.begin)
        leafRowCount = leaves.map(\.count)
        return tree
    }

    private func canSplit(_ leaf: Leaf) -> Bool {
        leaf.count >= 2 * max(1, settings.minDataInLeaf)
            && (settings.maxDepth <= 0 || leaf.depth < settings.maxDepth)
            && leaf.h >= 2 * settings.minSumHessianInLeaf
    }

    struct SearchRequest {
        var slot: Int
        var g: Double
        var h: Double
        var c: Double
    }

    /// Builds the histogram of rows `begin..<begin+count` into `buildSlot`, optionally
    /// subtracts it from `subtractFrom` (turning the parent's histogram into the larger
    /// sibling's), then finds the best split for each request — all per feature group in
    /// one parallel region, since every step only touches that group's features. The
    /// per-feature winners are reduced in feature order, so the result equals a serial
    /// scan regardless of the thread count.
    private func buildAndSearch(buildSlot: Int, begin: Int, count: Int, identity: Bool, subtractFrom parentSlot: Int?,
                                searches: [SearchRequest?], gradients: UnsafePointer<Float>,
                                hessians: UnsafePointer<Float>, features: [Int]) -> [SplitCandidate] {
        let hist = histograms + buildSlot * totalBins
        let parentHist = parentSlot.map { histograms + $0 * totalBins }
        let idx = UnsafePointer(indices + begin)
        let og = UnsafePointer(orderedG), oh = UnsafePointer(orderedH)
        // Gather once into leaf order, so the per-feature passes read gradients sequentially.
        let orderedG = self.orderedG, orderedH = self.orderedH
        parallelChunks(count, threads: settings.threads, minChunk: 32_768) { range in
            if identity {
                (orderedG + range.lowerBound).update(from: gradients + range.lowerBound, count: range.count)
                (orderedH + range.lowerBound).update(from: hessians + range.lowerBound, count: range.count)
            } else {
                for k in range {
                    let i = Int(idx[k])
                    orderedG[k] = gradients[i]
                    orderedH[k] = hessians[i]
                }
            }
        }
        let featureCount = features.count
        let threads = count * featureCount >= 1 << 16 ? settings.threads : 1
        let groups = Self.featureGroups(Array(0..<featureCount), threads: threads)
        let data = self.data
        let offsets = self.offsets
        let binnings = self.binnings
        var candidates = [SplitCandidate](repeating: SplitCandidate(), count: searches.count * featureCount)
        candidates.withUnsafeMutableBufferPointer { out in
            let cand = out.baseAddress!
            parallelFor(groups.count, threads: threads) { gi in
                let group = groups[gi]
                var cols: [UnsafePointer<UInt8>] = []
                var hists: [UnsafeMutablePointer<HistogramBin>] = []
                for j in group {
                    let f = features[j]
                    let hb = hist + offsets[f]
                    hb.update(repeating: HistogramBin(g: 0, h: 0, c: 0), count: binnings[f].totalBinCount)
                    hists.append(hb)
                    cols.append(UnsafePointer(data.column(f)))
                }
                Self.accumulate(cols: cols, hists: hists, idx: idx, og: og, oh: oh, count: count)
                if let parentHist {
                    for j in group {
                        let f = features[j]
                        let p = parentHist + offsets[f], c = hist + offsets[f]
                        for b in 0..<binnings[f].totalBinCount {
                            p[b].g -= c[b].g; p[b].h -= c[b].h; p[b].c -= c[b].c
                        }
                    }
                }
                for (si, request) in searches.enumerated() {
                    guard let request else { continue }
                    for j in group {
                        cand[si * featureCount + j] = self.bestSplit(feature: features[j], slot: request.slot,
                                                                     g: request.g, h: request.h, c: request.c)
                    }
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

    @inline(__always)
    static func accumulate(cols: [UnsafePointer<UInt8>], hists: [UnsafeMutablePointer<HistogramBin>],
                           idx: UnsafePointer<Int32>, og: UnsafePointer<Float>, oh: UnsafePointer<Float>, count: Int) {
        switch cols.count {
        case 4:
            let c0 = cols[0], c1 = cols[1], c2 = cols[2], c3 = cols[3]
            let h0 = hists[0], h1 = hists[1], h2 = hists[2], h3 = hists[3]
            for k in 0..<count {
                let i = Int(idx[k])
                let g = Double(og[k]), h = Double(oh[k])
                let b0 = Int(c0[i]), b1 = Int(c1[i]), b2 = Int(c2[i]), b3 = Int(c3[i])
                h0[b0].g += g; h0[b0].h += h; h0[b0].c += 1
                h1[b1].g += g; h1[b1].h += h; h1[b1].c += 1
                h2[b2].g += g; h2[b2].h += h; h2[b2].c += 1
                h3[b3].g += g; h3[b3].h += h; h3[b3].c += 1
            }
        case 3:
            let c0 = cols[0], c1 = cols[1], c2 = cols[2]
            let h0 = hists[0], h1 = hists[1], h2 = hists[2]
            for k in 0..<count {
                let i = Int(idx[k])
                let g = Double(og[k]), h = Double(oh[k])
                let b0 = Int(c0[i]), b1 = Int(c1[i]), b2 = Int(c2[i])
                h0[b0].g += g; h0[b0].h += h; h0[b0].c += 1
                h1[b1].g += g; h1[b1].h += h; h1[b1].c += 1
                h2[b2].g += g; h2[b2].h += h; h2[b2].c += 1
            }
        default:
            for (c, hb) in zip(cols, hists) {
                for k in 0..<count {
                    let b = Int(c[Int(idx[k])])
                    hb[b].g += Double(og[k]); hb[b].h += Double(oh[k]); hb[b].c += 1
                }
            }
        }
    }

    /// Best threshold of one feature for a leaf whose histogram is in `slot`: maximises
    /// G_L²/(H_L+λ) + G_R²/(H_R+λ) − G²/(H+λ), trying NaN rows on either side. Ties keep
    /// the first threshold, so the result is deterministic.
    private func bestSplit(feature f: Int, slot: Int, g: Double, h: Double, c: Double) -> SplitCandidate {
        let s = settings
        let lambda = s.lambdaL2
        let minData = Double(max(1, s.minDataInLeaf))
        let minHess = s.minSumHessianInLeaf
        let parentScore = g * g / (h + lambda)
        // A child must hold min_data_in_leaf rows both by count and by hessian weight
        // (hessian × rows-per-unit-hessian of this leaf). Rows the model is already sure
        // of carry almost no hessian; a leaf made of them alone would get a huge value
        // −G/H and wreck calibration. LightGBM has the same effective rule because it
        // estimates counts from hessians.
        let minChildHessian = max(minHess, minData * h / max(c, 1))
        var best = SplitCandidate()
        let binning = binnings[f]
        let nb = binning.valueBinCount
        let hb = histograms + slot * totalBins + offsets[f]
        let nan = hb[nb]
        if nb < 2 && nan.c == 0 { return best }
        var lg = 0.0, lh = 0.0, lc = 0.0
        for t in 0..<nb {
            lg += hb[t].g; lh += hb[t].h; lc += hb[t].c
            if t == nb - 1 && nan.c == 0 { break }
            // NaN rows go right.
            let rc = c - lc
            if rc < minData { break }
            if lc >= minData && lh >= minChildHessian && h - lh >= minChildHessian {
                let rg = g - lg, rh = h - lh
                let gain = lg * lg / (lh + lambda) + rg * rg / (rh + lambda) - parentScore
                if gain > best.gain {
                    best = SplitCandidate(gain: gain, feature: f, thresholdBin: t, defaultLeft: false,
                                          leftG: lg, leftH: lh, leftC: lc)
                }
            }
            // NaN rows go left (not at the last bin, where that would leave nothing right).
            if nan.c > 0 && t < nb - 1 {
                let g2 = lg + nan.g, h2 = lh + nan.h, c2 = lc + nan.c
                if c2 >= minData && c - c2 >= minData && h2 >= minChildHessian && h - h2 >= minChildHessian {
                    let rg = g - g2, rh = h - h2
                    let gain = g2 * g2 / (h2 + lambda) + rg * rg / (rh + lambda) - parentScore
                    if gain > best.gain {
                        best = SplitCandidate(gain: gain, feature: f, thresholdBin: t, defaultLeft: true,
                                              leftG: g2, leftH: h2, leftC: c2)
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
        let chunk = 16_384
        let chunks = (count + chunk - 1) / chunk
        let indices = self.indices, leftScratch = self.scratch, rightScratch = self.scratch2
        var leftCounts = [Int](repeating: 0, count: max(1, chunks))
        let threads = count >= 32_768 ? settings.threads : 1
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
