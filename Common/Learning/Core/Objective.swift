import Foundation

/// Binary cross-entropy on log-odds: the objective the boosted trees minimise.
///
/// For margin s and label y ∈ {0, 1}: p = σ(s), gradient p − y, hessian p(1 − p) —
/// the Newton step per leaf is −ΣG / (ΣH + λ).
enum BinaryLogLoss {
    /// log(p̄ / (1 − p̄)): the best constant margin, where boosting starts.
    static func initialScore(labels: [Float]) -> Double {
        let mean = labels.reduce(0.0) { $0 + Double($1) } / Double(max(1, labels.count))
        let p = min(max(mean, 1e-12), 1 - 1e-12)
        return log(p / (1 - p))
    }

    static func gradients(scores: UnsafePointer<Double>, labels: UnsafePointer<Float>, count: Int,
                          gradients: UnsafeMutablePointer<Float>, hessians: UnsafeMutablePointer<Float>, threads: Int) {
        parallelChunks(count, threads: threads, minChunk: 16384) { range in
            for i in range {
                let p = logistic(scores[i])
                gradients[i] = Float(p - Double(labels[i]))
                // Floor keeps leaves with saturated predictions from dividing by ~0.
                hessians[i] = Float(max(p * (1 - p), 1e-16))
            }
        }
    }

    /// Mean log-loss of margins.
    static func loss(scores: UnsafePointer<Double>, labels: UnsafePointer<Float>, count: Int) -> Double {
        var s = 0.0
        for i in 0..<count {
            let m = scores[i]
            // log(1 + e^m) − y·m, written to avoid overflow for large |m|.
            let softplus = m > 0 ? m + log1p(exp(-m)) : log1p(exp(m))
            s += softplus - Double(labels[i]) * m
        }
        return s / Double(max(1, count))
    }
}
