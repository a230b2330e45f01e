import Foundation
import GRDB
import Learning
import Testing
import Wire
@testable import CoordinatorKit

/// The `render` planner's refusals and what it puts in a task, and the controller's
/// checks and stored rows, without workers.
@Suite struct RenderPlannerTests {
    struct Fixture {
        let dir: URL
        let store: ClusterStore
        let blobs: BlobStore
        let context: JobContext
        let listing: Int
    }

    func fixture() throws -> Fixture {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("render-planner-\(UUID().uuidString.prefix(8))")
        let blobs = try BlobStore(root: dir.appendingPathComponent("blobs"))
        let store = try ClusterStore(path: dir.appendingPathComponent("tower.sqlite").path)
        let context = JobContext(store: store, blobs: blobs, tracking: TrackingStore(store), registry: ModelRegistry(store), dataDirectory: dir)
        let market = DemoMarket(.init(users: 4, listings: 2, interactions: 10, days: 2, seed: 3)).generate()
        let files = dir.appendingPathComponent("files")
        try FeatureStoreFiles.write(market, start: Date().timeIntervalSince1970 - 2 * 86_400, to: files)
        let csv = try Data(contentsOf: files.appendingPathComponent("listings.csv"))
        _ = try FeatureStore(store).ingest(.listings, csv: Array(csv), fileName: "listings.csv")
        return Fixture(dir: dir, store: store, blobs: blobs, context: context, listing: market.listings[0].id)
    }

    func spec(_ ids: [UInt64], language: String = "") throws -> Data {
        try WireRenderSpec.with { $0.listingIds = ids; $0.language = language }.serializedData()
    }

    @Test func refusesBadSpecsNamingTheField() throws {
        let f = try fixture()
        let planner = RenderPlanner()
        #expect(throws: WireError.invalidArgument("render.listing_ids: name at least one listing (--listing ID)")) {
            try planner.plan(spec: try spec([]), context: f.context)
        }
        #expect(throws: WireError.invalidArgument("render.language must be ko or en, got fr")) {
            try planner.plan(spec: try spec([UInt64(f.listing)], language: "fr"), context: f.context)
        }
        #expect(throws: WireError.invalidArgument("render: unknown listing 424242")) {
            try planner.plan(spec: try spec([UInt64(f.listing), 424242]), context: f.context)
        }
    }

    @Test func oneTaskPerListingWithTheReadablePhotosAndTheTopReasons() throws {
        let f = try fixture()
        // Photo 1 exists, photo 2 does not: the task carries one photo blob.
        let photos = f.dir.appendingPathComponent("photos/photos")
        try FileManager.default.createDirectory(at: photos, withIntermediateDirectories: true)
        let jpeg = Data("not really a jpeg".utf8)
        try jpeg.write(to: photos.appendingPathComponent("\(f.listing)-1.jpg"))
        try f.store.pool.write { db in
            for (user, reasons) in [(1, "close to the subway\ngood schools"), (2, "close to the subway"), (3, "")] {
                try db.execute(sql: "INSERT INTO recommendation (job_id, user_id, rank, listing_id, score, reasons) VALUES ('s', ?, 1, ?, 0.5, ?)",
                               arguments: [user, f.listing, reasons])
            }
        }
        let tasks = try RenderPlanner().plan(spec: try spec([UInt64(f.listing)], language: "en"), context: f.context)
        #expect(tasks.count == 1)
        let input = try WireRenderInput(serializedBytes: tasks[0].input)
        #expect(input.language == "en")
        #expect(input.photoSha256.count == 1 && tasks[0].blobs == input.photoSha256)
        #expect(try f.blobs.read(input.photoSha256[0]) == jpeg)
        let facts = try #require(try JSONSerialization.jsonObject(with: input.factsJson) as? [String: Any])
        #expect(facts["id"] as? Int == f.listing)
        #expect(facts["reasons"] as? [String] == ["close to the subway", "good schools"])
    }

    @Test func photosDirComesFromTheConfigAndDefaultsToTheDataDirectory() throws {
        #expect(try CoordinatorSettings.load(yaml: "photos_dir: /srv/photos").photosDirectory == "/srv/photos")
        #expect(try CoordinatorSettings.load(yaml: "data_dir: /d").photosDirectory == nil)
    }

    @Test func photoPathsStayInsideThePhotosDirectory() {
        let root = URL(fileURLWithPath: "/data/photos")
        #expect(RenderPlanner.resolve("photos/1-1.jpg", under: root)?.path == "/data/photos/photos/1-1.jpg")
        #expect(RenderPlanner.resolve("../secret.jpg", under: root) == nil)
        #expect(RenderPlanner.resolve("a/../../x.jpg", under: root) == nil)
        #expect(RenderPlanner.resolve("/etc/passwd", under: root) == nil)
        #expect(RenderPlanner.resolve("https://example.com/1.jpg", under: root) == nil)
    }

    @Test func theControllerRefusesAnEmptyVideoAndStoresAShortWithTheResult() throws {
        let f = try fixture()
        let controller = RenderController(job: "job-r", language: "ko", listings: [UInt64(f.listing)], blobs: f.blobs)
        #expect(throws: WireError.self) { try controller.validate(output: try WireRenderOutput().serializedData()) }
        var out = WireRenderOutput()
        out.video = Data(repeating: 7, count: 1000)
        out.durationSeconds = 21.5
        out.scriptLines = ["첫 줄", "둘째 줄"]
        let output = try out.serializedData()
        try controller.validate(output: output)
        let directive = controller.completed(index: 0, output: output)
        try f.store.pool.write { db in try directive.record?(db) }
        let short = try ShortStore(f.store).short("short-job-r-0")
        #expect(short.listingID == UInt64(f.listing) && short.state == "pending_review" && short.bytes == 1000)
        #expect(short.scriptLines == ["첫 줄", "둘째 줄"] && short.language == "ko" && short.durationSeconds == 21.5)
        #expect(try f.blobs.read(short.sha256) == out.video)
        // Recorded twice (a result delivered again), still one row.
        try f.store.pool.write { db in try directive.record?(db) }
        #expect(try ShortStore(f.store).list().shorts.count == 1)
        #expect(throws: WireError.notFound(what: "short nope (see `coordinator shorts`)")) { try ShortStore(f.store).short("nope") }
    }
}
