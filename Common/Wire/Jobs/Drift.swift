import Foundation

/// Drift computation: shards of reference and current rows are counted into histograms on
/// bins fixed from the reference; the coordinator merges them (an exact merge) and decides
/// per feature and for the data set.
public enum DriftKind: JobKindDescriptor {
    public typealias Spec = WireDriftSpec
    public typealias Summary = WireDriftSummary
    public static let name = "drift"

    public static func describe(_ s: WireDriftSummary) -> [String] {
        var lines = [String(format: "drift: %@ — %d of %d features drifted (%.0f%%); reference %llu rows, current %llu rows; report %@",
                            s.datasetDrift ? "DATA SET DRIFT" : "no data set drift", s.driftedFeatures.count, Int(s.features),
                            s.driftedShare * 100, s.referenceRows, s.currentRows, s.reportID)]
        lines += s.lines.map { "  \($0)" }
        if !s.retrainingRun.isEmpty { lines.append("retraining started: pipeline run \(s.retrainingRun)") }
        return lines
    }
}
