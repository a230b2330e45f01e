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

    /// One tree's leaves in flat arrays (no per-leaf arrays to retain in the row loop).
    struct PreparedTree: Sendable {
        var tree: RegressionTree
        /// True when the tree is explained recursively (a path too long for the tables).
        var recursive = false
        var leafValue: [Double] = []
        /// Leaf k's path features are `features[featureStart[k]..<featureStart[k + 1]]`
        /// (global index) with their cover fractions in `fractions`.
        var featureStart: [Int32] = [0]
        var features: [Int32] = []
        var fractions: [Double] = []
        /// Leaf k's splits are `steps[stepStart[k]..<stepStart[k + 1]]`: the node, whether
        /// the path goes left there, and the slot of the node's feature among the leaf's.
        var stepStart: [Int32] = [0]
        var stepNode: [Int32] = []
        var stepLeft: [Bool] = []
        var stepSlot: [UInt8] = []
        /// Leaf k's 2^q values of H start at `tableStart[k]`.
        var tableStart: [Int] = []
        var table: [Double] = []
    }

    let trees: [PreparedTree]
    public let featureCount: Int

    public init(_ model: GradientBoostedModel) {
        featureCount = model.schema.count
        trees = model.trees.map(Self.prepare)
    }

    static func prepare(_ tree: RegressionTree) -> PreparedTree {
        var out = PreparedTree(tree: tree)
        guard tree.nodeCount > 0 else { return out }
        var tooDeep = false
        // Depth-first over the paths, carrying each path's unique features and fractions.
        func cover(_ node: Int32) -> Double { node >= 0 ? tree.nodeCover[Int(node)] : tree.leafCover[Int(~node)] }
        func walk(_ node: Int32, features: [Int32], fractions: [Double], steps: [(node: Int32, left: Bool, slot: Int)]) {
            if tooDeep { return }
            if node < 0 {
                guard features.count <= maxPathFeatures else { tooDeep = true; return }
                out.leafValue.append(tree.leafValue[Int(~node)])
                out.features += features
                out.fractions += fractions
                out.featureStart.append(Int32(out.features.count))
                for step in steps {
                    out.stepNode.append(step.node)
                    out.stepLeft.append(step.left)
                    out.stepSlot.append(UInt8(step.slot))
                }
                out.stepStart.append(Int32(out.stepNode.count))
                out.tableStart.append(out.table.count)
                out.table += subsetTable(fractions)
                return
            }
            let i = Int(node), f = tree.splitFeature[i]
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
        if tooDeep { return PreparedTree(tree: tree, recursive: true) }
        return out
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
                for prepared in trees where !prepared.recursive { add(prepared, row: x, into: out) }
            }
        }
        return phi
    }

    private func add(_ t: PreparedTree, row x: UnsafeBufferPointer<Float>, into phi: UnsafeMutableBufferPointer<Double>) {
        let tree = t.tree
        guard !t.leafValue.isEmpty else { return }
        withUnsafeTemporaryAllocation(of: Bool.self, capacity: tree.nodeCount) { goesLeft in
            // Which way the row goes at every split, once.
            tree.splitFeature.withUnsafeBufferPointer { feature in
                tree.threshold.withUnsafeBufferPointer { threshold in
                    tree.defaultLeft.withUnsafeBufferPointer { defaultLeft in
                        for i in 0..<feature.count {
                            let v = x[Int(feature[i])]
                            goesLeft[i] = v.isNaN ? defaultLeft[i] : v <= threshold[i]
                        }
                    }
                }
            }
            for k in 0..<t.leafValue.count {
                let first = Int(t.featureStart[k]), q = Int(t.featureStart[k + 1]) - first
                var satisfied = (1 << q) - 1
                for s in Int(t.stepStart[k])..<Int(t.stepStart[k + 1]) where goesLeft[Int(t.stepNode[s])] != t.stepLeft[s] {
                    satisfied &= ~(1 << Int(t.stepSlot[s]))
                }
                var absent = 1.0
                for j in 0..<q where satisfied & (1 << j) == 0 { absent *= t.fractions[first + j] }
                let h = t.tableStart[k], v = t.leafValue[k]
                for i in 0..<q {
                    let p = t.fractions[first + i], feature = Int(t.features[first + i])
                    if satisfied & (1 << i) != 0 {
                        phi[feature] += v * (1 - p) * absent * t.table[h + (satisfied & ~(1 << i))]
                    } else {
                        // The other absent features' product; divide unless p is 0.
                        var others = 1.0
                        if p != 0 {
                            others = absent / p
                        } else {
                            for j in 0..<q where j != i && satisfied & (1 << j) == 0 { others *= t.fractions[first + j] }
                        }
                        phi[feature] -= v * p * others * t.table[h + satisfied]
                    }
                }
            }
        }
    }
}
