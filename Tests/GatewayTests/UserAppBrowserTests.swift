import Foundation
import GatewayKit
import Learning
import Testing
import Wire
@testable import CoordinatorKit

/// The user app in a real browser: Debian's Chromium, driven by chromedriver over W3C
/// WebDriver, against a gateway and coordinator on real sockets.
@Suite(.serialized, .timeLimit(.minutes(3)),
       .enabled(if: Browser.available, "needs chromium and chromium-driver (Deploy/install-deps.sh --test)"))
struct UserAppBrowserTests {
    /// Where the screenshot is kept for people to look at: .build/test-artifacts/.
    static let artifacts = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent(".build/test-artifacts")

    @Test func aUserPicksThemselvesSeesTheirCardsAndTheirClickReachesTheFeatureStore() async throws {
        let t = try await GatewayTestCluster()
        try await t.startGateway()
        try await t.waitReady(version: 1)
        let directory = t.cluster.directory.appendingPathComponent("browser")
        let browser = try await Browser.start(in: directory)
        defer { browser.killNow() }

        // What the page must show: the champion's top 12 (the page asks for 12) for user 3.
        let user = 3
        let snapshot = try FeatureStore(t.service.core.store).snapshot()
        let expected = Recommender(model: try ModelFile.decode(GatewayTestCluster.modelFile), listings: snapshot.listings, k: 12)
            .recommend(snapshot.users.first { $0.id == user }!).items
        #expect(expected.count == 12, "the market must give user \(user) a full page for this test to check one")

        try await browser.open(t.base + "/")
        #expect(try await browser.text(try await browser.element("#status")) == "model match v1, \(snapshot.listings.count) active listings")
        try await browser.click(try await browser.element("#user option[value=\"\(user)\"]"))
        try await browser.click(try await browser.element("#show"))
        try await waitUntil("the cards to appear") { !(try await browser.elements(".card")).isEmpty }

        let cards = try await browser.elements(".card")
        var shown: [Int] = []
        for card in cards { shown.append(Int(try await browser.attribute(card, "data-listing") ?? "") ?? -1) }
        #expect(shown == expected.map(\.listingID))
        #expect(try await browser.text(try await browser.element("#message")) == "live recommendations from match v1")
        let first = expected[0]
        let card = ".card[data-listing=\"\(first.listingID)\"]"
        #expect(try await browser.text(try await browser.element(card + " .why")) == first.reasons.map(\.phrase).joined(separator: " · "))
        let listing = try #require(snapshot.listings.first { $0.id == first.listingID })
        #expect(try await browser.text(try await browser.element(card + " .price")) == "\(Self.javaScriptNumber(listing.price))M KRW")

        let before = try FeatureStore(t.service.core.store).counts().events
        try await browser.click(try await browser.element(card + " button.act[data-type=\"click\"]"))
        let done = try await browser.element(card + " .done")
        try await waitUntil("the click to be acknowledged") { try await browser.text(done) != "" }
        #expect(try await browser.text(done) == "click recorded")

        // The click is in the coordinator's feature store, once, for this user and listing.
        #expect(try FeatureStore(t.service.core.store).counts().events == before + 1)
        let stored = try await t.service.core.store.pool.read { db in
            try String.fetchAll(db, sql: "SELECT user_id || ' ' || listing_id || ' ' || type FROM fs_event WHERE event_id LIKE 'web-%'")
        }
        #expect(stored == ["\(user) \(first.listingID) click"])

        let png = try await browser.screenshot()
        #expect(png.prefix(8) == Data([0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]), "the screenshot is not a PNG")
        try FileManager.default.createDirectory(at: Self.artifacts, withIntermediateDirectories: true)
        try png.write(to: Self.artifacts.appendingPathComponent("gateway-user-app.png"))

        await browser.quit()
        try await waitUntil("Chromium and chromedriver to exit", within: 10) {
            Browser.processes(mentioning: browser.profile.path).isEmpty && !browser.driver.isRunning
        }
        await t.stop()
    }

    /// How JavaScript's String(number) prints a price (no trailing ".0").
    static func javaScriptNumber(_ value: Double) -> String {
        value == value.rounded() && abs(value) < 1e15 ? String(Int(value)) : String(value)
    }
}
