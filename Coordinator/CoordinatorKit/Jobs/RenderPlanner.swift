import Foundation
import GRDB
import Learning
import Media
import Wire

/// Job kind `render`: one task per listing. The planner reads each listing's latest
/// version from the feature store, the reasons the model gave most often for it (from the
/// stored recommendations), and its photos from the photos directory (put into the blob
/// store; missing or unreadable files are skipped, and the worker makes a title card when
/// none is left). Each finished short is stored as a blob and a `short` row waiting for
/// review, in the same transaction as the task's result.
public struct RenderPlanner: JobPlanner {
    public let descriptor = RenderKind.erased
    /// Where the listings' `photos` paths are resolved; nil = `<data_dir>/photos`.
    public var photosDirectory: URL?

    public init(photosDirectory: URL? = nil) {
        self.photosDirectory = photosDirectory
    }

    /// Listings per job: each is a task and a video.
    public static let maxListings = 100
    /// Reasons put into the script.
    public static let maxReasons = 3
    /// A photo larger than this is skipped (a listing photo is a few MB at most).
    public static let maxPhotoBytes = 32 << 20

    func decode(_ data: Data) throws -> (spec: WireRenderSpec, language: ShortLanguage) {
        let spec: WireRenderSpec
        do { spec = try WireRenderSpec(serializedBytes: data) }
        catch { throw WireError.invalidArgument("render spec is not a valid RenderSpec message: \(error)") }
        guard !spec.listingIds.isEmpty else { throw WireError.invalidArgument("render.listing_ids: name at least one listing (--listing ID)") }
        guard spec.listingIds.count <= Self.maxListings else {
            throw WireError.invalidArgument("render.listing_ids: at most \(Self.maxListings) listings per job, got \(spec.listingIds.count)")
        }
        guard let language = ShortLanguage(rawValue: spec.language.isEmpty ? ShortLanguage.korean.rawValue : spec.language) else {
            throw WireError.invalidArgument("render.language must be ko or en, got \(spec.language)")
        }
        return (spec, language)
    }

    public func plan(spec data: Data, context: JobContext) throws -> [PlannedTask] {
        let (spec, language) = try decode(data)
        let features = context.features
        let photosRoot = (photosDirectory ?? context.dataDirectory.appendingPathComponent("photos", isDirectory: true)).standardizedFileURL
        // Check every listing before storing anything.
        var listings: [StoredListing] = []
        for raw in spec.listingIds {
            guard raw <= UInt64(Int.max), let stored = try features.listing(Int(raw)) else {
                throw WireError.invalidArgument("render: unknown listing \(raw)")
            }
            listings.append(stored)
        }
        return try listings.map { stored in
            let facts = try Self.facts(stored.listing, features: features)
            var photos: [String] = []
            for entry in stored.photos {
                guard let file = Self.resolve(entry, under: photosRoot),
                      let size = (try? FileManager.default.attributesOfItem(atPath: file.path))?[.size] as? Int, size <= Self.maxPhotoBytes,
                      let bytes = try? Data(contentsOf: file) else { continue }
                photos.append(try context.blobs.put(bytes))
            }
            var input = WireRenderInput()
            input.factsJson = try JSONEncoder().encode(facts)
            input.photoSha256 = photos
            input.language = language.rawValue
            return PlannedTask(input: try input.serializedData(), blobs: photos)
        }
    }

    /// What a short says about a listing: its latest facts and the reasons the model gave
    /// most often for it.
    static func facts(_ l: MarketListing, features: FeatureStore) throws -> ListingFacts {
        ListingFacts(id: l.id, price: l.price, areaM2: l.areaM2, rooms: l.rooms, region: l.region,
                     subwayDistanceM: l.subwayDistanceM, schoolScore: l.schoolScore, expectedYield: l.expectedYield,
                     newBuild: l.newBuild, reasons: try features.topReasons(listing: l.id, limit: Self.maxReasons))
    }

    /// A listing's photo path as a file under `root`; nil for URLs and for paths that
    /// would leave the photos directory.
    static func resolve(_ entry: String, under root: URL) -> URL? {
        let trimmed = entry.trimmingCharacters(in: .whitespaces)
        guard !trimmed.isEmpty, !trimmed.contains("://"), !trimmed.hasPrefix("/") else { return nil }
        let file = root.appendingPathComponent(trimmed).standardizedFileURL
        guard file.path.hasPrefix(root.path + "/") else { return nil }
        return file
    }

    public func summarize(spec: Data, results: [TaskResultRow]) throws -> Data { Data() }

    public func controller(for job: JobRow, existing: [TaskResultRow], context: JobContext) throws -> (any JobController)? {
        let (spec, language) = try decode(job.spec)
        return RenderController(job: job.id, language: language.rawValue, listings: spec.listingIds, blobs: context.blobs)
    }
}

/// Stores each finished short (its video as a blob, a row waiting for review) with its
/// result, and lists them in the summary.
final class RenderController: JobController {
    let job: String
    let language: String
    let listings: [UInt64]
    let blobs: BlobStore

    init(job: String, language: String, listings: [UInt64], blobs: BlobStore) {
        self.job = job
        self.language = language
        self.listings = listings
        self.blobs = blobs
    }

    static func shortID(job: String, index: Int) -> String { "short-\(job)-\(index)" }

    func progress(index: Int, step: Int, metrics: [String: Double]) -> Bool { true }

    func validate(output: Data) throws {
        let out = try WireRenderOutput(serializedBytes: output)
        guard !out.video.isEmpty else { throw WireError.invalidArgument("render output has an empty video") }
        guard out.durationSeconds.isFinite, out.durationSeconds > 0 else {
            throw WireError.invalidArgument("render output's duration \(out.durationSeconds) is not a positive number")
        }
    }

    /// The video is stored once, as a blob; the task's result keeps only its address.
    func completed(index: Int, output: Data) -> JobDirective {
        let job = self.job, language = self.language, blobs = self.blobs
        let listing = index < listings.count ? listings[index] : 0
        guard var out = try? WireRenderOutput(serializedBytes: output) else { return JobDirective() }  // validate(output:) refused it
        let video = out.video
        let sha = BlobStore.sha256Hex(video)
        out.video = Data()
        out.videoSha256 = sha
        out.videoBytes = UInt64(video.count)
        let script = out.scriptLines, duration = out.durationSeconds
        return JobDirective(record: { db in
            try blobs.putVerified(video, expected: sha)
            try ShortStore.save(ShortStore.Row(id: Self.shortID(job: job, index: index), listing: Int(listing), job: job, sha256: sha,
                                               bytes: video.count, duration: duration, state: ShortStore.pendingReview,
                                               language: language, script: script, createdAt: Date().timeIntervalSince1970,
                                               reason: ""), db)
        }, storedOutput: try? out.serializedData())
    }

    func failed(index: Int, error: String) -> JobDirective { JobDirective() }

    func finish(results: [TaskResultRow]) throws -> Data {
        var summary = WireRenderSummary()
        for row in results.sorted(by: { $0.index < $1.index }) where row.state == .done {
            summary.shortIds.append(Self.shortID(job: job, index: row.index))
        }
        summary.rendered = UInt32(summary.shortIds.count)
        return try summary.serializedData()
    }
}
