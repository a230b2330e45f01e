import Foundation

/// What a booster minimises, kept apart from the booster as in LightGBM: boosting only
/// asks the objective where to start and, each iteration, for the first and second
/// derivatives of the loss at the current margins; how well the model does is measured
/// by metrics (`Metrics`), never by the objective.
///
/// Guarantees asked of an implementation: `gradients` writes exactly `count` gradients
/// and hessians, each row's values depend only on that row's score and label (so the
/// result does not depend on `threads`), and every hessian is positive.
public protocol Objective: Sendable {
    /// The objective's name as LightGBM spells it (`binary`), recorded with the model.
    var name: String { get }

    /// The best constant margin for `labels`: the score every row starts from.
    func initialScore(labels: [Float]) -> Double

    /// Gradient and hessian of the loss for each of `count` rows at margins `scores`.
    func gradients(scores: UnsafePointer<Double>, labels: UnsafePointer<Float>, count: Int,
                   gradients: UnsafeMutablePointer<Float>, hessians: UnsafeMutablePointer<Float>, threads: Int)
}

/// Binary cross-entropy on log-odds: the objective the boosted trees minimise.
///
/// For margin s and label y ∈ {0, 1}: p = σ(s), gradient p − y, hessian p(1 − p) —
/// the Newton step per leaf is −ΣG / (ΣH + λ).
public struct BinaryLogLoss: Objective {
    public let name = "binary"

    public init() {}

    /// log(p̄ / (1 − p̄)): the best constant margin, where boosting starts.
    public func initialScore(labels: [Float]) -> Double {
        let mean = labels.reduce(0.0) { $0 + Double($1) } / Double(max(1, labels.count))
        let p = min(max(mean, 1e-12), 1 - 1e-12)
        return log(p / (1 - p))
    }

    public func gradients(scores: UnsafePointer<Double>, labels: UnsafePointer<Float>, count: Int,
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
}
