import Foundation

/// When a feature, and the data set, count as drifted. The defaults are Evidently's:
/// with fewer than `smallSampleRows` reference rows a feature is tested — KS (numeric) or
/// chi-squared (categorical), drifted when the p-value is below `pValue`; with more, a
/// distance decides — normed Wasserstein-1 (numeric) or Jensen–Shannon distance
/// (categorical), drifted when at or above its threshold, because with large samples
/// every test rejects on differences too small to matter. PSI is reported for every
/// feature in bands (`psiModerate`, `psiMajor`) on `psiBins` coarse bins but does not
/// decide. The data set drifts when the share of drifted features is at least
/// `datasetDriftShare`.
///
/// Decoding accepts any subset of the keys; missing ones keep their defaults.
public struct DriftThresholds: Sendable, Equatable, Codable {
    public var smallSampleRows = 1000
    public var pValue = 0.05
    public var wassersteinNormed = 0.1
    public var jensenShannon = 0.1
    public var psiModerate = 0.1
    public var psiMajor = 0.2
    public var datasetDriftShare = 0.5
    public var psiBins = 10

    public init(smallSampleRows: Int = 1000, pValue: Double = 0.05, wassersteinNormed: Double = 0.1,
                jensenShannon: Double = 0.1, psiModerate: Double = 0.1, psiMajor: Double = 0.2,
                datasetDriftShare: Double = 0.5, psiBins: Int = 10) {
        self.smallSampleRows = smallSampleRows
        self.pValue = pValue
        self.wassersteinNormed = wassersteinNormed
        self.jensenShannon = jensenShannon
        self.psiModerate = psiModerate
        self.psiMajor = psiMajor
        self.datasetDriftShare = datasetDriftShare
        self.psiBins = psiBins
    }

    enum CodingKeys: String, CodingKey {
        case smallSampleRows, pValue, wassersteinNormed, jensenShannon, psiModerate, psiMajor, datasetDriftShare, psiBins
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        let d = DriftThresholds()
        smallSampleRows = try c.decodeIfPresent(Int.self, forKey: .smallSampleRows) ?? d.smallSampleRows
        pValue = try c.decodeIfPresent(Double.self, forKey: .pValue) ?? d.pValue
        wassersteinNormed = try c.decodeIfPresent(Double.self, forKey: .wassersteinNormed) ?? d.wassersteinNormed
        jensenShannon = try c.decodeIfPresent(Double.self, forKey: .jensenShannon) ?? d.jensenShannon
        psiModerate = try c.decodeIfPresent(Double.self, forKey: .psiModerate) ?? d.psiModerate
        psiMajor = try c.decodeIfPresent(Double.self, forKey: .psiMajor) ?? d.psiMajor
        datasetDriftShare = try c.decodeIfPresent(Double.self, forKey: .datasetDriftShare) ?? d.datasetDriftShare
        psiBins = try c.decodeIfPresent(Int.self, forKey: .psiBins) ?? d.psiBins
    }

    /// "none" below `psiModerate`, "moderate" below `psiMajor`, else "major".
    public func psiBand(_ psi: Double) -> String {
        psi >= psiMajor ? "major" : psi >= psiModerate ? "moderate" : "none"
    }
}

/// The drift verdict for one feature and every measure behind it. `method` names the
/// measure that decided ("wasserstein_normed", "ks", "jensen_shannon", "chi_squared"),
/// `score` is its value (a distance, or a p-value for ks and chi_squared) and
/// `threshold` what it was compared with. Numeric features carry `ks`, `ksPValue` and
/// `wassersteinNormed`; categorical ones `jensenShannon` and `chiSquaredPValue`.
public struct FeatureDrift: Sendable, Equatable {
    public var name: String
    public var categorical: Bool
    public var method: String
    public var score: Double
    public var threshold: Double
    public var drifted: Bool
    public var psi: Double
    public var psiBand: String
    public var ks: Double?
    public var ksPValue: Double?
    public var wassersteinNormed: Double?
    public var jensenShannon: Double?
    public var chiSquaredPValue: Double?
    public var referenceRows: UInt64
    public var currentRows: UInt64
    public var referenceMissing: UInt64
    public var currentMissing: UInt64

    /// Whether `score` is a p-value (drift when below the threshold) rather than a
    /// distance (drift when at or above it).
    public var scoreIsPValue: Bool { method == "ks" || method == "chi_squared" }
}

/// Drift of current data against reference data, per feature and for the data set.
///
/// Guarantees: computed from histograms only, so the report of merged shard histograms
/// equals (`==`) the report of histograms counted in one process. See `DriftStatistics`
/// for the exact definition of every measure and `DriftThresholds` for the decisions.
public struct DriftReport: Sendable, Equatable {
    public var features: [FeatureDrift]
    /// Drifted features over all features (0 when there are none).
    public var driftedShare: Double
    public var datasetDrift: Bool
    /// The thresholds the report was decided with (the SVGs use `psiBins`).
    public var thresholds: DriftThresholds

    /// Measures every feature of `binning`. `reference` and `current` must have been
    /// counted against `binning` (a mismatch is a programming error and traps; merging
    /// already rejects shards from another binning).
    public static func compute(reference: DriftHistograms, current: DriftHistograms, binning: DriftBinning,
                               thresholds: DriftThresholds = DriftThresholds()) -> DriftReport {
        precondition(reference.featureCount == binning.featureCount && current.featureCount == binning.featureCount,
                     "histograms counted against this binning")
        var features: [FeatureDrift] = []
        for f in 0..<binning.featureCount {
            features.append(measure(feature: f, reference: reference, current: current, binning: binning, thresholds: thresholds))
        }
        let drifted = features.filter(\.drifted).count
        let share = features.isEmpty ? 0 : Double(drifted) / Double(features.count)
        return DriftReport(features: features, driftedShare: share,
                           datasetDrift: !features.isEmpty && share >= thresholds.datasetDriftShare,
                           thresholds: thresholds)
    }

    private static func measure(feature f: Int, reference: DriftHistograms, current: DriftHistograms,
                                binning: DriftBinning, thresholds t: DriftThresholds) -> FeatureDrift {
        let spec = binning.specs[f]
        let r = reference.counts(feature: f), c = current.counts(feature: f)
        precondition(r.count == binning.binCount(feature: f) && c.count == r.count, "histograms counted against this binning")
        let small = reference.rowCount < UInt64(max(0, t.smallSampleRows))
        var out = FeatureDrift(name: spec.name, categorical: spec.categorical, method: "", score: 0, threshold: 0,
                               drifted: false, psi: 0, psiBand: "none", referenceRows: reference.rowCount,
                               currentRows: current.rowCount, referenceMissing: reference.missing(feature: f),
                               currentMissing: current.missing(feature: f))
        if spec.categorical {
            out.psi = DriftStatistics.psi(reference: r, current: c)
            let js = DriftStatistics.jensenShannon(reference: r, current: c)
            let chi = DriftStatistics.chiSquared(reference: r, current: c)
            out.jensenShannon = js
            out.chiSquaredPValue = chi.pValue
            if small {
                (out.method, out.score, out.threshold, out.drifted) = ("chi_squared", chi.pValue, t.pValue, chi.pValue < t.pValue)
            } else {
                (out.method, out.score, out.threshold, out.drifted) = ("jensen_shannon", js, t.jensenShannon, js >= t.jensenShannon)
            }
        } else {
            let ends = DriftStatistics.psiBinEnds(reference: r, bins: t.psiBins)
            out.psi = DriftStatistics.psi(reference: DriftStatistics.group(r, ends: ends),
                                          current: DriftStatistics.group(c, ends: ends))
            let d = DriftStatistics.ks(reference: r, current: c)
            let p = DriftStatistics.ksPValue(statistic: d, n: reference.nonMissing(feature: f), m: current.nonMissing(feature: f))
            let mins = [reference.minimum(feature: f), current.minimum(feature: f)].compactMap { $0 }
            let maxs = [reference.maximum(feature: f), current.maximum(feature: f)].compactMap { $0 }
            let w = DriftStatistics.wasserstein(reference: r, current: c, cuts: binning.cutPoints(feature: f),
                                                lower: Double(mins.min() ?? 0), upper: Double(maxs.max() ?? 0))
            let wn = w / max(reference.standardDeviation(feature: f), DriftStatistics.minimumNorm)
            out.ks = d
            out.ksPValue = p
            out.wassersteinNormed = wn
            if small {
                (out.method, out.score, out.threshold, out.drifted) = ("ks", p, t.pValue, p < t.pValue)
            } else {
                (out.method, out.score, out.threshold, out.drifted) = ("wasserstein_normed", wn, t.wassersteinNormed, wn >= t.wassersteinNormed)
            }
        }
        out.psiBand = t.psiBand(out.psi)
        return out
    }

    /// One line for the data set, then one per feature, e.g.
    /// `price: drifted (wasserstein_normed 0.23 >= 0.1), PSI 0.31 major`.
    public var summaryLines: [String] {
        let drifted = features.filter(\.drifted).count
        var lines = ["dataset: \(datasetDrift ? "drifted" : "no drift") (\(drifted) of \(features.count) features drifted, share \(Self.short(driftedShare)) \(datasetDrift ? ">=" : "<") \(Self.short(thresholds.datasetDriftShare)))"]
        for f in features {
            let comparison: String
            if f.scoreIsPValue {
                comparison = "\(f.method) p \(Self.short(f.score)) \(f.drifted ? "<" : ">=") \(Self.short(f.threshold))"
            } else {
                comparison = "\(f.method) \(Self.short(f.score)) \(f.drifted ? ">=" : "<") \(Self.short(f.threshold))"
            }
            lines.append("\(f.name): \(f.drifted ? "drifted" : "no drift") (\(comparison)), PSI \(Self.short(f.psi)) \(f.psiBand)")
        }
        return lines
    }

    static func short(_ v: Double) -> String { String(format: "%.3g", v) }

    // MARK: Plot

    /// The reference and current distributions of one feature as paired bars, in shares
    /// of all rows: on the PSI coarse bins for a numeric feature, on the categories for a
    /// categorical one (at most 30 bars: the largest categories, the rest summed), with
    /// "other" and "missing" bars when either side has such rows. The title states the
    /// verdict and the measures. A standalone SVG document.
    public func svg(feature: Int, reference: DriftHistograms, current: DriftHistograms, binning: DriftBinning) -> String {
        let drift = features[feature]
        let r = reference.counts(feature: feature), c = current.counts(feature: feature)
        var labels: [String] = []
        var rb: [UInt64] = [], cb: [UInt64] = []
        if drift.categorical {
            let categories = binning.categories(feature: feature)
            var order = Array(categories.indices)
            let limit = 30
            if order.count > limit {
                let keep = Set(order.sorted { max(r[$0], c[$0]) > max(r[$1], c[$1]) }.prefix(limit - 1))
                order = order.filter { keep.contains($0) }
            }
            for i in order {
                labels.append(String(format: "%g", categories[i]))
                rb.append(r[i]); cb.append(c[i])
            }
            if order.count < categories.count {
                let rest = Set(categories.indices).subtracting(order)
                labels.append("(rest)")
                rb.append(rest.reduce(0) { $0 + r[$1] }); cb.append(rest.reduce(0) { $0 + c[$1] })
            }
            let other = categories.count
            if r[other] > 0 || c[other] > 0 { labels.append("other"); rb.append(r[other]); cb.append(c[other]) }
        } else {
            let cuts = binning.cutPoints(feature: feature)
            let ends = DriftStatistics.psiBinEnds(reference: r, bins: thresholds.psiBins)
            let rg = DriftStatistics.group(r, ends: ends), cg = DriftStatistics.group(c, ends: ends)
            for (k, end) in ends.enumerated() {
                let lower = k == 0 ? nil : cuts[ends[k - 1]]
                if end >= cuts.count {
                    labels.append(lower.map { "> " + Self.short(Double($0)) } ?? "all")
                } else if let lower {
                    labels.append(Self.short(Double(lower)) + "–" + Self.short(Double(cuts[end])))
                } else {
                    labels.append("≤ " + Self.short(Double(cuts[end])))
                }
                rb.append(rg[k]); cb.append(cg[k])
            }
        }
        let missing = r.count - 1
        if r[missing] > 0 || c[missing] > 0 { labels.append("missing"); rb.append(r[missing]); cb.append(c[missing]) }

        let rn = Double(max(1, reference.rowCount)), cn = Double(max(1, current.rowCount))
        let rp = rb.map { Double($0) / rn }, cp = cb.map { Double($0) / cn }
        let width = 720.0, height = 420.0
        let m = (left: 60.0, right: 20.0, top: 64.0, bottom: 56.0)
        let plotW = width - m.left - m.right, plotH = height - m.top - m.bottom
        var doc = SVGDocument(width: width, height: height)
        let verdict = drift.drifted ? "drifted" : "no drift"
        let decided = drift.scoreIsPValue ? "\(drift.method) p \(Self.short(drift.score))" : "\(drift.method) \(Self.short(drift.score))"
        doc.text("\(drift.name): \(verdict) (\(decided), threshold \(Self.short(drift.threshold)))",
                 x: width / 2, y: 22, size: 15, anchor: .middle, fill: drift.drifted ? "#b2182b" : "#222")
        var measures = ["PSI \(Self.short(drift.psi)) (\(drift.psiBand))"]
        if let ks = drift.ks, let p = drift.ksPValue { measures.append("KS \(Self.short(ks)) (p \(Self.short(p)))") }
        if let w = drift.wassersteinNormed { measures.append("Wasserstein normed \(Self.short(w))") }
        if let js = drift.jensenShannon { measures.append("Jensen–Shannon \(Self.short(js))") }
        if let p = drift.chiSquaredPValue { measures.append("chi-squared p \(Self.short(p))") }
        doc.text(measures.joined(separator: " · "), x: width / 2, y: 42, size: 11, anchor: .middle, fill: "#555")

        doc.line(x1: m.left, y1: m.top, x2: m.left, y2: height - m.bottom)
        doc.line(x1: m.left, y1: height - m.bottom, x2: width - m.right, y2: height - m.bottom)
        let top = max(rp.max() ?? 0, cp.max() ?? 0, 1e-9)
        for k in 0...4 {
            let v = top * Double(k) / 4
            let y = m.top + plotH * (1 - Double(k) / 4)
            doc.line(x1: m.left - 4, y1: y, x2: m.left, y2: y)
            doc.text(String(format: "%.0f%%", v * 100), x: m.left - 6, y: y + 4, size: 10, anchor: .end)
        }
        let slot = plotW / Double(max(1, labels.count))
        let barW = max(1, slot * 0.4)
        let (refColor, curColor) = ("#4e79a7", "#e15759")
        for i in labels.indices {
            let x = m.left + slot * Double(i) + slot * 0.1
            let hr = plotH * rp[i] / top, hc = plotH * cp[i] / top
            doc.rect(x: x, y: m.top + plotH - hr, width: barW, height: hr, fill: refColor)
            doc.rect(x: x + barW, y: m.top + plotH - hc, width: barW, height: hc, fill: curColor)
            // Alternate label rows so neighbouring range labels do not overlap.
            doc.text(labels[i], x: m.left + slot * (Double(i) + 0.5), y: height - m.bottom + 14 + Double(i % 2) * 12,
                     size: 9, anchor: .middle)
        }
        doc.rect(x: width - m.right - 180, y: m.top - 12, width: 10, height: 10, fill: refColor)
        doc.text("reference (\(reference.rowCount))", x: width - m.right - 166, y: m.top - 3, size: 10)
        doc.rect(x: width - m.right - 80, y: m.top - 12, width: 10, height: 10, fill: curColor)
        doc.text("current (\(current.rowCount))", x: width - m.right - 66, y: m.top - 3, size: 10)
        return doc.rendered
    }
}
