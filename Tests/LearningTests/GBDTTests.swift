import Foundation
import Testing
@testable import Learning

@Suite struct GBDTTests {
    @Test func findsTheKnownSplit() throws {
        let data = Fixtures.stepData()
        var p = BoostingParameters()
        p.numIterations = 1
        p.numLeaves = 2
        let model = try GBDTTrainer.train(data, parameters: p)
        let root = model.trees[0]
        #expect(root.nodeCount == 1)
        #expect(root.splitFeature[0] == 0)
        // The threshold lies between the largest x0 ≤ 0.3 and the smallest above it.
        let x0 = data.columns[0]
        let below = x0.filter { $0 <= 0.3 }.max()!, above = x0.filter { $0 > 0.3 }.min()!
        #expect(root.threshold[0] >= below && root.threshold[0] < above)
        // The split separates the classes perfectly.
        let left = root.leafValue[Int(~root.leftChild[0])], right = root.leafValue[Int(~root.rightChild[0])]
        #expect(left < 0 && right > 0)
    }

    @Test func learnsTheStepFunction() throws {
        var p = BoostingParameters()
        p.numIterations = 30
        let model = try GBDTTrainer.train(Fixtures.stepData(), parameters: p)
        let report = try model.evaluate(Fixtures.stepData(seed: 9))
        #expect(report.auc > 0.999)
        #expect(model.predictProbability(row: [0.9, 0.5, 0]) > 0.9)
        #expect(model.predictProbability(row: [0.1, 0.5, 0]) < 0.1)
    }

    @Test func routesMissingValuesByLearnedDirection() throws {
        // Label is 1 exactly when x is missing or large: the NaN rows must go with the large values.
        var rng = Xoshiro256(seed: 5)
        var x: [Float] = [], y: [Float] = []
        for _ in 0..<2000 {
            let r = rng.uniform()
            if r < 0.2 { x.append(.nan); y.append(1) } else { let v = Float(rng.uniform()); x.append(v); y.append(v > 0.7 ? 1 : 0) }
        }
        let data = Dataset(schema: FeatureSchema([Feature(name: "x")]), columns: [x], labels: y)
        var p = BoostingParameters()
        p.numIterations = 20
        p.numLeaves = 4
        let model = try GBDTTrainer.train(data, parameters: p)
        #expect(model.predictProbability(row: [.nan]) > 0.9)
        #expect(model.predictProbability(row: [0.2]) < 0.1)
        #expect(model.predictProbability(row: [0.9]) > 0.9)
        // Float-threshold prediction agrees with the binned routing used during training.
        let first = model.trees[0]
        let nanLeaf = first.leaf { _ in .nan }
        let binned = BinnedMatrix(Dataset(schema: data.schema, columns: [[.nan]]), binnings: model.binnings)
        #expect(first.leaf(binned: binned, row: 0, nanBins: model.binnings.map(\.nanBin)) == nanLeaf)
    }

    @Test func sameSeedSameModelAcrossThreadCounts() throws {
        let data = Fixtures.mixedData()
        var p = try BoostingParameters(parsing: "num_iterations=15,num_leaves=15,feature_fraction=0.7,bagging_fraction=0.8,bagging_freq=1,seed=42")
        p.threads = 1
        let a = try GBDTTrainer.train(data, parameters: p)
        p.threads = 2
        let b = try GBDTTrainer.train(data, parameters: p)
        #expect(a.trees == b.trees)
        #expect(a.initialScore == b.initialScore)
        p.seed = 43
        let c = try GBDTTrainer.train(data, parameters: p)
        #expect(a.trees != c.trees)
    }

    @Test func respectsLeafAndDepthLimits() throws {
        let data = Fixtures.mixedData()
        var p = BoostingParameters()
        p.numIterations = 5
        p.numLeaves = 7
        p.minDataInLeaf = 50
        var model = try GBDTTrainer.train(data, parameters: p)
        for t in model.trees {
            #expect(t.leafCount <= 7)
            #expect(t.leafCover.allSatisfy { $0 >= 50 })
            // Covers add up: every internal node's cover is the sum of its children's.
            for i in 0..<t.nodeCount {
                func cover(_ c: Int32) -> Double { c >= 0 ? t.nodeCover[Int(c)] : t.leafCover[Int(~c)] }
                #expect(cover(t.leftChild[i]) + cover(t.rightChild[i]) == t.nodeCover[i])
            }
        }
        p.numLeaves = 31
        p.maxDepth = 2
        model = try GBDTTrainer.train(data, parameters: p)
        #expect(model.trees.allSatisfy { $0.maxDepth <= 2 && $0.leafCount <= 4 })
    }

    @Test func earlyStoppingKeepsBestIteration() throws {
        let data = Fixtures.mixedData(rows: 1500)
        let valid = Fixtures.mixedData(rows: 1500, seed: 3)
        var p = try BoostingParameters(parsing: "num_iterations=300,learning_rate=0.5,num_leaves=63,min_data_in_leaf=2,early_stopping_round=5")
        p.minSumHessianInLeaf = 0
        let model = try GBDTTrainer.train(data, valid: valid, parameters: p)
        #expect(model.trees.count < 300)
        let best = model.curve.validLogLoss.enumerated().min { $0.element < $1.element }!.offset + 1
        #expect(model.trees.count == best)
        #expect(model.curve.validLogLoss.count == best + 5)
    }

    @Test func callbackSeesMetricsAndCanStop() throws {
        let data = Fixtures.mixedData(rows: 1000)
        var seen: [(Int, Double, ValidationMetrics?)] = []
        var p = BoostingParameters()
        p.numIterations = 50
        let model = try GBDTTrainer.train(data, valid: data, parameters: p) { iteration, loss, valid in
            seen.append((iteration, loss, valid))
            return iteration < 7
        }
        #expect(seen.map(\.0) == Array(1...7))
        #expect(model.trees.count == 7)
        #expect(seen.allSatisfy { $0.1.isFinite && $0.2 != nil })
        // Training loss decreases as trees are added.
        #expect(seen.last!.1 < seen.first!.1)
    }

    @Test func parameterParsingRejectsBadInput() throws {
        let p = try BoostingParameters(parsing: "num_trees=7, eta=0.05,num_leaves=15,max_bin=63")
        #expect(p.numIterations == 7 && p.learningRate == 0.05 && p.numLeaves == 15 && p.maxBin == 63)
        #expect(throws: ParameterError.self) { try BoostingParameters(parsing: "num_leaf=3") }
        #expect(throws: ParameterError.invalidValue(key: "learning_rate", value: "-1", expected: "a number > 0.0")) {
            try BoostingParameters(parsing: "learning_rate=-1")
        }
        #expect(throws: ParameterError.malformed("bagging")) { try BoostingParameters(parsing: "bagging") }
        #expect(BoostingParameters(dictionary: p.dictionary) == p)
    }

    @Test func singleClassIsRejected() {
        let d = Dataset(schema: FeatureSchema([Feature(name: "x")]), columns: [[1, 2, 3]], labels: [0, 0, 0])
        #expect(throws: TrainingError.singleClass(positiveRate: 0)) { try GBDTTrainer.train(d) }
    }

    @Test func binningGuaranteesThresholdEquivalence() {
        var rng = Xoshiro256(seed: 8)
        let values = (0..<5000).map { _ in Float((rng.normal() * 10).rounded() / 10) } + [.nan, .nan]
        let b = FeatureBinning.fit(values, maxBin: 32)
        #expect(b.valueBinCount <= 32)
        #expect(Int(b.bin(.nan)) == b.nanBin)
        for v in values where !v.isNaN {
            let bin = Int(b.bin(v))
            for t in 0..<b.valueBinCount { #expect((bin <= t) == (v <= b.upperBounds[t])) }
        }
        // Few distinct values: one bin each when every value is seen minDataInBin times.
        #expect(FeatureBinning.fit([1, 1, 1, 2, 2, 2, 3, 3, 3], maxBin: 255).upperBounds == [1.5, 2.5, .infinity])
        #expect(FeatureBinning.fit([1, 2, 2, 3, 3, 3], maxBin: 255, minDataInBin: 1).valueBinCount == 3)
    }

    /// Values seen fewer than `minDataInBin` (3) times share a bin with the values above
    /// them, as LightGBM bins; with more distinct values than bins, no more bins than
    /// leave `minDataInBin` values in each on average.
    @Test func rareValuesShareABin() {
        // 1 once, 2 twice: together they reach 3 and close a bin; 3 thrice; 4 and 5 once
        // each are left in the last bin with no more values to reach 3.
        let b = FeatureBinning.fit([1, 2, 2, 3, 3, 3, 4, 5], maxBin: 255)
        #expect(b.upperBounds == [2.5, 3.5, .infinity])
        for (v, bin) in [(1, 0), (2, 0), (3, 1), (4, 2), (5, 2)] as [(Float, UInt8)] { #expect(b.bin(v) == bin) }
        // 1,000 distinct values seen once each, 255 bins asked, 10 values a bin at least.
        let many = (0..<1000).map { Float($0) }
        #expect(FeatureBinning.fit(many, maxBin: 255, minDataInBin: 10).valueBinCount == 100)
        #expect(FeatureBinning.fit(many, maxBin: 255, minDataInBin: 1).valueBinCount == 255)
    }

    @Test func beatsLogisticOnTheNonLinearMarket() throws {
        let data = try PairFeatures.build(Fixtures.smallMarket)
        let split = try TimeSplit(data, trainFraction: 0.7, validFraction: 0.1)
        var p = BoostingParameters()
        p.numIterations = 60
        p.numLeaves = 15
        let gbdt = try GBDTTrainer.train(split.train, valid: split.valid, parameters: p, recordCurve: false)
        let logistic = try LogisticTrainer.train(split.train)
        let treeReport = try gbdt.evaluate(split.test)
        let linearReport = try logistic.evaluate(split.test)
        #expect(treeReport.auc > linearReport.auc + 0.02)
        #expect(treeReport.logLoss < linearReport.logLoss)
    }
}
