import Foundation

/// A user of the matching product, as exported to users.csv.
public struct MarketUser: Sendable, Equatable, Codable {
    public var id: Int
    public var age: Int
    /// Yearly income in million KRW.
    public var income: Double
    public var householdSize: Int
    public var hasChildren: Bool
    public var maxCommuteMin: Double
    /// 0 (avoids risk) … 1 (seeks yield).
    public var riskAppetite: Double
    public var investmentHorizonYears: Int
    public var prefersNewBuild: Bool
    public var preferredRegion: String
    /// Purchase budget in million KRW.
    public var budget: Double

    public init(id: Int, age: Int, income: Double, householdSize: Int, hasChildren: Bool, maxCommuteMin: Double, riskAppetite: Double,
                investmentHorizonYears: Int, prefersNewBuild: Bool, preferredRegion: String, budget: Double) {
        self.id = id; self.age = age; self.income = income; self.householdSize = householdSize; self.hasChildren = hasChildren
        self.maxCommuteMin = maxCommuteMin; self.riskAppetite = riskAppetite; self.investmentHorizonYears = investmentHorizonYears
        self.prefersNewBuild = prefersNewBuild; self.preferredRegion = preferredRegion; self.budget = budget
    }
}

/// A listing, as exported to listings.csv. Optional fields are missing (NA) in the
/// file when unknown.
public struct MarketListing: Sendable, Equatable, Codable {
    public var id: Int
    /// Asking price in million KRW.
    public var price: Double
    public var areaM2: Double
    public var rooms: Int
    public var floor: Int
    public var buildingAge: Int
    public var region: String
    public var subwayDistanceM: Double?
    public var schoolScore: Double?
    /// Expected yearly rental yield in percent.
    public var expectedYield: Double
    public var newBuild: Bool
    public var lat: Double
    public var lon: Double

    public init(id: Int, price: Double, areaM2: Double, rooms: Int, floor: Int, buildingAge: Int, region: String, subwayDistanceM: Double?,
                schoolScore: Double?, expectedYield: Double, newBuild: Bool, lat: Double, lon: Double) {
        self.id = id; self.price = price; self.areaM2 = areaM2; self.rooms = rooms; self.floor = floor; self.buildingAge = buildingAge
        self.region = region; self.subwayDistanceM = subwayDistanceM; self.schoolScore = schoolScore; self.expectedYield = expectedYield
        self.newBuild = newBuild; self.lat = lat; self.lon = lon
    }
}

/// How far a shown pair went in the funnel. Each interactions.csv row is one listing
/// shown to one user on one day, carrying the furthest stage reached.
public enum InteractionEvent: String, Sendable, CaseIterable {
    case impression, click, contract
}

public struct MarketInteraction: Sendable, Equatable {
    public var userID: Int
    public var listingID: Int
    public var day: Int
    public var event: InteractionEvent
}

/// A region of the (Seoul-like) demo city: its centre doubles as the workplace of users
/// who prefer it, which is what commute estimates are measured against.
public struct MarketRegion: Sendable, Equatable {
    public var name: String
    public var lat: Double
    public var lon: Double
    /// Relative price level (1 = city average).
    public var priceLevel: Double
    public var schoolMean: Double
}

/// The three tables of a market (demo or real) with loading and writing as CSV.
public struct Market: Sendable {
    public var users: [MarketUser]
    public var listings: [MarketListing]
    public var interactions: [MarketInteraction]

    public init(users: [MarketUser], listings: [MarketListing], interactions: [MarketInteraction]) {
        self.users = users
        self.listings = listings
        self.interactions = interactions
    }

    public static let userColumns = ["id", "age", "income", "household_size", "has_children", "max_commute_min",
                                     "risk_appetite", "investment_horizon_years", "prefers_new_build",
                                     "preferred_region", "budget"]
    public static let listingColumns = ["id", "price", "area_m2", "rooms", "floor", "building_age", "region",
                                        "subway_distance_m", "school_score", "expected_yield", "new_build", "lat", "lon"]
    public static let interactionColumns = ["user_id", "listing_id", "day", "event"]

    /// Writes users.csv, listings.csv and interactions.csv into `directory` (created if
    /// needed). Each file is written atomically.
    public func write(to directory: URL) throws {
        do {
            try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        } catch {
            throw DataError.unreadable(file: directory.path, reason: "cannot create directory: \(error.localizedDescription)")
        }
        func f(_ v: Double, _ digits: Int) -> String { String(format: "%.\(digits)f", v) }
        var u = CSVWriter(header: Self.userColumns)
        for x in users {
            u.writeRow([String(x.id), String(x.age), f(x.income, 1), String(x.householdSize), x.hasChildren ? "1" : "0",
                        f(x.maxCommuteMin, 0), f(x.riskAppetite, 3), String(x.investmentHorizonYears),
                        x.prefersNewBuild ? "1" : "0", CSVWriter.escape(x.preferredRegion), f(x.budget, 0)])
        }
        try u.write(to: directory.appendingPathComponent("users.csv"))
        var l = CSVWriter(header: Self.listingColumns)
        for x in listings {
            l.writeRow([String(x.id), f(x.price, 0), f(x.areaM2, 1), String(x.rooms), String(x.floor), String(x.buildingAge),
                        CSVWriter.escape(x.region), x.subwayDistanceM.map { f($0, 0) } ?? "NA",
                        x.schoolScore.map { f($0, 1) } ?? "NA", f(x.expectedYield, 2), x.newBuild ? "1" : "0",
                        f(x.lat, 5), f(x.lon, 5)])
        }
        try l.write(to: directory.appendingPathComponent("listings.csv"))
        var i = CSVWriter(header: Self.interactionColumns)
        for x in interactions {
            i.writeRow([String(x.userID), String(x.listingID), String(x.day), x.event.rawValue])
        }
        try i.write(to: directory.appendingPathComponent("interactions.csv"))
    }

    /// Reads the three files from `directory`, checking headers, types and that every
    /// interaction refers to a known user and listing. Nothing is returned on error.
    public static func load(from directory: URL) throws -> Market {
        let usersTable = try CSVTable(contentsOf: directory.appendingPathComponent("users.csv"))
        let listingsTable = try CSVTable(contentsOf: directory.appendingPathComponent("listings.csv"))
        let interactionsTable = try CSVTable(contentsOf: directory.appendingPathComponent("interactions.csv"))
        for (t, cols) in [(usersTable, userColumns), (listingsTable, listingColumns), (interactionsTable, interactionColumns)] {
            if t.rowCount == 0 { throw DataError.emptyFile(file: t.file) }
            for c in cols { _ = try t.columnIndex(c) }
        }

        func ints(_ t: CSVTable, _ name: String) throws -> [Int] { try t.intColumn(t.columnIndex(name)) }
        func doubles(_ t: CSVTable, _ name: String, optional: Bool = false) throws -> [Double?] {
            let c = try t.columnIndex(name)
            return try (0..<t.rowCount).map { r in
                guard let v = t.number(row: r, column: c), optional || !v.isNaN else {
                    throw DataError.nonNumericValue(file: t.file, line: t.lineNumbers[r], column: c + 1,
                                                    columnName: name, value: t.string(row: r, column: c))
                }
                return v.isNaN ? nil : v
            }
        }
        func strings(_ t: CSVTable, _ name: String) throws -> [String] {
            let c = try t.columnIndex(name)
            return (0..<t.rowCount).map { t.string(row: $0, column: c) }
        }

        let ut = usersTable
        let uid = try ints(ut, "id"), age = try ints(ut, "age"), income = try doubles(ut, "income")
        let hh = try ints(ut, "household_size"), kids = try ints(ut, "has_children")
        let commute = try doubles(ut, "max_commute_min"), risk = try doubles(ut, "risk_appetite")
        let horizon = try ints(ut, "investment_horizon_years"), pnb = try ints(ut, "prefers_new_build")
        let region = try strings(ut, "preferred_region"), budget = try doubles(ut, "budget")
        var users: [MarketUser] = []
        users.reserveCapacity(ut.rowCount)
        for r in 0..<ut.rowCount {
            users.append(MarketUser(id: uid[r], age: age[r], income: income[r]!, householdSize: hh[r], hasChildren: kids[r] != 0,
                                    maxCommuteMin: commute[r]!, riskAppetite: risk[r]!, investmentHorizonYears: horizon[r],
                                    prefersNewBuild: pnb[r] != 0, preferredRegion: region[r], budget: budget[r]!))
        }

        let lt = listingsTable
        let lid = try ints(lt, "id"), price = try doubles(lt, "price"), area = try doubles(lt, "area_m2")
        let rooms = try ints(lt, "rooms"), floor = try ints(lt, "floor"), bage = try ints(lt, "building_age")
        let lregion = try strings(lt, "region"), subway = try doubles(lt, "subway_distance_m", optional: true)
        let school = try doubles(lt, "school_score", optional: true), yld = try doubles(lt, "expected_yield")
        let nb = try ints(lt, "new_build"), lat = try doubles(lt, "lat"), lon = try doubles(lt, "lon")
        var listings: [MarketListing] = []
        listings.reserveCapacity(lt.rowCount)
        for r in 0..<lt.rowCount {
            listings.append(MarketListing(id: lid[r], price: price[r]!, areaM2: area[r]!, rooms: rooms[r], floor: floor[r],
                                          buildingAge: bage[r], region: lregion[r], subwayDistanceM: subway[r],
                                          schoolScore: school[r], expectedYield: yld[r]!, newBuild: nb[r] != 0,
                                          lat: lat[r]!, lon: lon[r]!))
        }

        let it = interactionsTable
        let iu = try ints(it, "user_id"), il = try ints(it, "listing_id"), day = try ints(it, "day")
        let eventColumn = try it.columnIndex("event")
        let knownUsers = Set(uid), knownListings = Set(lid)
        var interactions: [MarketInteraction] = []
        interactions.reserveCapacity(it.rowCount)
        for r in 0..<it.rowCount {
            let line = it.lineNumbers[r]
            guard knownUsers.contains(iu[r]) else {
                throw DataError.unknownReference(file: it.file, line: line, column: "user_id", value: String(iu[r]))
            }
            guard knownListings.contains(il[r]) else {
                throw DataError.unknownReference(file: it.file, line: line, column: "listing_id", value: String(il[r]))
            }
            let text = it.string(row: r, column: eventColumn)
            guard let event = InteractionEvent(rawValue: text) else {
                throw DataError.invalidValue(file: it.file, line: line, column: eventColumn + 1, columnName: "event",
                                             value: text, expected: "impression, click or contract")
            }
            interactions.append(MarketInteraction(userID: iu[r], listingID: il[r], day: day[r], event: event))
        }
        return Market(users: users, listings: listings, interactions: interactions)
    }
}
