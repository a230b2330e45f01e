import Foundation
import Learning
import Wire

/// Job kind `hpo`: trains one trial of a hyperparameter search on the job's data set and
/// returns its metrics, model file and plots. While training it reports validation metrics
/// every `report_every` iterations and stops early when the coordinator's ASHA says so.
public struct TrialRunner: TaskRunner {
    public let descriptor = HPOKind.erased
    private let datasets = PreparedDatasets()

    public init() {}

    public func run(_ task: WireTaskAssignment, context: TaskContext) async throws -> Data {
        let input: WireTrialInput
        do { input = try WireTrialInput(serializedBytes: task.input) }
        catch { throw TaskError("trial input is not a TrialInput message: \(error)", retryable: false) }
        let data = try await datasets.prepared(input.datasetSha256, context: context)
        // Training is CPU-bound: it gets a thread of its own, off Swift's cooperative pool
        // and off Dispatch's global queues (which that pool shares on Linux).
        return try await withCheckedThrowingContinuation { continuation in
            let thread = Thread {
                continuation.resume(with: Result { try Self.train(input, data: data, context: context) })
            }
            thread.stackSize = 8 << 20
            thread.start()
        }
    }

    static func train(_ input: WireTrialInput, data: TrialData, context: TaskContext) throws -> Data {
        let started = DispatchTime.now().uptimeNanoseconds
        var parameters = BoostingParameters()
        do {
            for (key, value) in input.params.sorted(by: { $0.key < $1.key }) {
                try parameters.set(key, value)
            }
        } catch {
            throw TaskError("trial \(input.trial): \(error)", retryable: false)
        }
        // Trials share the worker's cores with each other.
        parameters.threads = 1
        var output = WireTrialOutput()
        output.worker = context.workerName
        let classifier: any Classifier
        let model: TowerModel
        switch input.modelKind {
        case "logistic":
            var lp = LogisticParameters()
            // The search space sends the logistic C as lambda_l2 = 1/C.
            if parameters.lambdaL2 > 0 { lp.lambdaL2 = parameters.lambdaL2 }
            let m = try LogisticTrainer.train(data.train, parameters: lp)
            model = .logistic(m)
            classifier = m
            output.iterations = UInt32(m.iterations)
        default:
            let every = max(1, Int(input.reportEvery))
            var stopped = false
            let m = try GBDTTrainer.train(try data.binned(for: parameters), parameters: parameters) { iteration, loss, valid in
                if iteration % every == 0, let valid {
                    context.report(iteration, [MetricName.valid(MetricName.auc): valid.auc, MetricName.valid(MetricName.logLoss): valid.logLoss,
                                              MetricName.train(MetricName.logLoss): loss])
                }
                if context.shouldStop() { stopped = true; return false }
                return true
            }
            model = .gradientBoosted(m)
            classifier = m
            output.iterations = UInt32(m.trees.count)
            output.stoppedEarly = stopped
            output.learningCurveSvg = Data(Plots.learningCurve(m.curve).rendered.utf8)
        }
        if let valid = data.valid {
            for (k, v) in try classifier.evaluate(valid).dictionary { output.metrics[MetricName.valid(k)] = v }
        }
        output.modelFile = ModelFile.encode(model)
        output.seconds = Double(DispatchTime.now().uptimeNanoseconds - started) / 1e9
        return try output.serializedData()
    }
}

/// One search's data on this worker: the rows every trial trains and validates on, and
/// their bins per binning key (see ``BinnedTrainingSet/binningKey(rows:parameters:)``),
/// learned once — or received from the coordinator already binned — instead of per trial.
final class TrialData: @unchecked Sendable {
    let train: Dataset
    let valid: Dataset?
    private let lock = NSLock()
    private var binned: [String: BinnedTrainingSet] = [:]

    init(_ prepared: PreparedData) {
        train = prepared.train
        valid = prepared.valid
    }

    init(_ set: BinnedTrainingSet) {
        train = set.train
        valid = set.valid
        binned[set.binningKey] = set
    }

    /// The rows binned as a training with `p` bins them; binned here (on the caller's
    /// thread, outside the lock) the first time a key is asked for.
    func binned(for p: BoostingParameters) throws -> BinnedTrainingSet {
        let key = BinnedTrainingSet.binningKey(rows: train.rowCount, parameters: p)
        if let set = lock.withLock({ binned[key] }) { return set }
        let set = try BinnedTrainingSet(train: train, valid: valid, binningAs: p)
        lock.withLock { binned[key] = binned[key] ?? set }
        return set
    }
}

/// Data sets this worker has decoded, or unpacked and featurized, by content address:
/// every trial of a search reuses them.
actor PreparedDatasets {
    private var cache: [String: TrialData] = [:]

    func prepared(_ hash: String, context: TaskContext) async throws -> TrialData {
        if let data = cache[hash] { return data }
        let archive = try await context.blob(hash)
        let directory = context.cacheDirectory.appendingPathComponent("datasets").appendingPathComponent(hash)
        do {
            let data: TrialData
            if BinnedTrainingSet.isBinnedTrainingSet(archive) {
                data = TrialData(try BinnedTrainingSet.decode(archive))
            } else if TrainingSetFile.isTrainingSet(archive) {
                data = TrialData(try LearningWorkflow.prepare(trainingSet: archive))
            } else {
                try DatasetArchive.unpack(archive, into: directory)
                data = TrialData(try LearningWorkflow.prepare(.market(directory: directory)))
            }
            cache[hash] = data
            return data
        } catch {
            throw TaskError("data set \(hash.prefix(12)) cannot be prepared: \(error)", retryable: false)
        }
    }
}
