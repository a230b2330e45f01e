import Foundation
import Testing
@testable import Learning

@Suite struct TreeSHAPTests {
    static func model(features: Int = 5, trees: Int = 20, leaves: Int = 15) throws -> (GradientBoostedModel, Dataset) {
        let data = Fixtures.mixedData(rows: 2000, features: features)
        var p = BoostingParameters()
        p.numIterations = trees
        p.numLeaves = leaves
        p.minDataInLeaf = 10
        return (try GBDTTrainer.train(data, parameters: p), data)
    }

    /// The prepared explainer (tables per leaf, one pass per row) gives the recursive
    /// algorithm's values, with repeated features on a path, missing values and a tree
    /// deeper than its table limit among the cases.
    @Test func thePreparedExplainerGivesTheRecursiveValues() throws {
        for (features, leaves) in [(5, 15), (12, 63), (3, 31)] {
            let (model, data) = try Self.model(features: features, trees: 25, leaves: leaves)
            let explainer = PreparedTreeSHAP(model)
            var rng = Xoshiro256(seed: 91)
            for _ in 0..<60 {
                let row: [Float] = (0..<data.featureCount).map { _ in rng.bernoulli(0.15) ? .nan : Float(rng.normal(mean: 0, sd: 2)) }
                let expected = TreeSHAP.contributions(model, row: row), got = explainer.contributions(row: row)
                for j in 0..<expected.count {
                    #expect(abs(got[j] - expected[j]) <= 1e-9 * max(1, abs(expected[j])), "feature \(j): \(got[j]) vs \(expected[j]) (\(features) features, \(leaves) leaves)")
                }
            }
        }
        // Trees whose paths hold more unique features than the tables allow, or whose
        // tables would be too big, fall back to the recursive algorithm; the answer is the same.
        let (wide, data) = try Self.model(features: 20, trees: 5, leaves: 255)
        let row = data.row(3)
        for (paths, entries) in [(12, Int.max), (16, 50_000)] {
            let explainer = PreparedTreeSHAP(wide, maxPathFeatures: paths, maxTableEntriesPerTree: entries)
            #expect(explainer.recursiveTreeCount > 0, "no tree exceeded \(paths) path features or \(entries) table values; the fallback went untested")
            #expect(explainer.recursiveTreeCount < wide.trees.count, "every tree went recursive; the tables went untested")
            let expected = TreeSHAP.contributions(wide, row: row)
            #expect(explainer.contributions(row: row).enumerated().allSatisfy { abs($1 - expected[$0]) < 1e-9 })
        }
    }

    @Test func contributionsAddUpToTheMargin() throws {
        let (model, data) = try Self.model()
        let base = TreeSHAP.expectedValue(model)
        var rng = Xoshiro256(seed: 77)
        for _ in 0..<40 {
            // Random rows, including missing values and values outside the training range.
            let row: [Float] = (0..<data.featureCount).map { _ in
                rng.bernoulli(0.15) ? .nan : Float(rng.normal(mean: 0, sd: 2))
            }
            let phi = TreeSHAP.contributions(model, row: row)
            let margin = model.predictRaw(row: row)
            #expect(abs(base + phi.reduce(0, +) - margin) < 1e-9 * max(1, abs(margin)))
        }
    }

    /// Shapley values by their definition, with the same path-dependent conditional
    /// expectation: exponential in the number of features, exact for a handful.
    static func bruteForce(_ model: GradientBoostedModel, row: [Float]) -> [Double] {
        let m = row.count
        func conditional(_ tree: RegressionTree, _ node: Int32, _ known: Set<Int>) -> Double {
            if node < 0 { return tree.leafValue[Int(~node)] }
            let i = Int(node)
            let f = Int(tree.splitFeature[i])
            if known.contains(f) {
                let v = row[f]
                let left = v.isNaN ? tree.defaultLeft[i] : v <= tree.threshold[i]
                return conditional(tree, left ? tree.leftChild[i] : tree.rightChild[i], known)
            }
            func cover(_ c: Int32) -> Double { c >= 0 ? tree.nodeCover[Int(c)] : tree.leafCover[Int(~c)] }
            let l = tree.leftChild[i], r = tree.rightChild[i]
            return (cover(l) * conditional(tree, l, known) + cover(r) * conditional(tree, r, known)) / tree.nodeCover[i]
        }
        func value(_ s: Set<Int>) -> Double { model.trees.reduce(0) { $0 + conditional($1, $1.root, s) } }
        func factorial(_ n: Int) -> Double { n <= 1 ? 1 : Double(n) * factorial(n - 1) }
        var phi = [Double](repeating: 0, count: m)
        for i in 0..<m {
            let others = (0..<m).filter { $0 != i }
            for mask in 0..<(1 << others.count) {
                var s = Set<Int>()
                for (b, f) in others.enumerated() where mask & (1 << b) != 0 { s.insert(f) }
                let weight = factorial(s.count) * factorial(m - s.count - 1) / factorial(m)
                phi[i] += weight * (value(s.union([i])) - value(s))
            }
        }
        return phi
    }

    @Test func matchesShapleyDefinitionOnSmallModel() throws {
        let (model, data) = try Self.model(features: 4, trees: 6, leaves: 8)
        for r in stride(from: 0, to: 400, by: 37) {
            let row = data.row(r)
            let fast = TreeSHAP.contributions(model, row: row)
            let exact = Self.bruteForce(model, row: row)
            for j in 0..<row.count { #expect(abs(fast[j] - exact[j]) < 1e-9) }
        }
    }

    @Test func unusedFeatureGetsZero() throws {
        // x1 and x2 are pure noise and a 2-leaf model only ever splits x0.
        let data = Fixtures.stepData()
        var p = BoostingParameters()
        p.numIterations = 3
        p.numLeaves = 2
        let model = try GBDTTrainer.train(data, parameters: p)
        let phi = TreeSHAP.contributions(model, row: [0.8, 0.1, 3])
        #expect(phi[0] > 0 && phi[1] == 0 && phi[2] == 0)
        let importance = try TreeSHAP.meanAbsolute(model, data: data)
        #expect(importance[0] > 0 && importance[1] == 0)
    }

    @Test func batchContributionsMatchPerRow() throws {
        let (model, data) = try Self.model(trees: 5)
        let sample = data.subset(Array(0..<50))
        let batch = try TreeSHAP.contributions(model, data: sample)
        for r in 0..<50 { #expect(batch[r] == TreeSHAP.contributions(model, row: sample.row(r))) }
    }

    @Test func topReasonsArePhrasedForPairFeatures() {
        let schema = PairFeatures.schema
        var phi = [Double](repeating: 0, count: schema.count)
        phi[schema.index(of: "price_to_budget")!] = 0.9
        phi[schema.index(of: "region_match")!] = 0.5
        phi[schema.index(of: "age")!] = 0.2
        phi[schema.index(of: "school_score")!] = -1.0
        let reasons = TopReasons.reasons(contributions: phi, schema: schema, count: 3)
        #expect(reasons.map(\.phrase) == ["price within budget", "same region as preferred", "age"])
        #expect(TopReasons.reasons(contributions: phi, schema: schema, count: 10).count == 3)
    }

    /// A row's explanation names what raised its score and what lowered it, each with the
    /// sign of its contribution, all in words.
    @Test func reasonsSayWhatRaisedAndWhatLoweredAScore() throws {
        let (model, data) = try Self.model()
        let row = data.row(0)
        let phi = TreeSHAP.contributions(model, row: row)
        let (raising, lowering) = TopReasons.both(model, row: row, count: 2, phrases: [:])
        #expect(raising.allSatisfy { $0.contribution > 0 } && lowering.allSatisfy { $0.contribution < 0 })
        let names = model.schema.features.map(\.name)
        let expectedUp = phi.indices.filter { phi[$0] > 0 }.sorted { phi[$0] > phi[$1] }.prefix(2).map { names[$0] }
        let expectedDown = phi.indices.filter { phi[$0] < 0 }.sorted { phi[$0] < phi[$1] }.prefix(2).map { names[$0] }
        #expect(raising.map(\.feature) == Array(expectedUp))
        #expect(lowering.map(\.feature) == Array(expectedDown))
        #expect(TopReasons.phrase("listing_age_days", [:]) == "listing age days")
        #expect(TopReasons.phrase("price_to_budget", PairFeatures.reasonPhrases) == "price within budget")
    }
}
