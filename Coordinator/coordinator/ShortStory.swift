import CoordinatorKit
import Foundation
import Learning
import Media
import Wire

/// The demo's marketing short: new listings arrive with photos; ingest asks the
/// champion how wanted each one is, and queues a render job for the strong ones; a
/// worker with ffmpeg makes the verified 1080×1920 short, which waits for review.
struct ShortStory {
    let client: OperatorClient
    /// The coordinator's photos directory (`photos_dir`), where the listings file is.
    let files: URL
    let output: URL
    let market: Market

    func run() async throws -> String {
        print("9. marketing shorts: three new listings arrive with photos; ingest asks the champion how wanted each one is")
        let missing = RenderKind.requiredTools.filter { !Tools.available($0) }
        guard missing.isEmpty else {
            print("   skipped: \(missing.joined(separator: ", ")) not installed here (Deploy/install-deps.sh --media installs them)")
            return "no short (\(missing.joined(separator: ", ")) missing)"
        }
        // Stage the arrivals: copies of the listing today's champion wants most, of a
        // middling one and of the one it wants least, under new ids. Ingest does not know that; it ranks
        // them against every active listing itself.
        let detail = try await client.model("match")
        let version = try require(detail.aliases["champion"], "a champion of match")
        let sha = try require(detail.versions.first { $0.version == version }?.sha256, "match v\(version)")
        let model = try ModelFile.decode(try await client.blob(sha))
        let demand = ListingDemand.estimate(Recommender(model: model, listings: market.listings, k: 0, reasonCount: 0), users: market.users)
        let ranked = market.listings.sorted { (demand[$0.id] ?? 0, $1.id) > (demand[$1.id] ?? 0, $0.id) }
        let nextID = (market.listings.map(\.id).max() ?? 0) + 1
        var arrivals = [ranked[0], ranked[ranked.count / 2], ranked[ranked.count - 1]]
        for i in arrivals.indices { arrivals[i].id = nextID + i }
        for l in arrivals { _ = try await DemoPhotos.draw(listing: l.id, into: files.appendingPathComponent("photos")) }
        let staging = output.appendingPathComponent("new-listings")
        try FeatureStoreFiles.write(Market(users: [], listings: arrivals, interactions: []), start: Date().timeIntervalSince1970 - 60, to: staging)
        let csv = try Data(contentsOf: staging.appendingPathComponent("listings.csv"))
        print("   listings \(arrivals.map { String($0.id) }.joined(separator: ", ")), two photos each drawn with ffmpeg (\(files.appendingPathComponent("photos").path))")

        let r = try await client.ingest(table: "listings", csv: csv, fileName: "new-listings.csv")
        print("   coordinator ingest listings new-listings.csv → \(r.inserted) new")
        var jobID = r.renderJobID
        if jobID.isEmpty {
            // The ranking is the champion's; should it rank none high, ask as an operator would.
            print("   none ranked high enough (\(r.renderNote)); coordinator submit render --listing \(arrivals[0].id)")
            var spec = WireRenderSpec()
            spec.listingIds = [UInt64(arrivals[0].id)]
            jobID = try await client.submit(.with { $0.kind = RenderKind.name; $0.name = "demo-render"; $0.spec = try! spec.serializedData() }).jobID
        } else {
            print("   in the top 5% of predicted demand: \(r.renderListingIds.map(String.init).joined(separator: ", ")) → render job \(jobID) (needs a worker with ffmpeg)")
        }
        try await followJob(client, jobID)
        let summary = try WireRenderSummary(serializedBytes: try await client.job(jobID).summary)
        var line = "no short rendered"
        for id in summary.shortIds {
            let short = try await client.short(id)
            let file = output.appendingPathComponent("\(id).mp4")
            try await client.blob(short.sha256).write(to: file)
            print(String(format: "   %@: listing %llu, %.1f s, %@, %.1f MiB → %@", id, short.listingID, short.durationSeconds, short.language,
                         Double(short.bytes) / 1_048_576, file.path))
            if let first = short.scriptLines.first { print("     | \(first)") }
            if line == "no short rendered" { line = String(format: "a %.0f s short of listing %llu", short.durationSeconds, short.listingID) }
        }
        if let id = summary.shortIds.first {
            print("   it waits for review: coordinator shorts approve \(id) --dry-run")
            for action in try await client.approveShort(id, dryRun: true).actions { print("     \(action)") }
        }
        return line
    }
}
