import Foundation

/// Drift computation: shards of reference and current rows are counted into histograms on
/// bins fixed from the reference; the coordinator merges them (an exact merge) and decides
/// per feature and for the data set.
public enum DriftKind: JobKindDescriptor {
    public typealias Spec = WireDriftSpec
    public typealias Summary = WireDriftSummary
    public static let name = "drift"

    public static var summaryShape: JSONShape<WireDriftSummary>? {
        JSONShape([
            .boolean("dataset_drift", \.datasetDrift, "Whether the data set as a whole drifted."),
            .number("drifted_share", \.driftedShare, "Share of features that drifted, 0 to 1."),
            .strings("drifted_features", \.driftedFeatures, "Features that drifted."),
            .integer("features", \.features, "Features compared."),
            .integer("reference_rows", \.referenceRows, "Rows of the reference (the champion's training set)."),
            .integer("current_rows", \.currentRows, "Rows of the current window."),
            .string("report_id", \.reportID, "The stored report (`coordinator drift report`)."),
            .optionalString("retraining_run", \.retrainingRun, "The pipeline run this drift started, or null."),
            .strings("lines", \.lines, "One line per drifted feature with its measures."),
        ])
    }

    public static func describe(_ s: WireDriftSummary) -> [String] {
        var lines = [String(format: "drift: %@ — %d of %d features drifted (%.0f%%); reference %llu rows, current %llu rows; report %@",
                            s.datasetDrift ? "DATA SET DRIFT" : "no data set drift", s.driftedFeatures.count, Int(s.features),
                            s.driftedShare * 100, s.referenceRows, s.currentRows, s.reportID)]
        lines += s.lines.map { "  \($0)" }
        if !s.retrainingRun.isEmpty { lines.append("retraining started: pipeline run \(s.retrainingRun)") }
        return lines
    }
}
