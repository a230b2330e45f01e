import ArgumentParser
import CoordinatorKit
import Foundation
import Learning
import Logging
import Media
import NIOPosix
import Wire

/// Marketing-short rendering, two measures (issue #11):
/// 1. Render overhead: Tower's render step (the ffmpeg run with its progress read,
///    then ffprobe verification) against the very same ffmpeg command run by hand —
///    same arguments (`ShortRenderer.prepare`), same photos, same speech.
/// 2. Four shorts on two workers (one slot each) against the same four on one worker,
///    one after another, through the cluster (job planning, blob transfer, results).
/// Median of `runs` with min and max.
struct RenderBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "render", abstract: "Render overhead against ffmpeg by hand; 4 shorts on 2 workers against 1.")
    @Option(help: "Repetitions of each measure (the median is reported).") var runs = 3
    @Option(help: "Shorts in the cluster measure.") var shorts = 4
    @Option(help: "Where to keep the photos and videos.") var out = "Benchmarks/results/render"

    func run() async throws {
        let dir = URL(fileURLWithPath: out)
        try? FileManager.default.removeItem(at: dir)
        let photos = dir.appendingPathComponent("photos")
        let listings = DemoMarket(.init(users: 10, listings: shorts, interactions: 10, days: 2, seed: 8)).generate().listings
        for l in listings { _ = try await DemoPhotos.draw(listing: l.id, into: photos) }

        // 1. Overhead of one render.
        let l = listings[0]
        let facts = ListingFacts(id: l.id, price: l.price, areaM2: l.areaM2, rooms: l.rooms, region: l.region, subwayDistanceM: l.subwayDistanceM,
                                 schoolScore: l.schoolScore, expectedYield: l.expectedYield, newBuild: l.newBuild)
        let script = ScriptWriter().template(facts, language: .korean)
        let speechDir = dir.appendingPathComponent("speech")
        try FileManager.default.createDirectory(at: speechDir, withIntermediateDirectories: true)
        let speech = try await Speech().speak(script, in: speechDir)
        let pictures = [1, 2].map { photos.appendingPathComponent("\(l.id)-\($0).jpg") }
        let renderer = ShortRenderer()
        var tower: [Double] = [], hand: [Double] = []
        for run in 1...runs {
            let work = dir.appendingPathComponent("overhead-\(run)")
            let t0 = DispatchTime.now()
            _ = try await renderer.render(photos: pictures, speech: speech, facts: facts, language: .korean,
                                          output: work.appendingPathComponent("tower.mp4"), workDir: work.appendingPathComponent("tower"))
            tower.append(seconds(since: t0))
            // As a person would type it: without the progress stream Tower reads.
            let arguments = try renderer.prepare(photos: pictures, speech: speech, facts: facts, language: .korean,
                                                 output: work.appendingPathComponent("hand.mp4"), workDir: work.appendingPathComponent("hand"))
                .filter { $0 != "-progress" && $0 != "pipe:1" }
            let t1 = DispatchTime.now()
            let status = try runByHand(arguments, in: work.appendingPathComponent("hand"))
            hand.append(seconds(since: t1))
            guard status == 0 else { throw ValidationError("ffmpeg by hand exited with status \(status)") }
            FileHandle.standardError.write(Data(String(format: "overhead run %d: tower %.2f s, by hand %.2f s\n", run, tower.last!, hand.last!).utf8))
        }
        printTable("Render overhead: one 1080×1920 short (\(String(format: "%.1f", speech.duration)) s of speech), median of \(runs) (min–max)",
                   ["side", "seconds", "ratio"],
                   [["Tower render step (ffmpeg + progress + ffprobe check)", stat(tower), String(format: "%.3f×", median(tower) / median(hand))],
                    ["same ffmpeg command by hand", stat(hand), "1×"]])

        // 2. Four shorts across the cluster.
        var two: [Double] = [], one: [Double] = []
        for run in 1...runs {
            two.append(try await cluster(workers: 2, listings: listings, photos: dir, run: run))
            one.append(try await cluster(workers: 1, listings: listings, photos: dir, run: run))
            FileHandle.standardError.write(Data(String(format: "cluster run %d: 2 workers %.2f s, 1 worker %.2f s\n", run, two.last!, one.last!).utf8))
        }
        printTable("\(shorts) shorts through the cluster, median of \(runs) (min–max)", ["workers (1 slot each)", "seconds", "speed-up"],
                   [["2", stat(two), String(format: "%.2f×", median(one) / median(two))], ["1 (one after another)", stat(one), "1×"]])
        print(String(format: "RESULT render_overhead=%.4f four_shorts_speedup=%.3f", median(tower) / median(hand), median(one) / median(two)))
    }

    func runByHand(_ arguments: [String], in directory: URL) throws -> Int32 {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: Tools.path("ffmpeg") ?? "/usr/bin/ffmpeg")
        p.arguments = arguments
        p.currentDirectoryURL = directory
        p.standardOutput = FileHandle.nullDevice
        p.standardError = FileHandle.nullDevice
        try p.run()
        p.waitUntilExit()
        return p.terminationStatus
    }

    /// Seconds from submitting a render job of every listing to its end, on `workers`
    /// worker processes with one slot each.
    func cluster(workers: Int, listings: [MarketListing], photos: URL, run: Int) async throws -> Double {
        let bench = try await BenchCluster.start(prefix: "tower-render-bench", workers: workers) { $0.photosDirectory = photos.path }
        defer { bench.remove() }
        let (service, op) = (bench.service, bench.op)
        let files = bench.cluster.directory.appendingPathComponent("files")
        try FeatureStoreFiles.write(Market(users: [], listings: listings, interactions: []), start: Date().timeIntervalSince1970 - 60, to: files)
        _ = try await op.ingest(table: "listings", csv: try Data(contentsOf: files.appendingPathComponent("listings.csv")), fileName: "listings.csv")
        var spec = WireRenderSpec()
        spec.listingIds = listings.map { UInt64($0.id) }
        let started = DispatchTime.now()
        let id = try await op.submit(.with { $0.kind = RenderKind.name; $0.spec = try! spec.serializedData() }).jobID
        let end = try await op.follow(id, every: .milliseconds(100)) { _ in }
        let wall = seconds(since: started)
        op.close()
        await service.shutdown()
        guard end.state == .succeeded else { throw ValidationError("render job \(end.state): \(end.error)") }
        return wall
    }
}

func median(_ values: [Double]) -> Double {
    let s = values.sorted()
    return s.isEmpty ? .nan : s[s.count / 2]
}

/// "median (min–max)" in seconds.
func stat(_ values: [Double]) -> String {
    String(format: "%.2f (%.2f–%.2f)", median(values), values.min() ?? .nan, values.max() ?? .nan)
}

/// A coordinator in this process and `workers` worker processes (one slot each) beside
/// this executable, with an operator connected once they all are.
struct BenchCluster {
    let cluster: LocalCluster
    let service: CoordinatorService
    let op: OperatorClient
    let processes: [Process]

    static func start(prefix: String, workers: Int, settings adjust: (inout CoordinatorSettings) -> Void = { _ in }) async throws -> BenchCluster {
        let cluster = try LocalCluster.temporary(prefix: prefix)
        let names = (1...workers).map { "bench-\($0)" }
        try cluster.issueCertificates(workers: names)
        var logger = Logger(label: "bench")
        logger.logLevel = .error
        var settings = cluster.coordinatorSettings()
        adjust(&settings)
        let service = try CoordinatorService(settings: settings, logger: logger)
        try await service.start()
        let processes = try names.map {
            try LocalCluster.spawn(LocalCluster.binaryDirectory.appendingPathComponent("worker"),
                                   cluster.workerArguments($0, port: service.port!, slots: 1, extra: ["--log-level", "error"]))
        }
        let op = try await OperatorClient.connect(host: "127.0.0.1", port: service.port!, identity: try cluster.identity("operator"),
                                                  group: MultiThreadedEventLoopGroup.singleton)
        while try await op.workers().count < workers { try await Task.sleep(for: .milliseconds(50)) }
        return BenchCluster(cluster: cluster, service: service, op: op, processes: processes)
    }

    /// Stops the workers and removes the cluster's files (the caller shuts the service down).
    func remove() {
        processes.forEach { $0.terminate() }
        try? FileManager.default.removeItem(at: cluster.directory)
    }
}
