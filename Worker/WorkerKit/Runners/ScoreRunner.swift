import Foundation
import Learning
import Wire

/// Job kind `score`: scores a range of the snapshot's users against its listings with the
/// model, keeping each user's top K with reasons. The snapshot and model are fetched once
/// per worker and shared by its tasks.
public struct ScoreRunner: TaskRunner {
    public let descriptor = ScoreKind.erased
    private let cache = ScoringInputs()

    public init() {}

    public func run(_ task: WireTaskAssignment, context: TaskContext) async throws -> Data {
        let input: WireScoreInput
        do { input = try WireScoreInput(serializedBytes: task.input) }
        catch { throw TaskError("score input is not a ScoreInput message: \(error)", retryable: false) }
        let (snapshot, model) = try await cache.load(snapshot: input.snapshotSha256, model: input.modelSha256, context: context)
        guard input.begin <= input.end, Int(input.end) <= snapshot.users.count else {
            throw TaskError("score range \(input.begin)..<\(input.end) is outside the snapshot's \(snapshot.users.count) users", retryable: false)
        }
        let filter = CandidateFilter(budgetCeiling: input.budgetCeiling < 0 ? nil : input.budgetCeiling, regionOnly: input.regionOnly)
        let recommender = Recommender(model: model, listings: snapshot.listings, k: Int(input.k), reasonCount: Int(input.reasons), filter: filter)
        var output = WireScoreOutput()
        for user in snapshot.users[Int(input.begin)..<Int(input.end)] {
            if context.shouldStop() { throw CancellationError() }
            let (items, candidates) = recommender.recommend(user)
            var recs = WireUserRecommendations()
            recs.userID = UInt64(user.id)
            recs.candidates = UInt32(candidates)
            recs.items = items.map(Self.wire)
            output.users.append(recs)
            output.pairs += UInt64(candidates)
        }
        return try output.serializedData()
    }

    public static func wire(_ item: ScoredListing) -> WireRecommendation {
        var r = WireRecommendation()
        r.listingID = UInt64(item.listingID)
        r.score = item.score
        r.rank = UInt32(item.rank)
        r.reasons = item.reasons.map(\.phrase)
        return r
    }
}

/// Decoded snapshots and models by content address.
actor ScoringInputs {
    private var snapshots: [String: MarketSnapshot] = [:]
    private var models: [String: TowerModel] = [:]

    func load(snapshot: String, model: String, context: TaskContext) async throws -> (MarketSnapshot, TowerModel) {
        if snapshots[snapshot] == nil {
            do { snapshots = [snapshot: try MarketSnapshot.decode(try await context.blob(snapshot))] }
            catch let e as DataError { throw TaskError("snapshot \(snapshot.prefix(12)): \(e)", retryable: false) }
        }
        if models[model] == nil {
            do { models = [model: try ModelFile.decode(try await context.blob(model))] }
            catch let e as ModelFileError { throw TaskError("model \(model.prefix(12)): \(e)", retryable: false) }
        }
        return (snapshots[snapshot]!, models[model]!)
    }
}
