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
/// algorithm), so a row costs one pass over the splits and O(q) per leaf instead of the
/// recursive algorithm's O(q²) path updates per leaf — the idea of Yang's "Fast TreeSHAP"
/// (v2). Results equal ``TreeSHAP/contributions(_:row:)`` up to rounding (tested).
public struct PreparedTreeSHAP: Sendable {
    /// Paths with more unique features than this are explained recursively: the table
    /// would need 2^q entries per leaf.
    public static let maxPathFeatures = 12

    struct Leaf: Sendable {
        var value: Double
        /// Global feature index and p of each path feature (slot order).
        var features: [Int]
        var fractions: [Double]
        /// The path's splits: node, whether the path goes left, the feature's slot.
        var steps: [(node: Int32, left: Bool, slot: Int)]
        /// Offset of this leaf's 2^q values of H in `table`.
        var tableOffset: Int
    }

    struct PreparedTree: Sendable {
        var tree: RegressionTree
        /// Empty when the tree is explained recursively (or has no split).
        var leaves: [Leaf]
        var table: [Double]
        var recursive: Bool
    }

    let trees: [PreparedTree]
    public let featureCount: Int

    public init(_ model: GradientBoostedModel) {
        featureCount = model.schema.count
        trees = model.trees.map(Self.prepare)
    }

    static func prepare(_ tree: RegressionTree) -> PreparedTree {
        guard tree.nodeCount > 0 else { return PreparedTree(tree: tree, leaves: [], table: [], recursive: false) }
        var leaves: [Leaf] = []
        var table: [Double] = []
        var tooDeep = false
        // Depth-first over the paths, carrying each path's unique features and fractions.
        func cover(_ node: Int32) -> Double { node >= 0 ? tree.nodeCover[Int(node)] : tree.leafCover[Int(~node)] }
        func walk(_ node: Int32, features: [Int], fractions: [Double], steps: [(node: Int32, left: Bool, slot: Int)]) {
            if tooDeep { return }
            if node < 0 {
                let q = features.count
                guard q <= maxPathFeatures else { tooDeep = true; return }
                leaves.append(Leaf(value: tree.leafValue[Int(~node)], features: features, fractions: fractions, steps: steps, tableOffset: table.count))
                table.append(contentsOf: subsetTable(fractions))
                return
            }
            let i = Int(node), f = Int(tree.splitFeature[i])
            let parent = cover(node)
            for (child, left) in [(tree.leftChild[i], true), (tree.rightChild[i], false)] {
                let share = parent > 0 ? cover(child) / parent : 0
                var fs = features, ps = fractions
                let slot: Int
                if let existing = fs.firstIndex(of: f) {
                    slot = existing
                    ps[slot] *= share
                } else {
                    slot = fs.count
                    fs.append(f)
                    ps.append(share)
                }
                walk(child, features: fs, fractions: ps, steps: steps + [(node, left, slot)])
            }
        }
        walk(tree.root, features: [], fractions: [], steps: [])
        if tooDeep { return PreparedTree(tree: tree, leaves: [], table: [], recursive: true) }
        return PreparedTree(tree: tree, leaves: leaves, table: table, recursive: false)
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
        row.withUnsafeBufferPointer { x in
            phi.withUnsafeMutableBufferPointer { out in
                for prepared in trees { add(prepared, row: x, into: out) }
            }
        }
        return phi
    }

    private func add(_ prepared: PreparedTree, row x: UnsafeBufferPointer<Float>, into phi: UnsafeMutableBufferPointer<Double>) {
        let tree = prepared.tree
        if prepared.recursive {
            var whole = Array(phi)
            TreeSHAP.add(tree, row: Array(x), into: &whole)
            for j in 0..<phi.count { phi[j] = whole[j] }
            return
        }
        guard !prepared.leaves.isEmpty else { return }
        // Which way the row goes at every split, once.
        withUnsafeTemporaryAllocation(of: Bool.self, capacity: tree.nodeCount) { goesLeft in
            for i in 0..<tree.nodeCount {
                let v = x[Int(tree.splitFeature[i])]
                goesLeft[i] = v.isNaN ? tree.defaultLeft[i] : v <= tree.threshold[i]
            }
            prepared.table.withUnsafeBufferPointer { table in
                for leaf in prepared.leaves {
                    let q = leaf.features.count
                    var satisfied = (1 << q) - 1
                    for step in leaf.steps where goesLeft[Int(step.node)] != step.left {
                        satisfied &= ~(1 << step.slot)
                    }
                    var absent = 1.0
                    for j in 0..<q where satisfied & (1 << j) == 0 { absent *= leaf.fractions[j] }
                    let h = table.baseAddress! + leaf.tableOffset
                    for i in 0..<q {
                        let p = leaf.fractions[i]
                        if satisfied & (1 << i) != 0 {
                            phi[leaf.features[i]] += leaf.value * (1 - p) * absent * h[satisfied & ~(1 << i)]
                        } else {
                            var others = 1.0
                            for j in 0..<q where j != i && satisfied & (1 << j) == 0 { others *= leaf.fractions[j] }
                            phi[leaf.features[i]] -= leaf.value * p * others * h[satisfied]
                        }
                    }
                }
            }
        }
    }
}
