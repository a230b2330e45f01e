import ArgumentParser
import CoordinatorKit
import Foundation
import Learning
import Wire

extension Submit {
    struct Render: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Render a marketing short of each listing (1080×1920 H.264/AAC, on workers with ffmpeg); they wait for review in `coordinator shorts`.",
            discussion: "Example:\n  coordinator submit render --listing 17 --listing 42 --language en --follow")
        @OptionGroup var client: ClientOptions
        @Option(name: .customLong("listing"), help: "Listing id (repeat for several; one task each).") var listings: [UInt64] = []
        @Option(help: "Script and speech language: ko or en.") var language = "ko"
        @Option(help: "The job's name in `coordinator jobs`.") var name = "render"
        @Flag(help: "Show a progress bar until the job ends.") var follow = false

        func validate() throws {
            guard !listings.isEmpty else { throw ValidationError("name at least one listing: --listing ID") }
            guard ["ko", "en"].contains(language) else { throw ValidationError("--language must be ko or en, got \"\(language)\"") }
        }

        func run() async throws {
            var spec = WireRenderSpec()
            spec.listingIds = listings
            spec.language = language
            var job = WireJobSpec()
            job.kind = RenderKind.name
            job.name = name
            job.spec = try spec.serializedData()
            try await submitJob(job, client, follow: follow, nextWhenDone: "coordinator shorts")
        }
    }
}

struct Shorts: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Marketing shorts rendered by `submit render`.",
            discussion: "Example:\n  coordinator shorts get short-JOB-0 --out short.mp4",
                                                    subcommands: [List.self, Get.self, Approve.self], defaultSubcommand: List.self)

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List the shorts, newest first.",
            discussion: "Example:\n  coordinator shorts list")
        @OptionGroup var client: ClientOptions

        func run() async throws {
            try await withOperator(client) { c in
                let shorts = try await c.shorts()
                guard !shorts.isEmpty else { print("no shorts yet; `coordinator submit render --listing ID`"); return }
                print(Shorts.row("ID", "LISTING", "STATE", "DURATION", "SIZE"))
                for s in shorts {
                    print(Shorts.row(s.id, String(s.listingID), s.state, String(format: "%.1f s", s.durationSeconds), Shorts.size(s.bytes)))
                }
            }
        }
    }

    struct Get: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Show a short and, with --out, save its video.",
            discussion: "Example:\n  coordinator shorts get short-JOB-0 --out short.mp4")
        @OptionGroup var client: ClientOptions
        @Argument(help: "Short id (see `coordinator shorts`).") var id: String
        @Option(help: "Write the MP4 here.") var out: String?

        func run() async throws {
            try await withOperator(client) { c in
                let s = try await c.short(id)
                print("\(s.id): listing \(s.listingID), job \(s.jobID), \(s.state), \(s.language), \(String(format: "%.1f s", s.durationSeconds)), \(Shorts.size(s.bytes)), made \(Timestamp.format(Double(s.createdAtMs) / 1000))")
                if !s.reason.isEmpty { print("  reason: \(s.reason)") }
                Shorts.printPublication(s)
                for line in s.scriptLines { print("  | \(line)") }
                if let out {
                    let data = try await c.blob(s.sha256)
                    try data.write(to: URL(fileURLWithPath: out))
                    print("wrote \(out) (\(Shorts.size(UInt64(data.count))))")
                }
            }
        }
    }

    struct Approve: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Publish a reviewed short to the platforms in the coordinator's `shorts:` config (YouTube, Instagram Reels).",
            discussion: "A refusal or a spent quota keeps the short pending_upload with the reason; approving it again sends it only where it is not yet.\n\nExample:\n  coordinator shorts approve short-JOB-0 --dry-run")
        @OptionGroup var client: ClientOptions
        @Argument(help: "Short id (see `coordinator shorts`).") var id: String
        @Flag(help: "Say what would be published, and where, without publishing.") var dryRun = false

        func run() async throws {
            try await withOperator(client) { c in
                let s = try await c.approveShort(id, dryRun: dryRun)
                for action in s.actions { print(action) }
                if dryRun { print("nothing was published; run without --dry-run to publish"); return }
                print("\(s.id): \(s.state)")
                Shorts.printPublication(s)
                if s.state != "published" {
                    print("  the short stays pending: fix what the reason says (or wait for the quota), then `coordinator shorts approve \(s.id)` again")
                    throw ExitCode(3)
                }
            }
        }
    }

    static func printPublication(_ s: WireShortInfo) {
        if !s.youtubeVideoID.isEmpty { print("  YouTube video: \(s.youtubeVideoID)") }
        if !s.instagramMediaID.isEmpty { print("  Instagram media: \(s.instagramMediaID)") }
        if s.publishedAtMs > 0 { print("  published \(Timestamp.format(Double(s.publishedAtMs) / 1000)) (approved by \(s.approvedBy))") }
    }

    static func row(_ id: String, _ listing: String, _ state: String, _ duration: String, _ size: String) -> String {
        func pad(_ s: String, _ n: Int) -> String { s.count >= n ? s + " " : s + String(repeating: " ", count: n - s.count) }
        return pad(id, 36) + pad(listing, 9) + pad(state, 16) + pad(duration, 10) + size
    }

    static func size(_ bytes: UInt64) -> String {
        bytes >= 1 << 20 ? String(format: "%.1f MiB", Double(bytes) / 1_048_576) : String(format: "%.0f KiB", Double(bytes) / 1024)
    }
}
