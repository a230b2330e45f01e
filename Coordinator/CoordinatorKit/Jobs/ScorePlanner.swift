import Foundation
import GRDB
import Learning
import Wire

/// Job kind `score`: a snapshot of the users and active listings is taken when the job is
/// submitted (one blob every task scores against), users are split into ranges of
/// `users_per_task`, and each finished range's recommendations are stored in the same
/// transaction as its result — a task recorded once leaves exactly one copy, whatever
/// workers die on the way.
public struct ScorePlanner: JobPlanner {
    public let descriptor = ScoreKind.erased

    public init() {}

    public static let defaultModel = "match"
    public static let maxK = 100

    struct Resolved {
        var spec: WireScoreSpec
        var model: String
        var version: Int
        var sha256: String
    }

    func resolve(_ data: Data, registry: ModelRegistry) throws -> Resolved {
        let spec: WireScoreSpec
        do { spec = try WireScoreSpec(serializedBytes: data) }
        catch { throw WireError.invalidArgument("score spec is not a valid ScoreSpec message: \(error)") }
        guard spec.k <= Self.maxK else { throw WireError.invalidArgument("score.k must be between 1 and \(Self.maxK), got \(spec.k)") }
        guard spec.budgetCeiling.isFinite else { throw WireError.invalidArgument("score.budget_ceiling must be a finite number") }
        guard spec.reasons <= 10 else { throw WireError.invalidArgument("score.reasons must be at most 10, got \(spec.reasons)") }
        let model = spec.modelName.isEmpty ? Self.defaultModel : spec.modelName
        var version = Int(spec.version)
        if version == 0 {
            do {
                guard let champion = try registry.alias(model, "champion") else {
                    throw WireError.notFound(what: "a champion of model \(model): run a search first (`coordinator submit hpo`), or name a version with --version")
                }
                version = champion
            }
        }
        let row: ModelVersionRow
        do { row = try registry.version(model, version) }
        catch { throw WireError.notFound(what: "model \(model) version \(version) (see `coordinator models show \(model)`)") }
        return Resolved(spec: spec, model: model, version: version, sha256: row.sha256)
    }

    public func plan(spec data: Data, context: JobContext) throws -> [PlannedTask] {
        let resolved = try resolve(data, registry: context.registry)
        guard context.blobs.contains(resolved.sha256) else {
            throw WireError.notFound(what: "the file of \(resolved.model) v\(resolved.version) (blob \(resolved.sha256.prefix(12)) is missing from the data directory)")
        }
        let snapshot = try context.features.snapshot()
        guard !snapshot.users.isEmpty else { throw WireError.invalidArgument("score: the feature store has no users; `coordinator ingest users FILE` first") }
        guard !snapshot.listings.isEmpty else { throw WireError.invalidArgument("score: the feature store has no active listings; `coordinator ingest listings FILE` first") }
        let snapshotSha = try context.blobs.put(snapshot.encoded())
        let spec = resolved.spec
        let perTask = Int(spec.usersPerTask == 0 ? 500 : spec.usersPerTask)
        return try stride(from: 0, to: snapshot.users.count, by: perTask).map { begin in
            var input = WireScoreInput()
            input.snapshotSha256 = snapshotSha
            input.modelSha256 = resolved.sha256
            input.begin = UInt32(begin)
            input.end = UInt32(min(snapshot.users.count, begin + perTask))
            input.k = spec.k == 0 ? 10 : spec.k
            input.budgetCeiling = spec.budgetCeiling == 0 ? 1.2 : spec.budgetCeiling
            input.regionOnly = spec.regionOnly
            input.reasons = spec.reasons == 0 ? 3 : spec.reasons
            return PlannedTask(input: try input.serializedData(), blobs: [snapshotSha, resolved.sha256])
        }
    }

    public func summarize(spec: Data, results: [TaskResultRow]) throws -> Data { Data() }

    public func controller(for job: JobRow, existing: [TaskResultRow], context: JobContext) throws -> (any JobController)? {
        let resolved = try resolve(job.spec, registry: context.registry)
        return ScoreController(job: job.id, model: resolved.model, version: resolved.version, features: context.features)
    }
}

/// Stores each range's recommendations with its result, and the job's summary at the end.
final class ScoreController: JobController {
    let job: String
    let model: String
    let version: Int
    let features: FeatureStore

    init(job: String, model: String, version: Int, features: FeatureStore) {
        self.job = job
        self.model = model
        self.version = version
        self.features = features
    }

    func progress(index: Int, step: Int, metrics: [String: Double]) -> Bool { true }

    func validate(output: Data) throws {
        let out = try WireScoreOutput(serializedBytes: output)
        for user in out.users where user.items.count > ScorePlanner.maxK {
            throw WireError.invalidArgument("score output lists \(user.items.count) items for user \(user.userID), more than k")
        }
    }

    func completed(index: Int, output: Data) -> JobDirective {
        let job = self.job, model = self.model, version = self.version
        return JobDirective(record: { db in
            let out = try WireScoreOutput(serializedBytes: output)
            try FeatureStore.recordScoreRun(job: job, model: model, version: version, finishedAt: nil, db)
            try FeatureStore.save(out, job: job, db)
        })
    }

    func failed(index: Int, error: String) -> JobDirective { JobDirective() }

    func finish(results: [TaskResultRow]) throws -> Data {
        var summary = WireScoreSummary()
        summary.modelName = model
        summary.version = UInt32(version)
        for row in results where row.state == .done {
            let out = try WireScoreOutput(serializedBytes: row.output ?? Data())
            summary.users += UInt64(out.users.count)
            summary.pairs += out.pairs
            summary.recommendations += UInt64(out.users.reduce(0) { $0 + $1.items.count })
        }
        // Only a complete scoring becomes the one recommendations are served from.
        if !results.isEmpty && results.allSatisfy({ $0.state == .done }) {
            try features.finishScoreRun(job: job, model: model, version: version, at: Date().timeIntervalSince1970)
        }
        return try summary.serializedData()
    }
}
