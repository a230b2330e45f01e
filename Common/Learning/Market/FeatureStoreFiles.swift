import Foundation

/// A user-facing event the product records. An impression is one listing shown to one
/// user; the others are what the user did with it.
public enum FeedbackEventType: String, Sendable, CaseIterable, Codable {
    case impression, click, save, contract

    /// Click, save and contract make a shown pair a positive example.
    public var isPositive: Bool { self != .impression }
}

/// One row of events.csv.
public struct FeedbackEventRow: Sendable, Equatable {
    public var eventID: String
    public var userID: Int
    public var listingID: Int
    public var type: FeedbackEventType
    /// Seconds since 1970.
    public var eventTime: Double

    public init(eventID: String, userID: Int, listingID: Int, type: FeedbackEventType, eventTime: Double) {
        self.eventID = eventID
        self.userID = userID
        self.listingID = listingID
        self.type = type
        self.eventTime = eventTime
    }
}

/// Whether a listing can still be recommended.
public enum ListingStatus: String, Sendable, Codable, CaseIterable {
    case active, sold
}

/// A value of an entity as it was at `eventTime`, known to the system from `writtenAt`
/// (both seconds since 1970). A feature store keeps every version, so a training
/// example can be given the value it would have seen at its own time.
public struct Versioned<Value: Sendable & Equatable>: Sendable, Equatable {
    public var id: Int
    public var eventTime: Double
    public var writtenAt: Double
    public var value: Value

    public init(id: Int, eventTime: Double, writtenAt: Double, value: Value) {
        self.id = id
        self.eventTime = eventTime
        self.writtenAt = writtenAt
        self.value = value
    }
}

/// A listing with what only the feature store knows of it.
public struct StoredListing: Sendable, Equatable {
    public var listing: MarketListing
    public var status: ListingStatus
    /// Photo paths or URLs, best first as the agent gave them.
    public var photos: [String]

    public init(listing: MarketListing, status: ListingStatus = .active, photos: [String] = []) {
        self.listing = listing
        self.status = status
        self.photos = photos
    }
}

/// A parsed row with where it came from, so a store can report conflicts by line.
public struct ParsedRow<Value: Sendable>: Sendable {
    public var line: Int
    public var value: Value
    /// When the value became true (the row's `updated_at`), seconds since 1970; nil = at ingest.
    public var eventTime: Double?
    /// When the value became known (`written_at`, for imports of history); nil = at ingest.
    public var writtenAt: Double?
}

/// The CSV files `coordinator ingest` reads: users.csv and listings.csv with the market's
/// columns plus optional `updated_at` / `written_at` (and `status`, `photos` for
/// listings), and events.csv with `event_id,user_id,listing_id,type,event_time`.
///
/// Guarantees: a file either parses completely or throws the first bad row's
/// ``DataError`` naming the file, line and column; ids are unique within a file; times
/// are RFC 3339 (`2026-06-01T09:30:00Z`, offsets and fractions allowed) or a date
/// (`2026-06-01`, midnight UTC).
public enum FeatureStoreFiles {
    public static let userColumns = Market.userColumns + ["updated_at", "written_at"]
    public static let listingColumns = Market.listingColumns + ["status", "photos", "updated_at", "written_at"]
    public static let eventColumns = ["event_id", "user_id", "listing_id", "type", "event_time"]

    static func checkHeader(_ t: CSVTable, required: [String], allowed: [String]) throws {
        if t.rowCount == 0 { throw DataError.emptyFile(file: t.file) }
        for c in t.header where !allowed.contains(c) {
            throw DataError.unexpectedColumn(file: t.file, column: c, expected: allowed)
        }
        for c in required { _ = try t.columnIndex(c) }
    }

    /// Reads one table's cells with typed errors naming line and column.
    struct Cells {
        let t: CSVTable
        func column(_ name: String) -> Int? { t.header.firstIndex(of: name) }
        func text(_ r: Int, _ name: String) throws -> String { t.string(row: r, column: try t.columnIndex(name)) }
        func number(_ r: Int, _ name: String, optional: Bool = false, range: ClosedRange<Double>? = nil) throws -> Double? {
            let c = try t.columnIndex(name)
            if t.isMissing(row: r, column: c) {
                if optional { return nil }
                throw DataError.invalidValue(file: t.file, line: t.lineNumbers[r], column: c + 1, columnName: name,
                                             value: "", expected: "a number (the column is required)")
            }
            guard let v = t.number(row: r, column: c), v.isFinite else {
                throw DataError.nonNumericValue(file: t.file, line: t.lineNumbers[r], column: c + 1, columnName: name,
                                                value: t.string(row: r, column: c))
            }
            if let range, !range.contains(v) {
                throw DataError.invalidValue(file: t.file, line: t.lineNumbers[r], column: c + 1, columnName: name,
                                             value: t.string(row: r, column: c), expected: "a number from \(range.lowerBound) to \(range.upperBound)")
            }
            return v
        }
        func int(_ r: Int, _ name: String, range: ClosedRange<Int>) throws -> Int {
            let v = try number(r, name)!
            let c = try t.columnIndex(name)
            guard v == v.rounded(), v >= Double(range.lowerBound), v <= Double(range.upperBound) else {
                throw DataError.invalidValue(file: t.file, line: t.lineNumbers[r], column: c + 1, columnName: name,
                                             value: t.string(row: r, column: c), expected: "a whole number from \(range.lowerBound) to \(range.upperBound)")
            }
            return Int(v)
        }
        func flag(_ r: Int, _ name: String) throws -> Bool {
            let c = try t.columnIndex(name)
            switch t.string(row: r, column: c).lowercased() {
            case "1", "true": return true
            case "0", "false": return false
            case let v:
                throw DataError.invalidValue(file: t.file, line: t.lineNumbers[r], column: c + 1, columnName: name, value: v, expected: "0 or 1")
            }
        }
        func time(_ r: Int, _ name: String) throws -> Double? {
            guard let c = column(name), !t.isMissing(row: r, column: c) else { return nil }
            let text = t.string(row: r, column: c)
            guard let v = Timestamp.parse(text) else {
                throw DataError.invalidValue(file: t.file, line: t.lineNumbers[r], column: c + 1, columnName: name, value: text,
                                             expected: "an RFC 3339 time such as 2026-06-01T09:30:00Z, or a date such as 2026-06-01")
            }
            return v
        }
        func region(_ r: Int, _ name: String) throws -> String {
            let c = try t.columnIndex(name)
            let v = t.string(row: r, column: c)
            guard DemoMarket.region(named: v) != nil else {
                throw DataError.invalidValue(file: t.file, line: t.lineNumbers[r], column: c + 1, columnName: name, value: v,
                                             expected: "one of the regions " + DemoMarket.regions.map(\.name).joined(separator: ", "))
            }
            return v
        }
        func uniqueIDs(_ name: String, _ ids: [String]) throws {
            var seen: [String: Int] = [:]
            for (r, id) in ids.enumerated() {
                if let first = seen[id] {
                    throw DataError.duplicateID(file: t.file, line: t.lineNumbers[r], column: name, value: id, firstLine: first)
                }
                seen[id] = t.lineNumbers[r]
            }
        }
        func checkOrder(_ r: Int, eventTime: Double?, writtenAt: Double?) throws {
            if let e = eventTime, let w = writtenAt, w < e, let c = column("written_at") {
                throw DataError.invalidValue(file: t.file, line: t.lineNumbers[r], column: c + 1, columnName: "written_at",
                                             value: t.string(row: r, column: c), expected: "a time not before updated_at (a value cannot be known before it is true)")
            }
        }
    }

    public static func users(_ t: CSVTable) throws -> [ParsedRow<MarketUser>] {
        try checkHeader(t, required: Market.userColumns, allowed: userColumns)
        let x = Cells(t: t)
        var out: [ParsedRow<MarketUser>] = []
        out.reserveCapacity(t.rowCount)
        for r in 0..<t.rowCount {
            let u = MarketUser(id: try x.int(r, "id", range: 1...Int(Int32.max)), age: try x.int(r, "age", range: 16...120),
                               income: try x.number(r, "income", range: 0...1e9)!, householdSize: try x.int(r, "household_size", range: 1...20),
                               hasChildren: try x.flag(r, "has_children"), maxCommuteMin: try x.number(r, "max_commute_min", range: 0...1440)!,
                               riskAppetite: try x.number(r, "risk_appetite", range: 0...1)!,
                               investmentHorizonYears: try x.int(r, "investment_horizon_years", range: 0...100),
                               prefersNewBuild: try x.flag(r, "prefers_new_build"), preferredRegion: try x.region(r, "preferred_region"),
                               budget: try x.number(r, "budget", range: 1...1e9)!)
            let e = try x.time(r, "updated_at"), w = try x.time(r, "written_at")
            try x.checkOrder(r, eventTime: e, writtenAt: w)
            out.append(ParsedRow(line: t.lineNumbers[r], value: u, eventTime: e, writtenAt: w))
        }
        try x.uniqueIDs("id", out.map { String($0.value.id) })
        return out
    }

    public static func listings(_ t: CSVTable) throws -> [ParsedRow<StoredListing>] {
        try checkHeader(t, required: Market.listingColumns, allowed: listingColumns)
        let x = Cells(t: t)
        var out: [ParsedRow<StoredListing>] = []
        out.reserveCapacity(t.rowCount)
        for r in 0..<t.rowCount {
            let l = MarketListing(id: try x.int(r, "id", range: 1...Int(Int32.max)), price: try x.number(r, "price", range: 1...1e9)!,
                                  areaM2: try x.number(r, "area_m2", range: 1...10_000)!, rooms: try x.int(r, "rooms", range: 0...50),
                                  floor: try x.int(r, "floor", range: -5...200), buildingAge: try x.int(r, "building_age", range: 0...300),
                                  region: try x.region(r, "region"), subwayDistanceM: try x.number(r, "subway_distance_m", optional: true, range: 0...100_000),
                                  schoolScore: try x.number(r, "school_score", optional: true, range: 0...100),
                                  expectedYield: try x.number(r, "expected_yield", range: -100...100)!, newBuild: try x.flag(r, "new_build"),
                                  lat: try x.number(r, "lat", range: -90...90)!, lon: try x.number(r, "lon", range: -180...180)!)
            var status = ListingStatus.active
            if let c = x.column("status"), !t.isMissing(row: r, column: c) {
                let v = t.string(row: r, column: c)
                guard let s = ListingStatus(rawValue: v) else {
                    throw DataError.invalidValue(file: t.file, line: t.lineNumbers[r], column: c + 1, columnName: "status", value: v, expected: "active or sold")
                }
                status = s
            }
            var photos: [String] = []
            if let c = x.column("photos"), !t.isMissing(row: r, column: c) {
                photos = t.string(row: r, column: c).split(separator: ";").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
            }
            let e = try x.time(r, "updated_at"), w = try x.time(r, "written_at")
            try x.checkOrder(r, eventTime: e, writtenAt: w)
            out.append(ParsedRow(line: t.lineNumbers[r], value: StoredListing(listing: l, status: status, photos: photos), eventTime: e, writtenAt: w))
        }
        try x.uniqueIDs("id", out.map { String($0.value.listing.id) })
        return out
    }

    public static func events(_ t: CSVTable) throws -> [ParsedRow<FeedbackEventRow>] {
        try checkHeader(t, required: eventColumns, allowed: eventColumns + ["written_at"])
        let x = Cells(t: t)
        var out: [ParsedRow<FeedbackEventRow>] = []
        out.reserveCapacity(t.rowCount)
        let typeColumn = try t.columnIndex("type"), idColumn = try t.columnIndex("event_id")
        for r in 0..<t.rowCount {
            let id = t.string(row: r, column: idColumn)
            guard !id.isEmpty, id.utf8.count <= 128 else {
                throw DataError.invalidValue(file: t.file, line: t.lineNumbers[r], column: idColumn + 1, columnName: "event_id", value: id,
                                             expected: "a non-empty id of at most 128 bytes")
            }
            let typeText = t.string(row: r, column: typeColumn)
            guard let type = FeedbackEventType(rawValue: typeText) else {
                throw DataError.invalidValue(file: t.file, line: t.lineNumbers[r], column: typeColumn + 1, columnName: "type", value: typeText,
                                             expected: FeedbackEventType.allCases.map(\.rawValue).joined(separator: ", "))
            }
            guard let time = try x.time(r, "event_time") else {
                throw DataError.invalidValue(file: t.file, line: t.lineNumbers[r], column: (x.column("event_time") ?? 0) + 1, columnName: "event_time",
                                             value: "", expected: "an RFC 3339 time (the column is required)")
            }
            let event = FeedbackEventRow(eventID: id, userID: try x.int(r, "user_id", range: 1...Int(Int32.max)),
                                         listingID: try x.int(r, "listing_id", range: 1...Int(Int32.max)), type: type, eventTime: time)
            let w = try x.time(r, "written_at")
            out.append(ParsedRow(line: t.lineNumbers[r], value: event, eventTime: time, writtenAt: w))
        }
        try x.uniqueIDs("event_id", out.map(\.value.eventID))
        return out
    }

    /// Writes a market as the three files `coordinator ingest` reads: `day` d of the
    /// market is the day `start` + d; each interaction becomes an impression and, when
    /// the user went further, a click (and a contract) a second after it. Users' and
    /// listings' values are dated `start` and, being history, marked as known then.
    public static func write(_ market: Market, start: Double, to directory: URL) throws {
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let stamp = Timestamp.format(start)
        try usersFile(market.users, stamp: stamp).write(to: directory.appendingPathComponent("users.csv"))
        try listingsFile(market.listings, stamp: stamp).write(to: directory.appendingPathComponent("listings.csv"))
        try eventsFile(market.interactions, start: start).write(to: directory.appendingPathComponent("events.csv"))
    }

    private static func f(_ v: Double, _ digits: Int) -> String { String(format: "%.\(digits)f", v) }

    /// users.csv; `stamp` fills `updated_at` and `written_at` (empty: known from ingest).
    public static func usersFile(_ users: [MarketUser], stamp: String) -> CSVWriter {
        var u = CSVWriter(header: userColumns)
        for x in users {
            u.writeRow([String(x.id), String(x.age), f(x.income, 1), String(x.householdSize), x.hasChildren ? "1" : "0",
                        f(x.maxCommuteMin, 0), f(x.riskAppetite, 3), String(x.investmentHorizonYears),
                        x.prefersNewBuild ? "1" : "0", CSVWriter.escape(x.preferredRegion), f(x.budget, 0), stamp, stamp])
        }
        return u
    }

    /// listings.csv, every listing active with two photo paths (`photos/ID-1.jpg;photos/ID-2.jpg`,
    /// relative to the coordinator's photos directory); `stamp` as in ``usersFile(_:stamp:)``.
    public static func listingsFile(_ listings: [MarketListing], stamp: String) -> CSVWriter {
        var l = CSVWriter(header: listingColumns)
        for x in listings {
            l.writeRow([String(x.id), f(x.price, 0), f(x.areaM2, 1), String(x.rooms), String(x.floor), String(x.buildingAge),
                        CSVWriter.escape(x.region), x.subwayDistanceM.map { f($0, 0) } ?? "NA",
                        x.schoolScore.map { f($0, 1) } ?? "NA", f(x.expectedYield, 2), x.newBuild ? "1" : "0",
                        f(x.lat, 5), f(x.lon, 5), "active", "photos/\(x.id)-1.jpg;photos/\(x.id)-2.jpg", stamp, stamp])
        }
        return l
    }

    /// events.csv: interaction i on day d is an impression at `start` + d days + 3i s (mod
    /// 28,000, so it stays within its day), a click a second later when the user went
    /// further, and a contract two seconds later when they signed.
    public static func eventsFile(_ interactions: [MarketInteraction], start: Double) -> CSVWriter {
        var e = CSVWriter(header: eventColumns)
        for (i, x) in interactions.enumerated() {
            // Spread a day's impressions 3 s apart so that each click (1 s later) follows its
            // own impression and no other.
            let t = start + Double(x.day) * 86_400 + Double(i % 28_000 * 3)
            e.writeRow(["i\(i)", String(x.userID), String(x.listingID), "impression", Timestamp.format(t)])
            if x.event != .impression { e.writeRow(["c\(i)", String(x.userID), String(x.listingID), "click", Timestamp.format(t + 1)]) }
            if x.event == .contract { e.writeRow(["k\(i)", String(x.userID), String(x.listingID), "contract", Timestamp.format(t + 2)]) }
        }
        return e
    }
}

/// RFC 3339 times without Foundation's formatters (a million events must parse in well
/// under a second, and the result must not depend on the host's locale).
public enum Timestamp {
    /// Seconds since 1970 for `2026-06-01`, `2026-06-01T09:30:00Z`,
    /// `2026-06-01T09:30:00.250+09:00` (a space may replace the T); nil if malformed.
    public static func parse(_ text: String) -> Double? {
        let b = Array(text.utf8)
        func digits(_ at: Int, _ n: Int) -> Int? {
            guard at + n <= b.count else { return nil }
            var v = 0
            for i in at..<at + n {
                guard b[i] >= 48 && b[i] <= 57 else { return nil }
                v = v * 10 + Int(b[i] - 48)
            }
            return v
        }
        guard b.count >= 10, let y = digits(0, 4), b[4] == 45, let m = digits(5, 2), b[7] == 45, let d = digits(8, 2),
              (1...12).contains(m), d >= 1, d <= daysIn(month: m, year: y) else { return nil }
        var seconds = Double(daysFromCivil(y, m, d)) * 86_400
        if b.count == 10 { return seconds }
        guard b.count >= 20, b[10] == 84 || b[10] == 116 || b[10] == 32, let hh = digits(11, 2), b[13] == 58, let mm = digits(14, 2),
              b[16] == 58, let ss = digits(17, 2), hh < 24, mm < 60, ss < 61 else { return nil }
        seconds += Double(hh * 3600 + mm * 60 + ss)
        var at = 19
        if b[at] == 46 {
            at += 1
            var scale = 0.1
            let start = at
            while at < b.count, b[at] >= 48, b[at] <= 57 { seconds += Double(b[at] - 48) * scale; scale /= 10; at += 1 }
            if at == start { return nil }
        }
        guard at < b.count else { return nil }
        if b[at] == 90 || b[at] == 122 { return at + 1 == b.count ? seconds : nil }
        guard b[at] == 43 || b[at] == 45, at + 6 == b.count, let oh = digits(at + 1, 2), b[at + 3] == 58, let om = digits(at + 4, 2),
              oh < 24, om < 60 else { return nil }
        let offset = Double(oh * 3600 + om * 60)
        return b[at] == 43 ? seconds - offset : seconds + offset
    }

    /// `2026-06-01T09:30:00Z` (whole seconds, UTC).
    public static func format(_ seconds: Double) -> String {
        let s = Int(seconds.rounded(.down))
        let days = s >= 0 ? s / 86_400 : (s - 86_399) / 86_400
        let rest = s - days * 86_400
        let (y, m, d) = civil(fromDays: days)
        return String(format: "%04d-%02d-%02dT%02d:%02d:%02dZ", y, m, d, rest / 3600, rest % 3600 / 60, rest % 60)
    }

    static func daysIn(month m: Int, year y: Int) -> Int {
        switch m {
        case 2: return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0 ? 29 : 28
        case 4, 6, 9, 11: return 30
        default: return 31
        }
    }

    // Days since 1970-01-01 of a proleptic Gregorian date (the well-known era-based method).
    static func daysFromCivil(_ year: Int, _ month: Int, _ day: Int) -> Int {
        let y = month <= 2 ? year - 1 : year
        let era = (y >= 0 ? y : y - 399) / 400
        let yoe = y - era * 400
        let mp = (month + 9) % 12
        let doy = (153 * mp + 2) / 5 + day - 1
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy
        return era * 146_097 + doe - 719_468
    }

    static func civil(fromDays z0: Int) -> (Int, Int, Int) {
        let z = z0 + 719_468
        let era = (z >= 0 ? z : z - 146_096) / 146_097
        let doe = z - era * 146_097
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100)
        let mp = (5 * doy + 2) / 153
        let d = doy - (153 * mp + 2) / 5 + 1
        let m = mp < 10 ? mp + 3 : mp - 9
        return (yoe + era * 400 + (m <= 2 ? 1 : 0), m, d)
    }
}
