import Foundation
import Testing
@testable import Learning

@Suite struct TimestampTests {
    @Test func parsesRFC3339AndDatesAndRefusesTheRest() {
        #expect(Timestamp.parse("1970-01-01") == 0)
        #expect(Timestamp.parse("2026-06-01T00:00:00Z") == 1_780_272_000)
        #expect(Timestamp.parse("2026-06-01T09:00:00+09:00") == 1_780_272_000)
        #expect(Timestamp.parse("2026-06-01 00:00:00.5Z") == 1_780_272_000.5)
        #expect(Timestamp.parse("2024-02-29") == 1_709_164_800)
        for bad in ["2023-02-29", "2026-13-01", "2026-06-01T25:00:00Z", "2026-06-01T00:00:00", "yesterday", "2026-06-01T00:00:00+0900", ""] {
            #expect(Timestamp.parse(bad) == nil, "\(bad)")
        }
        #expect(Timestamp.format(1_780_272_000) == "2026-06-01T00:00:00Z")
        #expect(Timestamp.format(-1) == "1969-12-31T23:59:59Z")
    }
}

@Suite struct FeatureStoreFilesTests {
    static let userHeader = FeatureStoreFiles.userColumns.joined(separator: ",")
    static let user1 = "1,40,60.0,3,1,45,0.5,10,0,Mapo,600,2026-06-01,2026-06-01"

    func table(_ text: String, _ file: String) throws -> CSVTable { try CSVTable(text: text, file: file) }

    @Test func usersParseWithTheirTimes() throws {
        let rows = try FeatureStoreFiles.users(table("\(Self.userHeader)\n\(Self.user1)\n", "users.csv"))
        #expect(rows.count == 1)
        #expect(rows[0].line == 2)
        #expect(rows[0].value.preferredRegion == "Mapo")
        #expect(rows[0].eventTime == 1_780_272_000)
    }

    @Test func badRowsNameFileLineAndColumn() throws {
        let badRegion = Self.user1.replacingOccurrences(of: "Mapo", with: "Atlantis")
        #expect(throws: DataError.invalidValue(file: "users.csv", line: 3, column: 10, columnName: "preferred_region", value: "Atlantis",
                                               expected: "one of the regions " + DemoMarket.regions.map(\.name).joined(separator: ", "))) {
            try FeatureStoreFiles.users(table("\(Self.userHeader)\n\(Self.user1)\n\(badRegion.replacingOccurrences(of: "1,40", with: "2,40"))\n", "users.csv"))
        }
        #expect(throws: DataError.duplicateID(file: "users.csv", line: 3, column: "id", value: "1", firstLine: 2)) {
            try FeatureStoreFiles.users(table("\(Self.userHeader)\n\(Self.user1)\n\(Self.user1)\n", "users.csv"))
        }
        #expect(throws: DataError.unexpectedColumn(file: "users.csv", column: "colour", expected: FeatureStoreFiles.userColumns)) {
            try FeatureStoreFiles.users(table("\(Self.userHeader),colour\n\(Self.user1),red\n", "users.csv"))
        }
        let header = "event_id,user_id,listing_id,type,event_time"
        #expect(throws: DataError.invalidValue(file: "events.csv", line: 2, column: 4, columnName: "type", value: "purchase",
                                               expected: "impression, click, save, contract")) {
            try FeatureStoreFiles.events(table("\(header)\ne1,1,1,purchase,2026-06-01\n", "events.csv"))
        }
        #expect(throws: DataError.nonNumericValue(file: "events.csv", line: 2, column: 2, columnName: "user_id", value: "abc")) {
            try FeatureStoreFiles.events(table("\(header)\ne1,abc,1,click,2026-06-01\n", "events.csv"))
        }
        // A value cannot be known before it is true.
        let early = Self.user1.replacingOccurrences(of: "2026-06-01,2026-06-01", with: "2026-06-02,2026-06-01")
        #expect(throws: DataError.invalidValue(file: "users.csv", line: 2, column: 13, columnName: "written_at", value: "2026-06-01",
                                               expected: "a time not before updated_at (a value cannot be known before it is true)")) {
            try FeatureStoreFiles.users(table("\(Self.userHeader)\n\(early)\n", "users.csv"))
        }
    }

    @Test func aWrittenMarketParsesBackToTheSameValues() throws {
        let dir = Fixtures.temporaryDirectory()
        let market = Fixtures.smallMarket
        try FeatureStoreFiles.write(market, start: 1_780_272_000, to: dir)
        let users = try FeatureStoreFiles.users(CSVTable(contentsOf: dir.appendingPathComponent("users.csv")))
        let listings = try FeatureStoreFiles.listings(CSVTable(contentsOf: dir.appendingPathComponent("listings.csv")))
        let events = try FeatureStoreFiles.events(CSVTable(contentsOf: dir.appendingPathComponent("events.csv")))
        #expect(users.map(\.value) == market.users)
        #expect(listings.map(\.value.listing) == market.listings)
        #expect(events.filter { $0.value.type == .impression }.count == market.interactions.count)
        #expect(events.filter { $0.value.type == .click }.count == market.interactions.filter { $0.event != .impression }.count)
    }
}

@Suite struct PointInTimeJoinTests {
    static let day = 86_400.0
    static func user(_ id: Int, budget: Double) -> MarketUser {
        MarketUser(id: id, age: 40, income: 60, householdSize: 2, hasChildren: false, maxCommuteMin: 45, riskAppetite: 0.5,
                   investmentHorizonYears: 10, prefersNewBuild: false, preferredRegion: "Mapo", budget: budget)
    }
    static let listing = MarketListing(id: 7, price: 500, areaM2: 80, rooms: 3, floor: 5, buildingAge: 10, region: "Mapo",
                                       subwayDistanceM: 300, schoolScore: 70, expectedYield: 3, newBuild: false, lat: 37.56, lon: 126.9)

    /// The budget feature of each example, to see which user version it joined.
    func budgets(_ r: PointInTimeJoin.Result) -> [Float] { r.dataset.columns[PairFeatures.schema.index(of: "budget")!] }

    @Test func anExampleSeesOnlyValuesTrueAndWrittenByItsTime() throws {
        let d = Self.day
        let users = [
            Versioned(id: 1, eventTime: 0, writtenAt: 0, value: Self.user(1, budget: 500)),
            Versioned(id: 1, eventTime: 10 * d, writtenAt: 10 * d, value: Self.user(1, budget: 700)),
        ]
        let listings = [Versioned(id: 7, eventTime: 0, writtenAt: 0, value: Self.listing)]
        let impressions = [5.0, 15.0].enumerated().map { i, day in
            PointInTimeJoin.Impression(eventID: "i\(i)", userID: 1, listingID: 7, time: day * d, writtenAt: day * d)
        }
        let actions = [PointInTimeJoin.Action(userID: 1, listingID: 7, time: 15 * d + 60, writtenAt: 15 * d + 60)]
        let definition = TrainingSetDefinition(from: 0, to: 20 * d, asOf: 20 * d)
        let before = try PointInTimeJoin.build(definition, impressions: impressions, actions: actions, users: users, listings: listings)
        #expect(budgets(before) == [500, 700])
        #expect(before.dataset.labels == [0, 1])

        // A backfill written on day 20 says the budget was 900 from day 1: the examples of
        // days 5 and 15 happened before anyone knew, so they keep what they saw.
        let backfilled = users + [Versioned(id: 1, eventTime: 1 * d, writtenAt: 20 * d, value: Self.user(1, budget: 900))]
        let again = try PointInTimeJoin.build(TrainingSetDefinition(from: 0, to: 20 * d, asOf: 25 * d), impressions: impressions,
                                              actions: actions, users: backfilled, listings: listings)
        #expect(budgets(again) == [500, 700])
        // A join that used the written time only to break ties would have taken it.
        let leaky = backfilled.filter { $0.eventTime <= 5 * d }.max { ($0.eventTime, $0.writtenAt) < ($1.eventTime, $1.writtenAt) }!
        #expect(leaky.value.budget == 900)
        // An impression after the backfill was written sees it (it is the latest true value
        // at day 22 only if no later version exists — the day-10 version still wins).
        let later = impressions + [PointInTimeJoin.Impression(eventID: "i9", userID: 1, listingID: 7, time: 22 * d, writtenAt: 22 * d)]
        let withLater = try PointInTimeJoin.build(TrainingSetDefinition(from: 0, to: 30 * d, asOf: 30 * d), impressions: later,
                                                  actions: actions, users: backfilled, listings: listings)
        #expect(budgets(withLater) == [500, 700, 700])
    }

    @Test func nothingIsJoinedFromTheFutureAndTheSetIsReproducible() throws {
        let d = Self.day
        let users = [Versioned(id: 1, eventTime: 3 * d, writtenAt: 3 * d, value: Self.user(1, budget: 500))]
        let listings = [Versioned(id: 7, eventTime: 0, writtenAt: 0, value: Self.listing)]
        let impressions = [1.0, 4.0].enumerated().map { i, day in
            PointInTimeJoin.Impression(eventID: "i\(i)", userID: 1, listingID: 7, time: day * d, writtenAt: day * d)
        }
        let definition = TrainingSetDefinition(from: 0, to: 10 * d, asOf: 10 * d)
        let r = try PointInTimeJoin.build(definition, impressions: impressions, actions: [], users: users, listings: listings)
        #expect(r.dataset.rowCount == 1)
        #expect(r.dropped == 1)
        let a = TrainingSetFile.encode(r.dataset, definition: definition)
        let b = TrainingSetFile.encode(try PointInTimeJoin.build(definition, impressions: impressions.reversed(), actions: [], users: users, listings: listings).dataset,
                                       definition: definition)
        #expect(a == b)
        let (decoded, def) = try TrainingSetFile.decode(a)
        #expect(def == definition)
        #expect(decoded.columns == r.dataset.columns)
        #expect(decoded.days == r.dataset.days)
        #expect(throws: DataError.unreadable(file: "training set", reason: "1 rows claimed but the file is shorter")) {
            try TrainingSetFile.decode(a.prefix(a.count - 3))
        }
    }

    @Test func aMarketThroughTheStoreFilesTrainsOnTheSameRowsAsTheMarket() throws {
        // Every value is known from the start, so the point-in-time set equals the market's own.
        let market = Fixtures.smallMarket
        let start = 1_780_272_000.0
        let users = market.users.map { Versioned(id: $0.id, eventTime: start, writtenAt: start, value: $0) }
        let listings = market.listings.map { Versioned(id: $0.id, eventTime: start, writtenAt: start, value: $0) }
        var impressions: [PointInTimeJoin.Impression] = [], actions: [PointInTimeJoin.Action] = []
        for (i, x) in market.interactions.enumerated() {
            let t = start + Double(x.day) * 86_400 + Double(i % 28_000 * 3)
            impressions.append(.init(eventID: String(format: "i%08d", i), userID: x.userID, listingID: x.listingID, time: t, writtenAt: t))
            if x.event != .impression { actions.append(.init(userID: x.userID, listingID: x.listingID, time: t + 1, writtenAt: t + 1)) }
        }
        let r = try PointInTimeJoin.build(TrainingSetDefinition(from: start, to: start + 1_000 * 86_400, asOf: start + 1_000 * 86_400),
                                          impressions: impressions, actions: actions, users: users, listings: listings)
        let direct = try PairFeatures.build(market)
        #expect(r.dataset.rowCount == direct.rowCount)
        #expect(r.positives == Int(direct.labels.reduce(0, +)))
    }

    /// The join's fast path (flat timelines found by a table of dense ids or by a
    /// dictionary of sparse ones, regions resolved once per version, one column-major
    /// block) gives exactly the rows the definition gives: for each impression, in time
    /// order, the features of the latest user and listing versions true and known then.
    @Test(arguments: [false, true]) func theJoinEqualsTheDefinitionRowForRow(sparseIDs: Bool) throws {
        let d = Self.day
        var seed: UInt64 = sparseIDs ? 7 : 3
        func next(_ n: Int) -> Int { seed = seed &* 6364136223846793005 &+ 1442695040888963407; return Int((seed >> 33) % UInt64(n)) }
        let market = DemoMarket(.init(users: 30, listings: 40, interactions: 10, days: 5, seed: sparseIDs ? 5 : 6)).generate()
        let idOf = { (i: Int) in sparseIDs ? 1_000_003 * (i + 1) : i }
        var users: [Versioned<MarketUser>] = [], listings: [Versioned<MarketListing>] = []
        for (i, u) in market.users.enumerated() {
            for v in 0..<3 {
                var x = u
                x.id = idOf(i); x.budget += Double(v * 50)
                x.preferredRegion = v == 2 ? "Atlantis" : u.preferredRegion   // a region the market does not know
                users.append(Versioned(id: x.id, eventTime: Double(next(20)) * d, writtenAt: Double(next(25)) * d, value: x))
            }
        }
        for (i, l) in market.listings.enumerated() {
            for v in 0..<4 {
                var x = l
                x.id = idOf(i); x.price += Double(v * 10)
                listings.append(Versioned(id: x.id, eventTime: Double(next(20)) * d, writtenAt: Double(next(25)) * d, value: x))
            }
        }
        let impressions = (0..<600).map { k in
            PointInTimeJoin.Impression(eventID: "i\(k)", userID: idOf(next(30)), listingID: idOf(next(40)),
                                       time: Double(next(30 * 86_400)), writtenAt: Double(next(30 * 86_400)))
        }
        let definition = TrainingSetDefinition(from: 2 * d, to: 28 * d, asOf: 26 * d)
        let r = try PointInTimeJoin.build(definition, impressions: impressions, actions: [], users: users, listings: listings)

        func latest<V>(_ versions: [Versioned<V>], _ id: Int, _ t: Double, _ known: Double) -> V? {
            versions.filter { $0.id == id && $0.eventTime <= t && $0.writtenAt <= known }
                .max { ($0.eventTime, $0.writtenAt) < ($1.eventTime, $1.writtenAt) }?.value
        }
        var expected: [[Float]] = [], dropped = 0
        for x in impressions.filter({ $0.time >= definition.from && $0.time < definition.to && $0.writtenAt <= definition.asOf })
            .sorted(by: { ($0.time, $0.eventID) < ($1.time, $1.eventID) }) {
            let known = min(x.time, definition.asOf)
            guard let u = latest(users, x.userID, x.time, known), let l = latest(listings, x.listingID, x.time, known) else { dropped += 1; continue }
            expected.append(PairFeatures.features(user: u, listing: l))
        }
        #expect(r.dropped == dropped && r.dataset.rowCount == expected.count && expected.count > 100)
        for (row, want) in expected.enumerated() {
            let got = r.dataset.columns.map { $0[row] }
            // NaN (an unknown region's commute) equals itself here.
            #expect(zip(got, want).allSatisfy { $0.bitPattern == $1.bitPattern }, "row \(row): \(got) vs \(want)")
        }
    }
}
