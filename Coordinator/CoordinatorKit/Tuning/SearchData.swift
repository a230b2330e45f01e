import Foundation
import Learning
import Synchronization
import Wire

/// A search's data set prepared once, on the coordinator: featurized, split, and for
/// tree searches binned into a ``BinnedTrainingSet`` blob that every trial fetches
/// instead of the raw archive — so no worker featurizes it and no trial bins it. The
/// holdout and validation rows stay here for the end of the search (the winner's
/// holdout evaluation and SHAP summary), which then reads nothing again.
struct SearchData: Sendable {
    /// What trials fetch: the binned set's address, or the data set's own for a
    /// logistic search (it trains on raw features).
    let trialBlob: String
    let valid: Dataset?
    let test: Dataset?

    /// The featurized rows of a data set blob (a training set file or a market archive).
    static func featurize(_ bytes: Data, unpackInto directory: URL) throws -> PreparedData {
        if TrainingSetFile.isTrainingSet(bytes) { return try LearningWorkflow.prepare(trainingSet: bytes) }
        try DatasetArchive.unpack(bytes, into: directory)
        return try LearningWorkflow.prepare(.market(directory: directory))
    }

    /// The parameters the search's trials bin with: those of its first trial. A space
    /// that searches max_bin (or a set larger than the binning sample, binned per seed)
    /// bins the other trials' variants on the workers, once per variant.
    static func binningParameters(_ params: [String: String]) -> BoostingParameters {
        var p = BoostingParameters()
        for (key, value) in params.sorted(by: { $0.key < $1.key }) { try? p.set(key, value) }
        return p
    }

    private static let cache = Mutex<[(key: String, data: SearchData)]>([])
    /// Searches running at once on one data set share an entry; a few entries are kept
    /// so a coordinator running searches over different data sets does not re-prepare.
    private static let cacheLimit = 4

    /// The prepared data of `dataset` (blob address) for trials of `model` with `params`,
    /// from the cache or made now: the planner makes it, the controller (built right
    /// after, or after a restart) finds it or makes the same bytes again.
    static func prepared(dataset: String, model: ModelFamily, params: [String: String], context: JobContext) throws -> SearchData {
        let p = binningParameters(params)
        // Keyed by the blob store too: coordinators in one process (tests, the demo) each
        // need the blob in their own store.
        let key = "\(context.blobs.root.path) \(dataset) " + (model == .gbdt ? "\(p.maxBin) \(p.minDataInBin) \(p.seed)" : "raw")
        if let hit = cache.withLock({ $0.first { $0.key == key }?.data }), context.blobs.contains(hit.trialBlob) { return hit }
        let directory = context.dataDirectory.appendingPathComponent("datasets").appendingPathComponent(dataset)
        let rows = try featurize(try context.blobs.read(dataset), unpackInto: directory)
        var trialBlob = dataset
        if model == .gbdt {
            let binned = try BinnedTrainingSet(train: rows.train, valid: rows.valid, binningAs: p)
            trialBlob = try context.blobs.put(binned.encode())
        }
        let data = SearchData(trialBlob: trialBlob, valid: rows.valid, test: rows.test)
        cache.withLock { entries in
            entries.removeAll { $0.key == key }
            entries.append((key, data))
            if entries.count > cacheLimit { entries.removeFirst(entries.count - cacheLimit) }
        }
        return data
    }
}
