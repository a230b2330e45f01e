import Foundation
import Learning
import Testing
import Wire
@testable import CoordinatorKit
@testable import WorkerKit

/// A search's data set is featurized and binned once, on the coordinator, and its trials
/// train from that blob: the trial's model must be the one the raw archive gives, and a
/// damaged blob must fail the trial with a reason.
@Suite struct SearchDataTests {
    static let space = """
        model: gbdt
        sampler: random
        seed: 3
        max_trials: 2
        max_concurrent: 2
        params:
          num_iterations: 15
          num_leaves: {int: [8, 32]}
          feature_fraction: 0.8
          bagging_fraction: 0.7
          bagging_freq: 1
        """

    /// A small generated market, packed as the CLI packs `--data DIR`, and a context.
    static func setUp() throws -> (archive: Data, context: JobContext, directory: URL) {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("tower-searchdata-\(UUID().uuidString.prefix(8))")
        let market = dir.appendingPathComponent("market")
        try DemoMarket(.init(users: 300, listings: 200, interactions: 6_000, seed: 5)).generate().write(to: market)
        let store = try ClusterStore(path: dir.appendingPathComponent("t.sqlite").path)
        let context = JobContext(store: store, blobs: try BlobStore(root: dir.appendingPathComponent("blobs")), tracking: TrackingStore(store),
                                 registry: ModelRegistry(store), dataDirectory: dir)
        return (try DatasetArchive.pack(directory: market), context, dir)
    }

    /// The planner's first wave for a search over `dataset`.
    static func plan(_ dataset: Data, context: JobContext) throws -> [PlannedTask] {
        var spec = WireHPOSpec()
        spec.space = Self.space
        spec.dataset = dataset
        return try HPOPlanner().plan(spec: try spec.serializedData(), context: context)
    }

    static func taskContext(_ blob: Data, cache: URL) -> TaskContext {
        TaskContext(workerName: "w", blob: { _ in blob }, report: { _, _ in }, shouldStop: { false }, cacheDirectory: cache)
    }

    @Test func aTrialTrainedFromThePreparedBlobGivesTheSameModelAsFromTheRawArchive() async throws {
        let (archive, context, dir) = try Self.setUp()
        let tasks = try Self.plan(archive, context: context)
        #expect(tasks.count == 2)
        let input = try WireTrialInput(serializedBytes: tasks[1].input)
        // The trial fetches the binned set, not the archive.
        #expect(input.datasetSha256 != BlobStore.sha256Hex(archive))
        #expect(tasks[1].blobs == [input.datasetSha256])
        let blob = try context.blobs.read(input.datasetSha256)
        #expect(BinnedTrainingSet.isBinnedTrainingSet(blob))

        let prepared = Self.taskContext(blob, cache: dir.appendingPathComponent("w1"))
        let fromBlob = try WireTrialOutput(serializedBytes: TrialRunner.train(
            input, data: try await PreparedDatasets().prepared(input.datasetSha256, context: prepared), context: prepared))
        let raw = Self.taskContext(archive, cache: dir.appendingPathComponent("w2"))
        let fromArchive = try WireTrialOutput(serializedBytes: TrialRunner.train(
            input, data: try await PreparedDatasets().prepared(BlobStore.sha256Hex(archive), context: raw), context: raw))
        #expect(fromBlob.iterations == 15)
        #expect(!fromBlob.modelFile.isEmpty)
        #expect(fromBlob.modelFile == fromArchive.modelFile)
        #expect(fromBlob.metrics == fromArchive.metrics)
        // The SHAP summary is the winner's, computed when the search ends: no trial makes one.
        #expect(fromBlob.shapSummarySvg.isEmpty)
    }

    @Test func aTruncatedPreparedBlobFailsTheTrialWithWhereItEnded() async throws {
        let (archive, context, dir) = try Self.setUp()
        let tasks = try Self.plan(archive, context: context)
        let input = try WireTrialInput(serializedBytes: tasks[0].input)
        let truncated = try context.blobs.read(input.datasetSha256).prefix(10)
        do {
            _ = try await PreparedDatasets().prepared(input.datasetSha256, context: Self.taskContext(truncated, cache: dir))
            Issue.record("a truncated blob was prepared")
        } catch let error as TaskError {
            #expect(!error.retryable)
            #expect(error.message == "data set \(input.datasetSha256.prefix(12)) cannot be prepared: binned training set truncated at byte 10 while reading the seed; the coordinator prepares this blob from the search's data set; submit the search again")
        }
    }

    @Test func aDataSetThatCannotBeFeaturizedIsRefusedAtSubmit() throws {
        let (_, context, dir) = try Self.setUp()
        let dataset = try DatasetArchive.pack([("users.csv", Data("id\n1\n".utf8))])
        let listings = dir.appendingPathComponent("datasets").appendingPathComponent(BlobStore.sha256Hex(dataset)).appendingPathComponent("listings.csv")
        do {
            _ = try Self.plan(dataset, context: context)
            Issue.record("a data set without listings was planned")
        } catch let error as WireError {
            // What every worker would have said before; now said once, at submit.
            #expect("\(error)" == "invalid argument: hpo.dataset cannot be prepared for training: \(listings.path): cannot read the file (The operation could not be completed. The file doesn’t exist.). Check the path and permissions.")
        }
    }
}
