import Foundation
import Testing
@testable import Learning

@Suite struct DemoMarketTests {
    @Test func sameSeedSameFilesDifferentSeedDifferentFiles() throws {
        let a = Fixtures.temporaryDirectory(), b = Fixtures.temporaryDirectory(), c = Fixtures.temporaryDirectory()
        let config = DemoMarket.Configuration(users: 100, listings: 200, interactions: 3000, seed: 5)
        try DemoMarket(config).generate().write(to: a)
        try DemoMarket(config).generate().write(to: b)
        var other = config
        other.seed = 6
        try DemoMarket(other).generate().write(to: c)
        for name in ["users.csv", "listings.csv", "interactions.csv"] {
            let x = try Data(contentsOf: a.appendingPathComponent(name))
            #expect(x == (try Data(contentsOf: b.appendingPathComponent(name))))
            #expect(x != (try Data(contentsOf: c.appendingPathComponent(name))))
        }
    }

    @Test func filesHaveTheDocumentedColumnsAndLoadBack() throws {
        let dir = Fixtures.temporaryDirectory()
        let market = Fixtures.smallMarket
        try market.write(to: dir)
        let header = try String(contentsOf: dir.appendingPathComponent("users.csv"), encoding: .utf8).split(separator: "\n")[0]
        #expect(header == "id,age,income,household_size,has_children,max_commute_min,risk_appetite,investment_horizon_years,prefers_new_build,preferred_region,budget")
        let loaded = try Market.load(from: dir)
        #expect(loaded.users.count == market.users.count)
        #expect(loaded.listings.count == market.listings.count)
        #expect(loaded.interactions == market.interactions)
        #expect(loaded.listings.contains { $0.schoolScore == nil })
        // Features from the loaded files equal those from memory (files keep enough precision).
        let fromFiles = try PairFeatures.build(loaded), fromMemory = try PairFeatures.build(market)
        #expect(fromFiles.labels == fromMemory.labels)
        let idx = PairFeatures.schema.index(of: "region_match")!
        #expect(fromFiles.columns[idx] == fromMemory.columns[idx])
    }

    @Test func positiveRateAndTimeRangeAsDocumented() throws {
        let market = Fixtures.smallMarket
        let data = try PairFeatures.build(market)
        #expect(data.positiveRate > 0.05 && data.positiveRate < 0.10)
        #expect(market.interactions.map(\.day).max()! <= 179)
        #expect(market.interactions.contains { $0.event == .contract })
        #expect(zip(market.interactions, market.interactions.dropFirst()).allSatisfy { $0.day <= $1.day })
    }

    @Test func driftShiftsDistributionsAfterTheDay() throws {
        let config = DemoMarket.Configuration(users: 400, listings: 800, interactions: 20_000, seed: 3, driftAfterDay: 120)
        let market = DemoMarket(config).generate()
        let data = try PairFeatures.build(market)
        let price = data.columns[PairFeatures.schema.index(of: "price")!]
        let risk = data.columns[PairFeatures.schema.index(of: "risk_appetite")!]
        var before = (0.0, 0.0, 0), after = (0.0, 0.0, 0)
        for (r, d) in data.days!.enumerated() {
            if d <= 120 { before.0 += Double(price[r]); before.1 += Double(risk[r]); before.2 += 1 }
            else { after.0 += Double(price[r]); after.1 += Double(risk[r]); after.2 += 1 }
        }
        #expect(after.1 / Double(after.2) > before.1 / Double(before.2) + 0.05)
        #expect(after.0 / Double(after.2) > before.0 / Double(before.2))
    }

    @Test func brokenReferenceIsReportedWithLine() throws {
        let dir = Fixtures.temporaryDirectory()
        var market = DemoMarket(.init(users: 20, listings: 30, interactions: 50, seed: 1)).generate()
        market.interactions[3].userID = 999
        try market.write(to: dir)
        #expect(throws: DataError.unknownReference(file: dir.appendingPathComponent("interactions.csv").path, line: 5,
                                                   column: "user_id", value: "999")) {
            try Market.load(from: dir)
        }
    }

    @Test func pairFeaturesEncodeFit() {
        let user = MarketUser(id: 1, age: 40, income: 80, householdSize: 4, hasChildren: true, maxCommuteMin: 40,
                              riskAppetite: 0.5, investmentHorizonYears: 10, prefersNewBuild: true,
                              preferredRegion: "Mapo", budget: 800)
        let region = DemoMarket.region(named: "Mapo")!
        let listing = MarketListing(id: 2, price: 600, areaM2: 100, rooms: 3, floor: 5, buildingAge: 1, region: "Mapo",
                                    subwayDistanceM: 400, schoolScore: nil, expectedYield: 3, newBuild: true,
                                    lat: region.lat, lon: region.lon)
        let f = PairFeatures.features(user: user, listing: listing)
        func v(_ name: String) -> Float { f[PairFeatures.schema.index(of: name)!] }
        #expect(v("price_to_budget") == 0.75)
        #expect(v("region_match") == 1)
        #expect(v("new_build_match") == 1)
        #expect(v("area_per_person") == 25)
        #expect(v("school_score").isNaN && v("school_x_children").isNaN)
        #expect(abs(v("commute_min_est") - 13) < 0.01)  // 8 min + 0 km + 400 m / 80 m/min
        #expect(v("region") == Float(DemoMarket.regions.firstIndex { $0.name == "Mapo" }!))
    }

    /// The recommender's batch path (features written per user into one block, the packed
    /// forest, the top K kept while scanning) must give exactly what featurizing and scoring
    /// each pair on its own and sorting them all gives — ids, scores, order and the
    /// candidate count — including unknown regions and missing values.
    @Test func recommenderMatchesScoringEachPairAndSortingThemAll() throws {
        let market = Fixtures.smallMarket
        var p = BoostingParameters()
        p.numIterations = 20
        p.numLeaves = 15
        let model = try GBDTTrainer.train(PairFeatures.build(market), parameters: p)
        var listings = Array(market.listings.prefix(300))
        listings[3].region = "Atlantis"
        listings[4].region = "Atlantis"
        listings[5].schoolScore = nil
        listings[5].subwayDistanceM = nil
        var users = Array(market.users.prefix(40))
        users[0].preferredRegion = "Atlantis"
        users[0].budget = 1e9
        let k = 7
        let recommender = Recommender(model: .gradientBoosted(model), listings: Array(listings.reversed()), k: k, reasonCount: 2)
        // The path under test: listings and users settled once, pairs by QuickScorer.
        #expect(!recommender.listingMasks.isEmpty)
        for user in users {
            let got = recommender.recommend(user)
            let candidates = listings.sorted { $0.id < $1.id }.filter { recommender.filter.admits($0, for: user) }
            var expected: [(score: Double, id: Int)] = []
            for l in candidates {
                let score: Double = model.predictProbability(row: PairFeatures.features(user: user, listing: l))
                expected.append((score, l.id))
            }
            expected.sort { a, b in a.score > b.score || (a.score == b.score && a.id < b.id) }
            let top = Array(expected.prefix(k))
            #expect(got.candidates == candidates.count)
            #expect(got.items.map { $0.listingID } == top.map { $0.id })
            #expect(got.items.map { $0.score } == top.map { $0.score })
            #expect(got.items.map { $0.rank } == Array(1..<got.items.count + 1))
            #expect(got.items.allSatisfy { $0.reasons.count <= 2 })
        }
    }

    @Test func timeSplitKeepsOrder() throws {
        let data = try PairFeatures.build(Fixtures.smallMarket)
        let split = try TimeSplit(data, trainFraction: 0.7, validFraction: 0.1)
        let valid = try #require(split.valid)
        #expect(split.train.days!.max()! < valid.days!.min()!)
        #expect(valid.days!.max()! < split.test.days!.min()!)
        #expect(split.train.rowCount + valid.rowCount + split.test.rowCount == data.rowCount)
        let share = Double(split.train.rowCount) / Double(data.rowCount)
        #expect(share > 0.65 && share < 0.75)
    }
}

@Suite struct MarketFileErrorTests {
    @Test func unknownEventIsReportedWithLineAndExpectedValues() throws {
        let dir = Fixtures.temporaryDirectory()
        try DemoMarket(.init(users: 5, listings: 5, interactions: 10, seed: 1)).generate().write(to: dir)
        let file = dir.appendingPathComponent("interactions.csv")
        var lines = try String(contentsOf: file, encoding: .utf8).split(separator: "\n").map(String.init)
        lines[2] = lines[2].replacingOccurrences(of: "impression", with: "view").replacingOccurrences(of: "click", with: "view")
            .replacingOccurrences(of: "contract", with: "view")
        try (lines.joined(separator: "\n") + "\n").write(to: file, atomically: true, encoding: .utf8)
        #expect(throws: DataError.invalidValue(file: file.path, line: 3, column: 4, columnName: "event", value: "view",
                                               expected: "impression, click or contract")) {
            try Market.load(from: dir)
        }
    }

    @Test func missingFileIsUnreadable() {
        #expect {
            try Market.load(from: URL(fileURLWithPath: "/nonexistent-market"))
        } throws: { error in
            if case .unreadable = error as? DataError { return true }
            return false
        }
    }
}
