import Foundation

/// Hard filters that decide which listings a user is shown at all, before any scoring.
public struct CandidateFilter: Sendable, Equatable {
    /// A listing costing more than budget × this is not a candidate; nil = no ceiling.
    public var budgetCeiling: Double?
    /// Only listings in the user's preferred region.
    public var regionOnly: Bool

    public init(budgetCeiling: Double? = 1.2, regionOnly: Bool = false) {
        self.budgetCeiling = budgetCeiling
        self.regionOnly = regionOnly
    }

    public func admits(_ listing: MarketListing, for user: MarketUser) -> Bool {
        if let ceiling = budgetCeiling, listing.price > user.budget * ceiling { return false }
        if regionOnly && listing.region != user.preferredRegion { return false }
        return true
    }
}

/// One recommended listing.
public struct ScoredListing: Sendable, Equatable {
    public var listingID: Int
    /// The model's probability of a click or better.
    public var score: Double
    /// 1 = best.
    public var rank: Int
    public var reasons: [RecommendationReason]
}

/// Scores a user against the candidate listings and keeps the top K with their reasons.
///
/// Guarantees: a user's recommendations depend only on the user, the listings, the
/// model and the settings — never on which other users are scored in the same call — so
/// scoring users in shards across workers gives exactly what one process gives. Ties in
/// score go to the lower listing id.
public struct Recommender: Sendable {
    public let model: TowerModel
    public let listings: [MarketListing]
    /// Listing-side features, computed once for every user scored.
    let parts: [PairFeatures.ListingPart]
    public var k: Int
    public var reasonCount: Int
    public var filter: CandidateFilter

    public init(model: TowerModel, listings: [MarketListing], k: Int = 10, reasonCount: Int = 3, filter: CandidateFilter = CandidateFilter()) {
        self.model = model
        self.listings = listings.sorted { $0.id < $1.id }
        self.parts = self.listings.map(PairFeatures.ListingPart.init)
        self.k = k
        self.reasonCount = reasonCount
        self.filter = filter
    }

    public func recommend(_ user: MarketUser) -> (items: [ScoredListing], candidates: Int) {
        let classifier = model.classifier
        var scored: [(score: Double, index: Int)] = []
        var row = [Float](repeating: 0, count: PairFeatures.schema.count)
        for (i, l) in listings.enumerated() where filter.admits(l, for: user) {
            PairFeatures.fill(&row, user: user, listing: parts[i])
            scored.append((logistic(classifier.predictRaw(row: row)), i))
        }
        let candidates = scored.count
        scored.sort { $0.score > $1.score || ($0.score == $1.score && listings[$0.index].id < listings[$1.index].id) }
        let top = scored.prefix(k)
        let items = top.enumerated().map { rank, s -> ScoredListing in
            var reasons: [RecommendationReason] = []
            if reasonCount > 0, case let .gradientBoosted(m) = model {
                reasons = TopReasons.reasons(m, row: PairFeatures.features(user: user, listing: parts[s.index]), count: reasonCount)
            }
            return ScoredListing(listingID: listings[s.index].id, score: s.score, rank: rank + 1, reasons: reasons)
        }
        return (items, candidates)
    }
}

/// The users and active listings a `score` job works on, as one content-addressed blob:
/// every worker scores against the same snapshot, whatever is ingested meanwhile.
///
/// Guarantees: the encoding is deterministic (users and listings sorted by id, keys
/// sorted), so the same state gives the same address.
public struct MarketSnapshot: Sendable, Equatable, Codable {
    public var users: [MarketUser]
    public var listings: [MarketListing]

    public init(users: [MarketUser], listings: [MarketListing]) {
        self.users = users.sorted { $0.id < $1.id }
        self.listings = listings.sorted { $0.id < $1.id }
    }

    public func encoded() -> Data {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        return (try? encoder.encode(self)) ?? Data()
    }

    public static func decode(_ data: Data) throws -> MarketSnapshot {
        do { return try JSONDecoder().decode(MarketSnapshot.self, from: data) }
        catch { throw DataError.unreadable(file: "market snapshot", reason: "not a market snapshot: \(error)") }
    }
}
