import Foundation

/// Exact path-dependent TreeSHAP (Lundberg, Erion & Lee 2018, "Consistent
/// Individualized Feature Attribution for Tree Ensembles", Algorithm 2).
///
/// Guarantees: for every row, `expectedValue + Σ contributions == predictRaw(row)` up to
/// floating-point rounding (local accuracy); a feature the trees never split on gets
/// exactly 0. "Path-dependent" means absent features are integrated out using the
/// training covers stored in the trees, so no background data set is needed.
///
/// Cost is O(leaves × depth²) per tree and row, versus exponential for the Shapley
/// definition; the test suite checks both agree on small trees.
public enum TreeSHAP {
    /// One element of the path of unique features from the root to the current node:
    /// the feature, the fraction of "feature absent" paths (cover ratio) and of "feature
    /// present" paths (0 or 1) that flow through it, and the permutation weight.
    struct PathElement {
        var feature: Int
        var zeroFraction: Double
        var oneFraction: Double
        var weight: Double
    }

    /// The base value: mean model output over the training distribution.
    public static func expectedValue(_ model: GradientBoostedModel) -> Double {
        model.trees.reduce(model.initialScore) { $0 + $1.expectedValue }
    }

    /// Contributions of each feature (schema order) to the margin of `row`.
    public static func contributions(_ model: GradientBoostedModel, row: [Float]) -> [Double] {
        var phi = [Double](repeating: 0, count: model.schema.count)
        for tree in model.trees { add(tree, row: row, into: &phi) }
        return phi
    }

    /// Contributions for every row of `data`, row-major (rowCount × featureCount),
    /// computed in parallel over rows.
    public static func contributions(_ model: GradientBoostedModel, data: Dataset) throws -> [[Double]] {
        let d = try data.aligned(to: model.schema)
        var out = [[Double]](repeating: [], count: d.rowCount)
        if d.rowCount == 0 { return out }
        let threads = availableCores
        out.withUnsafeMutableBufferPointer { buf in
            let base = buf.baseAddress!
            parallelChunks(d.rowCount, threads: threads, minChunk: 64) { range in
                for r in range { (base + r).pointee = contributions(model, row: d.row(r)) }
            }
        }
        return out
    }

    /// Mean |SHAP| per feature over the rows of `data` (at most `maxRows`, evenly
    /// spaced, to bound cost): the global importance shown in SHAP summary plots.
    public static func meanAbsolute(_ model: GradientBoostedModel, data: Dataset, maxRows: Int = 5000) throws -> [Double] {
        let step = max(1, data.rowCount / max(1, maxRows))
        let rows = Array(stride(from: 0, to: data.rowCount, by: step))
        let contributions = try contributions(model, data: data.subset(rows))
        var mean = [Double](repeating: 0, count: model.schema.count)
        for c in contributions { for j in 0..<c.count { mean[j] += abs(c[j]) } }
        return mean.map { $0 / Double(max(1, contributions.count)) }
    }

    static func add(_ tree: RegressionTree, row: [Float], into phi: inout [Double]) {
        if tree.nodeCount == 0 { return }
        // One path segment per recursion level, each long enough for the deepest path;
        // a child copies its parent's segment into the next one instead of allocating.
        let width = tree.maxDepth + 2
        let buffer = UnsafeMutablePointer<PathElement>.allocate(capacity: width * (width + 1))
        defer { buffer.deallocate() }
        row.withUnsafeBufferPointer { x in
            phi.withUnsafeMutableBufferPointer { out in
                var walker = Walker(tree: tree, row: x, phi: out.baseAddress!, buffer: buffer, width: width)
                walker.recurse(node: tree.root, level: 0, parentLength: 0, zeroFraction: 1, oneFraction: 1, feature: -1)
            }
        }
    }

    private struct Walker {
        let tree: RegressionTree
        let row: UnsafeBufferPointer<Float>
        let phi: UnsafeMutablePointer<Double>
        let buffer: UnsafeMutablePointer<PathElement>
        let width: Int

        func cover(_ node: Int32) -> Double {
            node >= 0 ? tree.nodeCover[Int(node)] : tree.leafCover[Int(~node)]
        }

        mutating func recurse(node: Int32, level: Int, parentLength: Int, zeroFraction: Double, oneFraction: Double,
                              feature: Int) {
            let path = buffer + level * width
            if level > 0 { path.update(from: buffer + (level - 1) * width, count: parentLength) }
            var length = parentLength
            extend(path, &length, zeroFraction: zeroFraction, oneFraction: oneFraction, feature: feature)
            if node < 0 {
                let value = tree.leafValue[Int(~node)]
                // Element 0 is the root's placeholder, not a feature.
                for i in 1..<length {
                    let w = unwoundSum(path, length, i)
                    let e = path[i]
                    phi[e.feature] += w * (e.oneFraction - e.zeroFraction) * value
                }
                return
            }
            let i = Int(node)
            let f = Int(tree.splitFeature[i])
            let v = row[f]
            let goesLeft = v.isNaN ? tree.defaultLeft[i] : v <= tree.threshold[i]
            let hot = goesLeft ? tree.leftChild[i] : tree.rightChild[i]
            let cold = goesLeft ? tree.rightChild[i] : tree.leftChild[i]
            var incomingZero = 1.0, incomingOne = 1.0
            // A feature split on twice along the path is one player: undo its earlier
            // extension and carry its fractions forward.
            var k = 1
            while k < length && path[k].feature != f { k += 1 }
            if k < length {
                incomingZero = path[k].zeroFraction
                incomingOne = path[k].oneFraction
                unwind(path, &length, k)
            }
            let parentCover = cover(node)
            recurse(node: hot, level: level + 1, parentLength: length,
                    zeroFraction: incomingZero * cover(hot) / parentCover, oneFraction: incomingOne, feature: f)
            recurse(node: cold, level: level + 1, parentLength: length,
                    zeroFraction: incomingZero * cover(cold) / parentCover, oneFraction: 0, feature: f)
        }
    }

    /// Adds a feature to the path, updating the weights of all subset sizes.
    static func extend(_ path: UnsafeMutablePointer<PathElement>, _ length: inout Int, zeroFraction: Double,
                       oneFraction: Double, feature: Int) {
        let l = length
        path[l] = PathElement(feature: feature, zeroFraction: zeroFraction, oneFraction: oneFraction, weight: l == 0 ? 1 : 0)
        var i = l - 1
        while i >= 0 {
            path[i + 1].weight += oneFraction * path[i].weight * Double(i + 1) / Double(l + 1)
            path[i].weight = zeroFraction * path[i].weight * Double(l - i) / Double(l + 1)
            i -= 1
        }
        length = l + 1
    }

    /// Removes element `index` from the path, inverting `extend`.
    static func unwind(_ path: UnsafeMutablePointer<PathElement>, _ length: inout Int, _ index: Int) {
        let l = length
        let one = path[index].oneFraction, zero = path[index].zeroFraction
        var next = path[l - 1].weight
        var j = l - 2
        while j >= 0 {
            if one != 0 {
                let t = path[j].weight
                path[j].weight = next * Double(l) / (Double(j + 1) * one)
                next = t - path[j].weight * zero * Double(l - j - 1) / Double(l)
            } else {
                path[j].weight = path[j].weight * Double(l) / (zero * Double(l - j - 1))
            }
            j -= 1
        }
        for k in index..<(l - 1) {
            path[k].feature = path[k + 1].feature
            path[k].zeroFraction = path[k + 1].zeroFraction
            path[k].oneFraction = path[k + 1].oneFraction
        }
        length = l - 1
    }

    /// Total weight the path would have after `unwind(path, index)`, without changing it.
    static func unwoundSum(_ path: UnsafeMutablePointer<PathElement>, _ length: Int, _ index: Int) -> Double {
        let l = length
        let one = path[index].oneFraction, zero = path[index].zeroFraction
        var total = 0.0
        var next = path[l - 1].weight
        var j = l - 2
        while j >= 0 {
            if one != 0 {
                let w = next * Double(l) / (Double(j + 1) * one)
                total += w
                next = path[j].weight - w * zero * Double(l - j - 1) / Double(l)
            } else {
                total += path[j].weight * Double(l) / (zero * Double(l - j - 1))
            }
            j -= 1
        }
        return total
    }
}
