import Foundation
import Learning
import NIOConcurrencyHelpers
import NIOCore

/// The users and active listings of one serving snapshot blob, with what is computed from
/// them alone (listing-side features, lookups by id). Immutable, and shared by every
/// `ServingSnapshot` built on the same blob: a promotion or a new score job over unchanged
/// listings neither fetches the blob again nor recomputes the listings' features.
public final class ServingMarket: Sendable {
    /// The SHA-256 of the snapshot blob this was decoded from.
    public let sha256: String
    public let usersByID: [Int: MarketUser]
    public let listingsByID: [Int: StoredListingView]
    public let prepared: PreparedListings

    public init(_ market: MarketSnapshot, sha256: String) {
        self.sha256 = sha256
        usersByID = Dictionary(market.users.map { ($0.id, $0) }, uniquingKeysWith: { a, _ in a })
        listingsByID = Dictionary(market.listings.map { ($0.id, StoredListingView($0)) }, uniquingKeysWith: { a, _ in a })
        prepared = PreparedListings(market.listings)
    }
}

/// Everything one request is served from: the champion, the users and the active
/// listings (with their listing-side features precomputed), and the latest score job's
/// identity. Immutable: a swap builds a new one.
public final class ServingSnapshot: Sendable {
    public let modelName: String
    public let modelVersion: Int
    public let modelSha256: String
    public let model: TowerModel
    public let market: ServingMarket
    public let recommender: Recommender
    /// The score job whose stored recommendations are served as precomputed, when it was
    /// scored by this very model version.
    public let scoreJob: String?
    /// The model's name as a JSON string, for answers assembled from pre-encoded parts.
    let modelNameJSON: String

    public var usersByID: [Int: MarketUser] { market.usersByID }
    public var listingsByID: [Int: StoredListingView] { market.listingsByID }
    public var snapshotSha256: String { market.sha256 }

    /// `previous`: the snapshot being replaced; when it served the same model file on the
    /// same market (only the score job moved), its recommender is kept as it is.
    public init(modelName: String, modelVersion: Int, modelSha256: String, model: TowerModel, market: ServingMarket,
                scoreJob: String?, scoreVersion: Int, previous: ServingSnapshot? = nil) {
        self.modelName = modelName
        self.modelVersion = modelVersion
        self.modelSha256 = modelSha256
        self.model = model
        self.market = market
        if let previous, previous.modelSha256 == modelSha256, previous.market === market {
            recommender = previous.recommender
        } else {
            recommender = Recommender(model: model, prepared: market.prepared, k: 100, reasonCount: 3)
        }
        self.scoreJob = scoreVersion == modelVersion ? scoreJob : nil
        modelNameJSON = String(decoding: (try? JSONEncoder().encode(modelName)) ?? Data("\"\"".utf8), as: UTF8.self)
    }
}

/// What a recommendation card shows of a listing.
public struct StoredListingView: Sendable, Codable, Equatable {
    public var id: Int
    public var price: Double
    public var areaM2: Double
    public var rooms: Int
    public var region: String
    public var newBuild: Bool

    init(_ l: MarketListing) {
        id = l.id
        price = l.price
        areaM2 = l.areaM2
        rooms = l.rooms
        region = l.region
        newBuild = l.newBuild
    }
}

/// The serving snapshot in force. Readers take the current one at the start of a
/// request and finish on it; a swap replaces the reference atomically, so no request ever
/// sees half of a model or listings change, and none fails because of one.
public final class ServingState: Sendable {
    private let current = NIOLockedValueBox<ServingSnapshot?>(nil)
    /// Precomputed recommendations fetched from the coordinator, per score job and user.
    private let precomputed = NIOLockedValueBox<(job: String, byUser: [Int: CachedRecommendations])>(("", [:]))

    public init() {}

    public var snapshot: ServingSnapshot? { current.withLockedValue { $0 } }

    public func swap(_ snapshot: ServingSnapshot) {
        current.withLockedValue { $0 = snapshot }
    }

    struct CachedRecommendations: Sendable {
        var items: [RecommendationItem]
        var version: Int
        /// Each item as JSON (keys sorted), encoded once here: the precomputed path answers
        /// by joining these instead of encoding ten items on every request.
        var encoded: [ByteBuffer]

        init(items: [RecommendationItem], version: Int) {
            self.items = items
            self.version = version
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.sortedKeys]
            encoded = items.map { ByteBuffer(bytes: (try? encoder.encode($0)) ?? Data("{}".utf8)) }
        }
    }

    func cached(job: String, user: Int) -> CachedRecommendations? {
        precomputed.withLockedValue { $0.job == job ? $0.byUser[user] : nil }
    }

    func cache(job: String, user: Int, _ value: CachedRecommendations) {
        precomputed.withLockedValue { state in
            if state.job != job { state = (job, [:]) }
            // Bounded: a cache of every user of a large product is not what a gateway is for.
            if state.byUser.count >= 200_000 { state.byUser.removeAll(keepingCapacity: true) }
            state.byUser[user] = value
        }
    }
}

/// One recommended listing as the API returns it.
public struct RecommendationItem: Sendable, Codable, Equatable {
    public var listing_id: Int
    public var score: Double
    public var rank: Int
    public var reasons: [String]
    public var listing: StoredListingView?
}
