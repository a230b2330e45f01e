import Foundation

/// Turns user × listing pairs into model features: the raw attributes of both sides
/// plus pair features that encode how well the listing fits the user (price against
/// budget, region match, commute against the user's limit, …).
///
/// Guarantees: the same pair always gives the same feature vector; unknown inputs
/// (missing school score, unknown region) become NaN, never a made-up value.
public enum PairFeatures {
    public static let schema = FeatureSchema([
        Feature(name: "age"), Feature(name: "income"), Feature(name: "household_size"),
        Feature(name: "has_children", kind: .binary), Feature(name: "max_commute_min"),
        Feature(name: "risk_appetite"), Feature(name: "investment_horizon_years"),
        Feature(name: "prefers_new_build", kind: .binary), Feature(name: "budget"),
        Feature(name: "price"), Feature(name: "area_m2"), Feature(name: "rooms"), Feature(name: "floor"),
        Feature(name: "building_age"), Feature(name: "subway_distance_m"), Feature(name: "school_score"),
        Feature(name: "expected_yield"), Feature(name: "new_build", kind: .binary),
        Feature(name: "region", kind: .categorical, categories: DemoMarket.regions.map(\.name)),
        Feature(name: "price_to_budget"), Feature(name: "region_match", kind: .binary),
        Feature(name: "commute_min_est"), Feature(name: "commute_slack_min"),
        Feature(name: "school_x_children"), Feature(name: "yield_x_risk"),
        Feature(name: "new_build_match", kind: .binary), Feature(name: "area_per_person"),
        Feature(name: "price_per_m2"),
    ])

    /// The features that describe the user alone.
    public static let userFeatures: Set<String> = ["age", "income", "household_size", "has_children", "max_commute_min",
                                                   "risk_appetite", "investment_horizon_years", "prefers_new_build", "budget"]
    /// The features that describe the listing alone (the same for every user).
    public static let listingFeatures: Set<String> = ["price", "area_m2", "rooms", "floor", "building_age", "subway_distance_m",
                                                      "school_score", "expected_yield", "new_build", "region", "price_per_m2"]
    /// Schema positions of the user-only, listing-only and pair features: a scorer can
    /// settle the first two once per user and once per listing.
    static let userColumns = schema.features.indices.filter { userFeatures.contains(schema.features[$0].name) }
    static let listingColumns = schema.features.indices.filter { listingFeatures.contains(schema.features[$0].name) }
    static let pairColumns = schema.features.indices.filter {
        !userFeatures.contains(schema.features[$0].name) && !listingFeatures.contains(schema.features[$0].name)
    }

    /// Short, user-facing phrases for a feature that pushed a recommendation up; used by
    /// `TopReasons`. Features without a phrase are shown by name.
    public static let reasonPhrases: [String: String] = [
        "price_to_budget": "price within budget",
        "region_match": "same region as preferred",
        "commute_min_est": "short commute",
        "commute_slack_min": "commute within your limit",
        "school_x_children": "good schools for your children",
        "school_score": "good school district",
        "yield_x_risk": "rental yield fits your risk appetite",
        "expected_yield": "attractive rental yield",
        "new_build_match": "new build, as preferred",
        "new_build": "new build",
        "area_per_person": "enough space for your household",
        "subway_distance_m": "close to the subway",
        "price": "price",
        "price_per_m2": "good price per m²",
        "building_age": "building age",
        "area_m2": "floor area",
        "rooms": "number of rooms",
        "floor": "floor level",
        "region": "location",
    ]

    /// What a listing contributes to every pair it is in, computed once: its own values
    /// and its commute to each region's centre. A server scoring one user against
    /// thousands of listings builds these once per listings swap.
    public struct ListingPart: Sendable {
        public let listing: MarketListing
        let regionCode: Double
        let school: Double
        /// Commute minutes to each of `DemoMarket.regions`, in that order.
        let commuteByRegion: [Double]

        public init(_ l: MarketListing) {
            listing = l
            regionCode = DemoMarket.regions.firstIndex { $0.name == l.region }.map(Double.init) ?? .nan
            school = l.schoolScore ?? .nan
            commuteByRegion = DemoMarket.regions.map {
                DemoMarket.commuteMinutes(lat: l.lat, lon: l.lon, subwayDistanceM: l.subwayDistanceM, to: $0)
            }
        }
    }

    /// Feature vector for one pair, in `schema` order.
    public static func features(user u: MarketUser, listing l: MarketListing) -> [Float] {
        [Float](unsafeUninitializedCapacity: schema.count) { out, count in
            write(user: u, listing: l, to: out.baseAddress!, stride: 1)
            count = schema.count
        }
    }

    /// Writes one pair's features to `out[c * stride]`, computing only the commute to the
    /// user's region (a `ListingPart` computes all eight): what one-off pairs — a
    /// point-in-time join's rows — need.
    static func write(user u: MarketUser, listing l: MarketListing, to out: UnsafeMutablePointer<Float>, stride s: Int) {
        let commute = DemoMarket.region(named: u.preferredRegion).map {
            DemoMarket.commuteMinutes(lat: l.lat, lon: l.lon, subwayDistanceM: l.subwayDistanceM, to: $0)
        } ?? .nan
        let regionCode = DemoMarket.regions.firstIndex { $0.name == l.region }.map(Double.init) ?? .nan
        write(user: u, listing: l, regionCode: regionCode, commute: commute, to: out, stride: s)
    }

    /// Feature vector for one pair from a precomputed listing part; equal, value for value,
    /// to `features(user:listing:)`.
    public static func features(user u: MarketUser, listing part: ListingPart) -> [Float] {
        var row = [Float](repeating: 0, count: schema.count)
        fill(&row, user: u, listing: part)
        return row
    }

    /// Writes the pair's features into `row` (schema order), without allocating.
    public static func fill(_ row: inout [Float], user u: MarketUser, listing part: ListingPart) {
        precondition(row.count == schema.count, "one value per schema feature")
        let commute = userRegionIndex(u).map { part.commuteByRegion[$0] } ?? .nan
        row.withUnsafeMutableBufferPointer { out in
            write(user: u, listing: part.listing, regionCode: part.regionCode, commute: commute, to: out.baseAddress!, stride: 1)
        }
    }

    /// The index of the user's preferred region in `DemoMarket.regions`, nil when unknown.
    static func userRegionIndex(_ u: MarketUser) -> Int? {
        DemoMarket.regions.firstIndex { $0.name == u.preferredRegion }
    }

    /// Writes the pair's features to `out[c * stride]` for each schema column `c`, given the
    /// listing's region code and the commute to the user's region (NaN when unknown): the
    /// one definition behind `features`, `fill` and the recommender's column-major blocks.
    @inline(__always)
    static func write(user u: MarketUser, listing l: MarketListing, regionCode: Double, commute: Double,
                      to out: UnsafeMutablePointer<Float>, stride s: Int) {
        let school = l.schoolScore ?? .nan
        out[0 * s] = Float(Double(u.age))
        out[1 * s] = Float(u.income)
        out[2 * s] = Float(Double(u.householdSize))
        out[3 * s] = u.hasChildren ? 1 : 0
        out[4 * s] = Float(u.maxCommuteMin)
        out[5 * s] = Float(u.riskAppetite)
        out[6 * s] = Float(Double(u.investmentHorizonYears))
        out[7 * s] = u.prefersNewBuild ? 1 : 0
        out[8 * s] = Float(u.budget)
        out[9 * s] = Float(l.price)
        out[10 * s] = Float(l.areaM2)
        out[11 * s] = Float(Double(l.rooms))
        out[12 * s] = Float(Double(l.floor))
        out[13 * s] = Float(Double(l.buildingAge))
        out[14 * s] = Float(l.subwayDistanceM ?? .nan)
        out[15 * s] = Float(school)
        out[16 * s] = Float(l.expectedYield)
        out[17 * s] = l.newBuild ? 1 : 0
        out[18 * s] = Float(regionCode)
        out[19 * s] = Float(l.price / u.budget)
        out[20 * s] = l.region == u.preferredRegion ? 1 : 0
        out[21 * s] = Float(commute)
        out[22 * s] = Float(u.maxCommuteMin - commute)
        out[23 * s] = Float(u.hasChildren ? school : 0)  // 0 for no children: school quality is irrelevant, not unknown
        out[24 * s] = Float(u.riskAppetite * l.expectedYield)
        out[25 * s] = u.prefersNewBuild == l.newBuild ? 1 : 0
        out[26 * s] = Float(l.areaM2 / Double(u.householdSize))
        out[27 * s] = Float(l.price / l.areaM2)
    }

    /// One row per interaction: features, label (click or contract = 1), group = user
    /// id, day. Rows keep the interactions' order.
    public static func build(_ market: Market) throws -> Dataset {
        var userIndex: [Int: Int] = [:]
        for (i, u) in market.users.enumerated() { userIndex[u.id] = i }
        var listingIndex: [Int: Int] = [:]
        for (i, l) in market.listings.enumerated() { listingIndex[l.id] = i }
        let n = market.interactions.count
        if n == 0 { throw DataError.emptyDataSet(reason: "the market has no interactions") }
        // Pair features of each (user, listing) are computed once even when shown often.
        let width = schema.count
        var columns = [[Float]](repeating: [Float](repeating: 0, count: n), count: width)
        var labels = [Float](repeating: 0, count: n)
        var groups = [Int](repeating: 0, count: n)
        var days = [Int](repeating: 0, count: n)
        for (r, x) in market.interactions.enumerated() {
            guard let ui = userIndex[x.userID] else {
                throw DataError.unknownReference(file: "interactions.csv", line: r + 2, column: "user_id", value: String(x.userID))
            }
            guard let li = listingIndex[x.listingID] else {
                throw DataError.unknownReference(file: "interactions.csv", line: r + 2, column: "listing_id", value: String(x.listingID))
            }
            let f = features(user: market.users[ui], listing: market.listings[li])
            for c in 0..<width { columns[c][r] = f[c] }
            labels[r] = x.event == .impression ? 0 : 1
            groups[r] = x.userID
            days[r] = x.day
        }
        return Dataset(schema: schema, columns: columns, labels: labels, groups: groups, days: days)
    }
}

/// A split of one data set into consecutive time windows, so that validation and test
/// rows are always later than training rows — as when a model trained tonight scores
/// tomorrow's traffic.
public struct TimeSplit: Sendable {
    public var train: Dataset
    public var valid: Dataset?
    public var test: Dataset

    /// Rows with day < `validFrom` train, `validFrom` ≤ day < `testFrom` validate (none
    /// when equal), day ≥ `testFrom` test.
    public init(_ data: Dataset, validFrom: Int, testFrom: Int) throws {
        guard let days = data.days else {
            throw DataError.emptyDataSet(reason: "a time split needs a day per row")
        }
        var a: [Int] = [], b: [Int] = [], c: [Int] = []
        for (i, d) in days.enumerated() {
            if d < validFrom { a.append(i) } else if d < testFrom { b.append(i) } else { c.append(i) }
        }
        if a.isEmpty { throw DataError.emptyDataSet(reason: "no training rows before day \(validFrom)") }
        if c.isEmpty { throw DataError.emptyDataSet(reason: "no test rows from day \(testFrom) on") }
        train = data.subset(a)
        valid = b.isEmpty ? nil : data.subset(b)
        test = data.subset(c)
    }

    /// Cut points chosen so that about `trainFraction` of the rows train and
    /// `validFraction` validate (rows are whole days, so fractions are approximate).
    public init(_ data: Dataset, trainFraction: Double, validFraction: Double) throws {
        guard let days = data.days, !days.isEmpty else {
            throw DataError.emptyDataSet(reason: "a time split needs a day per row")
        }
        let sorted = days.sorted()
        func cut(_ f: Double) -> Int {
            let k = min(sorted.count - 1, max(0, Int((Double(sorted.count) * f).rounded())))
            return sorted[k]
        }
        let validFrom = cut(trainFraction)
        let testFrom = validFraction > 0 ? max(validFrom + 1, cut(trainFraction + validFraction)) : validFrom
        try self.init(data, validFrom: validFrom, testFrom: testFrom)
    }
}
