import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif
import GatewayKit
import Learning
import Logging
import NIOPosix
import ServiceLifecycle
import Testing
import Wire
@testable import CoordinatorKit

/// A coordinator (in this process, on a real socket and a real SQLite file) with a small
/// market in its feature store, and a gateway talking to it over mutual TLS, answering
/// real HTTP.
final class GatewayTestCluster: @unchecked Sendable {
    let cluster: LocalCluster
    var service: CoordinatorService
    let market: Market
    var gateway: Gateway?
    var gatewayTask: Task<Void, Error>?
    var gatewayGroup: ServiceGroup?
    let queueDirectory: URL
    var coordinatorPort = 0

    init(champion: Bool = true) async throws {
        cluster = try LocalCluster.temporary(prefix: "tower-gateway")
        _ = try cluster.issueCertificates(workers: ["w1"], extra: [("gateway", .gateway)])
        queueDirectory = cluster.directory.appendingPathComponent("queue")
        market = DemoMarket(.init(users: 60, listings: 80, interactions: 3_000, days: 30, seed: 9)).generate()
        service = try CoordinatorService(settings: cluster.coordinatorSettings())
        try await service.start()
        coordinatorPort = service.port!
        let files = cluster.directory.appendingPathComponent("files")
        try FeatureStoreFiles.write(market, start: 1_780_272_000, to: files)
        let features = FeatureStore(service.core.store)
        for table in FeatureStore.Table.allCases {
            _ = try features.ingest(table, csv: [UInt8](try Data(contentsOf: files.appendingPathComponent("\(table.rawValue).csv"))),
                                    fileName: "\(table.rawValue).csv")
        }
        if champion { try promoteNewVersion() }
    }

    static let modelFile: Data = {
        let market = DemoMarket(.init(users: 60, listings: 80, interactions: 3_000, days: 30, seed: 9)).generate()
        var p = BoostingParameters()
        p.numIterations = 15
        p.numLeaves = 8
        let data = try! PairFeatures.build(market)
        let model = try! GBDTTrainer.train(data, valid: nil, parameters: p) { _, _, _ in true }
        return ModelFile.encode(.gradientBoosted(model))
    }()

    /// Registers the model file again as a new version and moves `champion` to it (the
    /// coordinator publishes the move to subscribers, as a search's promotion does).
    @discardableResult
    func promoteNewVersion() throws -> Int {
        let sha = try service.core.blobs.put(Self.modelFile)
        let models = service.core.models
        let version = try models.registerVersion(model: "match", runID: nil, sha256: sha, metrics: [:])
        _ = try models.decide(model: "match", alias: "champion", version: version, expected: try models.alias("match", "champion"),
                              promoted: true, action: "promote", reasons: ["test"], numbers: [:], actor: "test")
        return version
    }

    /// The test model's top `k` of every user over the store's current listings, stored as
    /// a finished score job's recommendations (what a score job's workers would store), so
    /// the gateway serves them as precomputed.
    @discardableResult
    func storeScoreRun(job: String, version: Int, k: Int = 10) throws -> [Int: [ScoredListing]] {
        let snapshot = try FeatureStore(service.core.store).snapshot()
        let recommender = Recommender(model: try ModelFile.decode(Self.modelFile), listings: snapshot.listings, k: k)
        var byUser: [Int: [ScoredListing]] = [:]
        var output = WireScoreOutput()
        for user in snapshot.users {
            let items = recommender.recommend(user).items
            byUser[user.id] = items
            output.users.append(.with { u in
                u.userID = UInt64(user.id)
                u.items = items.map { item in
                    .with { $0.listingID = UInt64(item.listingID); $0.score = item.score; $0.rank = UInt32(item.rank); $0.reasons = item.reasons.map(\.phrase) }
                }
            })
        }
        try service.core.store.pool.write { db in
            try FeatureStore.save(output, job: job, db)
            try FeatureStore.recordScoreRun(job: job, model: "match", version: version, finishedAt: Date().timeIntervalSince1970, db)
        }
        return byUser
    }

    func startGateway(certificate: String = "gateway", refresh: Duration = .milliseconds(200)) async throws {
        var settings = CoordinatorLink.Settings(host: "127.0.0.1", port: coordinatorPort, identity: try cluster.identity(certificate),
                                                queueDirectory: queueDirectory)
        settings.refreshInterval = refresh
        var logger = Logger(label: "test.gateway")
        logger.logLevel = .warning
        let g = try Gateway(listenHost: "127.0.0.1", listenPort: 0, link: settings, logger: logger)
        gateway = g
        let group = ServiceGroup(configuration: .init(services: g.services(), logger: logger))
        gatewayGroup = group
        gatewayTask = Task { try await group.run() }
        try await waitUntil("the gateway to listen") { g.port_ != nil }
    }

    var base: String { "http://127.0.0.1:\(gateway!.port_!)" }

    func waitReady(version: Int? = nil) async throws {
        try await waitUntil("the gateway to serve \(version.map { "v\($0)" } ?? "a model")") {
            let (status, body) = try await get("/readyz")
            guard status == 200 else { return false }
            return version.map { body.contains("\"version\":\"\($0)\"") } ?? true
        }
    }

    /// Restarts the coordinator on the same data directory and port.
    func restartCoordinator() async throws {
        var settings = cluster.coordinatorSettings(port: coordinatorPort)
        settings.listenPort = coordinatorPort
        service = try CoordinatorService(settings: settings)
        try await service.start()
    }

    func get(_ path: String) async throws -> (Int, String) {
        let (data, response) = try await URLSession.shared.data(from: URL(string: base + path)!)
        return ((response as! HTTPURLResponse).statusCode, String(decoding: data, as: UTF8.self))
    }

    func post(_ path: String, _ body: String) async throws -> (Int, String) {
        var request = URLRequest(url: URL(string: base + path)!)
        request.httpMethod = "POST"
        request.setValue("application/json", forHTTPHeaderField: "Content-Type")
        request.httpBody = Data(body.utf8)
        let (data, response) = try await URLSession.shared.data(for: request)
        return ((response as! HTTPURLResponse).statusCode, String(decoding: data, as: UTF8.self))
    }

    func stop() async {
        await gatewayGroup?.triggerGracefulShutdown()
        _ = try? await gatewayTask?.value
        await service.shutdown()
    }
}

/// Polls `condition` until it holds; throws `timedOut(what)` after `seconds`.
func waitUntil(_ what: String, within seconds: Double = 30, _ condition: () async throws -> Bool) async throws {
    let deadline = Date().addingTimeInterval(seconds)
    while Date() < deadline {
        if try await condition() { return }
        try await Task.sleep(for: .milliseconds(50))
    }
    throw WireError.timedOut(what: what)
}

func json(_ text: String) -> [String: Any] {
    (try? JSONSerialization.jsonObject(with: Data(text.utf8))) as? [String: Any] ?? [:]
}
