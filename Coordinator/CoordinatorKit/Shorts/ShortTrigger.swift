import Foundation
import Learning
import Wire

/// Decides which newly ingested listings get a marketing short: those the champion
/// places in the top `trigger_top_percent` of predicted demand among the active listings
/// (``ListingDemand``). Runs after the ingest's transaction, so a trigger that fails
/// never loses ingested rows; the ingest answer says what was queued, or why not.
struct ShortTrigger: Sendable {
    let settings: ShortSettings
    let features: FeatureStore
    let registry: ModelRegistry
    let blobs: BlobStore

    /// Listings compared against at most (new listings always count): the percentile of
    /// a thousand evenly spaced listings is close enough, and the cost stays bounded on
    /// a large market.
    static let maxComparedListings = 1_000

    enum Decision: Equatable {
        /// Render these listings, best first.
        case render([Int])
        /// Nothing to render, and why (said in the ingest answer).
        case skip(String)
    }

    func decide(newListings: [Int]) throws -> Decision {
        guard settings.triggerTopPercent > 0 else { return .skip("shorts.trigger_top_percent is 0") }
        guard !newListings.isEmpty else { return .skip("no new active listings") }
        guard let version = try registry.alias(settings.model, "champion") else {
            return .skip("\(settings.model) has no champion yet to predict demand")
        }
        let row = try registry.version(settings.model, version)
        let model = try ModelFile.decode(try blobs.read(row.sha256))
        let snapshot = try features.snapshot()
        let fresh = Set(newListings)
        let others = snapshot.listings.filter { !fresh.contains($0.id) }
        let compared = snapshot.listings.filter { fresh.contains($0.id) }
            + ListingDemand.evenSample(others, count: Self.maxComparedListings)
        let demand = ListingDemand.estimate(Recommender(model: model, listings: compared, k: 0, reasonCount: 0), users: snapshot.users)
        let chosen = ListingDemand.topPercent(settings.triggerTopPercent, of: demand, candidates: newListings)
        guard !chosen.isEmpty else {
            return .skip("none of the \(newListings.count) new listings is in the top \(Self.percent(settings.triggerTopPercent)) of predicted demand (\(settings.model) v\(version))")
        }
        return .render(Array(chosen.prefix(RenderPlanner.maxListings)))
    }

    static func percent(_ p: Double) -> String {
        p == p.rounded() ? "\(Int(p))%" : "\(p)%"
    }

    /// The render job for `listings`, in the configured language.
    func job(_ listings: [Int]) throws -> WireJobSpec {
        var spec = WireRenderSpec()
        spec.listingIds = listings.map { UInt64($0) }
        spec.language = settings.language
        var job = WireJobSpec()
        job.kind = RenderKind.name
        job.name = "render-on-ingest"
        job.spec = try spec.serializedData()
        return job
    }
}
