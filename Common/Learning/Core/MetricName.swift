import Foundation

/// The names metrics are stored under — in model files, run records, registry versions
/// and promotion decisions — and read back by the CLI and the dashboard. Everything that
/// writes or looks up a metric by name spells it through here, so a writer and a reader
/// cannot drift apart.
///
/// A stored name is a bare metric (`auc`, `precision@10`) or, for metrics of a model on
/// a particular data set, that bare name behind the data set's prefix (`valid_auc`,
/// `holdout_precision@10`).
public enum MetricName {
    /// Area under the ROC curve.
    public static let auc = "auc"
    /// Mean binary log-loss; LightGBM's `binary_logloss`.
    public static let logLoss = "logloss"
    /// Mean squared error of probabilities.
    public static let brier = "brier"
    /// Rows the metrics were computed on.
    public static let rows = "rows"
    /// Fraction of positive labels among those rows.
    public static let positiveRate = "positive_rate"

    /// Precision in each user's top `k`, averaged over users.
    public static func precisionAt(_ k: Int) -> String { "precision@\(k)" }
    /// Recall in each user's top `k`, averaged over users.
    public static func recallAt(_ k: Int) -> String { "recall@\(k)" }
    /// NDCG of each user's top `k`, averaged over users.
    public static func ndcgAt(_ k: Int) -> String { "ndcg@\(k)" }

    /// Prefix of metrics on the training rows.
    public static let trainPrefix = "train_"
    /// Prefix of metrics on the validation rows (early stopping, search objective).
    public static let validPrefix = "valid_"
    /// Prefix of metrics on the test window of a local training run.
    public static let testPrefix = "test_"
    /// Prefix of metrics on the coordinator's holdout, on which promotion decides.
    public static let holdoutPrefix = "holdout_"

    /// `metric` measured on the training rows (`train_logloss`).
    public static func train(_ metric: String) -> String { trainPrefix + metric }
    /// `metric` measured on the validation rows (`valid_auc`).
    public static func valid(_ metric: String) -> String { validPrefix + metric }
    /// `metric` measured on the test rows (`test_auc`).
    public static func test(_ metric: String) -> String { testPrefix + metric }
    /// `metric` measured on the holdout (`holdout_ndcg@10`).
    public static func holdout(_ metric: String) -> String { holdoutPrefix + metric }

    /// `metric` spelled as an identifier (`precision@10` → `precision_at_10`), for keys
    /// people type in configuration files (the promotion policy's guardrails and floors)
    /// and the numbers recorded with a promotion decision.
    public static func identifier(_ metric: String) -> String { metric.replacingOccurrences(of: "@", with: "_at_") }

    /// Every metric of `metrics` whose name starts with `prefix`, under its bare name.
    public static func withPrefix(_ prefix: String, in metrics: [String: Double]) -> [String: Double] {
        var out: [String: Double] = [:]
        for (name, value) in metrics where name.hasPrefix(prefix) { out[String(name.dropFirst(prefix.count))] = value }
        return out
    }

    /// Whether a smaller value of the stored metric `name` (bare or behind a data set's
    /// prefix) is better: the losses. Every other metric Tower records is better larger,
    /// so "best first" sorts by this.
    public static func lowerIsBetter(_ name: String) -> Bool {
        let prefix = [trainPrefix, validPrefix, testPrefix, holdoutPrefix].first { name.hasPrefix($0) }
        let bare = prefix.map { String(name.dropFirst($0.count)) } ?? name
        return bare == logLoss || bare == brier
    }

    /// `value` as people read the bare metric `metric`: counts as integers, everything
    /// else (rates, AUC, losses, ranking metrics) with four decimals; NaN as "n/a".
    public static func formatted(_ value: Double, of metric: String) -> String {
        if value.isNaN { return "n/a" }
        if metric == rows, value.isFinite, value == value.rounded(), abs(value) < 1e15 { return String(Int(value)) }
        return String(format: "%.4f", value)
    }
}
