import ArgumentParser
import Foundation
import Learning

/// The learning loop's three hot paths, each against a Python peer run by
/// Benchmarks/loop/run.sh on the same data in the same run: drift counting (numpy/scipy),
/// scoring (LightGBM), point-in-time joins (pandas). The `*-data` commands write the data
/// both sides read; the timed commands exclude reading it, as the peer does.
struct LoopBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "loop",
        abstract: "Drift, scoring and point-in-time benchmarks (peers: Benchmarks/loop/run.sh).",
        subcommands: [DriftData.self, DriftBench.self, ScoreData.self, ScoreBench.self, ShapBench.self, PitData.self, PitBench.self])
}

// MARK: Shared helpers

func seconds(since start: DispatchTime) -> Double {
    Double(DispatchTime.now().uptimeNanoseconds - start.uptimeNanoseconds) / 1e9
}

/// CPU time of the whole process (all threads). The machine is shared, so wall time also
/// counts time spent waiting for a core; CPU time does not, and the peer reports the same.
func cpuSeconds() -> Double {
    var ts = timespec()
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts)
    return Double(ts.tv_sec) + Double(ts.tv_nsec) / 1e9
}

/// Raw little-endian arrays, the format numpy's `fromfile` reads without a header.
func writeRaw<T>(_ values: [T], to url: URL) throws {
    try values.withUnsafeBytes { Data($0) }.write(to: url)
}

func readRaw<T>(_ url: URL, as: T.Type) throws -> [T] {
    let data = try Data(contentsOf: url)
    let n = data.count / MemoryLayout<T>.stride
    return [T](unsafeUninitializedCapacity: n) { out, count in
        data.withUnsafeBytes { src in
            if n > 0 { memcpy(out.baseAddress!, src.baseAddress!, n * MemoryLayout<T>.stride) }
        }
        count = n
    }
}

/// Runs `body(i)` for `0..<count` on `threads` threads (work handed out in order through
/// a shared counter, so a slow item does not leave the other thread idle) and returns the
/// results in index order.
func parallelMap<T>(_ count: Int, threads: Int, _ body: (Int) -> T) -> [T] {
    let out = UnsafeMutablePointer<T>.allocate(capacity: max(1, count))
    defer { out.deallocate() }
    if threads <= 1 || count <= 1 {
        for i in 0..<count { (out + i).initialize(to: body(i)) }
    } else {
        let next = ManagedAtomicCounter()
        withoutActuallyEscaping(body) { body in
            let box = UnsafeSendableBox((body, out))
            DispatchQueue.concurrentPerform(iterations: threads) { _ in
                while true {
                    let i = next.increment()
                    if i >= count { break }
                    (box.value.1 + i).initialize(to: box.value.0(i))
                }
            }
        }
    }
    let result = Array(UnsafeBufferPointer(start: out, count: count))
    out.deinitialize(count: count)
    return result
}

/// A counter handed out under a lock (a few increments per shard or user chunk, so the
/// lock is never contended enough to matter).
final class ManagedAtomicCounter: @unchecked Sendable {
    private let lock = NSLock()
    private var value = 0
    func increment() -> Int {
        lock.lock(); defer { lock.unlock() }
        let v = value
        value += 1
        return v
    }
}

struct UnsafeSendableBox<T>: @unchecked Sendable {
    let value: T
    init(_ value: T) { self.value = value }
}

// MARK: 1. Drift

/// Writes `ref.f32` and `cur.f32`: `features` float32 columns of `rows` values each,
/// column after column. Five families of distributions (normal, log-normal, uniform,
/// integer counts with many ties, a two-normal mixture); the current side is shifted or
/// rescaled on some features so that PSI and KS have something to find.
struct DriftData: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "drift-data", abstract: "Generate the drift benchmark's data.")
    @Option var dir = "Benchmarks/results/loop/drift"
    @Option var rows = 1_000_000
    @Option var features = 20

    func run() throws {
        let out = URL(fileURLWithPath: dir)
        try FileManager.default.createDirectory(at: out, withIntermediateDirectories: true)
        for (side, name) in [(0, "ref"), (1, "cur")] {
            var all: [Float] = []
            all.reserveCapacity(rows * features)
            for f in 0..<features {
                var rng = Xoshiro256(seed: UInt64(1000 * side + f + 1))
                let strength = side == 0 ? 0.0 : Double(f % 4) * 0.05
                func normal() -> Double {
                    // Box–Muller; one of the pair is enough here.
                    let u = max(rng.uniform(), 1e-300), v = rng.uniform()
                    return (-2 * log(u)).squareRoot() * cos(2 * .pi * v)
                }
                for _ in 0..<rows {
                    let x: Double
                    switch f % 5 {
                    case 0: x = normal() + strength
                    case 1: x = exp(0.8 * normal()) * (1 + strength)
                    case 2: x = rng.uniform(0, 100 + 40 * strength)
                    case 3: x = (-log(max(rng.uniform(), 1e-300)) * (10 + 20 * strength)).rounded(.down)
                    default: x = rng.uniform() < 0.7 - strength ? normal() * 2 + 50 : normal() * 5 + 70
                    }
                    all.append(Float(x))
                }
            }
            try writeRaw(all, to: out.appendingPathComponent("\(name).f32"))
        }
        try Data("{\"rows\": \(rows), \"features\": \(features)}\n".utf8).write(to: out.appendingPathComponent("meta.json"))
        print("wrote \(features) × \(rows) float32 reference and current columns to \(dir)")
    }
}

/// Bins from the reference, then the job's shard path on `threads` threads: shards of
/// `rowsPerTask` rows of each side counted with `DriftHistograms.count` (one thread per
/// shard, as each worker process does with its slot), encoded and decoded as they travel
/// to the coordinator, merged in task order, and the report computed.
struct DriftBench: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "drift", abstract: "PSI/KS/Wasserstein over sharded histograms (peer: numpy + scipy).")
    @Option var dir = "Benchmarks/results/loop/drift"
    @Option var threads = 2
    @Option var rowsPerTask = 250_000

    func run() throws {
        let base = URL(fileURLWithPath: dir)
        let meta = try JSONSerialization.jsonObject(with: Data(contentsOf: base.appendingPathComponent("meta.json"))) as! [String: Int]
        let rows = meta["rows"]!, featureCount = meta["features"]!
        func columns(_ name: String) throws -> [[Float]] {
            let all = try readRaw(base.appendingPathComponent(name), as: Float.self)
            return (0..<featureCount).map { Array(all[$0 * rows..<($0 + 1) * rows]) }
        }
        let reference = try columns("ref.f32"), current = try columns("cur.f32")
        let specs = (0..<featureCount).map { DriftFeatureSpec(name: "f\($0)", categorical: false) }

        let start = DispatchTime.now(), cpuStart = cpuSeconds()
        // Coordinator: bins from the reference on every core it is given, shipped encoded.
        let binning = DriftBinning.fromReference(columns: reference, specs: specs, fineBins: 1000, threads: threads)
        let binningBytes = binning.encoded()
        let binned = seconds(since: start)
        // Workers: each decodes the bins once, then counts its shards.
        var shards: [(side: Int, rows: Range<Int>)] = []
        for side in 0...1 {
            for begin in stride(from: 0, to: rows, by: rowsPerTask) { shards.append((side, begin..<min(rows, begin + rowsPerTask))) }
        }
        let workerBinnings = try (0..<threads).map { _ in try DriftBinning(decoding: binningBytes) }
        let encoded = parallelMap(shards.count, threads: threads) { i -> Data in
            let shard = shards[i]
            let bins = workerBinnings[i % workerBinnings.count]
            return DriftHistograms.count(columns: shard.side == 0 ? reference : current, rows: shard.rows, binning: bins, threads: 1).encoded()
        }
        let counted = seconds(since: start)
        // Coordinator: merge in task order, compute the report.
        var sides: [DriftHistograms?] = [nil, nil]
        for (i, bytes) in encoded.enumerated() {
            let h = try DriftHistograms(decoding: bytes)
            let side = shards[i].side
            if sides[side] == nil { sides[side] = h } else { try sides[side]!.merge(h) }
        }
        let report = DriftReport.compute(reference: sides[0]!, current: sides[1]!, binning: binning)
        let total = seconds(since: start), cpu = cpuSeconds() - cpuStart

        print(String(format: "RESULT bench=drift side=tower variant=binned_%dt seconds=%.4f cpu_s=%.4f binning_s=%.4f count_s=%.4f merge_report_s=%.4f",
                     threads, total, cpu, binned, counted - binned, total - counted))
        let psi = report.features.map { String(format: "%.6f", $0.psi) }.joined(separator: ",")
        let ks = report.features.map { String(format: "%.6f", $0.ks ?? .nan) }.joined(separator: ",")
        print("CHECK bench=drift side=tower psi=\(psi) ks=\(ks)")
    }
}

// MARK: 2. Scoring

/// Trains the model once (Tower's GBDT on a demo market's interactions), saves it as a
/// Tower model file and as a LightGBM text model, and writes every (user, candidate
/// listing) pair the recommender will score as a float32 row-major feature matrix with
/// per-user offsets, so the peer predicts exactly the same pairs with the same trees.
struct ScoreData: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "score-data", abstract: "Train the scoring benchmark's model, write pairs and the LightGBM export.")
    @Option var dir = "Benchmarks/results/loop/score"
    @Option var users = 1_000
    @Option var listings = 5_000
    @Option var interactions = 200_000
    @Option var trees = 200
    @Option var leaves = 31
    @Option var threads = 2

    func run() throws {
        let out = URL(fileURLWithPath: dir)
        try FileManager.default.createDirectory(at: out, withIntermediateDirectories: true)
        let market = DemoMarket(DemoMarket.Configuration(users: users, listings: listings, interactions: interactions, seed: 42)).generate()
        try market.write(to: out.appendingPathComponent("market"))
        let (outcome, model) = try trainBenchModel(market, trees: trees, leaves: leaves, threads: threads)
        try ModelFile.save(outcome.model, to: out.appendingPathComponent("model.twrm"))
        try LightGBMExport.text(model).write(to: out.appendingPathComponent("model.lgb.txt"), atomically: true, encoding: .utf8)

        // The pairs in the recommender's order: users by id, listings by id, hard filter applied.
        let recommender = Recommender(model: outcome.model, listings: market.listings, k: 10, reasonCount: 0)
        let sortedUsers = market.users.sorted { $0.id < $1.id }
        var matrix: [Float] = [], offsets: [Int64] = [0], listingIDs: [Int64] = [], rawScores: [Double] = []
        for u in sortedUsers {
            for l in recommender.listings where recommender.filter.admits(l, for: u) {
                let row = PairFeatures.features(user: u, listing: l)
                matrix.append(contentsOf: row)
                listingIDs.append(Int64(l.id))
                // Tower's raw scores of the first pairs, to check the export predicts the same.
                if rawScores.count < 100_000 { rawScores.append(model.predictRaw(row: row)) }
            }
            offsets.append(Int64(listingIDs.count))
        }
        try writeRaw(matrix, to: out.appendingPathComponent("pairs.f32"))
        try writeRaw(offsets, to: out.appendingPathComponent("offsets.i64"))
        try writeRaw(listingIDs, to: out.appendingPathComponent("listing_ids.i64"))
        try writeRaw(rawScores, to: out.appendingPathComponent("tower_raw.f64"))
        try Data("{\"pairs\": \(listingIDs.count), \"users\": \(sortedUsers.count), \"features\": \(PairFeatures.schema.count), \"trees\": \(model.trees.count)}\n".utf8)
            .write(to: out.appendingPathComponent("meta.json"))
        print(String(format: "trained %d trees in %.1f s (test AUC %.4f); %d users × %d listings → %d candidate pairs",
                     model.trees.count, outcome.seconds, outcome.testReport?.auc ?? .nan, sortedUsers.count, market.listings.count, listingIDs.count))
    }
}

/// Tower's GBDT on a market's interactions (time split 70/10/20), the model the scoring
/// benchmarks serve on both sides.
func trainBenchModel(_ market: Market, trees: Int, leaves: Int, threads: Int) throws -> (TrainingOutcome, GradientBoostedModel) {
    var p = BoostingParameters()
    p.numIterations = trees
    p.numLeaves = leaves
    p.threads = threads
    let data = try PairFeatures.build(market)
    let split = try TimeSplit(data, trainFraction: 0.7, validFraction: 0.1)
    let outcome = try LearningWorkflow.train(PreparedData(train: split.train, valid: split.valid, test: split.test),
                                             parameters: p, gitCommit: "bench", progressEvery: 0)
    guard case let .gradientBoosted(model) = outcome.model else { throw ValidationError("the benchmark trains a GBDT") }
    return (outcome, model)
}

/// `Recommender.recommend` for every user (features, prediction, top 10, no reasons —
/// the peer computes none), on 1 thread and on `threads` threads over user chunks.
struct ScoreBench: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "score", abstract: "Recommender throughput, user × listing pairs/s (peer: LightGBM predict + argpartition).")
    @Option var dir = "Benchmarks/results/loop/score"
    @Option(help: "Comma-separated thread counts.") var threads = "1,2"

    func run() throws {
        let base = URL(fileURLWithPath: dir)
        let market = try Market.load(from: base.appendingPathComponent("market"))
        let model = try ModelFile.load(from: base.appendingPathComponent("model.twrm"))
        let recommender = Recommender(model: model, listings: market.listings, k: 10, reasonCount: 0)
        let users = market.users.sorted { $0.id < $1.id }
        for t in threads.split(separator: ",").compactMap({ Int($0) }) {
            let chunk = 16
            let start = DispatchTime.now(), cpuStart = cpuSeconds()
            let results = parallelMap((users.count + chunk - 1) / chunk, threads: t) { c -> [(ids: [Int], candidates: Int)] in
                users[c * chunk..<min(users.count, (c + 1) * chunk)].map { u in
                    let r = recommender.recommend(u)
                    return (r.items.map(\.listingID), r.candidates)
                }
            }.flatMap { $0 }
            let elapsed = seconds(since: start), cpu = cpuSeconds() - cpuStart
            let pairs = results.reduce(0) { $0 + $1.candidates }
            print(String(format: "RESULT bench=score side=tower variant=%dt seconds=%.4f cpu_s=%.4f pairs=%d pairs_per_s=%.0f pairs_per_cpu_s=%.0f",
                         t, elapsed, cpu, pairs, Double(pairs) / elapsed, Double(pairs) / cpu))
            if t == 1 {
                var top: [Int64] = []
                for r in results { top.append(contentsOf: (0..<10).map { $0 < r.ids.count ? Int64(r.ids[$0]) : -1 }) }
                try writeRaw(top, to: base.appendingPathComponent("tower_top10.i64"))
            }
        }
    }
}

/// A Tower GBDT as a LightGBM text model: the same trees node for node (LightGBM's child
/// encoding is Tower's: ≥ 0 an internal node, ~i leaf i), NaN routed by each split's
/// default direction (missing type NaN), and the initial score folded into the first
/// tree's leaves, as LightGBM's boost-from-average does.
enum LightGBMExport {
    static func text(_ m: GradientBoostedModel) -> String {
        func g(_ v: Double) -> String { String(format: "%.17g", v) }
        var blocks: [String] = []
        for (i, t) in m.trees.enumerated() {
            let leaves = t.leafValue.map { $0 + (i == 0 ? m.initialScore : 0) }
            var s = "Tree=\(i)\nnum_leaves=\(t.leafCount)\nnum_cat=0\n"
            if t.nodeCount > 0 {
                s += "split_feature=" + t.splitFeature.map { String($0) }.joined(separator: " ") + "\n"
                s += "split_gain=" + t.splitGain.map { g(Double($0)) }.joined(separator: " ") + "\n"
                s += "threshold=" + t.threshold.map { g(Double($0)) }.joined(separator: " ") + "\n"
                // Bit 1: default left; bits 2–3: missing type 2 (NaN).
                s += "decision_type=" + t.defaultLeft.map { String(($0 ? 2 : 0) | (2 << 2)) }.joined(separator: " ") + "\n"
                s += "left_child=" + t.leftChild.map { String($0) }.joined(separator: " ") + "\n"
                s += "right_child=" + t.rightChild.map { String($0) }.joined(separator: " ") + "\n"
            }
            s += "leaf_value=" + leaves.map(g).joined(separator: " ") + "\n"
            s += "leaf_weight=" + t.leafCover.map(g).joined(separator: " ") + "\n"
            s += "leaf_count=" + t.leafCover.map { String(Int($0)) }.joined(separator: " ") + "\n"
            if t.nodeCount > 0 {
                s += "internal_value=" + t.nodeCover.map { _ in "0" }.joined(separator: " ") + "\n"
                s += "internal_weight=" + t.nodeCover.map(g).joined(separator: " ") + "\n"
                s += "internal_count=" + t.nodeCover.map { String(Int($0)) }.joined(separator: " ") + "\n"
            }
            s += "is_linear=0\nshrinkage=1\n\n\n"
            blocks.append(s)
        }
        let names = m.schema.names
        var out = "tree\nversion=v4\nnum_class=1\nnum_tree_per_iteration=1\nlabel_index=0\n"
        out += "max_feature_idx=\(names.count - 1)\nobjective=binary sigmoid:1\n"
        out += "feature_names=" + names.joined(separator: " ") + "\n"
        out += "feature_infos=" + names.map { _ in "none" }.joined(separator: " ") + "\n"
        out += "tree_sizes=" + blocks.map { String($0.utf8.count) }.joined(separator: " ") + "\n\n"
        out += blocks.joined()
        out += "end of trees\n\npandas_categorical:null\n"
        return out
    }
}

// MARK: 3. Point-in-time join

/// Columns of one table as float64 arrays (ids and times are exact in a Double), written
/// one file per column with a JSON list of names, so numpy and Swift read the same bytes.
struct ColumnTable {
    var names: [String] = []
    var columns: [[Double]] = []
    mutating func add(_ name: String, _ values: [Double]) { names.append(name); columns.append(values) }
    func write(to dir: URL, table: String) throws {
        for (n, c) in zip(names, columns) { try writeRaw(c, to: dir.appendingPathComponent("\(table).\(n).f64")) }
    }
    static func read(_ dir: URL, table: String, names: [String]) throws -> [String: [Double]] {
        var out: [String: [Double]] = [:]
        for n in names { out[n] = try readRaw(dir.appendingPathComponent("\(table).\(n).f64"), as: Double.self) }
        return out
    }
}

enum PitLayout {
    static let listingColumns = ["id", "event_time", "written_at", "price", "area_m2", "rooms", "floor", "building_age",
                                 "region", "subway_distance_m", "school_score", "expected_yield", "new_build", "lat", "lon"]
    static let userColumns = ["id", "event_time", "written_at", "age", "income", "household_size", "has_children",
                              "max_commute_min", "risk_appetite", "investment_horizon_years", "prefers_new_build",
                              "preferred_region", "budget"]
    static let impressionColumns = ["event_num", "user_id", "listing_id", "time", "written_at"]
    static let actionColumns = ["user_id", "listing_id", "time", "written_at"]
    static let t0 = 1_780_000_000.0
    static let day = 86_400.0
}

/// Listings with `versions` versions each, users with `userVersions`, impressions spread
/// over `days` days and actions on a share of them. Each version's event time is random
/// and written within ten minutes, except one in ten, a backfill written 1–20 days late —
/// so the written-at rule matters (the latest version by event time is often not yet
/// written at an impression's time) and some rows are written after `as_of`.
struct PitData: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "pit-data", abstract: "Generate the point-in-time benchmark's data.")
    @Option var dir = "Benchmarks/results/loop/pit"
    @Option var events = 1_000_000
    @Option var listings = 100_000
    @Option var versions = 10
    @Option var users = 20_000
    @Option var userVersions = 3
    @Option var actions = 50_000
    @Option var days = 90

    func run() throws {
        let out = URL(fileURLWithPath: dir)
        try FileManager.default.createDirectory(at: out, withIntermediateDirectories: true)
        var rng = Xoshiro256(seed: 7)
        let t0 = PitLayout.t0, span = Double(days) * PitLayout.day
        // The first version lands up to 30 days before the window, later ones anywhere in it.
        func versionTimes(_ k: Int) -> [(Double, Double)] {
            var times = [t0 - rng.uniform(0, 30 * PitLayout.day)]
            for _ in 1..<k { times.append(t0 + rng.uniform(0, span)) }
            times.sort()
            return times.map { t in
                let late = rng.uniform() < 0.1
                return (t, t + (late ? rng.uniform(1, 20) * PitLayout.day : rng.uniform(0, 600)))
            }
        }
        var lt = ColumnTable()
        var cols = [[Double]](repeating: [], count: PitLayout.listingColumns.count)
        for id in 0..<listings {
            let region = Double(Int(rng.uniform(0, 8)))
            let area = rng.uniform(30, 160).rounded()
            var price = area * rng.uniform(8, 25)
            let rooms = Double(1 + Int(area / 35)), floor = Double(1 + Int(rng.uniform(0, 30))), age = Double(Int(rng.uniform(0, 40)))
            let subway = rng.uniform() < 0.1 ? Double.nan : rng.uniform(50, 2000).rounded()
            let newBuild: Double = age < 3 ? 1 : 0
            let lat = 37.45 + rng.uniform(0, 0.25), lon = 126.8 + rng.uniform(0, 0.35)
            for (t, w) in versionTimes(versions) {
                price *= rng.uniform(0.95, 1.05)
                let school = rng.uniform() < 0.1 ? Double.nan : rng.uniform(40, 95).rounded()
                let row: [Double] = [Double(id), t, w, price.rounded(), area, rooms, floor, age, region, subway, school,
                                     rng.uniform(1, 6), newBuild, lat, lon]
                for c in row.indices { cols[c].append(row[c]) }
            }
        }
        for (n, c) in zip(PitLayout.listingColumns, cols) { lt.add(n, c) }
        try lt.write(to: out, table: "listings")

        var ut = ColumnTable()
        cols = [[Double]](repeating: [], count: PitLayout.userColumns.count)
        for id in 0..<users {
            let age = Double(Int(rng.uniform(25, 70))), household = Double(1 + Int(rng.uniform(0, 5)))
            let children: Double = household >= 3 ? 1 : 0
            let region = Double(Int(rng.uniform(0, 8)))
            var income = rng.uniform(30, 200).rounded()
            for (t, w) in versionTimes(userVersions) {
                income *= rng.uniform(0.97, 1.08)
                let row: [Double] = [Double(id), t, w, age, income.rounded(), household, children, rng.uniform(20, 90).rounded(),
                                     (rng.uniform() * 1000).rounded() / 1000, Double(Int(rng.uniform(1, 30))),
                                     rng.uniform() < 0.4 ? 1 : 0, region, (income * rng.uniform(5, 15)).rounded()]
                for c in row.indices { cols[c].append(row[c]) }
            }
        }
        for (n, c) in zip(PitLayout.userColumns, cols) { ut.add(n, c) }
        try ut.write(to: out, table: "users")

        // Event numbers are a permutation, so time order and id order disagree.
        var numbers = Array(0..<events)
        for i in stride(from: events - 1, to: 0, by: -1) { numbers.swapAt(i, Int(rng.next() % UInt64(i + 1))) }
        var it = ColumnTable()
        var imp = [[Double]](repeating: [], count: 5)
        for i in 0..<events {
            let t = t0 + rng.uniform(0, span)
            let row: [Double] = [Double(numbers[i]), Double(Int(rng.uniform(0, Double(users)))),
                                 Double(Int(rng.uniform(0, Double(listings)))), t, t + rng.uniform(0, 60)]
            for c in row.indices { imp[c].append(row[c]) }
        }
        for (n, c) in zip(PitLayout.impressionColumns, imp) { it.add(n, c) }
        try it.write(to: out, table: "impressions")

        var at = ColumnTable()
        var act = [[Double]](repeating: [], count: 4)
        for _ in 0..<actions {
            let i = Int(rng.next() % UInt64(events))
            let t = imp[3][i] + rng.uniform(0, 2 * PitLayout.day)
            let row: [Double] = [imp[1][i], imp[2][i], t, t + 10]
            for c in row.indices { act[c].append(row[c]) }
        }
        for (n, c) in zip(PitLayout.actionColumns, act) { at.add(n, c) }
        try at.write(to: out, table: "actions")
        let definition = TrainingSetDefinition(from: t0, to: t0 + span, labelWindowSeconds: PitLayout.day, asOf: t0 + span + 5 * PitLayout.day)
        try JSONEncoder().encode(definition).write(to: out.appendingPathComponent("definition.json"))
        print("wrote \(events) impressions, \(actions) actions, \(listings)×\(versions) listing and \(users)×\(userVersions) user versions to \(dir)")
    }
}

/// `PointInTimeJoin.build` on the generated tables (turned into Tower's structs before the
/// clock starts), then checksums of the result for the peer to match.
struct PitBench: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "pit", abstract: "Point-in-time training set build (peer: pandas merge_asof).")
    @Option var dir = "Benchmarks/results/loop/pit"

    func run() throws {
        let base = URL(fileURLWithPath: dir)
        let definition = try JSONDecoder().decode(TrainingSetDefinition.self, from: Data(contentsOf: base.appendingPathComponent("definition.json")))
        let regions = DemoMarket.regions.map(\.name)
        let l = try ColumnTable.read(base, table: "listings", names: PitLayout.listingColumns)
        var listings: [Versioned<MarketListing>] = []
        for i in l["id"]!.indices {
            func v(_ n: String) -> Double { l[n]![i] }
            func opt(_ n: String) -> Double? { v(n).isNaN ? nil : v(n) }
            let value = MarketListing(id: Int(v("id")), price: v("price"), areaM2: v("area_m2"), rooms: Int(v("rooms")), floor: Int(v("floor")),
                                      buildingAge: Int(v("building_age")), region: regions[Int(v("region"))],
                                      subwayDistanceM: opt("subway_distance_m"), schoolScore: opt("school_score"),
                                      expectedYield: v("expected_yield"), newBuild: v("new_build") != 0, lat: v("lat"), lon: v("lon"))
            listings.append(Versioned(id: value.id, eventTime: v("event_time"), writtenAt: v("written_at"), value: value))
        }
        let u = try ColumnTable.read(base, table: "users", names: PitLayout.userColumns)
        var users: [Versioned<MarketUser>] = []
        for i in u["id"]!.indices {
            func v(_ n: String) -> Double { u[n]![i] }
            let value = MarketUser(id: Int(v("id")), age: Int(v("age")), income: v("income"), householdSize: Int(v("household_size")),
                                   hasChildren: v("has_children") != 0, maxCommuteMin: v("max_commute_min"), riskAppetite: v("risk_appetite"),
                                   investmentHorizonYears: Int(v("investment_horizon_years")), prefersNewBuild: v("prefers_new_build") != 0,
                                   preferredRegion: regions[Int(v("preferred_region"))], budget: v("budget"))
            users.append(Versioned(id: value.id, eventTime: v("event_time"), writtenAt: v("written_at"), value: value))
        }
        let im = try ColumnTable.read(base, table: "impressions", names: PitLayout.impressionColumns)
        let impressions = im["event_num"]!.indices.map { i in
            PointInTimeJoin.Impression(eventID: String(format: "e%08d", Int(im["event_num"]![i])), userID: Int(im["user_id"]![i]),
                                       listingID: Int(im["listing_id"]![i]), time: im["time"]![i], writtenAt: im["written_at"]![i])
        }
        let ac = try ColumnTable.read(base, table: "actions", names: PitLayout.actionColumns)
        let actions = ac["time"]!.indices.map { i in
            PointInTimeJoin.Action(userID: Int(ac["user_id"]![i]), listingID: Int(ac["listing_id"]![i]), time: ac["time"]![i], writtenAt: ac["written_at"]![i])
        }

        let start = DispatchTime.now(), cpuStart = cpuSeconds()
        let result = try PointInTimeJoin.build(definition, impressions: impressions, actions: actions, users: users, listings: listings)
        let elapsed = seconds(since: start), cpu = cpuSeconds() - cpuStart

        let d = result.dataset
        print(String(format: "RESULT bench=pit side=tower variant=1t seconds=%.4f cpu_s=%.4f rows=%d", elapsed, cpu, d.rowCount))
        print("CHECK bench=pit side=tower " + PitChecksum.line(columns: d.columns, names: d.schema.names, rows: d.rowCount,
                                                            positives: result.positives, dropped: result.dropped,
                                                            groups: d.groups ?? [], days: d.days ?? []))
    }
}

/// Order-independent checksums of the joined set: per column the wrapping sum of the
/// float32 bit patterns (equal only when every value is bit-identical) and the float64 sum
/// of the finite values; the peer prints the same line.
enum PitChecksum {
    static func line(columns: [[Float]], names: [String], rows: Int, positives: Int, dropped: Int, groups: [Int], days: [Int]) -> String {
        var parts = ["rows=\(rows)", "positives=\(positives)", "dropped=\(dropped)",
                     "groups=\(groups.reduce(0, +))", "days=\(days.reduce(0, +))"]
        for (n, c) in zip(names, columns) {
            var bits: UInt64 = 0, sum = 0.0
            for v in c {
                bits &+= UInt64(v.bitPattern)
                if v.isFinite { sum += Double(v) }
            }
            parts.append("\(n)=\(bits):\(String(format: "%.6e", sum))")
        }
        return parts.joined(separator: " ")
    }
}

/// TreeSHAP for the rows a score job or the gateway explains: the recursive algorithm
/// against ``PreparedTreeSHAP`` (tables per leaf, made once per model), same model, same
/// rows, one thread, in the same run. Reads what `score-data` wrote.
struct ShapBench: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "shap", abstract: "TreeSHAP per row: recursive against prepared, same model and rows.")
    @Option var dir = "Benchmarks/results/loop/score"
    @Option var rows = 2_000
    @Option var runs = 3

    func run() throws {
        let out = URL(fileURLWithPath: dir)
        guard case let .gradientBoosted(model) = try ModelFile.load(from: out.appendingPathComponent("model.twrm")) else {
            throw ValidationError("\(dir)/model.twrm is not a tree model; run `tower-bench loop score-data` first")
        }
        let width = PairFeatures.schema.count
        let matrix = try readRaw(out.appendingPathComponent("pairs.f32"), as: Float.self)
        let count = min(rows, matrix.count / width)
        let sample = (0..<count).map { Array(matrix[($0 * width)..<($0 + 1) * width]) }
        var recursive: [Double] = [], prepared: [Double] = [], prepare: [Double] = []
        var checksum = (0.0, 0.0)
        for _ in 0..<runs {
            var start = DispatchTime.now()
            for row in sample { checksum.0 += TreeSHAP.contributions(model, row: row).reduce(0, +) }
            recursive.append(seconds(since: start))
            start = DispatchTime.now()
            let explainer = PreparedTreeSHAP(model)
            prepare.append(seconds(since: start))
            start = DispatchTime.now()
            for row in sample { checksum.1 += explainer.contributions(row: row).reduce(0, +) }
            prepared.append(seconds(since: start))
        }
        guard abs(checksum.0 - checksum.1) <= 1e-6 * max(1, abs(checksum.0)) else {
            throw ValidationError("the two explainers disagree: \(checksum.0) vs \(checksum.1)")
        }
        func perRow(_ v: [Double]) -> String {
            let us = v.map { $0 / Double(count) * 1e6 }
            return String(format: "%.1f (%.1f–%.1f)", median(us), us.min()!, us.max()!)
        }
        printTable("TreeSHAP, \(model.trees.count) trees, \(count) pair rows, 1 thread, median of \(runs) (min–max)", ["explainer", "µs per row", "ratio"], [
            ["recursive (TreeSHAP.contributions)", perRow(recursive), "1×"],
            ["prepared (PreparedTreeSHAP)", perRow(prepared), String(format: "%.2f× faster", median(recursive) / median(prepared))],
            ["  preparing the model, once", String(format: "%.1f ms", median(prepare) * 1000), ""],
        ])
        // Trees with a path over PreparedTreeSHAP.maxPathFeatures unique features are
        // explained recursively inside the prepared explainer too.
        let explainer = PreparedTreeSHAP(model)
        let long = explainer.recursiveTreeCount
        print("\(long) of \(model.trees.count) trees have a path with more than \(PreparedTreeSHAP.maxPathFeatures) features (explained recursively); tables \(explainer.tableBytes / 1024) KiB")
    }
}
