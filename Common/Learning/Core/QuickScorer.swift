/// Batch scoring of a forest by QuickScorer (Lucchese et al., SIGIR 2015): instead of
/// walking each tree node by node — a hard-to-predict branch per node — every row keeps a
/// bit per leaf of each tree, and for each feature the nodes whose test the row fails
/// (value > threshold) clear the leaves of their left subtree. The nodes of a feature are
/// sorted by threshold, so the failed ones are a prefix, scanned in order and left at the
/// first pass. A tree's exit leaf is then its leftmost leaf still set.
///
/// Guarantees: the same leaf as the node-by-node walk for every row (NaN follows each
/// node's default direction), and the outputs added tree by tree in tree order, so the
/// same scores bit for bit. Built only when every tree has at most 64 leaves.
struct QuickScorer: Sendable {
    /// One internal node, in its feature's list sorted by threshold.
    struct Test {
        var threshold: Float
        var tree: Int32
        /// Clears the leaves of the node's left subtree.
        var mask: UInt64
    }

    /// `tests[featureStart[f] ..< featureStart[f + 1]]`: feature f's nodes by threshold.
    let tests: [Test]
    let featureStart: [Int]
    /// Per feature, the nodes that send NaN right (their mask applies when the value is NaN).
    let nanRightStart: [Int]
    let nanRight: [Test]
    /// `leaves[leafStart[t] + i]`: tree t's i-th leaf from the left.
    let leaves: [Double]
    let leafStart: [Int]
    /// All leaves of each tree set.
    let full: [UInt64]
    /// The features some node tests (the others need no look).
    let usedFeatures: [Int]
    /// Columns a batch must have.
    let featureCount: Int

    init?(_ trees: [RegressionTree]) {
        guard !trees.isEmpty, trees.allSatisfy({ $0.leafCount <= 64 && $0.splitFeature.allSatisfy { $0 >= 0 } }) else { return nil }
        let featureCount = Int(trees.map { $0.splitFeature.max() ?? -1 }.max() ?? -1) + 1
        var byFeature = [[Test]](repeating: [], count: featureCount)
        var nanByFeature = [[Test]](repeating: [], count: featureCount)
        var leaves: [Double] = [], leafStart: [Int] = [], full: [UInt64] = []
        for (t, tree) in trees.enumerated() {
            leafStart.append(leaves.count)
            // Leaves numbered left to right; each node's left subtree is a run of them.
            var order: [Int] = []
            func visit(_ ref: Int32) -> Range<Int> {
                if ref < 0 {
                    order.append(Int(~ref))
                    return (order.count - 1)..<order.count
                }
                let i = Int(ref)
                let left = visit(tree.leftChild[i])
                let right = visit(tree.rightChild[i])
                let bits = left.count == 64 ? UInt64.max : ((UInt64(1) << UInt64(left.count)) - 1) << UInt64(left.lowerBound)
                let test = Test(threshold: tree.threshold[i], tree: Int32(t), mask: ~bits)
                byFeature[Int(tree.splitFeature[i])].append(test)
                if !tree.defaultLeft[i] { nanByFeature[Int(tree.splitFeature[i])].append(test) }
                return left.lowerBound..<right.upperBound
            }
            _ = visit(tree.root)
            leaves.append(contentsOf: order.map { tree.leafValue[$0] })
            full.append(order.count == 64 ? .max : (UInt64(1) << UInt64(order.count)) - 1)
        }
        var tests: [Test] = [], featureStart = [0], nanRight: [Test] = [], nanRightStart = [0]
        for f in 0..<featureCount {
            // Stable on ties: equal thresholds fail together, so their order does not matter.
            tests.append(contentsOf: byFeature[f].sorted { $0.threshold < $1.threshold })
            featureStart.append(tests.count)
            nanRight.append(contentsOf: nanByFeature[f])
            nanRightStart.append(nanRight.count)
        }
        self.tests = tests
        self.featureStart = featureStart
        self.nanRight = nanRight
        self.nanRightStart = nanRightStart
        self.leaves = leaves
        self.leafStart = leafStart
        self.full = full
        self.featureCount = featureCount
        usedFeatures = (0..<featureCount).filter { featureStart[$0] < featureStart[$0 + 1] }
    }

    /// Clears, in `live`, the leaves that feature `f` at value `x` rules out.
    @inline(__always)
    func apply(feature f: Int, value x: Float, to live: UnsafeMutablePointer<UInt64>,
               tests testBuf: UnsafeBufferPointer<Test>, nanRight nanBuf: UnsafeBufferPointer<Test>) {
        if x.isNaN {
            for k in nanRightStart[f]..<nanRightStart[f + 1] {
                let t = nanBuf[k]
                live[Int(t.tree)] &= t.mask
            }
            return
        }
        // The node sends x left when x <= threshold: the failed nodes are those with
        // threshold < x, a prefix of the sorted list.
        var k = featureStart[f]
        let end = featureStart[f + 1]
        while k < end {
            let t = testBuf[k]
            if t.threshold >= x { break }
            live[Int(t.tree)] &= t.mask
            k += 1
        }
    }

    /// The leaves still possible once `features` take their values (`value(f)`), the
    /// other features not yet looked at: a partial evaluation. Masks of disjoint feature
    /// sets combine by AND, whatever order they were made in, because every failed node
    /// only ever clears bits.
    func mask(features: [Int], value: (Int) -> Float) -> [UInt64] {
        var live = full
        tests.withUnsafeBufferPointer { testBuf in
            nanRight.withUnsafeBufferPointer { nanBuf in
                live.withUnsafeMutableBufferPointer { l in
                    for f in features where f < featureCount { apply(feature: f, value: value(f), to: l.baseAddress!, tests: testBuf, nanRight: nanBuf) }
                }
            }
        }
        return live
    }

    /// Adds each tree's output to `scores[r]` for rows `rows`, starting each row from
    /// the leaves `seed(r, live)` leaves possible and looking only at `features` of
    /// `columns`: the caller has already applied the others (see ``mask(features:value:)``).
    func accumulate(columns: UnsafeBufferPointer<UnsafePointer<Float>>, rows: Range<Int>, scores: UnsafeMutablePointer<Double>,
                    features: [Int], seed: (Int, UnsafeMutablePointer<UInt64>) -> Void) {
        let treeCount = full.count
        let live = UnsafeMutablePointer<UInt64>.allocate(capacity: max(1, treeCount))
        defer { live.deallocate() }
        let used = features.filter { $0 < featureCount && featureStart[$0] < featureStart[$0 + 1] }
        tests.withUnsafeBufferPointer { testBuf in
        nanRight.withUnsafeBufferPointer { nanBuf in
        leaves.withUnsafeBufferPointer { leafBuf in
        leafStart.withUnsafeBufferPointer { starts in
            for r in rows {
                seed(r, live)
                for f in used { apply(feature: f, value: columns[f][r], to: live, tests: testBuf, nanRight: nanBuf) }
                var s = scores[r]
                for t in 0..<treeCount { s += leafBuf[starts[t] + live[t].trailingZeroBitCount] }
                scores[r] = s
            }
        }
        }
        }
        }
    }

    /// Adds each tree's output to `scores[r]` for rows `rows` of column-major features.
    func accumulate(columns: UnsafeBufferPointer<UnsafePointer<Float>>, rows: Range<Int>, scores: UnsafeMutablePointer<Double>) {
        full.withUnsafeBufferPointer { all in
            let treeCount = all.count
            accumulate(columns: columns, rows: rows, scores: scores, features: usedFeatures) { _, live in
                live.update(from: all.baseAddress!, count: treeCount)
            }
        }
    }
}
