import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif
@testable import GatewayKit
import Learning
import NIOPosix
import Testing
import Wire
@testable import CoordinatorKit

@Suite(.serialized, .timeLimit(.minutes(4))) struct GatewayTests {
    @Test func servesRecommendationsWithReasonsAndRefusesBadInputWithTheExactError() async throws {
        let t = try await GatewayTestCluster()
        try await t.startGateway()
        try await t.waitReady(version: 1)

        let (status, body) = try await t.get("/v1/recommendations?user_id=3&k=5")
        #expect(status == 200, "\(body)")
        let r = json(body)
        #expect(r["model"] as? String == "match")
        #expect(r["model_version"] as? Int == 1)
        #expect(r["source"] as? String == "live")
        let items = r["items"] as? [[String: Any]] ?? []
        #expect(items.count == 5)
        #expect(items.map { $0["rank"] as? Int } == [1, 2, 3, 4, 5])
        #expect(items.allSatisfy { !($0["reasons"] as? [String] ?? []).isEmpty })
        // The same ranking one process computes from the same model and listings.
        let snapshot = try FeatureStore(t.service.core.store).snapshot()
        let expected = Recommender(model: try ModelFile.decode(GatewayTestCluster.modelFile), listings: snapshot.listings, k: 5)
            .recommend(snapshot.users.first { $0.id == 3 }!).items.map(\.listingID)
        #expect(items.map { $0["listing_id"] as? Int } == expected)

        // An ad-hoc profile is scored live over the listings that pass the hard filters.
        let (ps, pb) = try await t.post("/v1/recommendations", #"{"budget": 900, "region": "Mapo", "household_size": 3, "risk_appetite": 0.4, "k": 4, "region_only": true}"#)
        #expect(ps == 200, "\(pb)")
        let profileItems = json(pb)["items"] as? [[String: Any]] ?? []
        #expect(!profileItems.isEmpty)
        #expect(profileItems.allSatisfy { ($0["listing"] as? [String: Any])?["region"] as? String == "Mapo" })

        let cases: [(String, String?, Int, String, String?)] = [
            ("/v1/recommendations?user_id=99999", nil, 404, "unknown user 99999", "user_id"),
            ("/v1/recommendations?user_id=3&k=0", nil, 400, "k must be an integer from 1 to 100", "k"),
            ("/v1/recommendations?user_id=3&k=101", nil, 400, "k must be an integer from 1 to 100", "k"),
            ("/v1/recommendations", nil, 400, "user_id is required and must be a positive integer", "user_id"),
            ("/v1/recommendations", "{\"budget\": ", 400, "the body is not valid JSON", nil),
            ("/v1/recommendations", #"{"budget": "lots", "region": "Mapo"}"#, 400, "budget must be a number", "budget"),
            ("/v1/recommendations", #"{"region": "Mapo"}"#, 400, "budget is required", "budget"),
            ("/v1/recommendations", #"{"budget": 500, "region": "Atlantis"}"#, 400,
             "unknown region \"Atlantis\"; one of " + DemoMarket.regions.map(\.name).joined(separator: ", "), "region"),
            ("/v1/events", #"{"events": [{"event_id": "e1", "user_id": 3, "listing_id": 1, "type": "purchase"}]}"#, 400,
             "events[0].type \"purchase\" is not one of impression, click, save, contract", "events[0].type"),
            ("/v1/events", #"{"events": [{"event_id": "e1", "user_id": 3, "listing_id": "one", "type": "click"}]}"#, 400,
             "events.[0].listing_id must be a number", "events.[0].listing_id"),
        ]
        for (path, post, code, message, field) in cases {
            let (s, b) = post == nil ? try await t.get(path) : try await t.post(path, post!)
            #expect(s == code, "\(path) \(post ?? ""): \(b)")
            #expect(json(b)["error"] as? String == message, "\(path) \(post ?? ""): \(b)")
            #expect(json(b)["field"] as? String == field, "\(path) \(post ?? ""): \(b)")
        }
        let huge = #"{"budget": 500, "region": "Mapo", "pad": ""# + String(repeating: "x", count: 70_000) + #""}"#
        let (hs, hb) = try await t.post("/v1/recommendations", huge)
        #expect(hs == 413)
        #expect(json(hb)["error"] as? String == "the body is larger than 65536 bytes")

        #expect(try await t.get("/healthz").0 == 200)
        let metrics = try await t.get("/metrics").1
        #expect(metrics.contains(#"tower_gateway_requests_total{route="/v1/recommendations",status="404"} 1"#), "\(metrics.prefix(2000))")
        #expect(metrics.contains(#"tower_gateway_model_info{model="match",version="1"} 1"#))
        #expect(metrics.contains("tower_gateway_request_duration_seconds_bucket"))
        await t.stop()
    }

    @Test func withoutAChampionRecommendationsAre503ButTheGatewayIsAlive() async throws {
        let t = try await GatewayTestCluster(champion: false)
        try await t.startGateway()
        // Connected and refreshed at least once: still nothing to serve.
        try await Task.sleep(for: .milliseconds(600))
        let (s, b) = try await t.get("/v1/recommendations?user_id=3")
        #expect(s == 503)
        #expect((json(b)["error"] as? String ?? "").hasPrefix("no champion model is loaded yet"))
        #expect(try await t.get("/healthz").0 == 200)
        #expect(try await t.get("/readyz").0 == 503)
        // A champion appears: the gateway picks it up without a restart.
        t.promoteNewVersionSilently()
        try await t.waitReady(version: 1)
        #expect(try await t.get("/v1/recommendations?user_id=3").0 == 200)
        await t.stop()
    }

    @Test func aCertificateWithoutTheGatewayRoleIsRefusedByTheCoordinator() async throws {
        let t = try await GatewayTestCluster()
        let worker = try await ClusterClient.connect(host: "127.0.0.1", port: t.coordinatorPort, identity: try t.cluster.identity("w1"),
                                                     group: MultiThreadedEventLoopGroup.singleton)
        defer { worker.close() }
        for (body, name) in [(WireEnvelope.OneOf_Body.getServingSnapshot(.init()), "GetServingSnapshot"),
                             (.events(.with { $0.events = [.with { $0.eventID = "x"; $0.userID = 1; $0.listingID = 1; $0.type = "click" }] }), "EventBatch"),
                             (.getModel(.with { $0.name = "match" }), "GetModel")] {
            do {
                _ = try await worker.request(body)
                Issue.record("a worker certificate was allowed \(name)")
            } catch let WireError.remote(code, message) {
                #expect(code == .forbidden)
                #expect(message == "forbidden for role worker: a worker certificate may not send \(name)")
            }
        }
        // The gateway's own certificate may.
        try await t.startGateway()
        try await t.waitReady(version: 1)
        await t.stop()
    }

    @Test func eventsRoundTripAndQueueOnDiskWhileTheCoordinatorIsDown() async throws {
        let t = try await GatewayTestCluster()
        try await t.startGateway()
        try await t.waitReady(version: 1)
        let features = FeatureStore(t.service.core.store)
        let before = try features.counts().events

        func batch(_ range: Range<Int>) -> String {
            let events = range.map { #"{"event_id": "g\#($0)", "user_id": 3, "listing_id": 1, "type": "click"}"# }
            return #"{"events": ["# + events.joined(separator: ",") + "]}"
        }
        let (s1, b1) = try await t.post("/v1/events", batch(0..<20))
        #expect(s1 == 202, "\(b1)")
        #expect(json(b1)["delivered"] as? Bool == true)
        #expect(try features.counts().events == before + 20)
        // The same ids again are stored once.
        let (_, again) = try await t.post("/v1/events", batch(0..<20))
        #expect(json(again)["duplicates"] as? Int == 20)

        // Coordinator down: recommendations keep working, events go to disk.
        await t.service.shutdown()
        #expect(try await t.get("/v1/recommendations?user_id=3&k=3").0 == 200)
        var queued = 0
        for i in 0..<5 {
            let (s, b) = try await t.post("/v1/events", batch((100 + i * 10)..<(110 + i * 10)))
            #expect(s == 202, "\(b)")
            #expect(json(b)["delivered"] as? Bool == false)
            queued = json(b)["queued"] as? Int ?? 0
        }
        #expect(queued == 50)
        #expect(t.gateway!.link.queue.count == 50)
        let onDisk = try Data(contentsOf: t.queueDirectory.appendingPathComponent("events.queue")).count
        #expect(onDisk > 50 * 10)

        // Back: the queue drains in order, every event stored exactly once.
        try await t.restartCoordinator()
        try await waitUntil("the queue to drain", within: 60) { t.gateway!.link.queue.isEmpty }
        let stored = try await t.service.core.store.pool.read { db in
            try String.fetchAll(db, sql: "SELECT event_id FROM fs_event WHERE event_id LIKE 'g%' ORDER BY event_id")
        }
        #expect(stored.count == 70)
        #expect(Set(stored) == Set((0..<20).map { "g\($0)" } + (100..<150).map { "g\($0)" }))
        await t.stop()
    }
}

@Suite(.serialized, .timeLimit(.minutes(4))) struct GatewaySwapTests {
    /// A new score job or a promotion over unchanged listings swaps in on the listings
    /// already loaded (no blob fetched, no listing features recomputed); changed listings
    /// are loaded afresh.
    @Test func aScoreJobOrPromotionKeepsTheLoadedListingsAndChangedListingsReplaceThem() async throws {
        let t = try await GatewayTestCluster()
        try await t.startGateway()
        try await t.waitReady(version: 1)
        let link = t.gateway!.link
        let loaded = try #require(link.state.snapshot?.market)

        let stored = try t.storeScoreRun(job: "score-a", version: 1)
        try await waitUntil("the gateway to take up score-a") { link.state.snapshot?.scoreJob == "score-a" }
        #expect(link.state.snapshot?.market === loaded)
        let (status, body) = try await t.get("/v1/recommendations?user_id=3&k=4")
        #expect(status == 200, "\(body)")
        #expect(json(body)["source"] as? String == "precomputed")
        // Assembled from pre-encoded items, byte for byte what encoding the whole answer gives.
        let views = link.state.snapshot!.listingsByID
        let whole = GatewayRouter.RecommendationsResponse(user_id: 3, model: "match", model_version: 1, source: "precomputed", items: try #require(stored[3]).prefix(4).map {
            RecommendationItem(listing_id: $0.listingID, score: $0.score, rank: $0.rank, reasons: $0.reasons.map(\.phrase), listing: views[$0.listingID])
        })
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        #expect(body == String(decoding: try encoder.encode(whole), as: UTF8.self))
        let items = json(body)["items"] as? [[String: Any]] ?? []
        let expected = try #require(stored[3]).prefix(4)
        #expect(items.map { $0["listing_id"] as? Int } == expected.map(\.listingID))
        #expect(items.map { $0["rank"] as? Int } == [1, 2, 3, 4])
        #expect(items.map { $0["reasons"] as? [String] } == expected.map { $0.reasons.map(\.phrase) })
        // Once cached, the answer comes from the event loop's fast path: the same bytes, counted
        // in the same metric as the router's answer.
        let again = try await t.get("/v1/recommendations?k=4&user_id=3")
        #expect(again.0 == 200)
        #expect(again.1 == body)
        #expect(try await t.get("/metrics").1.contains(#"tower_gateway_requests_total{route="/v1/recommendations",status="200"} 2"#))
        // Pipelined on one connection, a stored answer waits for the live one asked before it.
        let port = try #require(t.gateway?.port_)
        let live = #"{"budget": 900, "region": "Mapo", "k": 2}"#
        let replies = try rawHTTP(port: port, """
            POST /v1/recommendations HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: \(live.utf8.count)\r\n\r\n\(live)\
            GET /v1/recommendations?user_id=3&k=4 HTTP/1.1\r\nHost: x\r\n\r\n
            """, until: ["\"source\":\"live\"", "\"source\":\"precomputed\""])
        let liveAt = try #require(replies.range(of: "\"source\":\"live\""), "\(replies)")
        let storedAt = try #require(replies.range(of: "\"source\":\"precomputed\""), "\(replies)")
        #expect(liveAt.lowerBound < storedAt.lowerBound, "responses out of request order: \(replies)")
        // More than the 10 stored per user: scored live.
        #expect(json(try await t.get("/v1/recommendations?user_id=3&k=11").1)["source"] as? String == "live")

        // A promotion: score-a was scored by v1, so v2 serves live, still on the same listings.
        let v2 = try t.promoteNewVersion()
        try await t.waitReady(version: v2)
        #expect(link.state.snapshot?.market === loaded)
        #expect(link.state.snapshot?.scoreJob == nil)
        #expect(json(try await t.get("/v1/recommendations?user_id=3&k=4").1)["source"] as? String == "live")

        // One listing's price changes: a new snapshot blob, loaded and prepared afresh.
        var changed = t.market
        changed.listings[0].price += 100
        let files = t.cluster.directory.appendingPathComponent("files-changed")
        try FeatureStoreFiles.write(changed, start: 1_780_272_000 + 86_400, to: files)
        let features = FeatureStore(t.service.core.store)
        let counts = try features.ingest(.listings, csv: [UInt8](try Data(contentsOf: files.appendingPathComponent("listings.csv"))), fileName: "listings.csv")
        #expect(counts.updated == 1)
        try await waitUntil("the gateway to load the changed listings") { link.state.snapshot?.snapshotSha256 != loaded.sha256 }
        let reloaded = try #require(link.state.snapshot?.market)
        #expect(reloaded !== loaded)
        let id = changed.listings[0].id
        let price = try #require(try features.snapshot().listings.first { $0.id == id }?.price)
        #expect(reloaded.listingsByID[id]?.price == price)
        #expect(loaded.listingsByID[id]?.price != price)
        #expect(link.state.snapshot?.modelVersion == v2)
        await t.stop()
    }
}

extension GatewayTestCluster {
    func promoteNewVersionSilently() { _ = try? promoteNewVersion() }
}

/// Writes `request` on one TCP connection to 127.0.0.1:`port` and reads until every
/// string of `until` has arrived, the peer closes, or 10 s pass.
func rawHTTP(port: Int, _ request: String, until: [String]) throws -> String {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    guard fd >= 0 else { throw POSIXError(.EIO) }
    defer { close(fd) }
    var timeout = timeval(tv_sec: 10, tv_usec: 0)
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_port = in_port_t(UInt16(port).bigEndian)
    address.sin_addr.s_addr = inet_addr("127.0.0.1")
    let connected = withUnsafePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
    }
    guard connected == 0 else { throw POSIXError(.ECONNREFUSED) }
    let bytes = Array(request.utf8)
    guard bytes.withUnsafeBytes({ write(fd, $0.baseAddress, $0.count) }) == bytes.count else { throw POSIXError(.EIO) }
    var received = [UInt8]()
    var chunk = [UInt8](repeating: 0, count: 65536)
    let deadline = Date().addingTimeInterval(10)
    while Date() < deadline {
        let text = String(decoding: received, as: UTF8.self)
        if until.allSatisfy(text.contains) { return text }
        let n = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
        if n <= 0 { break }
        received += chunk[0..<n]
    }
    return String(decoding: received, as: UTF8.self)
}

/// The fast path's query reading: only what it can answer exactly as the router would.
struct PrecomputedFastPathTests {
    @Test func readsOnlyPlainUserAndKQueries() {
        #expect(PrecomputedFastPath.query("/v1/recommendations?user_id=3") ?? (0, 0) == (3, 10))
        #expect(PrecomputedFastPath.query("/v1/recommendations?user_id=3&k=4") ?? (0, 0) == (3, 4))
        #expect(PrecomputedFastPath.query("/v1/recommendations?k=100&user_id=12") ?? (0, 0) == (12, 100))
        for path in ["/v1/recommendations", "/v1/recommendations?", "/v1/recommendations?user_id=", "/v1/recommendations?user_id=0",
                     "/v1/recommendations?user_id=-3", "/v1/recommendations?user_id=3&k=0", "/v1/recommendations?user_id=3&k=101",
                     "/v1/recommendations?user_id=3&k=4&debug=1", "/v1/recommendations?user_id=3&user_id=4", "/v1/recommendations?user_id=%33",
                     "/v1/recommendations?user_id=3&", "/v1/recommendations?user_id=9999999999", "/v1/recommendationsX?user_id=3",
                     "/v1/recommendations/?user_id=3", "/healthz"] {
            #expect(PrecomputedFastPath.query(path) == nil, "\(path)")
        }
    }
}
