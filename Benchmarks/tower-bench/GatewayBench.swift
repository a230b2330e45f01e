import ArgumentParser
import CoordinatorKit
import Foundation
import Learning
import Logging
import NIOPosix
import Wire

/// The cluster behind Benchmarks/gateway/run.sh: a coordinator in this process with a demo
/// market in its feature store (`listings` active listings), a champion trained on the
/// market's interactions, and a finished score job (every user's top 10, scored by worker
/// processes), so a `gateway` started against it serves both the precomputed and the live
/// path. Runs until SIGTERM or SIGINT.
///
/// Writes to `dir` what the other processes need: `cluster.json` (coordinator address and
/// the gateway's certificate), and for the Python peer the very snapshot the gateway serves
/// (`snapshot.json`), each listing's commute to every region (`commute.json`, as the
/// gateway precomputes it per swap), the model as LightGBM text (`model.lgb.txt`), the
/// feature schema and reason phrases (`meta.json`), and one ad-hoc profile per user for
/// the live-scoring load (`profiles.jsonl`).
struct GatewayCluster: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "gateway-cluster",
                                                    abstract: "Coordinator + market + champion + score job for the gateway benchmark (Benchmarks/gateway/run.sh).")
    @Option var dir = "Benchmarks/results/gateway"
    @Option var users = 1_000
    @Option var listings = 10_000
    @Option var interactions = 100_000
    @Option var trees = 100
    @Option var leaves = 31
    @Option var workers = 2

    func run() async throws {
        let out = URL(fileURLWithPath: dir)
        let cluster = LocalCluster(directory: out.appendingPathComponent("cluster"))
        try? FileManager.default.removeItem(at: cluster.directory)
        try FileManager.default.createDirectory(at: cluster.directory, withIntermediateDirectories: true)
        let names = (1...workers).map { "bench-\($0)" }
        try cluster.issueCertificates(workers: names, extra: [("gateway", .gateway)])

        let market = DemoMarket(DemoMarket.Configuration(users: users, listings: listings, interactions: interactions, seed: 42)).generate()
        let files = out.appendingPathComponent("market")
        try FeatureStoreFiles.write(market, start: 1_780_272_000, to: files)
        let (outcome, model) = try trainBenchModel(market, trees: trees, leaves: leaves, threads: 2)
        try LightGBMExport.text(model).write(to: out.appendingPathComponent("model.lgb.txt"), atomically: true, encoding: .utf8)

        var logger = Logger(label: "bench")
        logger.logLevel = .error
        let service = try CoordinatorService(settings: cluster.coordinatorSettings(), logger: logger)
        try await service.start()
        let port = service.port!
        let features = FeatureStore(service.core.store)
        for table in FeatureStore.Table.allCases {
            _ = try features.ingest(table, csv: [UInt8](try Data(contentsOf: files.appendingPathComponent("\(table.rawValue).csv"))),
                                    fileName: "\(table.rawValue).csv")
        }
        let sha = try service.core.blobs.put(ModelFile.encode(outcome.model))
        let version = try service.core.models.registerVersion(model: "match", runID: nil, sha256: sha, metrics: [:])
        _ = try service.core.models.decide(model: "match", alias: "champion", version: version, expected: nil, promoted: true,
                                           action: "promote", reasons: ["benchmark"], numbers: [:], actor: "bench")

        let processes = try names.map {
            try LocalCluster.spawn(LocalCluster.binaryDirectory.appendingPathComponent("worker"),
                                   cluster.workerArguments($0, port: port, extra: ["--log-level", "error"]))
        }
        defer { processes.forEach { $0.terminate() } }
        let op = try await OperatorClient.connect(host: "127.0.0.1", port: port, identity: try cluster.identity("operator"), group: MultiThreadedEventLoopGroup.singleton)
        while try await op.workers().count < workers { try await Task.sleep(for: .milliseconds(50)) }
        let started = DispatchTime.now()
        let job = try await op.submit(.with {
            $0.kind = ScoreKind.name
            $0.name = "bench-score"
            $0.spec = try! WireScoreSpec.with { $0.k = 10; $0.usersPerTask = 100 }.serializedData()
        })
        let end = try await op.follow(job.jobID, every: .milliseconds(500)) { _ in }
        guard end.state == .succeeded else { throw ValidationError("the score job ended \(end.state): \(end.error)") }
        op.close()

        let snapshot = try features.snapshot()
        try snapshot.encoded().write(to: out.appendingPathComponent("snapshot.json"))
        let commute = snapshot.listings.map { l in
            DemoMarket.regions.map { DemoMarket.commuteMinutes(lat: l.lat, lon: l.lon, subwayDistanceM: l.subwayDistanceM, to: $0) }
        }
        try JSONEncoder().encode(commute).write(to: out.appendingPathComponent("commute.json"))
        let meta = PeerMeta(features: PairFeatures.schema.features.map(\.name), user_features: PairFeatures.userFeatures.sorted(),
                            regions: DemoMarket.regions.map(\.name), phrases: PairFeatures.reasonPhrases, model_version: version)
        try JSONEncoder().encode(meta).write(to: out.appendingPathComponent("meta.json"))
        var profiles = ""
        for u in snapshot.users {
            profiles += "{\"budget\": \(u.budget), \"region\": \"\(u.preferredRegion)\", \"household_size\": \(u.householdSize), \"risk_appetite\": \(u.riskAppetite), \"k\": 10}\n"
        }
        try profiles.write(to: out.appendingPathComponent("profiles.jsonl"), atomically: true, encoding: .utf8)
        let address: [String: String] = ["coordinator": "127.0.0.1:\(port)", "cert": cluster.certificate("gateway"),
                                         "key": cluster.key("gateway"), "ca": cluster.ca]
        try JSONEncoder().encode(address).write(to: out.appendingPathComponent("cluster.json"))
        print(String(format: "READY model v%d (%d trees, %d leaves, test AUC %.4f); %d users × %d active listings; score job %@ in %.1f s",
                     version, model.trees.count, leaves, outcome.testReport?.auc ?? .nan, snapshot.users.count, snapshot.listings.count,
                     job.jobID, seconds(since: started)))
        fflush(stdout)

        await Self.waitForTerminationSignal()
        await service.shutdown()
    }

    /// Returns on SIGTERM or SIGINT (run.sh stops the cluster with one), so the worker
    /// processes are stopped and the store closed rather than left behind.
    static func waitForTerminationSignal() async {
        let (stream, continuation) = AsyncStream<Void>.makeStream()
        let sources = [SIGTERM, SIGINT].map { sig in
            signal(sig, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: sig, queue: .global())
            source.setEventHandler { continuation.yield() }
            source.resume()
            return source
        }
        var signals = stream.makeAsyncIterator()
        _ = await signals.next()
        sources.forEach { $0.cancel() }
    }
}

/// What the Python peer needs to know of Tower's features and reasons.
struct PeerMeta: Encodable {
    var features: [String]
    var user_features: [String]
    var regions: [String]
    var phrases: [String: String]
    var model_version: Int
}
