import Foundation

/// Where training data comes from: a market directory (users/listings/interactions CSV,
/// turned into pair features and split by time) or any labelled CSV.
public enum TrainingSource: Sendable {
    case market(directory: URL)
    case csv(train: URL, test: URL?, options: TabularCSVOptions)
}

/// The data of one run: train, optional validation (early stopping, curves), optional test.
public struct PreparedData: Sendable {
    public var train: Dataset
    public var valid: Dataset?
    public var test: Dataset?

    public init(train: Dataset, valid: Dataset?, test: Dataset?) {
        self.train = train
        self.valid = valid
        self.test = test
    }
}

/// What a training run produced.
public struct TrainingOutcome: Sendable {
    public var model: TowerModel
    public var validReport: EvaluationReport?
    public var testReport: EvaluationReport?
    public var seconds: Double
}

/// The end-to-end steps behind `coordinator train` / `evaluate`, usable without the CLI
/// (workers call the same functions for HPO trials).
public enum LearningWorkflow {
    /// Market data is split by day: the first 70 % of rows train, the next 10 % validate,
    /// the last 20 % test. A CSV trains on its rows and tests on `test` when given; its
    /// last 10 % of rows validate (so early stopping works) unless `holdOutValidation`
    /// is false.
    public static func prepare(_ source: TrainingSource, holdOutValidation: Bool = true) throws -> PreparedData {
        switch source {
        case let .market(directory):
            let data = try PairFeatures.build(Market.load(from: directory))
            let split = try TimeSplit(data, trainFraction: 0.7, validFraction: 0.1)
            return PreparedData(train: split.train, valid: split.valid, test: split.test)
        case let .csv(trainURL, testURL, options):
            let all = try TabularCSV.load(trainURL, options: options)
            let test = try testURL.map { try TabularCSV.load($0, options: options, schema: all.schema) }
            if holdOutValidation && all.rowCount >= 50 {
                let cut = all.rowCount - all.rowCount / 10
                return PreparedData(train: all.subset(Array(0..<cut)), valid: all.subset(Array(cut..<all.rowCount)), test: test)
            }
            return PreparedData(train: all, valid: nil, test: test)
        }
    }

    /// A point-in-time training set (``TrainingSetFile``) split by day like market data:
    /// the first 70 % of rows train, the next 10 % validate, the last 20 % test.
    public static func prepare(trainingSet data: Data) throws -> PreparedData {
        let (dataset, _) = try TrainingSetFile.decode(data)
        let split = try TimeSplit(dataset, trainFraction: 0.7, validFraction: 0.1)
        return PreparedData(train: split.train, valid: split.valid, test: split.test)
    }

    /// Loads data to score with a trained model: the market's test window (or all of it
    /// with `wholeMarket`), or a CSV read with the model's schema.
    public static func evaluationData(_ source: TrainingSource, schema: FeatureSchema, wholeMarket: Bool = false) throws -> Dataset {
        switch source {
        case let .market(directory):
            let data = try PairFeatures.build(Market.load(from: directory))
            if wholeMarket { return data }
            return try TimeSplit(data, trainFraction: 0.7, validFraction: 0.1).test
        case let .csv(train, _, options):
            return try TabularCSV.load(train, options: options, schema: schema)
        }
    }

    /// Trains a GBDT ("gbdt") or logistic ("logistic") model, evaluates it on the
    /// validation and test data, and records the metrics and commit in the model.
    /// `progress` receives a line every `progressEvery` iterations (0 = never).
    public static func train(_ data: PreparedData, kind: String = "gbdt", parameters: BoostingParameters,
                             gitCommit: String, progressEvery: Int = 10,
                             progress: @escaping (String) -> Void = { _ in }) throws -> TrainingOutcome {
        let start = DispatchTime.now().uptimeNanoseconds
        var model: TowerModel
        switch kind {
        case ModelFamily.gbdt.rawValue:
            let total = parameters.numIterations
            var m = try GBDTTrainer.train(data.train, valid: data.valid, parameters: parameters) { iteration, loss, valid in
                if progressEvery > 0 && (iteration % progressEvery == 0 || iteration == total) {
                    var line = String(format: "iteration %d/%d  train log-loss %.5f", iteration, total, loss)
                    if let v = valid { line += String(format: "  valid log-loss %.5f  AUC %.5f", v.logLoss, v.auc) }
                    progress(line)
                }
                return true
            }
            m.gitCommit = gitCommit
            if m.trees.count < total { progress("early stopping kept \(m.trees.count) of \(total) trees") }
            model = .gradientBoosted(m)
        case ModelFamily.logistic.rawValue:
            var lp = LogisticParameters()
            lp.lambdaL2 = parameters.lambdaL2 > 0 ? parameters.lambdaL2 : lp.lambdaL2
            lp.threads = parameters.threads
            var m = try LogisticTrainer.train(data.train, parameters: lp)
            m.gitCommit = gitCommit
            progress("logistic regression: \(m.iterations) Newton iterations, converged: \(m.converged)")
            model = .logistic(m)
        default:
            throw ParameterError.invalidValue(key: "model", value: kind, expected: "gbdt or logistic")
        }
        let classifier = model.classifier
        let validReport = try data.valid.map { try classifier.evaluate($0) }
        let testReport = try data.test.map { try classifier.evaluate($0) }
        var metrics: [String: Double] = [:]
        for (k, v) in validReport?.dictionary ?? [:] { metrics[MetricName.valid(k)] = v }
        for (k, v) in testReport?.dictionary ?? [:] { metrics[MetricName.test(k)] = v }
        switch model {
        case var .gradientBoosted(m): m.metrics = metrics; model = .gradientBoosted(m)
        case var .logistic(m): m.metrics = metrics; model = .logistic(m)
        }
        let seconds = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
        return TrainingOutcome(model: model, validReport: validReport, testReport: testReport, seconds: seconds)
    }

    /// Writes learning-curve.svg, shap-summary.svg (trees only) and
    /// score-histogram.svg for `model` on `data` into `directory`; returns the files.
    @discardableResult
    public static func writePlots(_ model: TowerModel, data: Dataset?, to directory: URL) throws -> [URL] {
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        var written: [URL] = []
        if case let .gradientBoosted(m) = model {
            let curve = directory.appendingPathComponent("learning-curve.svg")
            try Plots.learningCurve(m.curve).write(to: curve)
            written.append(curve)
            if let data {
                let shap = directory.appendingPathComponent("shap-summary.svg")
                try Plots.shapSummary(featureNames: m.schema.names,
                                      meanAbsoluteSHAP: TreeSHAP.meanAbsolute(m, data: data, maxRows: 2000)).write(to: shap)
                written.append(shap)
            }
        }
        if let data {
            let hist = directory.appendingPathComponent("score-histogram.svg")
            try Plots.scoreHistogram(probabilities: model.classifier.predictProbability(data),
                                     labels: data.hasLabels ? data.labels : nil).write(to: hist)
            written.append(hist)
        }
        return written
    }
}
