import Foundation

/// One regression tree of a boosted ensemble.
///
/// Layout: internal nodes `0..<nodeCount` (node 0 is the root when there is a split),
/// leaves `0..<leafCount`; a child reference `c ≥ 0` is an internal node, `c < 0` is
/// leaf `~c`. A tree without splits is a single leaf. Rows go left when
/// `value ≤ threshold`, or when the value is NaN and `defaultLeft` is set.
///
/// Covers are the number of (bagged) training rows that reached each node; a node's
/// cover equals the sum of its children's, which TreeSHAP relies on.
public struct RegressionTree: Sendable, Equatable {
    public var splitFeature: [Int32] = []
    public var thresholdBin: [UInt8] = []
    public var threshold: [Float] = []
    public var defaultLeft: [Bool] = []
    public var leftChild: [Int32] = []
    public var rightChild: [Int32] = []
    public var splitGain: [Float] = []
    public var nodeCover: [Double] = []
    public var leafValue: [Double] = [0]
    public var leafCover: [Double] = [0]

    public init() {}

    public var nodeCount: Int { splitFeature.count }
    public var leafCount: Int { leafValue.count }
    /// Reference to the root: node 0, or leaf 0 for a tree without splits.
    public var root: Int32 { nodeCount == 0 ? ~0 : 0 }

    /// Leaf reached by a row given as a feature lookup.
    @inline(__always)
    public func leaf(_ value: (Int) -> Float) -> Int {
        var node = root
        while node >= 0 {
            let i = Int(node)
            let v = value(Int(splitFeature[i]))
            let goLeft = v.isNaN ? defaultLeft[i] : v <= threshold[i]
            node = goLeft ? leftChild[i] : rightChild[i]
        }
        return Int(~node)
    }

    public func predict(_ row: [Float]) -> Double { leafValue[leaf { row[$0] }] }

    /// Cover-weighted mean of the leaf values: the tree's expected output over the
    /// training distribution, the base value of its SHAP decomposition.
    public var expectedValue: Double {
        let total = leafCover.reduce(0, +)
        guard total > 0 else { return leafValue.reduce(0, +) / Double(max(1, leafCount)) }
        var s = 0.0
        for i in 0..<leafCount { s += leafValue[i] * leafCover[i] }
        return s / total
    }

    /// Depth of each leaf (root split = depth 1).
    var maxDepth: Int {
        func depth(_ n: Int32) -> Int {
            n < 0 ? 0 : 1 + max(depth(leftChild[Int(n)]), depth(rightChild[Int(n)]))
        }
        return depth(root)
    }
}

/// All trees of a model packed into one contiguous node array for fast batch scoring:
/// 16-byte nodes, the NaN direction folded into the sign of the feature index.
struct PackedForest: Sendable {
    struct Node {
        /// Feature index, or ~feature when NaN goes left.
        var feature: Int32
        var threshold: Float
        /// ≥ 0: node index within the forest; < 0: ~(leaf index within the forest).
        var left: Int32
        var right: Int32
    }

    var nodes: [Node] = []
    var leaves: [Double] = []
    /// Root reference per tree (forest-global indices, same encoding as children).
    var roots: [Int32] = []
    /// The faster batch path, for forests whose trees have at most 64 leaves.
    var quick: QuickScorer?

    init(_ trees: [RegressionTree]) {
        quick = QuickScorer(trees)
        for t in trees {
            let nodeBase = Int32(nodes.count), leafBase = Int32(leaves.count)
            func remap(_ c: Int32) -> Int32 { c >= 0 ? c + nodeBase : ~(~c + leafBase) }
            roots.append(remap(t.root))
            for i in 0..<t.nodeCount {
                let f = t.splitFeature[i]
                nodes.append(Node(feature: t.defaultLeft[i] ? ~f : f, threshold: t.threshold[i],
                                  left: remap(t.leftChild[i]), right: remap(t.rightChild[i])))
            }
            leaves.append(contentsOf: t.leafValue)
        }
    }

    /// Adds each tree's output to `scores` for rows `rows` of column-major features.
    /// Rows are processed in blocks: a block is first copied into a small row-major
    /// buffer (so a node's feature value is one load away, not two), then scored tree by
    /// tree, so each tree's nodes stay in cache while it scores the block.
    func accumulate(columns: UnsafeBufferPointer<UnsafePointer<Float>>, rows: Range<Int>,
                    scores: UnsafeMutablePointer<Double>) {
        if let quick, columns.count >= quick.featureCount {
            quick.accumulate(columns: columns, rows: rows, scores: scores)
            return
        }
        walk(columns: columns, rows: rows, scores: scores)
    }

    /// Node by node, for forests QuickScorer does not take.
    func walk(columns: UnsafeBufferPointer<UnsafePointer<Float>>, rows: Range<Int>,
              scores: UnsafeMutablePointer<Double>) {
        let featureCount = columns.count
        let block = 64
        let buffer = UnsafeMutablePointer<Float>.allocate(capacity: block * max(1, featureCount))
        defer { buffer.deallocate() }
        nodes.withUnsafeBufferPointer { nodeBuf in
            leaves.withUnsafeBufferPointer { leafBuf in
                guard let nodesP = nodeBuf.baseAddress, let leavesP = leafBuf.baseAddress else {
                    // No internal nodes at all: every tree is a single leaf.
                    for root in roots { for r in rows { scores[r] += leafBuf[Int(~root)] } }
                    return
                }
                var start = rows.lowerBound
                while start < rows.upperBound {
                    let end = min(start + block, rows.upperBound)
                    let count = end - start
                    for f in 0..<featureCount {
                        let col = columns[f] + start
                        for k in 0..<count { buffer[k * featureCount + f] = col[k] }
                    }
                    for root in roots {
                        if root < 0 {
                            let v = leavesP[Int(~root)]
                            for r in start..<end { scores[r] += v }
                            continue
                        }
                        for k in 0..<count {
                            let x = buffer + k * featureCount
                            var node = root
                            repeat {
                                let n = nodesP[Int(node)]
                                let f = n.feature
                                let v = x[Int(f >= 0 ? f : ~f)]
                                // NaN fails `<=`, so it goes right unless the sign says left.
                                let goLeft = v <= n.threshold || (f < 0 && v.isNaN)
                                node = goLeft ? n.left : n.right
                            } while node >= 0
                            scores[start + k] += leavesP[Int(~node)]
                        }
                    }
                    start = end
                }
            }
        }
    }
}
