import Foundation

/// A minimal SVG writer: enough for line charts, bar charts and histograms.
///
/// Guarantees: output is a well-formed standalone XML document; all text and attribute
/// values are escaped; numbers are written with fixed precision so files are stable
/// across runs.
public struct SVGDocument: Sendable {
    public let width: Double
    public let height: Double
    private var elements: [String] = []

    public init(width: Double, height: Double) {
        self.width = width
        self.height = height
    }

    public static func escape(_ s: String) -> String {
        var out = ""
        for ch in s {
            switch ch {
            case "&": out += "&amp;"
            case "<": out += "&lt;"
            case ">": out += "&gt;"
            case "\"": out += "&quot;"
            case "'": out += "&apos;"
            default: out.append(ch)
            }
        }
        return out
    }

    static func num(_ v: Double) -> String {
        v.isFinite ? String(format: "%.2f", v) : "0"
    }

    public mutating func rect(x: Double, y: Double, width: Double, height: Double, fill: String) {
        elements.append("<rect x=\"\(Self.num(x))\" y=\"\(Self.num(y))\" width=\"\(Self.num(max(0, width)))\" height=\"\(Self.num(max(0, height)))\" fill=\"\(Self.escape(fill))\"/>")
    }

    public mutating func line(x1: Double, y1: Double, x2: Double, y2: Double, stroke: String = "#444", width: Double = 1) {
        elements.append("<line x1=\"\(Self.num(x1))\" y1=\"\(Self.num(y1))\" x2=\"\(Self.num(x2))\" y2=\"\(Self.num(y2))\" stroke=\"\(Self.escape(stroke))\" stroke-width=\"\(Self.num(width))\"/>")
    }

    public mutating func polyline(_ points: [(Double, Double)], stroke: String, width: Double = 2) {
        guard !points.isEmpty else { return }
        let p = points.map { "\(Self.num($0.0)),\(Self.num($0.1))" }.joined(separator: " ")
        elements.append("<polyline points=\"\(p)\" fill=\"none\" stroke=\"\(Self.escape(stroke))\" stroke-width=\"\(Self.num(width))\"/>")
    }

    public enum Anchor: String, Sendable { case start, middle, end }

    public mutating func text(_ s: String, x: Double, y: Double, size: Double = 12, anchor: Anchor = .start,
                              fill: String = "#222") {
        elements.append("<text x=\"\(Self.num(x))\" y=\"\(Self.num(y))\" font-size=\"\(Self.num(size))\" text-anchor=\"\(anchor.rawValue)\" fill=\"\(Self.escape(fill))\">\(Self.escape(s))</text>")
    }

    public var rendered: String {
        var s = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
        s += "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"\(Self.num(width))\" height=\"\(Self.num(height))\" viewBox=\"0 0 \(Self.num(width)) \(Self.num(height))\" font-family=\"sans-serif\">\n"
        s += "<rect x=\"0\" y=\"0\" width=\"\(Self.num(width))\" height=\"\(Self.num(height))\" fill=\"white\"/>\n"
        for e in elements { s += e + "\n" }
        s += "</svg>\n"
        return s
    }

    public func write(to url: URL) throws { try rendered.write(to: url, atomically: true, encoding: .utf8) }
}

/// The plots Tower attaches to training runs.
public enum Plots {
    static let margin = (left: 60.0, right: 20.0, top: 40.0, bottom: 40.0)

    /// Train and validation log-loss per iteration (validation AUC is not on the same
    /// scale, so it is left to the metrics table).
    public static func learningCurve(_ curve: LearningCurve, title: String = "Learning curve (log-loss)") -> SVGDocument {
        let series: [(String, [Double], String)] = [("train", curve.trainLogLoss, "#1f77b4"),
                                                    ("valid", curve.validLogLoss, "#d62728")]
        return lineChart(series: series.filter { !$0.1.isEmpty }, title: title, xLabel: "iteration", yLabel: "log-loss")
    }

    public static func lineChart(series: [(name: String, values: [Double], color: String)], title: String,
                                 xLabel: String, yLabel: String, width: Double = 640, height: Double = 400) -> SVGDocument {
        var doc = SVGDocument(width: width, height: height)
        let m = margin
        let plotW = width - m.left - m.right, plotH = height - m.top - m.bottom
        let all = series.flatMap { $0.values }.filter(\.isFinite)
        let lo = all.min() ?? 0, hi = all.max() ?? 1
        let span = hi - lo > 1e-12 ? hi - lo : 1
        let n = max(2, series.map { $0.values.count }.max() ?? 2)
        doc.text(title, x: width / 2, y: 24, size: 15, anchor: .middle)
        axes(&doc, width: width, height: height)
        for k in 0...4 {
            let v = lo + span * Double(k) / 4
            let y = m.top + plotH * (1 - Double(k) / 4)
            doc.line(x1: m.left - 4, y1: y, x2: m.left, y2: y)
            doc.text(String(format: "%.3f", v), x: m.left - 6, y: y + 4, size: 10, anchor: .end)
        }
        doc.text("1", x: m.left, y: height - m.bottom + 16, size: 10, anchor: .middle)
        doc.text(String(n), x: width - m.right, y: height - m.bottom + 16, size: 10, anchor: .middle)
        doc.text(xLabel, x: m.left + plotW / 2, y: height - 8, size: 11, anchor: .middle)
        doc.text(yLabel, x: 8, y: m.top - 10, size: 11)
        for (i, s) in series.enumerated() {
            let points = s.values.enumerated().filter { $0.element.isFinite }.map { (k, v) in
                (m.left + plotW * Double(k) / Double(n - 1), m.top + plotH * (1 - (v - lo) / span))
            }
            doc.polyline(points, stroke: s.color)
            doc.rect(x: width - m.right - 90, y: m.top + 6 + Double(i) * 16, width: 10, height: 10, fill: s.color)
            doc.text(s.name, x: width - m.right - 76, y: m.top + 15 + Double(i) * 16, size: 11)
        }
        return doc
    }

    /// Horizontal bars of mean |SHAP| per feature, largest first (top `limit`).
    public static func shapSummary(featureNames: [String], meanAbsoluteSHAP: [Double], limit: Int = 15,
                                   title: String = "Feature importance (mean |SHAP|)") -> SVGDocument {
        let order = meanAbsoluteSHAP.indices.sorted { meanAbsoluteSHAP[$0] > meanAbsoluteSHAP[$1] }.prefix(limit)
        let rowH = 22.0
        let width = 640.0, labelW = 170.0
        let height = 60 + rowH * Double(order.count)
        var doc = SVGDocument(width: width, height: height)
        doc.text(title, x: width / 2, y: 24, size: 15, anchor: .middle)
        let maxV = order.map { meanAbsoluteSHAP[$0] }.max() ?? 1
        let barW = width - labelW - 80
        for (row, j) in order.enumerated() {
            let y = 40 + rowH * Double(row)
            let w = maxV > 0 ? barW * meanAbsoluteSHAP[j] / maxV : 0
            doc.text(featureNames[j], x: labelW - 6, y: y + 14, size: 11, anchor: .end)
            doc.rect(x: labelW, y: y + 3, width: w, height: rowH - 6, fill: "#1f77b4")
            doc.text(String(format: "%.4f", meanAbsoluteSHAP[j]), x: labelW + w + 4, y: y + 14, size: 10)
        }
        return doc
    }

    /// Histogram of predicted probabilities; with labels, positives and negatives are
    /// stacked in different colours so separation is visible.
    public static func scoreHistogram(probabilities: [Double], labels: [Float]? = nil, bins: Int = 30,
                                      title: String = "Score distribution") -> SVGDocument {
        let bins = max(1, bins)
        var neg = [Int](repeating: 0, count: bins), pos = [Int](repeating: 0, count: bins)
        for (i, p) in probabilities.enumerated() where p.isFinite {
            let b = min(bins - 1, max(0, Int(p * Double(bins))))
            if let labels, labels[i] > 0.5 { pos[b] += 1 } else { neg[b] += 1 }
        }
        let width = 640.0, height = 400.0
        var doc = SVGDocument(width: width, height: height)
        let m = margin
        let plotW = width - m.left - m.right, plotH = height - m.top - m.bottom
        let maxCount = max(1, zip(neg, pos).map { $0 + $1 }.max() ?? 1)
        doc.text(title, x: width / 2, y: 24, size: 15, anchor: .middle)
        axes(&doc, width: width, height: height)
        let bw = plotW / Double(bins)
        for b in 0..<bins {
            let hn = plotH * Double(neg[b]) / Double(maxCount), hp = plotH * Double(pos[b]) / Double(maxCount)
            let x = m.left + bw * Double(b)
            doc.rect(x: x + 1, y: m.top + plotH - hn, width: bw - 2, height: hn, fill: "#9ecae1")
            doc.rect(x: x + 1, y: m.top + plotH - hn - hp, width: bw - 2, height: hp, fill: "#d62728")
        }
        for k in 0...4 {
            let x = m.left + plotW * Double(k) / 4
            doc.text(String(format: "%.2f", Double(k) / 4), x: x, y: height - m.bottom + 16, size: 10, anchor: .middle)
        }
        doc.text(String(maxCount), x: m.left - 6, y: m.top + 4, size: 10, anchor: .end)
        doc.text("predicted probability", x: m.left + plotW / 2, y: height - 8, size: 11, anchor: .middle)
        if labels != nil {
            doc.rect(x: width - m.right - 110, y: m.top + 6, width: 10, height: 10, fill: "#9ecae1")
            doc.text("negative", x: width - m.right - 96, y: m.top + 15, size: 11)
            doc.rect(x: width - m.right - 110, y: m.top + 22, width: 10, height: 10, fill: "#d62728")
            doc.text("positive", x: width - m.right - 96, y: m.top + 31, size: 11)
        }
        return doc
    }

    private static func axes(_ doc: inout SVGDocument, width: Double, height: Double) {
        let m = margin
        doc.line(x1: m.left, y1: m.top, x2: m.left, y2: height - m.bottom)
        doc.line(x1: m.left, y1: height - m.bottom, x2: width - m.right, y2: height - m.bottom)
    }
}
