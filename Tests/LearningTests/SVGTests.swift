import Foundation
#if canImport(FoundationXML)
import FoundationXML
#endif
import Testing
@testable import Learning

/// Parses an SVG and records element names, so tests check real XML well-formedness.
final class ElementCollector: NSObject, XMLParserDelegate {
    var elements: [String] = []
    /// Text content per element (the parser may deliver it in pieces).
    var texts: [String] = []
    private var current = ""
    func parser(_ parser: XMLParser, didStartElement name: String, namespaceURI: String?, qualifiedName: String?,
                attributes: [String: String] = [:]) { elements.append(name); current = "" }
    func parser(_ parser: XMLParser, foundCharacters string: String) { current += string }
    func parser(_ parser: XMLParser, didEndElement name: String, namespaceURI: String?, qualifiedName: String?) {
        if !current.isEmpty { texts.append(current) }
        current = ""
    }
}

func parseSVG(_ text: String) -> (ok: Bool, collector: ElementCollector) {
    let parser = XMLParser(data: Data(text.utf8))
    let collector = ElementCollector()
    parser.delegate = collector
    return (parser.parse(), collector)
}

@Suite struct SVGTests {
    @Test func escapesTextAndAttributes() {
        var doc = SVGDocument(width: 100, height: 50)
        doc.text("price < budget & \"new\"", x: 1, y: 2, fill: "#000\"")
        let (ok, c) = parseSVG(doc.rendered)
        #expect(ok)
        #expect(c.elements.first == "svg")
        #expect(c.texts.joined().contains("price < budget & \"new\""))
    }

    @Test func learningCurveIsWellFormedWithBothSeries() {
        var curve = LearningCurve()
        curve.trainLogLoss = [0.6, 0.5, 0.45, 0.4]
        curve.validLogLoss = [0.62, 0.55, 0.52, .nan]
        let (ok, c) = parseSVG(Plots.learningCurve(curve).rendered)
        #expect(ok)
        #expect(c.elements.filter { $0 == "polyline" }.count == 2)
    }

    @Test func shapSummaryHasOneBarPerFeatureLargestFirst() {
        let svg = Plots.shapSummary(featureNames: ["a", "b", "c<d"], meanAbsoluteSHAP: [0.1, 0.5, 0.3]).rendered
        let (ok, c) = parseSVG(svg)
        #expect(ok)
        #expect(c.elements.filter { $0 == "rect" }.count == 1 + 3)  // background + bars
        let labels = c.texts.filter { ["a", "b", "c<d"].contains($0) }
        #expect(labels == ["b", "c<d", "a"])
    }

    @Test func scoreHistogramCountsEveryScore() {
        let svg = Plots.scoreHistogram(probabilities: [0.05, 0.1, 0.5, 0.95, 1.0], labels: [0, 0, 1, 1, 1], bins: 10).rendered
        let (ok, c) = parseSVG(svg)
        #expect(ok)
        #expect(c.elements.contains("rect"))
        #expect(c.texts.contains("positive"))
    }
}
