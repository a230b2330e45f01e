import Foundation

/// TreeSHAP with the per-leaf work done once per model, for explaining many rows with one
/// model (the gateway's reasons, a score job's top K per user).
///
/// Path-dependent TreeSHAP is a sum over leaves of the Shapley values of a small game: for
/// leaf `l` with value `v` and the unique features `Q` on its path (`q` of them), a
/// coalition `T ⊆ Q` is worth `v · Π_{j∈T} o_j · Π_{j∈Q∖T} p_j`, where `p_j` is the product
/// of the cover fractions of the path's splits on `j` (the share of training rows going
/// the path's way) and `o_j` is 1 when the row goes the path's way at all of them, else 0.
/// With `S` the features the row satisfies, only `T ⊆ S` count, and the value of feature
/// `i` works out to
///
///     i ∈ S:  v (1 − p_i) · Π_{j∈Q∖S} p_j · H(S ∖ {i})
///     i ∉ S:  −v p_i · Π_{j∈Q∖S∖{i}} p_j · H(S)
///
/// with `H(R) = Σ_{T⊆R} |T|! (q−|T|−1)! / q! · Π_{j∈R∖T} p_j`, which depends on the leaf
/// alone. `H` is tabulated for every subset when the model is prepared (2^q values per
/// leaf; trees with a path of more than ``maxPathFeatures`` features keep the recursive
/// algorithm), so a row costs one comparison per node and O(q) per leaf instead of the
/// recursive algorithm's O(q²) path updates per leaf — the idea of Yang's "Fast TreeSHAP"
/// (v2). Results equal ``TreeSHAP/contributions(_:row:)`` up to rounding (tested).
public struct PreparedTreeSHAP: Sendable {
    /// Paths with more unique features than this are explained recursively: the table
    /// would need 2^q entries per leaf. (At 12, 3 of the market model's 200 trees went
    /// recursive: 376 µs a row against 257 at 16.)
    public static let maxPathFeatures = 16
    /// A tree whose tables would hold more values than this (2 MiB) is explained
    /// recursively too: a few deep chains must not cost a server tens of megabytes.
    public static let maxTableEntriesPerTree = 1 << 18

    /// One tree: where its nodes and leaves sit in the flat arrays, or the tree itself when
    /// it is explained recursively (a path too long for the tables).
    struct PreparedTree: Sendable {
        var tree: RegressionTree
        var recursive = false
        var firstNode = 0, nodeCount = 0
        var firstLeaf = 0, leafCount = 0
    }

    /// An internal node in preorder (parents before children, so one forward pass settles
    /// every node's mask). Children: `≥ 0` a node of the same tree (preorder index), `< 0`
    /// leaf `~c` of the tree (left to right).
    struct Node: Sendable {
        var threshold: Float
        var feature: Int32
        var left: Int32
        var right: Int32
        /// The node's feature's slot among the unique features of the path to it — the
        /// same for every leaf below, since a slot is assigned on first appearance.
        var slot: UInt8
        var defaultLeft: Bool
    }

    struct Leaf: Sendable {
        var value: Double
        /// The leaf's path features are `features[firstFeature ..< firstFeature + q]`
        /// (schema index) with their cover fractions in `fractions`.
        var firstFeature: Int32
        var q: Int32
        /// Where the leaf's 2^q values of H start in `table`.
        var table: Int
    }

    let trees: [PreparedTree]
    let nodes: [Node]
    let leaves: [Leaf]
    let features: [Int32]
    let fractions: [Double]
    let table: [Double]
    /// The most nodes plus leaves of one tree: the size of the per-tree mask scratch.
    let maxTreeSize: Int
    public let featureCount: Int
    /// Trees explained recursively, having a path too long for the tables.
    public var recursiveTreeCount: Int { trees.count { $0.recursive } }
    /// Memory the subset tables take.
    public var tableBytes: Int { table.count * MemoryLayout<Double>.stride }

    public init(_ model: GradientBoostedModel) {
        self.init(model, maxPathFeatures: Self.maxPathFeatures, maxTableEntriesPerTree: Self.maxTableEntriesPerTree)
    }

    /// With other limits, so tests reach the recursive fallback with small models.
    init(_ model: GradientBoostedModel, maxPathFeatures: Int, maxTableEntriesPerTree: Int) {
        featureCount = model.schema.count
        var trees: [PreparedTree] = [], nodes: [Node] = [], leaves: [Leaf] = []
        var features: [Int32] = [], fractions: [Double] = [], table: [Double] = []
        for tree in model.trees {
            var prepared = PreparedTree(tree: tree, firstNode: nodes.count, firstLeaf: leaves.count)
            let featureMark = features.count, tableMark = table.count
            if Self.prepare(tree, nodes: &nodes, leaves: &leaves, features: &features, fractions: &fractions, table: &table,
                            maxPathFeatures: maxPathFeatures, maxTableEntries: maxTableEntriesPerTree) {
                prepared.nodeCount = nodes.count - prepared.firstNode
                prepared.leafCount = leaves.count - prepared.firstLeaf
            } else {
                nodes.removeSubrange(prepared.firstNode...)
                leaves.removeSubrange(prepared.firstLeaf...)
                features.removeSubrange(featureMark...)
                fractions.removeSubrange(featureMark...)
                table.removeSubrange(tableMark...)
                prepared = PreparedTree(tree: tree, recursive: true, firstNode: nodes.count, firstLeaf: leaves.count)
            }
            trees.append(prepared)
        }
        self.trees = trees
        self.nodes = nodes
        self.leaves = leaves
        self.features = features
        self.fractions = fractions
        self.table = table
        maxTreeSize = trees.map { $0.nodeCount + $0.leafCount }.max() ?? 0
    }

    /// Appends `tree`'s nodes (preorder) and leaves (left to right) with their tables;
    /// false when a path has more than `maxPathFeatures` unique features or the tables
    /// more than `maxTableEntries` values (the caller drops what was appended).
    static func prepare(_ tree: RegressionTree, nodes: inout [Node], leaves: inout [Leaf], features: inout [Int32],
                        fractions: inout [Double], table: inout [Double], maxPathFeatures: Int, maxTableEntries: Int) -> Bool {
        guard tree.nodeCount > 0 else { return true }
        let firstNode = nodes.count, firstLeaf = leaves.count
        func cover(_ node: Int32) -> Double { node >= 0 ? tree.nodeCover[Int(node)] : tree.leafCover[Int(~node)] }
        // Depth-first, left before right, carrying the path's unique features and fractions;
        // returns the child reference the parent stores, nil when the path is too long.
        func walk(_ node: Int32, pathFeatures: [Int32], pathFractions: [Double]) -> Int32? {
            if node < 0 {
                guard pathFeatures.count <= maxPathFeatures else { return nil }
                leaves.append(Leaf(value: tree.leafValue[Int(~node)], firstFeature: Int32(features.count),
                                   q: Int32(pathFeatures.count), table: table.count))
                features += pathFeatures
                fractions += pathFractions
                table += subsetTable(pathFractions)
                return ~Int32(leaves.count - 1 - firstLeaf)
            }
            let i = Int(node), f = tree.splitFeature[i]
            let slot = pathFeatures.firstIndex(of: f) ?? pathFeatures.count
            let at = nodes.count
            nodes.append(Node(threshold: tree.threshold[i], feature: f, left: 0, right: 0, slot: UInt8(slot), defaultLeft: tree.defaultLeft[i]))
            let parent = cover(node)
            var refs: [Int32] = []
            for child in [tree.leftChild[i], tree.rightChild[i]] {
                let share = parent > 0 ? cover(child) / parent : 0
                var fs = pathFeatures, ps = pathFractions
                if slot < fs.count { ps[slot] *= share } else { fs.append(f); ps.append(share) }
                guard let ref = walk(child, pathFeatures: fs, pathFractions: ps) else { return nil }
                refs.append(ref)
            }
            nodes[at].left = refs[0]
            nodes[at].right = refs[1]
            return Int32(at - firstNode)
        }
        let firstTableEntry = table.count
        return walk(tree.root, pathFeatures: [], pathFractions: []) != nil && table.count - firstTableEntry <= maxTableEntries
    }

    /// H(R) for every subset R of the path's features (bit k = slot k), from the
    /// elementary symmetric polynomials of R's fractions: Σ_{T⊆R, |T|=t} Π_{R∖T} p = e_{|R|−t}.
    static func subsetTable(_ p: [Double]) -> [Double] {
        let q = p.count
        // w[t] = t! (q−t−1)! / q!
        var w = [Double](repeating: 0, count: q)
        for t in 0..<q {
            var x = 1.0 / Double(q)
            // t! (q−t−1)! / (q−1)! = 1 / C(q−1, t)
            var c = 1.0
            for k in 0..<t { c = c * Double(q - 1 - k) / Double(k + 1) }
            x /= c
            w[t] = x
        }
        var h = [Double](repeating: 0, count: 1 << q)
        var e = [Double](repeating: 0, count: q + 1)
        for mask in 0..<(1 << q) {
            // e_0..e_|R| of the fractions in R.
            for k in 0...q { e[k] = 0 }
            e[0] = 1
            var size = 0
            for j in 0..<q where mask & (1 << j) != 0 {
                size += 1
                var k = size
                while k >= 1 { e[k] += e[k - 1] * p[j]; k -= 1 }
            }
            var sum = 0.0
            for t in 0...size where t < q { sum += w[t] * e[size - t] }
            h[mask] = sum
        }
        return h
    }

    /// Contributions of each feature (schema order) to the margin of `row`.
    public func contributions(row: [Float]) -> [Double] {
        var phi = [Double](repeating: 0, count: featureCount)
        for prepared in trees where prepared.recursive { TreeSHAP.add(prepared.tree, row: row, into: &phi) }
        row.withUnsafeBufferPointer { x in
        phi.withUnsafeMutableBufferPointer { out in
        nodes.withUnsafeBufferPointer { nodes in
        leaves.withUnsafeBufferPointer { leaves in
        features.withUnsafeBufferPointer { features in
        fractions.withUnsafeBufferPointer { fractions in
        table.withUnsafeBufferPointer { table in
        withUnsafeTemporaryAllocation(of: Int.self, capacity: max(1, maxTreeSize)) { masks in
            for t in trees where !t.recursive && t.nodeCount > 0 {
                // Each node's and leaf's set of path features the row satisfies so far
                // (bit = slot), settled parent to child: one comparison per node.
                masks[0] = ~0
                for i in 0..<t.nodeCount {
                    let n = nodes[t.firstNode + i], m = masks[i]
                    let v = x[Int(n.feature)]
                    let goesLeft = v.isNaN ? n.defaultLeft : v <= n.threshold
                    let failed = m & ~(1 << Int(n.slot))
                    masks[n.left >= 0 ? Int(n.left) : t.nodeCount + Int(~n.left)] = goesLeft ? m : failed
                    masks[n.right >= 0 ? Int(n.right) : t.nodeCount + Int(~n.right)] = goesLeft ? failed : m
                }
                for j in 0..<t.leafCount {
                    let leaf = leaves[t.firstLeaf + j]
                    let q = Int(leaf.q), first = Int(leaf.firstFeature)
                    let satisfied = masks[t.nodeCount + j] & ((1 << q) - 1)
                    var absent = 1.0
                    for k in 0..<q where satisfied & (1 << k) == 0 { absent *= fractions[first + k] }
                    // i ∈ S: v (1 − p_i) Π_{Q∖S} p · H(S∖{i}); i ∉ S: −v p_i Π_{Q∖S∖{i}} p · H(S),
                    // which is −v Π_{Q∖S} p · H(S) (and 0 with the rest when some p is 0).
                    let c = leaf.value * absent
                    if c == 0 { continue }
                    let whole = c * table[leaf.table + satisfied]
                    for k in 0..<q {
                        let feature = Int(features[first + k])
                        if satisfied & (1 << k) != 0 {
                            out[feature] += c * (1 - fractions[first + k]) * table[leaf.table + (satisfied & ~(1 << k))]
                        } else {
                            out[feature] -= whole
                        }
                    }
                }
            }
        }
        }
        }
        }
        }
        }
        }
        }
        return phi
    }
}
