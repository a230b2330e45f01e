import Foundation

/// Why training parameters were rejected.
public enum ParameterError: Error, Equatable, CustomStringConvertible, Sendable {
    case unknownKey(String, known: [String])
    case invalidValue(key: String, value: String, expected: String)
    case malformed(String)

    public var description: String {
        switch self {
        case let .unknownKey(key, known):
            return "unknown parameter '\(key)'. Known parameters: \(known.joined(separator: ", "))."
        case let .invalidValue(key, value, expected):
            return "parameter '\(key)' = '\(value)' is invalid: expected \(expected)."
        case let .malformed(text):
            return "cannot read '\(text)' as a parameter; write key=value pairs separated by commas, e.g. num_leaves=31,learning_rate=0.1."
        }
    }
}

/// Hyper-parameters of gradient-boosted trees, named as in LightGBM so that settings
/// carry over (`BoostingParameters(parsing: "num_leaves=63,learning_rate=0.05")`).
public struct BoostingParameters: Sendable, Equatable {
    public var numIterations = 100
    public var learningRate = 0.1
    public var numLeaves = 31
    /// ≤ 0: unlimited; otherwise the maximum number of splits from root to leaf.
    public var maxDepth = -1
    public var minDataInLeaf = 20
    public var minSumHessianInLeaf = 1e-3
    public var lambdaL2 = 0.0
    public var minGainToSplit = 0.0
    public var featureFraction = 1.0
    public var baggingFraction = 1.0
    /// Re-draw the bag every this many iterations; 0 disables bagging.
    public var baggingFrequency = 0
    /// Value bins per feature (≤ 255; NaN gets one more).
    public var maxBin = 255
    /// Values seen fewer times share a bin with the next (see ``FeatureBinning/minDataInBin``);
    /// 1 gives every distinct value its own bin, as Tower binned before.
    public var minDataInBin = FeatureBinning.minDataInBin
    /// Stop when the validation metric has not improved for this many iterations; 0 = off.
    public var earlyStoppingRounds = 0
    /// Metric watched by early stopping: `MetricName.logLoss` (default) or `MetricName.auc`.
    public var earlyStoppingMetric = MetricName.logLoss
    public var seed: UInt64 = 0
    /// 0: all cores.
    public var threads = 0

    public init() {}

    // One setter per canonical name of `LearningParameter.all` for .gbdt; the names and
    // aliases themselves live only in that table.
    static let setters: [String: @Sendable (inout BoostingParameters, String, String) throws -> Void] = [
        "num_iterations": { p, k, v in p.numIterations = try ParameterValueCheck.int(k, v, min: 1) },
        "learning_rate": { p, k, v in p.learningRate = try ParameterValueCheck.double(k, v, above: 0) },
        "num_leaves": { p, k, v in p.numLeaves = try ParameterValueCheck.int(k, v, min: 2) },
        "max_depth": { p, k, v in p.maxDepth = try ParameterValueCheck.int(k, v, min: -1) },
        "min_data_in_leaf": { p, k, v in p.minDataInLeaf = try ParameterValueCheck.int(k, v, min: 1) },
        "min_sum_hessian_in_leaf": { p, k, v in p.minSumHessianInLeaf = try ParameterValueCheck.double(k, v, atLeast: 0) },
        "lambda_l2": { p, k, v in p.lambdaL2 = try ParameterValueCheck.double(k, v, atLeast: 0) },
        "min_gain_to_split": { p, k, v in p.minGainToSplit = try ParameterValueCheck.double(k, v, atLeast: 0) },
        "feature_fraction": { p, k, v in p.featureFraction = try ParameterValueCheck.fraction(k, v) },
        "bagging_fraction": { p, k, v in p.baggingFraction = try ParameterValueCheck.fraction(k, v) },
        "bagging_freq": { p, k, v in p.baggingFrequency = try ParameterValueCheck.int(k, v, min: 0) },
        "max_bin": { p, k, v in p.maxBin = min(255, try ParameterValueCheck.int(k, v, min: 2)) },
        "min_data_in_bin": { p, k, v in p.minDataInBin = try ParameterValueCheck.int(k, v, min: 1) },
        "early_stopping_round": { p, k, v in p.earlyStoppingRounds = try ParameterValueCheck.int(k, v, min: 0) },
        "early_stopping_metric": { p, k, v in
            guard [MetricName.logLoss, "binary_logloss", MetricName.auc].contains(v) else {
                throw ParameterError.invalidValue(key: k, value: v, expected: "logloss or auc")
            }
            p.earlyStoppingMetric = v == MetricName.auc ? MetricName.auc : MetricName.logLoss
        },
        "seed": { p, k, v in p.seed = try ParameterValueCheck.seed(k, v) },
        "num_threads": { p, k, v in p.threads = try ParameterValueCheck.int(k, v, min: 0) },
    ]

    /// Parses "key=value,key=value"; LightGBM names and common aliases are accepted.
    public init(parsing text: String) throws {
        self.init()
        for (key, value) in try parameterPairs(text) { try set(key, value) }
    }

    /// Sets one parameter by its canonical name or any alias in `LearningParameter.all`.
    public mutating func set(_ key: String, _ value: String) throws {
        guard let parameter = LearningParameter.named(key, for: .gbdt), let apply = Self.setters[parameter.name] else {
            throw ParameterError.unknownKey(key, known: ModelFamily.gbdt.knownParameters(searchableOnly: false))
        }
        try apply(&self, key, value)
    }

    /// Canonical key → value, for model files and run records.
    public var dictionary: [String: String] {
        ["num_iterations": "\(numIterations)", "learning_rate": "\(learningRate)", "num_leaves": "\(numLeaves)",
         "max_depth": "\(maxDepth)", "min_data_in_leaf": "\(minDataInLeaf)",
         "min_sum_hessian_in_leaf": "\(minSumHessianInLeaf)", "lambda_l2": "\(lambdaL2)",
         "min_gain_to_split": "\(minGainToSplit)", "feature_fraction": "\(featureFraction)",
         "bagging_fraction": "\(baggingFraction)", "bagging_freq": "\(baggingFrequency)", "max_bin": "\(maxBin)",
         "min_data_in_bin": "\(minDataInBin)",
         "early_stopping_round": "\(earlyStoppingRounds)", "early_stopping_metric": earlyStoppingMetric,
         "seed": "\(seed)", "num_threads": "\(threads)"]
    }

    /// Rebuilds parameters from `dictionary` (unknown keys are ignored so older readers
    /// accept files from newer writers).
    public init(dictionary: [String: String]) {
        self.init()
        for (k, v) in dictionary { try? set(k, v) }
    }
}

/// Validation metrics of one boosting iteration.
public struct ValidationMetrics: Sendable, Equatable {
    public var logLoss: Double
    public var auc: Double
}

/// Train and validation metrics per iteration (index 0 = after the first tree).
public struct LearningCurve: Sendable, Equatable {
    public var trainLogLoss: [Double] = []
    public var validLogLoss: [Double] = []
    public var validAUC: [Double] = []
    public init() {}
}

/// Called after every iteration (1-based) with the training log-loss and, when a
/// validation set was given, its metrics. Return false to stop training — the cluster
/// uses this for ASHA early stopping of weak trials. The model keeps the trees built so
/// far (or up to the best iteration when early stopping on validation is on).
public typealias IterationCallback = (_ iteration: Int, _ trainLoss: Double, _ valid: ValidationMetrics?) -> Bool

/// Why training could not start.
public enum TrainingError: Error, Equatable, CustomStringConvertible, Sendable {
    case noLabels
    case validationWithoutLabels
    case singleClass(positiveRate: Double)
    case schemaMismatch(missing: [String])

    public var description: String {
        switch self {
        case .noLabels: return "the training data has no labels; give a label column."
        case .validationWithoutLabels: return "the validation data has no labels; give it the label column or train without validation."
        case let .singleClass(rate):
            return "the training labels are all \(rate > 0.5 ? "1" : "0"); a classifier needs both classes. Use a longer time window or check the label column."
        case let .schemaMismatch(missing):
            return "the validation data lacks training features: \(missing.joined(separator: ", "))."
        }
    }
}

/// A trained gradient-boosted tree ensemble for binary classification.
///
/// Guarantees: `predictRaw` = `initialScore` + Σ tree outputs; predictions depend only
/// on the stored trees, so a model loaded from its file scores identically; rows with
/// NaN follow each split's learned default direction.
public struct GradientBoostedModel: Classifier {
    public let schema: FeatureSchema
    public let binnings: [FeatureBinning]
    public let trees: [RegressionTree]
    public let initialScore: Double
    public let parameters: BoostingParameters
    public var curve: LearningCurve
    /// Iteration (1-based) whose trees are kept; equals trees.count.
    public var bestIteration: Int { trees.count }
    /// Metrics recorded with the model (e.g. holdout AUC), by name.
    public var metrics: [String: Double]
    /// Source revision the model was trained from.
    public var gitCommit: String
    let forest: PackedForest

    public init(schema: FeatureSchema, binnings: [FeatureBinning], trees: [RegressionTree], initialScore: Double,
                parameters: BoostingParameters, curve: LearningCurve = LearningCurve(),
                metrics: [String: Double] = [:], gitCommit: String = "") {
        self.schema = schema
        self.binnings = binnings
        self.trees = trees
        self.initialScore = initialScore
        self.parameters = parameters
        self.curve = curve
        self.metrics = metrics
        self.gitCommit = gitCommit
        self.forest = PackedForest(trees)
    }

    public func predictRaw(row: [Float]) -> Double {
        var s = initialScore
        for t in trees { s += t.predict(row) }
        return s
    }

    /// Batch scoring, parallel over row blocks on all cores.
    public func predictRaw(_ data: Dataset) throws -> [Double] { try predictRaw(data, threads: 0) }

    /// Batch scoring on `threads` threads (0: all cores). The training thread count is
    /// deliberately not reused: a model trained in a one-thread HPO trial still scores
    /// on every core of the gateway.
    public func predictRaw(_ data: Dataset, threads: Int) throws -> [Double] {
        let d = try data.aligned(to: schema)
        return predictRaw(columns: d.columns, rowCount: d.rowCount, threads: threads)
    }

    func predictRaw(columns: [[Float]], rowCount n: Int, threads: Int) -> [Double] {
        var scores = [Double](repeating: initialScore, count: n)
        if n == 0 { return scores }
        let threadCount = threads > 0 ? threads : availableCores
        let forest = self.forest
        withColumnPointers(columns) { cols in
            scores.withUnsafeMutableBufferPointer { out in
                let o = out.baseAddress!
                parallelChunks(n, threads: threadCount, minChunk: 2048) { range in
                    forest.accumulate(columns: cols, rows: range, scores: o)
                }
            }
        }
        return scores
    }

    /// Total split gain per feature (schema order): which features the trees use most.
    public var gainImportance: [Double] {
        var g = [Double](repeating: 0, count: schema.count)
        for t in trees { for i in 0..<t.nodeCount { g[Int(t.splitFeature[i])] += Double(t.splitGain[i]) } }
        return g
    }
}

func withColumnPointers<R>(_ columns: [[Float]], _ body: (UnsafeBufferPointer<UnsafePointer<Float>>) -> R) -> R {
    // Each column's storage is pinned by nesting withUnsafeBufferPointer calls (one level
    // per feature), which avoids copying a million-row table just to get pointers.
    var pointers: [UnsafePointer<Float>] = []
    pointers.reserveCapacity(columns.count)
    var dummy: Float = 0
    return withUnsafePointer(to: &dummy) { fallback in
        func pin(_ i: Int) -> R {
            if i == columns.count { return pointers.withUnsafeBufferPointer { body($0) } }
            return columns[i].withUnsafeBufferPointer { b in
                pointers.append(b.baseAddress ?? fallback)
                return pin(i + 1)
            }
        }
        return pin(0)
    }
}

/// Trains gradient-boosted trees: the booster grows one tree per iteration on the
/// gradients its `Objective` gives (binary log-loss unless told otherwise) and measures
/// progress with `Metrics`, as LightGBM keeps boosting, objective and metric apart.
///
/// Categorical features are binned by their integer codes like numeric ones (a split
/// is "code ≤ k"); with few categories each code has its own bin, so trees can still
/// isolate any category in a few splits. One-vs-rest categorical splits are not
/// implemented.
///
/// Deterministic: the same data, parameters and seed give the same trees on any
/// number of threads (bagging and feature sampling use the seeded generator; parallel
/// work is assigned to threads by a fixed rule and reduced in a fixed order).
public enum GBDTTrainer {
    /// Trains on `train`; with `valid`, records validation metrics per iteration and,
    /// when `earlyStoppingRounds > 0`, stops and keeps the trees up to the best
    /// iteration. `recordCurve` false skips the per-iteration training loss (faster
    /// when nobody looks at it; still computed when a callback is given).
    public static func train(_ train: Dataset, valid: Dataset? = nil, parameters p: BoostingParameters = .init(),
                             objective: any Objective = BinaryLogLoss(),
                             recordCurve: Bool = true, callback: IterationCallback? = nil) throws -> GradientBoostedModel {
        try self.train(train, valid: valid, parameters: p, objective: objective, recordCurve: recordCurve,
                       callback: callback, parallelTuning: nil)
    }

    /// Trains on a set binned in advance (a search's trials share one): the same model
    /// as training on `data.train` and `data.valid` with `p`, without binning again when
    /// the set's bins are the ones `p` would learn (otherwise they are learned here).
    public static func train(_ data: BinnedTrainingSet, parameters p: BoostingParameters = .init(),
                             objective: any Objective = BinaryLogLoss(),
                             recordCurve: Bool = true, callback: IterationCallback? = nil) throws -> GradientBoostedModel {
        let binned = try data.rebinned(for: p)
        return try self.train(binned.train, valid: binned.valid, parameters: p, objective: objective, recordCurve: recordCurve,
                              callback: callback, parallelTuning: nil, binned: binned)
    }

    /// The tree learner's thresholds for going parallel, and the largest training set
    /// given 16-byte histogram entries (tests set 0 to take the 24-byte ones on small data).
    struct ParallelTuning {
        var minParallelWork: Int
        var minRowsPerThread: Int
        var partitionChunk: Int
        var packedHistogramMaxRows = PackedHistogramBin.maxRows
    }

    /// `parallelTuning`: the learner's thresholds for going parallel, which tests lower
    /// so that small data takes every parallel path. `binned`: `train` and `valid`
    /// already binned as `p` bins them.
    static func train(_ train: Dataset, valid: Dataset?, parameters p: BoostingParameters, objective: any Objective,
                      recordCurve: Bool, callback: IterationCallback?,
                      parallelTuning: ParallelTuning?, binned: BinnedTrainingSet? = nil) throws -> GradientBoostedModel {
        guard train.hasLabels else { throw TrainingError.noLabels }
        let rate = train.positiveRate
        if rate == 0 || rate == 1 { throw TrainingError.singleClass(positiveRate: rate) }
        if train.rowCount == 0 { throw DataError.emptyDataSet(reason: "no training rows") }
        let validData: Dataset?
        // An empty validation set means no validation, rather than undefined metrics.
        let nonEmptyValid = valid.flatMap { $0.rowCount == 0 ? nil : $0 }
        do { validData = try nonEmptyValid?.aligned(to: train.schema) } catch DataError.schemaMismatch(let missing) {
            throw TrainingError.schemaMismatch(missing: missing)
        }
        if let v = validData, !v.hasLabels { throw TrainingError.validationWithoutLabels }

        let threads = p.threads > 0 ? p.threads : availableCores
        // Binning follows the threads setting too: a one-thread figure is one thread throughout.
        let binnings: [FeatureBinning], matrix: BinnedMatrix, validMatrix: BinnedMatrix?
        if let binned {
            (binnings, matrix, validMatrix) = (binned.binnings, binned.matrix, binned.validMatrix)
        } else {
            binnings = Binner.fit(train, maxBin: p.maxBin, minDataInBin: p.minDataInBin, seed: p.seed, threads: threads)
            matrix = BinnedMatrix(train, binnings: binnings, threads: threads)
            validMatrix = validData.map { BinnedMatrix($0, binnings: binnings, threads: threads) }
        }
        let nanBins = binnings.map(\.nanBin)
        let n = train.rowCount
        let featureCount = train.featureCount
        // Features with a single value bin and no NaN can never split.
        let usable = (0..<featureCount).filter { binnings[$0].valueBinCount > 1 }
        // Nor can a feature none of whose thresholds leaves min_data_in_leaf training rows
        // on both sides (NaN rows on either side): a node's rows are a subset, so its
        // sides are smaller still. Such features (a rare second value, as in real data's
        // Street or Pool_Area) are left out of every node's histograms, after the feature
        // sampling, so the sampled sets and the model are exactly what they were.
        let splittable = Self.splittableFeatures(matrix, binnings: binnings, minDataInLeaf: p.minDataInLeaf)

        var settings = TreeLearnerSettings(numLeaves: p.numLeaves, maxDepth: p.maxDepth, minDataInLeaf: p.minDataInLeaf,
                                           minSumHessianInLeaf: p.minSumHessianInLeaf, lambdaL2: p.lambdaL2,
                                           minGainToSplit: p.minGainToSplit, learningRate: p.learningRate, threads: threads)
        if let parallelTuning {
            settings.minParallelWork = parallelTuning.minParallelWork
            settings.minRowsPerThread = parallelTuning.minRowsPerThread
            settings.partitionChunk = parallelTuning.partitionChunk
            settings.packedHistogramMaxRows = parallelTuning.packedHistogramMaxRows
        }
        let learner = HistogramTreeLearner(data: matrix, binnings: binnings, settings: settings)
        let initial = objective.initialScore(labels: train.labels)
        var scores = [Double](repeating: initial, count: n)
        var validScores = [Double](repeating: initial, count: validData?.rowCount ?? 0)
        var gradients = [Float](repeating: 0, count: n)
        var hessians = [Float](repeating: 0, count: n)
        var rng = Xoshiro256(seed: p.seed)
        var bag: [Int32]? = nil
        var inBag: [Bool] = []
        var trees: [RegressionTree] = []
        var curve = LearningCurve()
        var bestMetric = Double.infinity
        var bestIteration = 0
        let labels = train.labels

        for iteration in 1...p.numIterations {
            scores.withUnsafeBufferPointer { s in
                labels.withUnsafeBufferPointer { y in
                    gradients.withUnsafeMutableBufferPointer { g in
                        hessians.withUnsafeMutableBufferPointer { h in
                            objective.gradients(scores: s.baseAddress!, labels: y.baseAddress!, count: n,
                                                gradients: g.baseAddress!, hessians: h.baseAddress!, threads: threads)
                        }
                    }
                }
            }
            if p.baggingFraction < 1 && p.baggingFrequency > 0 && (iteration - 1) % p.baggingFrequency == 0 {
                var rows: [Int32] = []
                rows.reserveCapacity(Int(Double(n) * p.baggingFraction) + 16)
                inBag = [Bool](repeating: false, count: n)
                for i in 0..<n where rng.uniform() < p.baggingFraction { rows.append(Int32(i)); inBag[i] = true }
                if rows.isEmpty { rows = [0]; inBag[0] = true }
                bag = rows
            }
            var features = usable
            if p.featureFraction < 1 && usable.count > 1 {
                let keep = max(1, Int((Double(usable.count) * p.featureFraction).rounded()))
                for i in 0..<keep {  // partial Fisher–Yates
                    let j = i + rng.index(below: features.count - i)
                    features.swapAt(i, j)
                }
                features = Array(features[0..<keep]).sorted()
            }
            features.removeAll { !splittable[$0] }

            let tree = gradients.withUnsafeBufferPointer { g in
                hessians.withUnsafeBufferPointer { h in
                    learner.grow(gradients: g.baseAddress!, hessians: h.baseAddress!, bag: bag, features: features)
                }
            }
            trees.append(tree)

            // Rows in the bag sit in the learner's leaf ranges; the rest are routed.
            scores.withUnsafeMutableBufferPointer { s in
                let idx = learner.rowIndices
                let out = s.baseAddress!
                let begins = learner.leafBegin, counts = learner.leafRowCount
                parallelFor(tree.leafCount, threads: threads) { leaf in
                    let v = tree.leafValue[leaf]
                    let b = begins[leaf]
                    for k in b..<(b + counts[leaf]) { out[Int(idx[k])] += v }
                }
                if bag != nil {
                    for i in 0..<n where !inBag[i] { s[i] += tree.leafValue[tree.leaf(binned: matrix, row: i, nanBins: nanBins)] }
                }
            }
            if let vm = validMatrix, vm.rowCount > 0 {
                let nodes = BinnedTreeNode.flatten(tree, data: vm, nanBins: nanBins)
                validScores.withUnsafeMutableBufferPointer { s in
                    let out = s.baseAddress!
                    nodes.withUnsafeBufferPointer { nb in
                        tree.leafValue.withUnsafeBufferPointer { lv in
                            let nodes = nb.baseAddress!, values = lv.baseAddress!
                            let single = tree.nodeCount == 0
                            parallelChunks(vm.rowCount, threads: threads, minChunk: 8192) { range in
                                if single { for i in range { out[i] += values[0] }; return }
                                for i in range {
                                    var node: Int32 = 0
                                    while node >= 0 {
                                        let n = nodes[Int(node)]
                                        let b = n.column[i]
                                        let goLeft = b == n.nanBin ? n.defaultLeft : b <= n.thresholdBin
                                        node = goLeft ? n.left : n.right
                                    }
                                    out[i] += values[Int(~node)]
                                }
                            }
                        }
                    }
                }
            }

            var trainLoss = Double.nan
            if recordCurve || callback != nil {
                trainLoss = scores.withUnsafeBufferPointer { s in
                    labels.withUnsafeBufferPointer { Metrics.logLoss(margins: s.baseAddress!, labels: $0.baseAddress!, count: n, threads: threads) }
                }
                curve.trainLogLoss.append(trainLoss)
            }
            var validMetrics: ValidationMetrics? = nil
            if let v = validData {
                let loss = validScores.withUnsafeBufferPointer { s in
                    v.labels.withUnsafeBufferPointer { Metrics.logLoss(margins: s.baseAddress!, labels: $0.baseAddress!, count: v.rowCount, threads: threads) }
                }
                let auc = validScores.withUnsafeBufferPointer { s in
                    v.labels.withUnsafeBufferPointer { Metrics.auc(scores: s.baseAddress, labels: $0.baseAddress, count: v.rowCount, threads: threads) }
                }
                validMetrics = ValidationMetrics(logLoss: loss, auc: auc)
                curve.validLogLoss.append(loss)
                curve.validAUC.append(auc)
                let watched = p.earlyStoppingMetric == MetricName.auc ? -auc : loss
                if watched < bestMetric { bestMetric = watched; bestIteration = iteration }
            }
            if let callback, !callback(iteration, trainLoss, validMetrics) { break }
            if p.earlyStoppingRounds > 0 && validData != nil && iteration - bestIteration >= p.earlyStoppingRounds { break }
        }
        if p.earlyStoppingRounds > 0 && validData != nil && bestIteration > 0 && bestIteration < trees.count {
            trees.removeLast(trees.count - bestIteration)
        }
        return GradientBoostedModel(schema: train.schema, binnings: binnings, trees: trees, initialScore: initial,
                                    parameters: p, curve: curve)
    }

    /// Per feature: whether some threshold leaves at least `minDataInLeaf` of the training
    /// rows on each side, with the NaN rows right or left, exactly the count conditions
    /// the split search applies (so a `false` feature would never yield a candidate).
    static func splittableFeatures(_ matrix: BinnedMatrix, binnings: [FeatureBinning], minDataInLeaf: Int) -> [Bool] {
        let n = matrix.rowCount
        let m = max(1, minDataInLeaf)
        var counts = [Int](repeating: 0, count: 256)
        return binnings.indices.map { f in
            let nb = binnings[f].valueBinCount
            for b in 0...nb { counts[b] = 0 }
            let col = matrix.column(f)
            for r in 0..<n { counts[Int(col[r])] += 1 }
            let nan = counts[nb]
            var left = 0
            for t in 0..<nb {
                left += counts[t]
                if left >= m && n - left >= m { return true }                     // NaN right
                if nan > 0 && t < nb - 1 && left + nan >= m && n - left - nan >= m { return true }  // NaN left
            }
            return false
        }
    }
}

/// A split as the validation pass reads it: everything one step needs in one place,
/// instead of six arrays indexed per step (the per-iteration validation update walks
/// every validation row through the new tree).
struct BinnedTreeNode {
    let column: UnsafePointer<UInt8>
    let thresholdBin: UInt8
    let nanBin: UInt8
    let defaultLeft: Bool
    let left: Int32
    let right: Int32

    /// `data` must outlive the nodes (its columns are pointed at).
    static func flatten(_ tree: RegressionTree, data: BinnedMatrix, nanBins: [Int]) -> [BinnedTreeNode] {
        (0..<tree.nodeCount).map { i in
            let f = Int(tree.splitFeature[i])
            return BinnedTreeNode(column: UnsafePointer(data.column(f)), thresholdBin: tree.thresholdBin[i],
                                  nanBin: UInt8(truncatingIfNeeded: nanBins[f]), defaultLeft: tree.defaultLeft[i],
                                  left: tree.leftChild[i], right: tree.rightChild[i])
        }
    }
}
