import Foundation

/// A deterministic synthetic real-estate market for demos, tests and benchmarks.
///
/// Guarantees: the same configuration (including seed) produces byte-identical CSV files
/// on every platform (own PRNG, no Foundation randomness). Labels come from a hidden,
/// deliberately non-linear contract propensity — affordability (price vs budget, peaked
/// just under budget), region match, commute from coordinates vs the user's limit,
/// children × school score, risk appetite × yield, new-build preference, space per
/// person and interactions between them — so that tree models have something to find
/// that a linear model cannot. About 5–10 % of shown pairs are positive.
///
/// Label choice: a pair is *positive* when the user clicked or signed a contract
/// (`event != impression`). Contracts alone are too rare (< 1 %) for per-user ranking
/// metrics at demo sizes; clicks are the product's training signal, contracts the
/// business outcome reported beside it.
///
/// With `driftAfterDay`, users and listings that join after that day come from shifted
/// distributions (younger, more risk-seeking users with bigger budgets; pricier stock
/// with more new builds), and the hidden preferences change (yield matters more,
/// schools and region less, budgets are stretched further), so drift detection and
/// retraining have something real to react to.
public struct DemoMarket: Sendable {
    public struct Configuration: Sendable, Equatable {
        public var users: Int
        public var listings: Int
        public var interactions: Int
        public var days: Int
        public var seed: UInt64
        public var driftAfterDay: Int?

        public init(users: Int = 2_000, listings: Int = 5_000, interactions: Int = 100_000, days: Int = 180,
                    seed: UInt64 = 42, driftAfterDay: Int? = nil) {
            self.users = users
            self.listings = listings
            self.interactions = interactions
            self.days = days
            self.seed = seed
            self.driftAfterDay = driftAfterDay
        }
    }

    public var configuration: Configuration

    public init(_ configuration: Configuration) { self.configuration = configuration }

    /// The city's regions. A user's workplace is taken to be the centre of the region
    /// they prefer.
    public static let regions: [MarketRegion] = [
        MarketRegion(name: "Gangnam", lat: 37.4979, lon: 127.0276, priceLevel: 1.8, schoolMean: 82),
        MarketRegion(name: "Songpa", lat: 37.5145, lon: 127.1059, priceLevel: 1.5, schoolMean: 76),
        MarketRegion(name: "Seongdong", lat: 37.5634, lon: 127.0369, priceLevel: 1.3, schoolMean: 66),
        MarketRegion(name: "Mapo", lat: 37.5663, lon: 126.9019, priceLevel: 1.3, schoolMean: 68),
        MarketRegion(name: "Jongno", lat: 37.5735, lon: 126.9790, priceLevel: 1.2, schoolMean: 62),
        MarketRegion(name: "Yeongdeungpo", lat: 37.5264, lon: 126.8962, priceLevel: 1.1, schoolMean: 60),
        MarketRegion(name: "Gangseo", lat: 37.5509, lon: 126.8495, priceLevel: 0.9, schoolMean: 58),
        MarketRegion(name: "Nowon", lat: 37.6542, lon: 127.0568, priceLevel: 0.75, schoolMean: 72),
    ]
    static let regionWeights: [Double] = [0.16, 0.14, 0.11, 0.12, 0.08, 0.13, 0.12, 0.14]

    public static func region(named name: String) -> MarketRegion? { regions.first { $0.name == name } }

    /// Door-to-door commute estimate in minutes from a home at (lat, lon) to a workplace
    /// at the centre of `region`: walk to the subway plus a ride proportional to the
    /// straight-line distance.
    public static func commuteMinutes(lat: Double, lon: Double, subwayDistanceM: Double?, to region: MarketRegion) -> Double {
        let km = distanceKm(lat, lon, region.lat, region.lon)
        return 8 + 2.4 * km + (subwayDistanceM ?? 600) / 80
    }

    static func distanceKm(_ lat1: Double, _ lon1: Double, _ lat2: Double, _ lon2: Double) -> Double {
        // Equirectangular projection: exact enough within one city.
        let x = (lon2 - lon1) * cos((lat1 + lat2) * 0.5 * .pi / 180) * 111.32
        let y = (lat2 - lat1) * 110.57
        return (x * x + y * y).squareRoot()
    }

    /// Builds the market. Interactions are ordered by day.
    public func generate() -> Market {
        let c = configuration
        var rng = Xoshiro256(seed: c.seed)
        let drift = c.driftAfterDay.flatMap { $0 >= 0 && $0 < c.days ? $0 : nil }
        // After the drift day a fifth of users and listings are newcomers from shifted
        // distributions; without drift everyone is from the base population.
        let newUsers = drift == nil ? 0 : max(1, c.users / 5)
        let newListings = drift == nil ? 0 : max(1, c.listings / 5)

        var users: [MarketUser] = []
        users.reserveCapacity(c.users)
        for i in 0..<max(1, c.users) {
            users.append(makeUser(id: i + 1, shifted: i >= c.users - newUsers, &rng))
        }
        var listings: [MarketListing] = []
        var trueSchool: [Double] = []
        var trueSubway: [Double] = []
        for i in 0..<max(1, c.listings) {
            let (l, school, subway) = makeListing(id: i + 1, shifted: i >= c.listings - newListings, &rng)
            listings.append(l); trueSchool.append(school); trueSubway.append(subway)
        }

        // Exposure: half of the shown listings come from the user's preferred region
        // (the product filters by it), a fifth from around their budget, the rest from
        // anywhere — like a recommender that explores.
        var byRegion: [String: [Int]] = [:]
        for (i, l) in listings.enumerated() { byRegion[l.region, default: []].append(i) }
        let byPrice = listings.indices.sorted { listings[$0].price < listings[$1].price }
        let sortedPrices = byPrice.map { listings[$0].price }
        // Some users are far more active than others.
        var activity: [Double] = []
        var cumulative = 0.0
        for _ in users { cumulative += exp(rng.normal(mean: 0, sd: 0.8)); activity.append(cumulative) }
        let propensity = users.map { _ in rng.normal(mean: 0, sd: 0.35) }

        var days = (0..<c.interactions).map { _ in rng.index(below: max(1, c.days)) }
        days.sort()
        var interactions: [MarketInteraction] = []
        interactions.reserveCapacity(c.interactions)
        let baseUsers = users.count - newUsers, baseListings = listings.count - newListings
        for day in days {
            let late = drift.map { day > $0 } ?? false
            let u: Int
            if late && newUsers > 0 && rng.bernoulli(0.5) {
                u = baseUsers + rng.index(below: newUsers)
            } else {
                let pick = rng.uniform() * activity[max(0, baseUsers - 1)]
                u = min(lowerBound(activity, pick), max(0, baseUsers - 1))
            }
            let user = users[u]
            let mode = rng.uniform()
            var li: Int
            if late && newListings > 0 && rng.bernoulli(0.4) {
                li = baseListings + rng.index(below: newListings)
            } else if mode < 0.5, let pool = byRegion[user.preferredRegion], !pool.isEmpty {
                li = pool[rng.index(below: pool.count)]
            } else if mode < 0.7 {
                let lo = lowerBound(sortedPrices, user.budget * 0.6)
                let hi = max(lo + 1, min(sortedPrices.count, lowerBound(sortedPrices, user.budget * 1.2)))
                li = byPrice[min(sortedPrices.count - 1, lo + rng.index(below: hi - lo))]
            } else {
                li = rng.index(below: listings.count)
            }
            if !late && li >= baseListings && baseListings > 0 { li = rng.index(below: baseListings) }
            let listing = listings[li]
            let logit = Self.hiddenPreference(user: user, listing: listing, school: trueSchool[li],
                                              subway: trueSubway[li], drifted: late) + propensity[u]
            // Some clicks are curiosity whatever the fit (the 0.5 % floor); without it
            // whole regions of the market would be deterministic negatives, which real
            // click logs never are.
            let pClick = 0.005 + 0.995 * sigmoid(logit - 4.3)
            let pContract = sigmoid(logit - 3.0) * 0.12
            let r = rng.uniform()
            // A contract implies the click before it, so it is carved out of the click mass.
            let event: InteractionEvent = r < pClick * pContract ? .contract : (r < pClick ? .click : .impression)
            interactions.append(MarketInteraction(userID: user.id, listingID: listing.id, day: day, event: event))
        }
        return Market(users: users, listings: listings, interactions: interactions)
    }

    private func makeUser(id: Int, shifted: Bool, _ rng: inout Xoshiro256) -> MarketUser {
        let age = Int(min(75, max(23, rng.normal(mean: shifted ? 34 : 42, sd: 10))).rounded())
        let income = exp(rng.normal(mean: log(shifted ? 75 : 62), sd: 0.45))
        var household = 1
        let r = rng.uniform()
        if age > 30 { household = r < 0.2 ? 1 : (r < 0.45 ? 2 : (r < 0.75 ? 3 : (r < 0.93 ? 4 : 5))) }
        else { household = r < 0.55 ? 1 : (r < 0.85 ? 2 : 3) }
        let hasChildren = household >= 3 ? rng.bernoulli(0.9) : (household == 2 ? rng.bernoulli(0.15) : false)
        let maxCommute = (25 + 50 * rng.uniform()).rounded()
        let riskBase = rng.uniform()
        let risk = shifted ? min(1, riskBase * 0.6 + 0.4) : riskBase
        let horizon = 1 + rng.index(below: 20)
        let newBuild = rng.bernoulli(age < 35 ? 0.55 : 0.3)
        let region = Self.regions[pickWeighted(Self.regionWeights, &rng)].name
        let budget = (income * rng.uniform(6, 14) * (shifted ? 1.2 : 1)).rounded()
        return MarketUser(id: id, age: age, income: (income * 10).rounded() / 10, householdSize: household,
                          hasChildren: hasChildren, maxCommuteMin: maxCommute, riskAppetite: (risk * 1000).rounded() / 1000,
                          investmentHorizonYears: horizon, prefersNewBuild: newBuild, preferredRegion: region, budget: budget)
    }

    private func makeListing(id: Int, shifted: Bool, _ rng: inout Xoshiro256) -> (MarketListing, Double, Double) {
        let region = Self.regions[pickWeighted(Self.regionWeights, &rng)]
        let lat = region.lat + rng.normal(mean: 0, sd: 0.018)
        let lon = region.lon + rng.normal(mean: 0, sd: 0.022)
        let area = min(200, max(20, rng.normal(mean: 80, sd: 25)))
        let rooms = min(6, max(1, Int((area / 28).rounded())))
        let floor = 1 + rng.index(below: 30)
        let age = shifted && rng.bernoulli(0.5) ? rng.index(below: 3) : rng.index(below: 45)
        let newBuild = age <= 3
        let subway = min(3000, max(50, -600 * log(max(1e-9, 1 - rng.uniform()))))
        let school = min(100, max(10, rng.normal(mean: region.schoolMean, sd: 12)))
        let yield = max(1.0, 5.2 - 1.6 * region.priceLevel + rng.normal(mean: 0, sd: 0.6) + (newBuild ? -0.3 : 0))
        var price = area * 8.0 * region.priceLevel * (newBuild ? 1.15 : 1) * (1 - 0.006 * Double(age))
        price *= exp(rng.normal(mean: 0, sd: 0.15)) * (1 + 0.004 * Double(floor)) * (shifted ? 1.15 : 1)
        price *= 1 - min(0.15, subway / 20000)
        // A few values are unknown in the export, as in real listing feeds.
        let schoolKnown = !rng.bernoulli(0.03)
        let subwayKnown = !rng.bernoulli(0.02)
        let l = MarketListing(id: id, price: price.rounded(), areaM2: (area * 10).rounded() / 10, rooms: rooms, floor: floor,
                              buildingAge: age, region: region.name, subwayDistanceM: subwayKnown ? subway.rounded() : nil,
                              schoolScore: schoolKnown ? (school * 10).rounded() / 10 : nil,
                              expectedYield: (yield * 100).rounded() / 100, newBuild: newBuild,
                              lat: (lat * 1e5).rounded() / 1e5, lon: (lon * 1e5).rounded() / 1e5)
        return (l, school, subway)
    }

    /// The hidden contract propensity (log-odds, before the funnel offset). Not visible
    /// to learners; exposed for tests that check a model recovers its shape.
    public static func hiddenPreference(user: MarketUser, listing: MarketListing, school: Double, subway: Double,
                                        drifted: Bool) -> Double {
        let ratio = listing.price / user.budget
        // Affordability: people look for homes that use most of their budget; far below
        // is "too small", above budget falls off steeply (loan limits).
        let stretch = drifted ? 1.15 : 1.0
        var afford: Double
        if ratio < 0.45 { afford = -1.0 }
        else if ratio < 0.75 { afford = 0.4 }
        else if ratio <= 1.0 * stretch { afford = 1.2 }
        else { afford = max(-4, 1.2 - 9 * (ratio - stretch)) }
        var logit = 1.6 * afford
        let sameRegion = listing.region == user.preferredRegion
        logit += (drifted ? 0.4 : 1.1) * (sameRegion ? 1 : 0)
        if let region = region(named: user.preferredRegion) {
            let commute = commuteMinutes(lat: listing.lat, lon: listing.lon, subwayDistanceM: subway, to: region)
            let slack = user.maxCommuteMin - commute
            logit += slack >= 0 ? 0.6 : max(-3, 0.1 * slack)
        }
        if user.hasChildren { logit += (drifted ? 0.8 : 2.0) * (school - 60) / 30 }
        logit += (drifted ? 3.5 : 1.6) * (user.riskAppetite - 0.5) * (listing.expectedYield - 3.3)
        if user.prefersNewBuild { logit += listing.newBuild ? 0.8 : (listing.buildingAge > 25 ? -0.6 : 0) }
        let perPerson = listing.areaM2 / Double(user.householdSize)
        if perPerson < 20 { logit -= 1.2 }
        if user.age > 60 && listing.floor > 15 { logit -= 0.5 }
        if user.investmentHorizonYears >= 10 && sameRegion && ratio <= 1.05 { logit += 0.5 }
        logit -= 0.0005 * subway
        return logit
    }
}

@inline(__always) func sigmoid(_ x: Double) -> Double { 1 / (1 + exp(-x)) }

func pickWeighted(_ weights: [Double], _ rng: inout Xoshiro256) -> Int {
    let total = weights.reduce(0, +)
    var x = rng.uniform() * total
    for (i, w) in weights.enumerated() {
        x -= w
        if x < 0 { return i }
    }
    return weights.count - 1
}

/// First index whose element is ≥ value (sorted ascending input).
func lowerBound(_ a: [Double], _ value: Double) -> Int {
    var lo = 0, hi = a.count
    while lo < hi {
        let mid = (lo + hi) / 2
        if a[mid] < value { lo = mid + 1 } else { hi = mid }
    }
    return lo
}

extension DemoMarket {
    /// Precision@k against the market's hidden preferences: for each user, the share of the
    /// model's top k listings (among those costing at most `budgetCeiling` × budget) that
    /// are in the top k by the true propensity — before or after the preference shift.
    ///
    /// Click logs only show a few listings per user, so P@10 over logged impressions is
    /// mostly order-blind; the generator knows what every user would prefer among all
    /// listings, which is what a recommender is for. Users with fewer than 2k candidates
    /// are skipped.
    public static func oraclePrecision(_ model: TowerModel, users: [MarketUser], listings: [MarketListing], drifted: Bool,
                                       k: Int = 10, budgetCeiling: Double = 1.2) -> Double {
        let classifier = model.classifier
        var total = 0.0, counted = 0
        for user in users {
            let candidates = listings.filter { $0.price <= user.budget * budgetCeiling }
            guard candidates.count >= 2 * k else { continue }
            let truth = candidates.map {
                hiddenPreference(user: user, listing: $0, school: $0.schoolScore ?? 60, subway: $0.subwayDistanceM ?? 600, drifted: drifted)
            }
            let predicted = candidates.map { classifier.predictRaw(row: PairFeatures.features(user: user, listing: $0)) }
            let best = Set(candidates.indices.sorted { truth[$0] > truth[$1] || (truth[$0] == truth[$1] && $0 < $1) }.prefix(k))
            let chosen = candidates.indices.sorted { predicted[$0] > predicted[$1] || (predicted[$0] == predicted[$1] && $0 < $1) }.prefix(k)
            total += Double(chosen.filter { best.contains($0) }.count) / Double(k)
            counted += 1
        }
        return counted == 0 ? .nan : total / Double(counted)
    }
}
