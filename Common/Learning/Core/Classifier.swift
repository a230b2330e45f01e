import Foundation

/// A trained binary classifier. Gradient-boosted trees and logistic regression share
/// this API so that evaluation, serving and comparison code does not care which it has.
///
/// Guarantees: `predictRaw` returns the margin (log-odds); `predictProbability` is its
/// sigmoid; scoring a data set matches its features to the model's schema by name.
public protocol Classifier: Sendable {
    var schema: FeatureSchema { get }
    /// Log-odds for each row of `data` (features matched by name).
    func predictRaw(_ data: Dataset) throws -> [Double]
    /// Log-odds for one row given in schema order.
    func predictRaw(row: [Float]) -> Double
}

extension Classifier {
    public func predictProbability(_ data: Dataset) throws -> [Double] {
        try predictRaw(data).map(logistic)
    }

    public func predictProbability(row: [Float]) -> Double { logistic(predictRaw(row: row)) }

    /// Scores labelled data and returns AUC, log-loss, Brier and (with groups) ranking
    /// metrics at `k`.
    public func evaluate(_ data: Dataset, k: Int = 10) throws -> EvaluationReport {
        guard data.hasLabels else { throw DataError.emptyDataSet(reason: "evaluation needs labels") }
        return EvaluationReport(probabilities: try predictProbability(data), labels: data.labels, groups: data.groups, k: k)
    }
}

/// Numerically safe sigmoid.
@inline(__always)
public func logistic(_ x: Double) -> Double {
    if x >= 0 { return 1 / (1 + exp(-x)) }
    let e = exp(x)
    return e / (1 + e)
}
