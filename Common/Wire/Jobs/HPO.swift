import Foundation

/// Hyperparameter search: one task per trial, adaptive (TPE), with ASHA early stopping;
/// the winner is registered and put through the promotion policy.
public enum HPOKind: JobKindDescriptor {
    public typealias Spec = WireHPOSpec
    public typealias Summary = WireHPOSummary
    public static let name = "hpo"
    /// A failed trial is part of searching: the search fails only if no trial finished.
    public static let failureRule = JobFailureRule.atLeast(1)

    public static var summaryShape: JSONShape<WireHPOSummary>? {
        JSONShape([
            .integer("trials", \.trials, "Trials run."),
            .integer("stopped_early", \.stoppedEarly, "Trials ASHA stopped early."),
            .integer("failed", \.failed, "Trials that failed."),
            .optionalString("best_run", \.bestRun, "The winning run, or null when no trial finished."),
            .numberMap("best_metrics", \.bestMetrics, "The winner's validation metrics."),
            .string("model_name", \.modelName, "The registered model the winner became a version of."),
            .integer("version", \.version, "That version; 0 when nothing was registered."),
            .boolean("promoted", \.promoted, "Whether the promotion policy made it champion."),
            .strings("reasons", \.reasons, "Why it was promoted or not."),
        ])
    }

    public static func describe(_ s: WireHPOSummary) -> [String] {
        var lines = ["search: \(s.trials) trials (\(s.stoppedEarly) stopped early by ASHA, \(s.failed) failed); best run \(s.bestRun)"]
        let shown = ["valid_auc", "valid_logloss", "valid_precision@10", "valid_ndcg@10"]
        let best = shown.compactMap { key in s.bestMetrics[key].map { "\(key) \(String(format: "%.4f", $0))" } }
        if !best.isEmpty { lines.append("best: " + best.joined(separator: ", ")) }
        if s.version > 0 {
            lines.append("registered \(s.modelName) version \(s.version): \(s.promoted ? "PROMOTED to champion" : "not promoted")")
        }
        lines += s.reasons.map { "  - \($0)" }
        return lines
    }
}
