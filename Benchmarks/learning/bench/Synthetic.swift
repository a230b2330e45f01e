// Synthetic tables for the learning benchmark that owe nothing to the project's market
// generator: the market's pair features are what Tower was tuned on, so a training
// speed measured only there could flatter it. Two shapes stress the tree learner
// differently — few features over many rows (histograms are cheap per node, the row
// work and the per-node overheads dominate) and many features (histogram building and
// split search dominate).
import Foundation
import Learning

enum SyntheticTable {
    /// `rows` × 5: continuous, heavy-tailed, integer-valued and partly missing columns
    /// (as in real housing data: income, age, rooms, distance, a ratio), label from a
    /// non-linear rule with interactions, thresholds and noise; about 30% positive.
    static func fewFeatures(rows: Int, seed: UInt64) -> Dataset {
        var rng = Xoshiro256(seed: seed)
        var cols = [[Float]](repeating: [], count: 5)
        var labels: [Float] = []
        cols = cols.map { var c = $0; c.reserveCapacity(rows); return c }
        labels.reserveCapacity(rows)
        for _ in 0..<rows {
            let income = exp(rng.normal(mean: 1.2, sd: 0.5))          // log-normal
            let age = Double(rng.index(below: 52) + 1)                 // 52 distinct values
            let rooms = max(1, rng.normal(mean: 5.3, sd: 1.4))
            let distance = -log(max(1e-12, rng.uniform())) * 8          // exponential
            let ratio = rng.uniform(0, 1)
            let logit = 1.4 * log(income) - 0.9
                + 0.8 * sin(age / 7)
                + (rooms > 6 ? 0.6 : -0.2) * (income > 3.5 ? 1.5 : 1)
                - 0.06 * distance + (distance < 2 ? 0.7 : 0)
                + 1.2 * (ratio - 0.5) * (ratio - 0.5) * 4 - 0.4
                + rng.normal(mean: 0, sd: 0.6)
            labels.append(rng.bernoulli(logistic(logit)) ? 1 : 0)
            cols[0].append(Float(income))
            cols[1].append(Float(age))
            cols[2].append(rng.bernoulli(0.03) ? .nan : Float(rooms))
            cols[3].append(Float(distance))
            cols[4].append(Float(ratio))
        }
        let names = ["income", "age", "rooms", "distance", "ratio"]
        return Dataset(schema: FeatureSchema(names.map { Feature(name: $0) }), columns: cols, labels: labels)
    }

    /// `rows` × 32: 12 informative columns (smooth, threshold and pairwise effects), 8
    /// noisy copies of informative ones (correlated features split the gain), 6 integer
    /// columns with few levels, 6 pure noise; 2% missing in a third of the columns.
    static func manyFeatures(rows: Int, seed: UInt64) -> Dataset {
        var rng = Xoshiro256(seed: seed)
        let featureCount = 32
        var cols = [[Float]](repeating: [], count: featureCount)
        for f in 0..<featureCount { cols[f].reserveCapacity(rows) }
        var labels: [Float] = []
        labels.reserveCapacity(rows)
        var x = [Double](repeating: 0, count: featureCount)
        for _ in 0..<rows {
            for f in 0..<12 { x[f] = f % 3 == 0 ? rng.uniform(-2, 2) : rng.normal() }
            for f in 12..<20 { x[f] = x[f - 12] + rng.normal(mean: 0, sd: 0.5) }
            for f in 20..<26 { x[f] = Double(rng.index(below: 3 + (f - 20) * 2)) }
            for f in 26..<32 { x[f] = rng.normal() }
            var logit = -1.1
            logit += 0.9 * x[0] - 0.7 * x[1] + 0.5 * sin(2 * x[2])
            logit += x[3] > 0.5 ? 0.8 : -0.3
            logit += 0.6 * x[4] * x[5]
            logit += 0.4 * abs(x[6]) - 0.3 * x[7] * x[7]
            logit += (x[8] > 0 && x[9] > 0) ? 0.9 : 0
            logit += 0.3 * x[10] + 0.2 * x[11]
            logit += x[20] == 1 ? 0.5 : 0
            logit += 0.15 * x[21] - (x[22] == 0 ? 0.4 : 0)
            logit += rng.normal(mean: 0, sd: 0.7)
            labels.append(rng.bernoulli(logistic(logit)) ? 1 : 0)
            for f in 0..<featureCount {
                cols[f].append(f % 3 == 1 && rng.bernoulli(0.02) ? .nan : Float(x[f]))
            }
        }
        return Dataset(schema: FeatureSchema((0..<featureCount).map { Feature(name: "x\($0)") }),
                       columns: cols, labels: labels)
    }
}
