import Foundation

/// What a training set is made of, recorded with it so that it can be built again.
public struct TrainingSetDefinition: Sendable, Equatable, Codable {
    /// Impressions with `from` ≤ event time < `to` become examples (seconds since 1970).
    public var from: Double
    public var to: Double
    /// A click, save or contract for the same pair within this many seconds after the
    /// impression makes it a positive example.
    public var labelWindowSeconds: Double
    /// Nothing written after this instant is seen (the moment the set was built).
    public var asOf: Double

    public init(from: Double, to: Double, labelWindowSeconds: Double = 86_400, asOf: Double) {
        self.from = from
        self.to = to
        self.labelWindowSeconds = labelWindowSeconds
        self.asOf = asOf
    }
}

/// Joins impressions with the user and listing values each would have seen at its own
/// time: the latest version whose event time is ≤ the impression's time **and** that
/// was written by then (and by `asOf`). Using the written time only to break ties would
/// let a later backfill — an old event time written today — leak into examples that were
/// built, or served, before it existed.
///
/// Guarantees: the same inputs give the same data set, row for row (examples ordered by
/// time, then event id); an impression whose user or listing has no visible version is
/// dropped and counted, never joined with a value from its future.
public enum PointInTimeJoin {
    public struct Impression: Sendable, Equatable {
        public var eventID: String
        public var userID: Int
        public var listingID: Int
        public var time: Double
        public var writtenAt: Double
        public init(eventID: String, userID: Int, listingID: Int, time: Double, writtenAt: Double) {
            self.eventID = eventID
            self.userID = userID
            self.listingID = listingID
            self.time = time
            self.writtenAt = writtenAt
        }
    }

    /// A positive action on a pair (click, save, contract) at `time`, written at `writtenAt`;
    /// it labels the latest impression of the pair at or before it, if within the window.
    public struct Action: Sendable, Equatable {
        public var userID: Int
        public var listingID: Int
        public var time: Double
        public var writtenAt: Double
        public init(userID: Int, listingID: Int, time: Double, writtenAt: Double) {
            self.userID = userID
            self.listingID = listingID
            self.time = time
            self.writtenAt = writtenAt
        }
    }

    public struct Result: Sendable {
        public var dataset: Dataset
        public var positives: Int
        /// Impressions without a visible user or listing version.
        public var dropped: Int
        /// The impression time of each row (seconds since 1970).
        public var times: [Double]
    }

    /// Every version of every id in flat arrays sorted by (id, event time, written time);
    /// an id's versions are found by a table indexed by id when the ids are dense (ids
    /// that count up, the usual case), else by a dictionary. A join makes two lookups per
    /// impression, so this is its hottest path.
    struct Timeline<Value: Sendable & Equatable> {
        let values: [Value]
        let eventTimes: [Double]
        let writtenAts: [Double]
        /// `starts[id]..<starts[id + 1]` when dense.
        private let starts: [Int32]
        private let ranges: [Int: Range<Int>]

        init(_ versions: [Versioned<Value>]) {
            let order = versions.indices.sorted { a, b in
                let x = versions[a], y = versions[b]
                return (x.id, x.eventTime, x.writtenAt) < (y.id, y.eventTime, y.writtenAt)
            }
            values = order.map { versions[$0].value }
            eventTimes = order.map { versions[$0].eventTime }
            writtenAts = order.map { versions[$0].writtenAt }
            let ids = order.map { versions[$0].id }
            let maxID = ids.last ?? -1
            if let minID = ids.first, minID >= 0, maxID < 4 * ids.count + 1_024, ids.count < Int(Int32.max) {
                var starts = [Int32](repeating: 0, count: maxID + 2)
                for id in ids { starts[id + 1] += 1 }
                for i in 1..<starts.count { starts[i] += starts[i - 1] }
                self.starts = starts
                ranges = [:]
            } else {
                var ranges: [Int: Range<Int>] = [:]
                var i = 0
                while i < ids.count {
                    var j = i + 1
                    while j < ids.count && ids[j] == ids[i] { j += 1 }
                    ranges[ids[i]] = i..<j
                    i = j
                }
                self.ranges = ranges
                starts = []
            }
        }

        func versions(of id: Int) -> Range<Int>? {
            if !starts.isEmpty {
                guard id >= 0, id + 1 < starts.count else { return nil }
                let r = Int(starts[id])..<Int(starts[id + 1])
                return r.isEmpty ? nil : r
            }
            return ranges[id]
        }

        /// The position of the latest version of `id` true at `t` and known by `known`.
        func index(_ id: Int, at t: Double, knownBy known: Double) -> Int? {
            guard let range = versions(of: id) else { return nil }
            // Last index with eventTime <= t, then walk back past versions written too late.
            var lo = range.lowerBound, hi = range.upperBound
            while lo < hi {
                let mid = (lo + hi) / 2
                if eventTimes[mid] <= t { lo = mid + 1 } else { hi = mid }
            }
            var i = lo - 1
            while i >= range.lowerBound {
                if writtenAts[i] <= known { return i }
                i -= 1
            }
            return nil
        }

        /// The latest version true at `t` and known by `known`.
        func value(_ id: Int, at t: Double, knownBy known: Double) -> Value? {
            index(id, at: t, knownBy: known).map { values[$0] }
        }
    }

    public static func build(_ definition: TrainingSetDefinition, impressions: [Impression], actions: [Action],
                             users: [Versioned<MarketUser>], listings: [Versioned<MarketListing>]) throws -> Result {
        let userTimeline = Timeline(users), listingTimeline = Timeline(listings)
        // Region of each version as an index into DemoMarket.regions (-1: not a known
        // region), found once per version instead of by name once per example.
        func regionIndex(_ name: String) -> Int8 { DemoMarket.regions.firstIndex { $0.name == name }.map(Int8.init) ?? -1 }
        let userRegions = userTimeline.values.map { regionIndex($0.preferredRegion) }
        let listingRegions = listingTimeline.values.map { regionIndex($0.region) }
        // Positions, not copies, are sorted: an impression is 48 bytes.
        let examples = impressions.indices
            .filter { let x = impressions[$0]; return x.time >= definition.from && x.time < definition.to && x.writtenAt <= definition.asOf }
            .sorted { a, b in (impressions[a].time, impressions[a].eventID) < (impressions[b].time, impressions[b].eventID) }
        let n = examples.count
        // Each action is credited to the latest impression of its pair at or before it (the
        // one the user acted on), when that impression is within the label window.
        // Only pairs that have an action are indexed: impressions far outnumber actions, and
        // a dictionary entry (and array) per shown pair cost more than the whole join.
        let visibleActions = actions.filter { $0.writtenAt <= definition.asOf }
        let actedOn = Set(visibleActions.map { PairKey($0.userID, $0.listingID) })
        var impressionsOfPair: [PairKey: [Int]] = [:]
        for (i, e) in examples.enumerated() {
            let x = impressions[e]
            let key = PairKey(x.userID, x.listingID)
            if actedOn.contains(key) { impressionsOfPair[key, default: []].append(i) }
        }
        var credited = [Bool](repeating: false, count: n)
        for a in visibleActions {
            guard let shown = impressionsOfPair[PairKey(a.userID, a.listingID)] else { continue }
            var lo = 0, hi = shown.count
            while lo < hi {
                let mid = (lo + hi) / 2
                if impressions[examples[shown[mid]]].time <= a.time { lo = mid + 1 } else { hi = mid }
            }
            if lo > 0, a.time - impressions[examples[shown[lo - 1]]].time <= definition.labelWindowSeconds { credited[shown[lo - 1]] = true }
        }

        let schema = PairFeatures.schema
        let width = schema.count
        // One column-major block, each example written in place (column c of row r at
        // c·n + r), cut into columns at the end: no per-value append.
        var block = [Float](repeating: 0, count: width * n)
        var labels: [Float] = [], groups: [Int] = [], days: [Int] = [], times: [Double] = []
        labels.reserveCapacity(n)
        groups.reserveCapacity(n)
        days.reserveCapacity(n)
        times.reserveCapacity(n)
        var dropped = 0, positives = 0
        block.withUnsafeMutableBufferPointer { out in
            for (i, e) in examples.enumerated() {
                let x = impressions[e]
                let known = min(x.time, definition.asOf)
                guard let u = userTimeline.index(x.userID, at: x.time, knownBy: known),
                      let l = listingTimeline.index(x.listingID, at: x.time, knownBy: known) else {
                    dropped += 1
                    continue
                }
                let listing = listingTimeline.values[l]
                let ur = Int(userRegions[u]), lr = listingRegions[l]
                let commute = ur >= 0
                    ? DemoMarket.commuteMinutes(lat: listing.lat, lon: listing.lon, subwayDistanceM: listing.subwayDistanceM, to: DemoMarket.regions[ur])
                    : .nan
                PairFeatures.write(user: userTimeline.values[u], listing: listing, regionCode: lr >= 0 ? Double(lr) : .nan,
                                   commute: commute, to: out.baseAddress! + labels.count, stride: n)
                let positive = credited[i]
                if positive { positives += 1 }
                labels.append(positive ? 1 : 0)
                groups.append(x.userID)
                days.append(Int((x.time / 86_400).rounded(.down)))
                times.append(x.time)
            }
        }
        if labels.isEmpty {
            throw DataError.emptyDataSet(reason: "no impressions between \(Timestamp.format(definition.from)) and \(Timestamp.format(definition.to)) with a user and listing known at their time (\(dropped) dropped); ingest events, users and listings first")
        }
        let kept = labels.count
        let columns = (0..<width).map { c in Array(block[c * n ..< c * n + kept]) }
        let data = Dataset(schema: schema, columns: columns, labels: labels, groups: groups, days: days)
        return Result(dataset: data, positives: positives, dropped: dropped, times: times)
    }

    struct PairKey: Hashable {
        var user: Int, listing: Int
        init(_ u: Int, _ l: Int) { user = u; listing = l }
    }
}

/// A data set with its definition in one content-addressed file, so that a run records
/// exactly what it trained on and a worker gets features ready to train.
///
/// Layout (little-endian): "TWTS" · version (UInt16) · definition JSON (u32 length,
/// bytes) · schema (count, then per feature: name, kind, categories) · rows (UInt64) ·
/// each column as Float32s · labels · groups (Int64) · days (Int32).
///
/// Guarantees: `decode(encode(d))` returns the same columns, labels, groups and days bit
/// for bit; anything else (truncated, foreign, newer) is refused with a `DataError`.
public enum TrainingSetFile {
    public static let magic = Array("TWTS".utf8)
    public static let version: UInt16 = 1

    public static func isTrainingSet(_ data: Data) -> Bool {
        data.count >= 4 && Array(data.prefix(4)) == magic
    }

    public static func encode(_ d: Dataset, definition: TrainingSetDefinition) -> Data {
        var w = ByteWriter()
        w.raw(magic)
        w.u16(version)
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        w.bytes(Array((try? encoder.encode(definition)) ?? Data()))
        w.schemaAndColumns(d)
        let labels = d.labels.isEmpty ? [Float](repeating: 0, count: d.rowCount) : d.labels
        w.f32Block(labels)
        for g in d.groups ?? [Int](repeating: 0, count: d.rowCount) { w.u64(UInt64(bitPattern: Int64(g))) }
        for x in d.days ?? [Int](repeating: 0, count: d.rowCount) { w.u32(UInt32(bitPattern: Int32(clamping: x))) }
        return Data(w.buffer)
    }

    public static func decode(_ data: Data, file: String = "training set") throws -> (Dataset, TrainingSetDefinition) {
        func bad(_ reason: String) -> DataError { .unreadable(file: file, reason: reason) }
        guard isTrainingSet(data) else { throw bad("not a Tower training set (bad magic)") }
        var r = ByteReader([UInt8](data), file: file)
        do {
            _ = try r.take(4)
            let v = try r.u16()
            guard v == version else { throw bad("training set format \(v) is newer than this build's \(version)") }
            let json = try r.byteArray()
            guard let definition = try? JSONDecoder().decode(TrainingSetDefinition.self, from: Data(json)) else {
                throw bad("the training set's definition is not valid JSON")
            }
            let width = Int(try r.u32())
            guard width > 0, width < 10_000 else { throw bad("implausible feature count \(width)") }
            var features: [Feature] = []
            for _ in 0..<width {
                let name = try r.string()
                guard let kind = FeatureKind(rawValue: try r.string()) else { throw bad("unknown feature kind") }
                let count = Int(try r.u32())
                guard count < 100_000 else { throw bad("implausible category count") }
                var categories: [String] = []
                for _ in 0..<count { categories.append(try r.string()) }
                features.append(Feature(name: name, kind: kind, categories: categories))
            }
            let rows = try r.u64()
            // Each row takes 4 bytes per column, 4 for its label, 8 for its group and 4 for its day.
            guard rows <= UInt64(r.remaining) / UInt64(4 * width + 16) else { throw bad("\(rows) rows claimed but the file is shorter") }
            let n = Int(rows)
            var columns: [[Float]] = []
            for _ in 0..<width { columns.append(try r.f32Array(n)) }
            let labels = try r.f32Array(n)
            var groups = [Int](repeating: 0, count: n), days = [Int](repeating: 0, count: n)
            for i in 0..<n { groups[i] = Int(Int64(bitPattern: try r.u64())) }
            for i in 0..<n { days[i] = Int(Int32(bitPattern: try r.u32())) }
            guard r.remaining == 0 else { throw bad("\(r.remaining) bytes after the last row") }
            return (Dataset(schema: FeatureSchema(features), columns: columns, labels: labels, groups: groups, days: days), definition)
        } catch let e as DataError {
            throw e
        } catch {
            throw bad("truncated or malformed: \(error)")
        }
    }
}

extension ByteWriter {
    /// Float32s without a count, in one copy (the host is little-endian, as the format).
    mutating func f32Block(_ a: [Float]) {
        a.withUnsafeBytes { buffer.append(contentsOf: $0) }
    }

    /// A data set's schema (count, then per feature: name, kind, categories), its row
    /// count (UInt64) and its columns as float32 blocks: the part the training-set file
    /// and the binned training set share.
    mutating func schemaAndColumns(_ d: Dataset) {
        u32(UInt32(d.schema.count))
        for f in d.schema.features {
            string(f.name)
            string(f.kind.rawValue)
            u32(UInt32(f.categories.count))
            for c in f.categories { string(c) }
        }
        u64(UInt64(d.rowCount))
        for c in d.columns { f32Block(c) }
    }
}

extension ByteReader {
    var remaining: Int { bytes.count - position }

    mutating func f32Array(_ n: Int) throws -> [Float] {
        let raw = try take(n * 4)
        return [Float](unsafeUninitializedCapacity: n) { out, count in
            raw.withUnsafeBytes { src in
                if n > 0 { memcpy(out.baseAddress!, src.baseAddress!, n * 4) }
            }
            count = n
        }
    }
}
