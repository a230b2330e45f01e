import Foundation
import Learning
import Testing
import MediaUpload
import Wire
@testable import CoordinatorKit

/// Ingest queues a render job for each new listing the champion places in the top
/// percentile of predicted demand, and says in its answer what it queued or why not.
@Suite(.timeLimit(.minutes(3))) struct ShortTriggerTests {
    static let market = DemoMarket(.init(users: 80, listings: 60, interactions: 3_000, days: 20, seed: 21)).generate()

    static let model: TowerModel = {
        var p = BoostingParameters()
        p.numIterations = 20
        p.numLeaves = 8
        return .gradientBoosted(try! GBDTTrainer.train(try! PairFeatures.build(market), valid: nil, parameters: p) { _, _, _ in true })
    }()

    /// The listings file of `listings` alone, as an agent would send new ones.
    static func listingsFile(_ listings: [MarketListing], in directory: URL) throws -> Data {
        let dir = directory.appendingPathComponent(UUID().uuidString)
        try FeatureStoreFiles.write(Market(users: [], listings: listings, interactions: []), start: Date().timeIntervalSince1970 - 60, to: dir)
        return try Data(contentsOf: dir.appendingPathComponent("listings.csv"))
    }

    func start(topPercent: Double = 5) async throws -> InProcessCoordinator {
        let c = try await InProcessCoordinator.start(workers: [], settings: { $0.shorts.triggerTopPercent = topPercent })
        let files = c.cluster.directory.appendingPathComponent("market")
        try FeatureStoreFiles.write(Self.market, start: Date().timeIntervalSince1970 - 30 * 86_400, to: files)
        let op = try await c.operatorClient()
        defer { op.close() }
        for table in ["users", "listings"] {
            let r = try await op.ingest(table: table, csv: try Data(contentsOf: files.appendingPathComponent("\(table).csv")), fileName: "\(table).csv")
            // Before there is a champion nothing can rank the listings.
            if table == "listings", topPercent > 0 { #expect(r.renderJobID.isEmpty && r.renderNote == "match has no champion yet to predict demand") }
        }
        return c
    }

    func promote(_ c: InProcessCoordinator) throws {
        let core = c.service.core
        let sha = try core.blobs.put(ModelFile.encode(Self.model))
        let version = try core.models.registerVersion(model: "match", runID: nil, sha256: sha, metrics: [:])
        _ = try core.models.decide(model: "match", alias: "champion", version: version, expected: nil, promoted: true,
                                   action: "promote", reasons: ["test"], numbers: [:], actor: "test")
    }

    /// A copy of the market's most and least wanted listings under new ids.
    func strongAndWeak() -> (strong: MarketListing, weak: MarketListing) {
        let demand = ListingDemand.estimate(Recommender(model: Self.model, listings: Self.market.listings, k: 0, reasonCount: 0),
                                            users: Self.market.users)
        let ranked = demand.sorted { $0.value != $1.value ? $0.value > $1.value : $0.key < $1.key }
        var strong = Self.market.listings.first { $0.id == ranked.first!.key }!
        var weak = Self.market.listings.first { $0.id == ranked.last!.key }!
        strong.id = 9001
        weak.id = 9002
        return (strong, weak)
    }

    @Test func aNewListingInTheTopPercentileGetsARenderJob() async throws {
        let c = try await start()
        defer { Task { await c.stop() } }
        try promote(c)
        let (strong, weak) = strongAndWeak()
        let op = try await c.operatorClient()
        defer { op.close() }

        let r = try await op.ingest(table: "listings", csv: try Self.listingsFile([weak, strong], in: c.cluster.directory), fileName: "new.csv")
        #expect(r.inserted == 2)
        #expect(r.renderListingIds == [9001], "\(r.renderNote)")
        let job = try #require(try c.service.core.store.job(r.renderJobID))
        #expect(job.kind == "render" && job.name == "render-on-ingest" && job.total == 1 && job.submittedBy == "shorts-trigger")
        let spec = try WireRenderSpec(serializedBytes: job.spec)
        #expect(spec.listingIds == [9001] && spec.language == "ko")

        // The same file again adds nothing new, so nothing more is rendered.
        let again = try await op.ingest(table: "listings", csv: try Self.listingsFile([weak, strong], in: c.cluster.directory), fileName: "new.csv")
        #expect(again.inserted == 0 && again.renderJobID.isEmpty && again.renderNote.isEmpty)
    }

    @Test func aWeakNewListingGetsNoShortAndTheAnswerSaysWhy() async throws {
        let c = try await start()
        defer { Task { await c.stop() } }
        try promote(c)
        let op = try await c.operatorClient()
        defer { op.close() }

        let r = try await op.ingest(table: "listings", csv: try Self.listingsFile([strongAndWeak().weak], in: c.cluster.directory), fileName: "weak.csv")
        #expect(r.inserted == 1 && r.renderJobID.isEmpty)
        #expect(r.renderNote == "none of the 1 new listings is in the top 5% of predicted demand (match v1)")
    }

    @Test func aZeroPercentTurnsTheTriggerOff() async throws {
        let c = try await start(topPercent: 0)
        defer { Task { await c.stop() } }
        try promote(c)
        let op = try await c.operatorClient()
        defer { op.close() }

        let r = try await op.ingest(table: "listings", csv: try Self.listingsFile([strongAndWeak().strong], in: c.cluster.directory), fileName: "s.csv")
        #expect(r.renderJobID.isEmpty && r.renderNote == "shorts.trigger_top_percent is 0")
    }
}

@Suite struct ListingDemandTests {
    @Test func theTopPercentIsCountedOverEveryListingAndIncludesTies() {
        let demand = [1: 0.9, 2: 0.8, 3: 0.8, 4: 0.5, 5: 0.4, 6: 0.3, 7: 0.2, 8: 0.2, 9: 0.1, 10: 0.05]
        // 20% of 10 listings: the 2nd highest (0.8) is the bar, and 3 ties with 2.
        #expect(ListingDemand.topPercent(20, of: demand, candidates: [3, 4, 1]) == [1, 3])
        // Any positive percent admits at least the best listing.
        #expect(ListingDemand.topPercent(0.1, of: demand, candidates: [1, 2]) == [1])
        #expect(ListingDemand.topPercent(0, of: demand, candidates: [1]) == [])
        #expect(ListingDemand.topPercent(100, of: demand, candidates: [10, 42]) == [10])
    }

    @Test func anEvenSampleSpansTheWholeList() {
        #expect(ListingDemand.evenSample(Array(0..<10), count: 5) == [0, 2, 4, 6, 8])
        #expect(ListingDemand.evenSample(Array(0..<3), count: 5) == [0, 1, 2])
    }
}

@Suite struct ShortSettingsTests {
    @Test func theShortsSectionReadsTokensFromFilesAndNamesEveryBadKey() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("tower-shorts-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let token = dir.appendingPathComponent("yt.token")
        try "ya29.file-token\n".write(to: token, atomically: true, encoding: .utf8)
        let s = try CoordinatorSettings.load(yaml: """
            shorts:
              trigger_top_percent: 2.5
              language: en
              youtube:
                access_token_file: \(token.path)
                privacy: unlisted
              instagram:
                user_id: "1784"
                access_token: inline-token
                graph_url: http://127.0.0.1:9/v21.0
            """, path: "t.yaml")
        #expect(s.shorts.triggerTopPercent == 2.5 && s.shorts.language == "en" && s.shorts.model == "match")
        #expect(s.shorts.youTube == .init(token: AccessToken("ya29.file-token"), privacy: .unlisted))
        #expect(s.shorts.instagram == .init(userID: "1784", token: AccessToken("inline-token"), graphURL: URL(string: "http://127.0.0.1:9/v21.0")!))
        #expect(try CoordinatorSettings.load(yaml: "listen: 0.0.0.0:7443").shorts == ShortSettings())

        func refusal(_ yaml: String) -> String {
            do { _ = try CoordinatorSettings.load(yaml: yaml, path: "t.yaml"); return "accepted" } catch { return "\(error)" }
        }
        #expect(refusal("shorts:\n  trigger_percent: 5") == "configuration error: t.yaml: shorts: unknown key \"trigger_percent\"; known keys: trigger_top_percent, model, language, youtube, instagram")
        #expect(refusal("shorts:\n  trigger_top_percent: 120") == "configuration error: t.yaml: shorts.trigger_top_percent is \"120\"; expected a percent from 0 (never) to 100")
        #expect(refusal("shorts:\n  language: fr") == "configuration error: t.yaml: shorts.language: expected ko or en, got \"fr\"")
        #expect(refusal("shorts:\n  youtube:\n    privacy: private") == "configuration error: t.yaml: shorts.youtube: give access_token_file (or access_token) with the OAuth token")
        #expect(refusal("shorts:\n  youtube:\n    access_token: a\n    access_token_file: /x") == "configuration error: t.yaml: shorts.youtube: give access_token_file or access_token, not both")
        #expect(refusal("shorts:\n  youtube:\n    access_token_file: /nonexistent/yt.token").hasPrefix("configuration error: t.yaml: shorts.youtube.access_token_file: cannot read /nonexistent/yt.token"))
        #expect(refusal("shorts:\n  instagram:\n    access_token: a") == "configuration error: t.yaml: shorts.instagram.user_id: name the Instagram professional account's user id")
        #expect(refusal("shorts:\n  youtube:\n    access_token: a\n    base_url: ftp://x") == "configuration error: t.yaml: shorts.youtube.base_url is \"ftp://x\"; expected an http(s) URL")
    }
}
