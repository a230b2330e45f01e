import Testing
@testable import Learning

/// QuickScorer gives what walking each tree gives, bit for bit: with missing values
/// going both ways, with values exactly on thresholds, and with trees of up to 64 leaves.
@Suite struct QuickScorerTests {
    func model(leaves: Int, trees: Int = 40) throws -> GradientBoostedModel {
        var p = BoostingParameters()
        p.numIterations = trees
        p.numLeaves = leaves
        p.minDataInLeaf = 5
        return try GBDTTrainer.train(Fixtures.mixedData(rows: 4000, features: 6, seed: 9), valid: nil, parameters: p) { _, _, _ in true }
    }

    @Test(arguments: [4, 31, 64]) func quickScorerEqualsTheTreeWalk(leaves: Int) throws {
        let m = try model(leaves: leaves)
        let quick = try #require(m.forest.quick, "every tree has at most 64 leaves")
        let mixed = Fixtures.mixedData(rows: 3000, features: 6, seed: 10)
        // Values exactly on a threshold go left; make sure some rows sit on one.
        var columns = mixed.columns
        let t = m.trees[0]
        for r in 0..<50 where t.nodeCount > 0 { columns[Int(t.splitFeature[0])][r] = t.threshold[0] }
        let data = Dataset(schema: mixed.schema, columns: columns, labels: mixed.labels)
        let n = data.rowCount
        var walked = [Double](repeating: m.initialScore, count: n), quick1 = walked
        withColumnPointers(data.columns) { cols in
            walked.withUnsafeMutableBufferPointer { m.forest.walk(columns: cols, rows: 0..<n, scores: $0.baseAddress!) }
            quick1.withUnsafeMutableBufferPointer { quick.accumulate(columns: cols, rows: 0..<n, scores: $0.baseAddress!) }
        }
        #expect(walked.map(\.bitPattern) == quick1.map(\.bitPattern))
        // And both equal the one-row path.
        #expect((0..<200).allSatisfy { m.predictRaw(row: data.row($0)).bitPattern == walked[$0].bitPattern })
        #expect(data.columns.joined().contains { $0.isNaN })
    }

    @Test func aForestWithATreeOfMoreThan64LeavesIsWalked() throws {
        var t = RegressionTree()
        // A right-leaning chain of 65 leaves on feature 0.
        for i in 0..<64 {
            t.splitFeature.append(0); t.thresholdBin.append(0); t.threshold.append(Float(i)); t.defaultLeft.append(false)
            t.leftChild.append(~Int32(i)); t.rightChild.append(i == 63 ? ~Int32(64) : Int32(i + 1))
            t.splitGain.append(1); t.nodeCover.append(1)
        }
        t.leafValue = (0...64).map(Double.init)
        t.leafCover = [Double](repeating: 1, count: 65)
        #expect(QuickScorer([t]) == nil)
        #expect(PackedForest([t]).quick == nil)
    }
}
