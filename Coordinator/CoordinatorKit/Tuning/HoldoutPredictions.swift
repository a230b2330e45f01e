import Foundation

/// Why holdout predictions were refused.
public enum HoldoutError: Error, Equatable, CustomStringConvertible, Sendable {
    case lengthMismatch(field: String, count: Int, expected: Int)
    case invalidProbability(row: Int, value: Double)
    case invalidLabel(row: Int, value: Float)

    public var description: String {
        switch self {
        case let .lengthMismatch(field, count, expected):
            return "holdout \(field): \(count) values for \(expected) rows; give one value per row."
        case let .invalidProbability(row, value):
            return "holdout probabilities[\(row)]: \(value) is not a probability in [0, 1]; pass the model's calibrated probability, not its raw margin."
        case let .invalidLabel(row, value):
            return "holdout labels[\(row)]: \(value) is not 0 or 1; labels are binary (1 = the user contacted/contracted)."
        }
    }
}

/// One model's predictions on the holdout, row by row: probability, 0/1 label, the user the
/// row belongs to (the ranking group and the unit of bootstrap resampling) and segment
/// labels such as `region` or `price_band`.
///
/// Guarantees: all columns have one value per row, probabilities are finite and in [0, 1],
/// labels are 0 or 1. Segments are stored by dimension; a row without a value for a
/// dimension is simply not in any of that dimension's segments.
public struct HoldoutPredictions: Sendable, Equatable {
    public struct Row: Sendable, Equatable {
        public var probability: Double
        public var label: Float
        public var group: Int
        public var segments: [String: String]
        public init(probability: Double, label: Float, group: Int, segments: [String: String] = [:]) {
            self.probability = probability
            self.label = label
            self.group = group
            self.segments = segments
        }
    }

    public let probabilities: [Double]
    public let labels: [Float]
    public let groups: [Int]
    /// Dimension → the row's value in that dimension (nil: none).
    public let segments: [String: [String?]]

    public var count: Int { probabilities.count }

    public init(probabilities: [Double], labels: [Float], groups: [Int], segments: [String: [String?]] = [:]) throws {
        let n = probabilities.count
        guard labels.count == n else { throw HoldoutError.lengthMismatch(field: "labels", count: labels.count, expected: n) }
        guard groups.count == n else { throw HoldoutError.lengthMismatch(field: "groups", count: groups.count, expected: n) }
        for (dimension, values) in segments where values.count != n {
            throw HoldoutError.lengthMismatch(field: "segments.\(dimension)", count: values.count, expected: n)
        }
        for (i, p) in probabilities.enumerated() where !(p >= 0 && p <= 1) {
            throw HoldoutError.invalidProbability(row: i, value: p)
        }
        for (i, y) in labels.enumerated() where y != 0 && y != 1 {
            throw HoldoutError.invalidLabel(row: i, value: y)
        }
        self.probabilities = probabilities
        self.labels = labels
        self.groups = groups
        self.segments = segments
    }

    public init(rows: [Row]) throws {
        let dimensions = Set(rows.flatMap { $0.segments.keys })
        var segments: [String: [String?]] = [:]
        for d in dimensions { segments[d] = rows.map { $0.segments[d] } }
        try self.init(probabilities: rows.map(\.probability), labels: rows.map(\.label), groups: rows.map(\.group), segments: segments)
    }

    /// The same holdout scored by another model: same rows, labels, users and segments.
    public func replacingProbabilities(_ p: [Double]) throws -> HoldoutPredictions {
        try HoldoutPredictions(probabilities: p, labels: labels, groups: groups, segments: segments)
    }
}

/// Per-model precomputation for the paired bootstrap: rows sorted by score once, so each
/// resample's AUC is one linear pass with per-user weights, and each user's
/// Precision@K / NDCG@K, so each resample's mean is a weighted average over users.
struct BootstrapModelView {
    /// User index of each row, in ascending score order.
    let sortedUser: [Int32]
    let sortedPositive: [Bool]
    /// End (exclusive) of each run of tied scores in the sorted order.
    let blockEnds: [Int]
    /// Per user: Precision@K, NDCG@K (meaningful only where `hasPositive`).
    let precision: [Double]
    let ndcg: [Double]

    init(scores: [Double], labels: [Float], userOfRow: [Int32], rowsOfUser: [[Int]], k: Int) {
        let n = scores.count
        let order = (0..<n).sorted { scores[$0] < scores[$1] || (scores[$0] == scores[$1] && $0 < $1) }
        sortedUser = order.map { userOfRow[$0] }
        sortedPositive = order.map { labels[$0] > 0.5 }
        var ends: [Int] = []
        var i = 0
        while i < n {
            var j = i + 1
            while j < n && scores[order[j]] == scores[order[i]] { j += 1 }
            ends.append(j)
            i = j
        }
        blockEnds = ends
        // Same definitions as Learning's Metrics.ranking: descending score, ties by row
        // position, hits over min(K, rows of the user), binary-gain NDCG.
        var prec = [Double](repeating: 0, count: rowsOfUser.count)
        var nd = [Double](repeating: 0, count: rowsOfUser.count)
        for (u, rows) in rowsOfUser.enumerated() {
            let positives = rows.reduce(0) { $0 + (labels[$1] > 0.5 ? 1 : 0) }
            guard positives > 0 else { continue }
            let ranked = rows.sorted { scores[$0] > scores[$1] || (scores[$0] == scores[$1] && $0 < $1) }
            let top = min(k, ranked.count)
            var hits = 0
            var dcg = 0.0
            for r in 0..<top where labels[ranked[r]] > 0.5 {
                hits += 1
                dcg += 1 / log2(Double(r) + 2)
            }
            var ideal = 0.0
            for r in 0..<min(top, positives) { ideal += 1 / log2(Double(r) + 2) }
            prec[u] = Double(hits) / Double(top)
            nd[u] = dcg / ideal
        }
        precision = prec
        ndcg = nd
    }

    /// AUC with each row weighted by its user's weight (Mann–Whitney with ties counting
    /// one half, as Learning's Metrics.auc). NaN without positive or negative weight.
    func weightedAUC(_ weights: UnsafeBufferPointer<Double>) -> Double {
        var negativesBelow = 0.0
        var positives = 0.0
        var sum = 0.0
        var start = 0
        sortedUser.withUnsafeBufferPointer { users in
            sortedPositive.withUnsafeBufferPointer { positive in
                for end in blockEnds {
                    var bp = 0.0, bn = 0.0
                    for j in start..<end {
                        let w = weights[Int(users[j])]
                        if positive[j] { bp += w } else { bn += w }
                    }
                    sum += bp * (negativesBelow + 0.5 * bn)
                    negativesBelow += bn
                    positives += bp
                    start = end
                }
            }
        }
        guard positives > 0 && negativesBelow > 0 else { return .nan }
        return sum / (positives * negativesBelow)
    }
}
