import Foundation

/// Evaluation metrics for binary scores. Scores may be probabilities or raw margins
/// wherever only their order matters (AUC, ranking metrics).
public enum Metrics {
    /// Area under the ROC curve via the Mann–Whitney statistic with average ranks, so
    /// tied scores count one half — exact, not an approximation by thresholds. NaN when
    /// there are no positives or no negatives.
    public static func auc(scores: [Double], labels: [Float]) -> Double {
        precondition(scores.count == labels.count, "one score per label")
        return scores.withUnsafeBufferPointer { s in
            labels.withUnsafeBufferPointer { y in auc(scores: s.baseAddress, labels: y.baseAddress, count: s.count) }
        }
    }

    /// AUC of raw pointers; the booster calls it on the validation scores every
    /// iteration, where a comparison sort through an index array cost as much as growing
    /// the tree. Scores are ranked by a stable radix sort of order-preserving integer
    /// keys, which gives exactly the order (ties included) of a comparison sort.
    static func auc(scores: UnsafePointer<Double>?, labels: UnsafePointer<Float>?, count n: Int, threads: Int = 1) -> Double {
        guard n > 0, let scores, let labels else { return .nan }
        var keys = [UInt64](repeating: 0, count: n), keys2 = keys
        var positive = [UInt32](repeating: 0, count: n), positive2 = positive
        var positives = 0.0
        var rankSumPositives = 0.0
        keys.withUnsafeMutableBufferPointer { k in
            positive.withUnsafeMutableBufferPointer { r in
                keys2.withUnsafeMutableBufferPointer { k2 in
                    positive2.withUnsafeMutableBufferPointer { r2 in
                        let k = k.baseAddress!, r = r.baseAddress!, k2 = k2.baseAddress!, r2 = r2.baseAddress!
                        // Two halves sorted at once, then merged with ties taken from the
                        // first half first: the same order as one stable sort.
                        let halves = threads > 1 && n >= 16_384 ? 2 : 1
                        let mid = halves == 2 ? n / 2 : n
                        parallelFor(halves, threads: halves) { part in
                            let lo = part == 0 ? 0 : mid, hi = part == 0 ? mid : n
                            for i in lo..<hi {
                                k[i] = orderedKey(scores[i])
                                // Only the label travels with the key: the rank sums then
                                // read it in sorted order instead of looking rows up.
                                r[i] = labels[i] > 0.5 ? 1 : 0
                            }
                            radixSort(keys: k + lo, rows: r + lo, scratchKeys: k2 + lo, scratchRows: r2 + lo, count: hi - lo)
                        }
                        // The sorted sequence: in place for one half, the merge buffer for two.
                        var sk = UnsafePointer(k), sp = UnsafePointer(r)
                        if halves == 2 {
                            var a = 0, b = mid, o = 0
                            while a < mid && b < n {
                                if k[b] < k[a] { k2[o] = k[b]; r2[o] = r[b]; b += 1 } else { k2[o] = k[a]; r2[o] = r[a]; a += 1 }
                                o += 1
                            }
                            while a < mid { k2[o] = k[a]; r2[o] = r[a]; a += 1; o += 1 }
                            while b < n { k2[o] = k[b]; r2[o] = r[b]; b += 1; o += 1 }
                            sk = UnsafePointer(k2); sp = UnsafePointer(r2)
                        }
                        var i = 0
                        while i < n {
                            var j = i
                            var groupPositives = Int(sp[i])
                            while j + 1 < n && sk[j + 1] == sk[i] { j += 1; groupPositives += Int(sp[j]) }
                            // Ranks i+1 … j+1 share their average.
                            let averageRank = Double(i + j + 2) / 2
                            for _ in 0..<groupPositives {
                                positives += 1
                                rankSumPositives += averageRank
                            }
                            i = j + 1
                        }
                    }
                }
            }
        }
        let negatives = Double(n) - positives
        guard positives > 0 && negatives > 0 else { return .nan }
        return (rankSumPositives - positives * (positives + 1) / 2) / (positives * negatives)
    }

    /// An unsigned key whose order is the numeric order of `v` (−0 and +0 equal, as `<`
    /// treats them).
    @inline(__always)
    static func orderedKey(_ v: Double) -> UInt64 {
        let bits = (v == 0 ? 0.0 : v).bitPattern
        return bits & (1 << 63) != 0 ? ~bits : bits | (1 << 63)
    }

    /// Stable LSD radix sort of `keys` carrying `rows`, 11 bits per pass; passes where
    /// every key has the same digit (typically the sign and exponent of scores in a
    /// narrow range) are skipped. The sorted result ends in `keys`/`rows`.
    static func radixSort(keys: UnsafeMutablePointer<UInt64>, rows: UnsafeMutablePointer<UInt32>,
                          scratchKeys: UnsafeMutablePointer<UInt64>, scratchRows: UnsafeMutablePointer<UInt32>, count n: Int) {
        if n == 0 { return }
        let bits = 11, radix = 1 << bits, passes = 6
        var counts = [Int](repeating: 0, count: radix * passes)
        counts.withUnsafeMutableBufferPointer { cb in
            let c = cb.baseAddress!
            for i in 0..<n {
                let k = keys[i]
                for p in 0..<passes { c[p * radix + Int((k >> UInt64(p * bits)) & UInt64(radix - 1))] += 1 }
            }
            var src = (keys, rows), dst = (scratchKeys, scratchRows)
            for p in 0..<passes {
                let pc = c + p * radix
                let digit0 = Int((src.0[0] >> UInt64(p * bits)) & UInt64(radix - 1))
                if pc[digit0] == n { continue }
                var sum = 0
                for d in 0..<radix { let x = pc[d]; pc[d] = sum; sum += x }
                for i in 0..<n {
                    let k = src.0[i]
                    let d = Int((k >> UInt64(p * bits)) & UInt64(radix - 1))
                    let at = pc[d]
                    pc[d] = at + 1
                    dst.0[at] = k
                    dst.1[at] = src.1[i]
                }
                swap(&src, &dst)
            }
            if src.0 != keys {
                keys.update(from: src.0, count: n)
                rows.update(from: src.1, count: n)
            }
        }
    }

    /// Mean negative log-likelihood of probabilities, clipped to [1e-15, 1 − 1e-15] so a
    /// confident mistake costs a large but finite amount.
    public static func logLoss(probabilities p: [Double], labels: [Float]) -> Double {
        precondition(p.count == labels.count, "one probability per label")
        guard !p.isEmpty else { return .nan }
        var s = 0.0
        for i in 0..<p.count {
            let q = min(max(p[i], 1e-15), 1 - 1e-15)
            s -= labels[i] > 0.5 ? log(q) : log(1 - q)
        }
        return s / Double(p.count)
    }

    /// Mean log-loss of margins (log-odds), computed from the margin directly so that no
    /// clipping is needed: the loss the booster records for its curves every iteration.
    /// Summed in fixed blocks (`deterministicSum`), so the value is the same at any
    /// thread count.
    static func logLoss(margins scores: UnsafePointer<Double>, labels: UnsafePointer<Float>, count: Int,
                        threads: Int = 1) -> Double {
        let total = deterministicSum(count, threads: count >= 32_768 ? threads : 1) { range in
            var s = 0.0
            for i in range {
                let m = scores[i]
                // log(1 + e^m) − y·m, written to avoid overflow for large |m|.
                let softplus = m > 0 ? m + log1p(exp(-m)) : log1p(exp(m))
                s += softplus - Double(labels[i]) * m
            }
            return s
        }
        return total / Double(max(1, count))
    }

    /// Mean squared error of probabilities against 0/1 labels.
    public static func brier(probabilities p: [Double], labels: [Float]) -> Double {
        precondition(p.count == labels.count, "one probability per label")
        guard !p.isEmpty else { return .nan }
        var s = 0.0
        for i in 0..<p.count { let d = p[i] - Double(labels[i]); s += d * d }
        return s / Double(p.count)
    }

    /// Per-group ranking quality at cut-off K.
    public struct Ranking: Sendable, Equatable {
        public var k: Int
        /// Hits in the top K over min(K, group size), so a user shown fewer than K
        /// listings is not penalised for the listings nobody showed them.
        public var precision: Double
        /// Hits in the top K over the group's positives.
        public var recall: Double
        /// DCG@K / ideal DCG@K with binary gains and log2(rank + 1) discounts.
        public var ndcg: Double
        /// Groups with at least one positive: the only ones averaged.
        public var groupsEvaluated: Int
    }

    /// Precision@K, Recall@K and NDCG@K computed within each group (user) over its
    /// candidate rows sorted by descending score, then averaged over groups with at least
    /// one positive. Tied scores are ordered by row position, which keeps the result
    /// deterministic.
    public static func ranking(scores: [Double], labels: [Float], groups: [Int], k: Int) -> Ranking {
        precondition(scores.count == labels.count && labels.count == groups.count, "equal lengths")
        precondition(k > 0, "K must be positive")
        var rowsByGroup: [Int: [Int]] = [:]
        for (i, g) in groups.enumerated() { rowsByGroup[g, default: []].append(i) }
        var p = 0.0, r = 0.0, nd = 0.0
        var evaluated = 0
        for key in rowsByGroup.keys.sorted() {
            var rows = rowsByGroup[key]!
            let positives = rows.reduce(0) { $0 + (labels[$1] > 0.5 ? 1 : 0) }
            if positives == 0 { continue }
            rows.sort { scores[$0] > scores[$1] || (scores[$0] == scores[$1] && $0 < $1) }
            let top = min(k, rows.count)
            var hits = 0
            var dcg = 0.0
            for rank in 0..<top where labels[rows[rank]] > 0.5 {
                hits += 1
                dcg += 1 / log2(Double(rank) + 2)
            }
            var ideal = 0.0
            for rank in 0..<min(top, positives) { ideal += 1 / log2(Double(rank) + 2) }
            p += Double(hits) / Double(top)
            r += Double(hits) / Double(positives)
            nd += dcg / ideal
            evaluated += 1
        }
        guard evaluated > 0 else { return Ranking(k: k, precision: .nan, recall: .nan, ndcg: .nan, groupsEvaluated: 0) }
        let e = Double(evaluated)
        return Ranking(k: k, precision: p / e, recall: r / e, ndcg: nd / e, groupsEvaluated: evaluated)
    }
}

/// The standard report of a binary classifier on labelled data.
public struct EvaluationReport: Sendable, Equatable {
    public var rows: Int
    public var positiveRate: Double
    public var auc: Double
    public var logLoss: Double
    public var brier: Double
    /// Present when the data has groups.
    public var ranking: Metrics.Ranking?

    public init(probabilities: [Double], labels: [Float], groups: [Int]?, k: Int = 10) {
        rows = labels.count
        positiveRate = labels.isEmpty ? 0 : labels.reduce(0.0) { $0 + Double($1) } / Double(labels.count)
        auc = Metrics.auc(scores: probabilities, labels: labels)
        logLoss = Metrics.logLoss(probabilities: probabilities, labels: labels)
        brier = Metrics.brier(probabilities: probabilities, labels: labels)
        ranking = groups.map { Metrics.ranking(scores: probabilities, labels: labels, groups: $0, k: k) }
    }

    /// Metric name → value, as stored in model files and run records.
    public var dictionary: [String: Double] {
        var d = [MetricName.auc: auc, MetricName.logLoss: logLoss, MetricName.brier: brier,
                 MetricName.rows: Double(rows), MetricName.positiveRate: positiveRate]
        if let r = ranking {
            d[MetricName.precisionAt(r.k)] = r.precision
            d[MetricName.recallAt(r.k)] = r.recall
            d[MetricName.ndcgAt(r.k)] = r.ndcg
        }
        return d
    }

    public var summary: String {
        func f(_ v: Double) -> String { v.isNaN ? "n/a" : String(format: "%.4f", v) }
        var s = "rows \(rows)  positives \(String(format: "%.2f%%", positiveRate * 100))  AUC \(f(auc))  log-loss \(f(logLoss))  Brier \(f(brier))"
        if let r = ranking {
            s += "  P@\(r.k) \(f(r.precision))  R@\(r.k) \(f(r.recall))  NDCG@\(r.k) \(f(r.ndcg))  (\(r.groupsEvaluated) users with a positive)"
        }
        return s
    }
}
