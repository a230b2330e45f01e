import Foundation
import Testing
@testable import Learning

@Suite struct WorkflowTests {
    @Test func trainingScoresMatchModelPredictionsWithBagging() throws {
        // The trainer tracks scores incrementally (leaf ranges for bagged rows, tree
        // traversal for the rest); they must equal what the finished model predicts.
        let data = Fixtures.mixedData(rows: 2500)
        let p = try BoostingParameters(parsing: "num_iterations=12,bagging_fraction=0.6,bagging_freq=2,feature_fraction=0.8,seed=9")
        let model = try GBDTTrainer.train(data, parameters: p)
        let predicted = try model.predictProbability(data)
        let loss = Metrics.logLoss(probabilities: predicted, labels: data.labels)
        #expect(abs(loss - model.curve.trainLogLoss.last!) < 1e-9)
    }

    @Test func marketDirectoryTrainSaveEvaluate() throws {
        let dir = Fixtures.temporaryDirectory()
        try Fixtures.smallMarket.write(to: dir)
        let prepared = try LearningWorkflow.prepare(.market(directory: dir))
        #expect(prepared.valid != nil && prepared.test != nil)
        var lines: [String] = []
        let outcome = try LearningWorkflow.train(prepared, parameters: try BoostingParameters(parsing: "num_iterations=20"),
                                                 gitCommit: "abc123", progressEvery: 5) { lines.append($0) }
        #expect(lines.count == 4)
        let test = try #require(outcome.testReport)
        #expect(test.auc > 0.75)
        guard case let .gradientBoosted(model) = outcome.model else { Issue.record("expected trees"); return }
        #expect(model.metrics["test_auc"] == test.auc)
        #expect(model.gitCommit == "abc123")

        let url = dir.appendingPathComponent("m.tower")
        try ModelFile.save(outcome.model, to: url)
        let loaded = try ModelFile.load(from: url).classifier
        let data = try LearningWorkflow.evaluationData(.market(directory: dir), schema: loaded.schema)
        #expect(try loaded.evaluate(data) == test)

        let plots = try LearningWorkflow.writePlots(outcome.model, data: prepared.test, to: dir.appendingPathComponent("plots"))
        #expect(plots.map(\.lastPathComponent) == ["learning-curve.svg", "shap-summary.svg", "score-histogram.svg"])
    }

    @Test func csvSourceWithTestFile() throws {
        let data = Fixtures.mixedData(rows: 1200)
        let dir = Fixtures.temporaryDirectory()
        try data.subset(Array(0..<900)).writeCSV(to: dir.appendingPathComponent("train.csv"))
        try data.subset(Array(900..<1200)).writeCSV(to: dir.appendingPathComponent("test.csv"))
        let source = TrainingSource.csv(train: dir.appendingPathComponent("train.csv"), test: dir.appendingPathComponent("test.csv"),
                                        options: TabularCSVOptions(labelColumn: "label", groupColumn: "group"))
        let prepared = try LearningWorkflow.prepare(source)
        #expect(prepared.train.rowCount == 810 && prepared.valid?.rowCount == 90 && prepared.test?.rowCount == 300)
        let outcome = try LearningWorkflow.train(prepared, kind: "logistic", parameters: BoostingParameters(), gitCommit: "x")
        #expect(outcome.testReport?.ranking != nil)
        #expect(throws: ParameterError.self) {
            try LearningWorkflow.train(prepared, kind: "forest", parameters: BoostingParameters(), gitCommit: "x")
        }
    }
}

@Suite struct EdgeCaseTests {
    @Test func emptyDataScoresToEmpty() throws {
        let (model, data) = try TreeSHAPTests.model(trees: 3)
        let empty = data.subset([])
        #expect(try model.predictRaw(empty).isEmpty)
        #expect(try TreeSHAP.contributions(model, data: empty).isEmpty)
        #expect(try LogisticTrainer.train(data).predictRaw(empty).isEmpty)
        // An empty validation set is tolerated (its metrics are undefined, not a crash).
        var p = BoostingParameters()
        p.numIterations = 2
        #expect(try GBDTTrainer.train(data, valid: empty, parameters: p).trees.count == 2)
    }

    @Test func scoringDataWithoutAModelFeatureFails() throws {
        let (model, data) = try TreeSHAPTests.model(trees: 2)
        let fewer = Dataset(schema: FeatureSchema(Array(data.schema.features.dropLast())),
                            columns: Array(data.columns.dropLast()), labels: data.labels)
        #expect(throws: DataError.schemaMismatch(missing: ["f4"])) { try model.predictRaw(fewer) }
    }
}

@Suite struct PredictionTests {
    @Test func batchScoringMatchesPerRowIncludingStumpsAndMissingValues() throws {
        let data = Fixtures.mixedData(rows: 700)  // 700 rows: full 64-row blocks plus a remainder
        var p = BoostingParameters()
        p.numIterations = 8
        let model = try GBDTTrainer.train(data, parameters: p)
        let batch = try model.predictRaw(data)
        for r in 0..<data.rowCount { #expect(batch[r] == model.predictRaw(row: data.row(r))) }
        // A model whose trees cannot split (min_data_in_leaf above the row count) is all stumps.
        p.minDataInLeaf = 10_000
        let stumps = try GBDTTrainer.train(data, parameters: p)
        #expect(stumps.trees.allSatisfy { $0.nodeCount == 0 })
        #expect(try stumps.predictRaw(data.subset([0, 1])) == [stumps.predictRaw(row: data.row(0)), stumps.predictRaw(row: data.row(1))])
    }
}
