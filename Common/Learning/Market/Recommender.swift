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
    public var k: Int
    public var reasonCount: Int
    public var filter: CandidateFilter
    /// Listing-side features, computed once for every user scored.
    let parts: [PairFeatures.ListingPart]
    /// For a tree model QuickScorer takes: per listing, the leaves of every tree its own
    /// features leave possible (`trees` words each), computed once; a user's features are
    /// settled once per user, so each pair looks at the pair features only.
    let listingMasks: [UInt64]
    /// The model prepared for TreeSHAP once, since every user's top K is explained with it.
    let explainer: PreparedTreeSHAP?
    /// Listing masks are kept up to this many bytes (a large catalogue scores without them).
    static let maxListingMaskBytes = 256 << 20

    public init(model: TowerModel, listings: [MarketListing], k: Int = 10, reasonCount: Int = 3, filter: CandidateFilter = CandidateFilter()) {
        self.init(model: model, prepared: PreparedListings(listings), k: k, reasonCount: reasonCount, filter: filter)
    }

    /// A recommender over listings whose listing-side features are already computed: a
    /// new model over unchanged listings reuses them.
    public init(model: TowerModel, prepared: PreparedListings, k: Int = 10, reasonCount: Int = 3, filter: CandidateFilter = CandidateFilter()) {
        self.model = model
        self.listings = prepared.listings
        self.k = k
        self.reasonCount = reasonCount
        self.filter = filter
        self.parts = prepared.parts
        // Masks depend on the model too: made per recommender (milliseconds per thousand listings).
        var masks: [UInt64] = []
        if case let .gradientBoosted(m) = model, m.schema.count == PairFeatures.schema.count, let quick = m.forest.quick,
           self.listings.count * quick.full.count * 8 <= Self.maxListingMaskBytes {
            let anyone = Self.placeholderUser
            masks.reserveCapacity(self.listings.count * quick.full.count)
            var row = [Float](repeating: 0, count: PairFeatures.schema.count)
            for part in parts {
                // Any user gives the listing's own columns: they do not depend on the user.
                PairFeatures.fill(&row, user: anyone, listing: part)
                masks.append(contentsOf: quick.mask(features: PairFeatures.listingColumns) { row[$0] })
            }
        }
        self.listingMasks = masks
        if reasonCount > 0, case let .gradientBoosted(m) = model { explainer = PreparedTreeSHAP(m) } else { explainer = nil }
    }

    static let placeholderUser = MarketUser(id: 0, age: 40, income: 100, householdSize: 2, hasChildren: false, maxCommuteMin: 60,
                                                         riskAppetite: 0.5, investmentHorizonYears: 10, prefersNewBuild: false,
                                                         preferredRegion: "", budget: 1000)

    /// The listings `user`'s hard filters admit (indices into `listings`) and the model's
    /// raw score of each, in the same order. Candidates are featurized into one
    /// column-major block per user and a tree model scores the block with its packed
    /// forest (the batch path: same trees, same order of additions, so the same scores as
    /// one row at a time).
    func rawScores(_ user: MarketUser) -> (candidates: [Int32], raw: [Double]) {
        var candidates: [Int32] = []
        candidates.reserveCapacity(listings.count)
        for (i, l) in listings.enumerated() where filter.admits(l, for: user) { candidates.append(Int32(i)) }
        let n = candidates.count
        let width = PairFeatures.schema.count
        let region = PairFeatures.userRegionIndex(user)
        var raw: [Double]
        switch model {
        case let .gradientBoosted(m) where m.schema.count == width:
            var block = [Float](repeating: 0, count: n * width)
            block.withUnsafeMutableBufferPointer { b in
                for (j, i) in candidates.enumerated() {
                    let part = parts[Int(i)]
                    PairFeatures.write(user: user, listing: part.listing, regionCode: part.regionCode,
                                       commute: region.map { part.commuteByRegion[$0] } ?? .nan, to: b.baseAddress! + j, stride: n)
                }
            }
            raw = [Double](repeating: m.initialScore, count: n)
            if n > 0, let quick = m.forest.quick, !listingMasks.isEmpty {
                // The user's own columns, settled once (any candidate's row holds them).
                let userMask = quick.mask(features: PairFeatures.userColumns) { block[$0 * n] }
                let trees = quick.full.count
                block.withUnsafeBufferPointer { b in
                    let columns = (0..<width).map { UnsafePointer(b.baseAddress! + $0 * n) }
                    columns.withUnsafeBufferPointer { cols in
                        raw.withUnsafeMutableBufferPointer { out in
                            userMask.withUnsafeBufferPointer { um in
                                listingMasks.withUnsafeBufferPointer { lm in
                                    quick.accumulate(columns: cols, rows: 0..<n, scores: out.baseAddress!, features: PairFeatures.pairColumns) { r, live in
                                        let listing = lm.baseAddress! + Int(candidates[r]) * trees
                                        for t in 0..<trees { live[t] = um[t] & listing[t] }
                                    }
                                }
                            }
                        }
                    }
                }
            } else if n > 0 {
                block.withUnsafeBufferPointer { b in
                    let columns = (0..<width).map { UnsafePointer(b.baseAddress! + $0 * n) }
                    columns.withUnsafeBufferPointer { cols in
                        raw.withUnsafeMutableBufferPointer { out in
                            m.forest.accumulate(columns: cols, rows: 0..<n, scores: out.baseAddress!)
                        }
                    }
                }
            }
        default:
            let classifier = model.classifier
            var row = [Float](repeating: 0, count: width)
            raw = candidates.map { i in
                PairFeatures.fill(&row, user: user, listing: parts[Int(i)])
                return classifier.predictRaw(row: row)
            }
        }
        return (candidates, raw)
    }

    /// The user's top K: only the top K are kept while scanning the scores, and only their
    /// rows are rebuilt for reasons.
    public func recommend(_ user: MarketUser) -> (items: [ScoredListing], candidates: Int) {
        let (candidates, raw) = rawScores(user)
        let n = candidates.count
        // Best first; equal scores go to the lower listing id (lower index: listings are
        // sorted by id). The kept list is short, so insertion beats a heap.
        var top: [(score: Double, index: Int)] = []
        if k > 0 { top.reserveCapacity(k + 1) }
        for j in 0..<n where k > 0 {
            let score = logistic(raw[j]), index = Int(candidates[j])
            if top.count == k {
                let last = top[k - 1]
                guard score > last.score || (score == last.score && index < last.index) else { continue }
            }
            var at = top.count
            while at > 0 && (score > top[at - 1].score || (score == top[at - 1].score && index < top[at - 1].index)) { at -= 1 }
            top.insert((score, index), at: at)
            if top.count > k { top.removeLast() }
        }
        let items = top.enumerated().map { rank, s -> ScoredListing in
            var reasons: [RecommendationReason] = []
            if reasonCount > 0, case let .gradientBoosted(m) = model {
                reasons = TopReasons.reasons(m, row: PairFeatures.features(user: user, listing: parts[s.index]), count: reasonCount, explainer: explainer)
            }
            return ScoredListing(listingID: listings[s.index].id, score: s.score, rank: rank + 1, reasons: reasons)
        }
        return (items, n)
    }
}

/// Listings sorted by id with their listing-side features, which depend on no user and no
/// model: computed once per set of listings, however many models score them.
public struct PreparedListings: Sendable {
    public let listings: [MarketListing]
    let parts: [PairFeatures.ListingPart]

    public init(_ listings: [MarketListing]) {
        self.listings = listings.sorted { $0.id < $1.id }
        parts = self.listings.map(PairFeatures.ListingPart.init)
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
