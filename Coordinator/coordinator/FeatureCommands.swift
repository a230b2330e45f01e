import ArgumentParser
import CoordinatorKit
import Foundation
import Learning
import Wire

struct Ingest: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Load a CSV file into the feature store (users, listings or events).",
        discussion: """
            The file is uploaded to the coordinator and loaded in one transaction: a bad row \
            fails the whole file with its line and column, and nothing is written. Rows are \
            idempotent by id; a changed user or listing adds a version (the old one is kept).
              users.csv:    \(FeatureStoreFiles.userColumns.joined(separator: ","))
              listings.csv: \(FeatureStoreFiles.listingColumns.joined(separator: ","))
              events.csv:   \(FeatureStoreFiles.eventColumns.joined(separator: ",")) (type: impression, click, save, contract)
            updated_at (when the value became true) and written_at (when it became known; for \
            imports of history) are optional and default to now. Times are RFC 3339 or dates.

            Example:
              coordinator ingest users users.csv
            """)
    @OptionGroup var client: ClientOptions
    @Argument(help: "users, listings or events") var table: String
    @Argument(help: "The CSV file.") var file: String

    func validate() throws {
        guard FeatureStore.Table(rawValue: table) != nil else {
            throw ValidationError("unknown table \"\(table)\"; expected users, listings or events")
        }
    }

    func run() async throws {
        let data: Data
        do { data = try Data(contentsOf: URL(fileURLWithPath: file)) }
        catch { throw fail(DataError.unreadable(file: file, reason: error.localizedDescription)) }
        try await withOperator(client) { c in
            let r = try await c.ingest(table: table, csv: data, fileName: URL(fileURLWithPath: file).lastPathComponent)
            print("\(r.fileName): \(r.rows) rows into \(r.table): \(r.inserted) new, \(r.updated) updated, \(r.unchanged) unchanged")
            if !r.renderJobID.isEmpty {
                let ids = r.renderListingIds.map(String.init).joined(separator: ", ")
                print("shorts: listing\(r.renderListingIds.count == 1 ? "" : "s") \(ids) in the top of predicted demand; render job \(r.renderJobID) queued (coordinator job \(r.renderJobID) --follow, then coordinator shorts)")
            } else if !r.renderNote.isEmpty {
                print("shorts: none queued — \(r.renderNote)")
            }
        }
    }
}

struct Recommendations: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "A user's stored recommendations from the latest score job (or --job).",
            discussion: "Example:\n  coordinator recommendations 42")
    @OptionGroup var client: ClientOptions
    @Argument(help: "User id.") var user: UInt64
    @Option(help: "A particular score job.") var job = ""

    func run() async throws {
        try await withOperator(client) { c in
            let list = try await c.recommendations(user: user, job: job)
            let at = Timestamp.format(Double(list.scoredAtMs) / 1000)
            print("user \(list.userID): \(list.items.count) recommendations from \(list.jobID) (\(list.model) v\(list.modelVersion), scored \(at))")
            for item in list.items {
                let reasons = item.reasons.isEmpty ? "" : "  — " + item.reasons.joined(separator: "; ")
                print(String(format: "%3d. listing %-8llu score %.4f", item.rank, item.listingID, item.score) + reasons)
            }
        }
    }
}

struct TrainingSet: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "training-set",
        abstract: "Build a point-in-time training set from the feature store.",
        discussion: "Each impression in [--from, --to) (or in the last --days days) becomes an example with the user's and listing's values as they were known at its time; a click, save or contract within --label-window seconds makes it positive. Prints the set's SHA-256 for `submit hpo --training-set`.\n\nExamples:\n  coordinator training-set build --days 90\n  coordinator training-set build --from 2026-06-01 --to 2026-09-01",
        subcommands: [Build.self], defaultSubcommand: Build.self)

    struct Build: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Build the set of the impressions in [--from, --to) or of the last --days days; prints its SHA-256.",
                                                        discussion: "Examples:\n  coordinator training-set build --days 90\n  coordinator training-set build --from 2026-06-01 --to 2026-09-01")
        @OptionGroup var client: ClientOptions
        @Option(help: "First impression time (RFC 3339 or date); or give --days.") var from: String?
        @Option(help: "End of the window (exclusive; default: now).") var to: String?
        @Option(help: "The window is the last this many days up to now (instead of --from/--to).") var days: Int?
        @Option(name: .customLong("label-window"), help: "Seconds after an impression in which an action counts.") var labelWindow = 86_400

        func validate() throws {
            switch (from, days) {
            case (nil, nil): throw ValidationError("name the window: --days N (the last N days) or --from TIME [--to TIME]")
            case (.some, .some): throw ValidationError("give --days or --from/--to, not both")
            case (nil, .some) where to != nil: throw ValidationError("--to goes with --from; --days always ends now")
            default: break
            }
            if let days, !(1...3_650).contains(days) { throw ValidationError("--days must be from 1 to 3650, got \(days)") }
        }

        func run() async throws {
            var definition = WireTrainingSetDefinition()
            if let days {
                let now = Date().timeIntervalSince1970
                definition.fromMs = Int64((now - Double(days) * 86_400) * 1000)
                definition.toMs = Int64(now * 1000)
            } else if let from {
                guard let f = Timestamp.parse(from) else { throw ValidationError("--from: \"\(from)\" is not an RFC 3339 time or a date") }
                definition.fromMs = Int64(f * 1000)
            }
            if let to {
                guard let t = Timestamp.parse(to) else { throw ValidationError("--to: \"\(to)\" is not an RFC 3339 time or a date") }
                definition.toMs = Int64(t * 1000)
            }
            definition.labelWindowSeconds = try FlagValue.uint32(labelWindow, flag: "--label-window", allowed: 1...31_536_000)
            try await withOperator(client) { c in
                let info = try await c.buildTrainingSet(definition)
                print("training set \(info.sha256)")
                print("  \(info.rows) examples, \(info.positives) positive; impressions \(Timestamp.format(Double(info.definition.fromMs) / 1000)) to \(Timestamp.format(Double(info.definition.toMs) / 1000)), as of \(Timestamp.format(Double(info.definition.asOfMs) / 1000))")
                print("next: coordinator submit hpo --training-set \(info.sha256) --space Deploy/search-space.yaml --follow")
            }
        }
    }
}

extension Submit {
    struct Score: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Score every user against the active listings with the champion (or --version); top K per user are stored.",
            discussion: "Example:\n  coordinator submit score --k 10 --follow")
        @OptionGroup var client: ClientOptions
        @Option(name: .customLong("model"), help: "Registered model.") var modelName = "match"
        @Option(help: "Model version (default: the champion).") var version = 0
        @Option(help: "Recommendations per user.") var k = 10
        @Option(name: .customLong("budget-ceiling"), help: "Candidates cost at most budget × this (negative: no ceiling).") var budgetCeiling = 1.2
        @Flag(name: .customLong("region-only"), help: "Only listings in the user's preferred region.") var regionOnly = false
        @Option(name: .customLong("users-per-task"), help: "Users one task scores (the shard size).") var usersPerTask = 500
        @Option(help: "The job's name in `coordinator jobs`.") var name = "score"
        @Flag(help: "Show a progress bar until the job ends.") var follow = false

        func run() async throws {
            var spec = WireScoreSpec()
            spec.modelName = modelName
            spec.version = try FlagValue.uint32(version, flag: "--version", allowed: 0...Int(UInt32.max))
            spec.k = try FlagValue.uint32(k, flag: "--k", allowed: 1...100)
            spec.budgetCeiling = budgetCeiling
            spec.regionOnly = regionOnly
            spec.usersPerTask = try FlagValue.uint32(usersPerTask, flag: "--users-per-task", allowed: 1...1_000_000)
            var job = WireJobSpec()
            job.kind = ScoreKind.name
            job.name = name
            job.spec = try spec.serializedData()
            try await submitJob(job, client, follow: follow, nextWhenDone: "coordinator recommendations USER_ID")
        }
    }
}

extension Submit {
    struct Drift: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Measure drift of the current window against the champion's training set, sharded across workers.",
            discussion: "Example:\n  coordinator submit drift --window-hours 24 --follow")
        @OptionGroup var client: ClientOptions
        @Option(name: .customLong("model"), help: "Registered model whose champion's training set is the reference.") var modelName = "match"
        @Option(help: "A training set (SHA-256) as reference instead of the champion's.") var reference = ""
        @Option(name: .customLong("window-hours"), help: "The current window: impressions of the last this many hours.") var windowHours = 24
        @Option(help: "Start of the current window (RFC 3339 or date) instead of --window-hours.") var from: String?
        @Option(help: "End of the current window (default now).") var to: String?
        @Option(help: "Threshold overrides (YAML file, keys as under drift.thresholds in tower.yaml).") var thresholds: String?
        @Flag(name: .customLong("retrain"), inversion: .prefixedNo, help: "Start the retraining pipeline when the data set drifts.") var retrain = true
        @Option(name: .customLong("rows-per-task"), help: "Rows one task counts into histograms (the shard size).") var rowsPerTask = 250_000
        @Option(help: "The job's name in `coordinator jobs`.") var name = "drift"
        @Flag(help: "Show a progress bar until the job ends.") var follow = false

        func run() async throws {
            var spec = WireDriftSpec()
            spec.modelName = modelName
            spec.referenceSha256 = reference
            spec.windowHours = try FlagValue.uint32(windowHours, flag: "--window-hours", allowed: 1...100_000)
            if let from {
                guard let t = Timestamp.parse(from) else { throw ValidationError("--from: \"\(from)\" is not an RFC 3339 time or a date") }
                spec.currentFromMs = Int64(t * 1000)
            }
            if let to {
                guard let t = Timestamp.parse(to) else { throw ValidationError("--to: \"\(to)\" is not an RFC 3339 time or a date") }
                spec.currentToMs = Int64(t * 1000)
            }
            if let thresholds {
                do { spec.thresholds = try String(contentsOfFile: thresholds, encoding: .utf8) }
                catch { throw fail(DataError.unreadable(file: thresholds, reason: error.localizedDescription)) }
            }
            spec.retrainOnDrift = retrain
            spec.rowsPerTask = try FlagValue.uint32(rowsPerTask, flag: "--rows-per-task", allowed: 1_000...10_000_000)
            var job = WireJobSpec()
            job.kind = DriftKind.name
            job.name = name
            job.spec = try spec.serializedData()
            try await submitJob(job, client, follow: follow, nextWhenDone: "coordinator drift report --svg-dir ./drift")
        }
    }
}

struct Drift: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Drift reports.",
            discussion: "Example:\n  coordinator drift report --svg-dir drift/", subcommands: [Report.self], defaultSubcommand: Report.self)

    struct Report: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Show a drift report (default: the latest); --svg-dir saves the drifted features' plots.",
            discussion: "Example:\n  coordinator drift report --svg-dir drift/")
        @OptionGroup var client: ClientOptions
        @Argument(help: "The report's id (from the drift job's summary); empty for the latest.") var id = ""
        @Option(name: .customLong("svg-dir"), help: "Write one SVG per drifted feature (reference vs current) into this directory.") var svgDirectory: String?
        @Flag(help: "Print the whole report as JSON.") var json = false

        func run() async throws {
            try await withOperator(client) { c in
                let report = try await c.driftReport(id)
                if json { print(report.reportJson); return }
                print("report \(report.reportID) from job \(report.jobID), \(Timestamp.format(Double(report.createdAtMs) / 1000))")
                for line in DriftKind.describe(report.summary) { print("  \(line)") }
                if let svgDirectory {
                    let dir = URL(fileURLWithPath: svgDirectory)
                    try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
                    for (feature, sha) in report.svgs.sorted(by: { $0.key < $1.key }) {
                        let file = dir.appendingPathComponent("\(feature).svg")
                        try await c.blob(sha).write(to: file)
                        print("  wrote \(file.path)")
                    }
                }
            }
        }
    }
}

/// Submits a job, then follows it (printing what to run next when it is done) or says how
/// to follow it.
func submitJob(_ job: WireJobSpec, _ client: ClientOptions, follow: Bool, nextWhenDone: String) async throws {
    try await withOperator(client) { c in
        let accepted = try await c.submit(job)
        print("submitted \(accepted.jobID) (\(accepted.tasks) tasks)")
        if follow {
            try await followJob(c, accepted.jobID)
            print("next: \(nextWhenDone)")
        } else {
            print("next: coordinator job \(accepted.jobID) --follow")
        }
    }
}
