// Data-scientist commands of `coordinator`: demo-data, train, evaluate.
// Thin shells over Learning's LearningWorkflow, so everything here is also available to
// workers and tests without the CLI.
import ArgumentParser
import Foundation
import Learning

/// Options naming the data: a market directory or a labelled CSV.
struct LearningDataOptions: ParsableArguments {
    @Option(name: .customLong("data"), help: "Market directory with users.csv, listings.csv, interactions.csv (from demo-data).")
    var directory: String?

    @Option(help: "Any labelled CSV with a header row (instead of --data).")
    var csv: String?

    @Option(help: "Label column of --csv (values 0/1).")
    var label: String = "label"

    @Option(help: "Group column of --csv (e.g. user id) for per-group ranking metrics.")
    var group: String?

    @Option(help: "Comma-separated columns of --csv to treat as categorical.")
    var categorical: String?

    @Option(name: .customLong("test-csv"), help: "Separate test CSV with the same columns as --csv.")
    var testCSV: String?

    @Option(help: "Comma-separated columns of --csv to ignore (identifiers, timestamps, free text).")
    var ignore: String?

    func validate() throws {
        if (directory == nil) == (csv == nil) {
            throw ValidationError("Give exactly one of --data DIR (market directory) or --csv FILE.")
        }
        if testCSV != nil && csv == nil { throw ValidationError("--test-csv needs --csv.") }
    }

    var source: TrainingSource {
        if let directory { return .market(directory: URL(fileURLWithPath: directory)) }
        func list(_ text: String?) -> [String] {
            (text ?? "").split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
        }
        return .csv(train: URL(fileURLWithPath: csv!), test: testCSV.map { URL(fileURLWithPath: $0) },
                    options: TabularCSVOptions(labelColumn: label, groupColumn: group, categoricalColumns: list(categorical),
                                               ignoredColumns: list(ignore)))
    }
}

struct DemoData: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "demo-data",
        abstract: "Write a deterministic synthetic real-estate market as CSV: for `train --data`, or (--feature-store) for `coordinator ingest`.",
        discussion: """
            Without --feature-store: users.csv, listings.csv and interactions.csv (day numbers), \
            what `coordinator train --data` and `submit hpo --data` read.
            With --feature-store: users.csv, listings.csv and events.csv in the columns \
            `coordinator ingest` reads, the events dated over the --days days up to now (so \
            `training-set build --days N` and `submit drift --window-hours 24` find them), and \
            new-listings.csv: --new-listings more listings, in no event yet, to ingest later.

            Examples:
              coordinator demo-data --out market --users 2000 --listings 5000 --interactions 100000 --seed 1
              coordinator demo-data --feature-store --out store --users 1000 --listings 800 --interactions 40000 --days 90 --seed 1
            """)

    @Option(help: "Output directory (created if missing).")
    var out: String

    @Flag(name: .customLong("feature-store"), help: "Write the feature store's files (users.csv, listings.csv, events.csv, new-listings.csv) for `coordinator ingest`.")
    var featureStore = false

    @Option(help: "Number of users.")
    var users: Int = 2_000

    @Option(help: "Number of listings.")
    var listings: Int = 5_000

    @Option(help: "Number of shown user × listing pairs (impressions) over --days days.")
    var interactions: Int = 100_000

    @Option(help: "Days the interactions span (default 180; with --feature-store 90, ending now).")
    var days: Int?

    @Option(name: .customLong("new-listings"), help: "With --feature-store: listings written to new-listings.csv instead of listings.csv, in no event.")
    var newListings: Int = 10

    @Option(help: "Random seed; the same seed writes the same files.")
    var seed: UInt64 = 42

    @Option(name: .customLong("drift-after-day"), help: "Shift users, listings and preferences after this day (0 to --days − 1).")
    var driftAfterDay: Int?

    var spanDays: Int { days ?? (featureStore ? 90 : 180) }

    func validate() throws {
        guard users > 0, listings > 0, interactions > 0 else {
            throw ValidationError("--users, --listings and --interactions must be positive.")
        }
        guard (1...3_650).contains(spanDays) else { throw ValidationError("--days must be from 1 to 3650, got \(spanDays)") }
        if let d = driftAfterDay, !(0..<spanDays).contains(d) { throw ValidationError("--drift-after-day must be within 0–\(spanDays - 1).") }
        if featureStore {
            guard (0..<listings).contains(newListings) else { throw ValidationError("--new-listings must be from 0 to \(listings - 1) (fewer than --listings), got \(newListings)") }
        }
    }

    func run() throws {
        let config = DemoMarket.Configuration(users: users, listings: listings, interactions: interactions, days: spanDays, seed: seed,
                                              driftAfterDay: driftAfterDay)
        let market = DemoMarket(config).generate()
        let dir = URL(fileURLWithPath: out)
        if featureStore { return try writeFeatureStore(market, to: dir) }
        try market.write(to: dir)
        let positives = market.interactions.filter { $0.event != .impression }.count
        let contracts = market.interactions.filter { $0.event == .contract }.count
        print("wrote \(dir.path): \(market.users.count) users, \(market.listings.count) listings, \(market.interactions.count) interactions")
        print(String(format: "positives (click or contract): %.2f%%, contracts: %d", 100 * Double(positives) / Double(max(1, market.interactions.count)), contracts))
        print("next: coordinator train --data \(dir.path) --out model.tower")
    }

    /// The market as the feature store's files, its last day ending now; the listings with
    /// the highest ids (and their interactions) held back as new-listings.csv.
    func writeFeatureStore(_ market: Market, to dir: URL) throws {
        let now = Date().timeIntervalSince1970.rounded(.down)
        let start = now - Double(spanDays) * 86_400
        let held = Set(market.listings.suffix(newListings).map(\.id))
        let existing = market.listings.filter { !held.contains($0.id) }
        let shown = market.interactions.filter { !held.contains($0.listingID) }
        do { try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true) }
        catch { throw fail(DataError.unreadable(file: dir.path, reason: "cannot create the directory: \(error.localizedDescription)")) }
        let stamp = Timestamp.format(start)
        let files: [(String, CSVWriter)] = [
            ("users.csv", FeatureStoreFiles.usersFile(market.users, stamp: stamp)),
            ("listings.csv", FeatureStoreFiles.listingsFile(existing, stamp: stamp)),
            ("events.csv", FeatureStoreFiles.eventsFile(shown, start: start)),
            // New listings become true and known when they are ingested.
            ("new-listings.csv", FeatureStoreFiles.listingsFile(market.listings.filter { held.contains($0.id) }, stamp: "")),
        ]
        for (name, file) in files { try file.write(to: dir.appendingPathComponent(name)) }
        let clicks = shown.filter { $0.event != .impression }.count
        let contracts = shown.filter { $0.event == .contract }.count
        print("wrote \(dir.path): \(market.users.count) users, \(existing.count) listings, \(shown.count + clicks + contracts) events (\(shown.count) impressions, \(clicks) clicks, \(contracts) contracts) from \(Timestamp.format(start)) to \(Timestamp.format(now)); \(held.count) new listings in new-listings.csv")
        let shownDir = out.count > 1 && out.hasSuffix("/") ? String(out.dropLast()) : out
        print("next: coordinator ingest users \(shownDir)/users.csv, then listings \(shownDir)/listings.csv and events \(shownDir)/events.csv")
    }
}

struct Train: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "train",
        abstract: "Train a gradient-boosted tree (or logistic) model and write a .tower model file.",
        discussion: """
        Market data (--data) is split by time: 70 % train, 10 % validation, 20 % test.
        A CSV (--csv) trains on its rows (last 10 % validate); --test-csv adds a test set.
        Parameters use LightGBM names, e.g. --params num_iterations=200,num_leaves=31,learning_rate=0.1

        Example:
          coordinator train --data market --out model.tower --plots plots/
        """)

    @OptionGroup var data: LearningDataOptions

    @Option(help: "Comma-separated key=value training parameters (LightGBM names).")
    var params: String = ""

    @Option(help: "Model kind: gbdt or logistic.")
    var model: String = "gbdt"

    @Option(help: "Where to write the model file.")
    var out: String

    @Option(name: .customLong("progress-every"), help: "Print progress every N iterations (0 = quiet).")
    var progressEvery: Int = 10

    @Option(help: "Directory for learning-curve, SHAP-summary and score-histogram SVGs.")
    var plots: String?

    @Option(name: .customLong("git-commit"), help: "Commit recorded in the model (default: TOWER_GIT_COMMIT or `git rev-parse HEAD`).")
    var gitCommit: String?

    func run() throws {
        let parameters = try BoostingParameters(parsing: params)
        let prepared = try LearningWorkflow.prepare(data.source)
        print("train \(prepared.train.rowCount) rows, valid \(prepared.valid?.rowCount ?? 0), test \(prepared.test?.rowCount ?? 0); \(prepared.train.featureCount) features")
        let commit = gitCommit ?? LearningCLI.gitCommit()
        let outcome = try LearningWorkflow.train(prepared, kind: model, parameters: parameters, gitCommit: commit,
                                                 progressEvery: progressEvery) { print($0) }
        let url = URL(fileURLWithPath: out)
        try ModelFile.save(outcome.model, to: url)
        if let r = outcome.validReport { print("valid: \(r.summary)") }
        if let r = outcome.testReport { print("test:  \(r.summary)") }
        if let plots {
            let files = try LearningWorkflow.writePlots(outcome.model, data: prepared.test ?? prepared.valid,
                                                        to: URL(fileURLWithPath: plots))
            print("plots: \(files.map(\.lastPathComponent).joined(separator: ", ")) in \(plots)")
        }
        print(String(format: "wrote %@ (%@, commit %@) in %.1fs", url.path, outcome.model.kindName, commit, outcome.seconds))
        print("next: coordinator evaluate --model \(url.path) \(data.directory.map { "--data \($0)" } ?? "--csv FILE")")
    }
}

struct Evaluate: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "evaluate",
        abstract: "Score labelled data with a model file and print AUC, log-loss, P@10 and NDCG@10.",
            discussion: "Example:\n  coordinator evaluate --model model.tower --data market --reasons 3")

    @Option(help: "Model file written by `coordinator train`.")
    var model: String

    @OptionGroup var data: LearningDataOptions

    @Flag(help: "With --data, evaluate on every interaction instead of the test window.")
    var all = false

    @Option(help: "Cut-off K of the ranking metrics.")
    var k: Int = 10

    @Option(help: "Print what raised and what lowered the score of this many rows, with their SHAP contributions in log-odds (tree models only).")
    var reasons: Int = 0

    func run() throws {
        let loaded = try ModelFile.load(from: URL(fileURLWithPath: model))
        let classifier = loaded.classifier
        let dataset = try LearningWorkflow.evaluationData(data.source, schema: classifier.schema, wholeMarket: all)
        guard dataset.hasLabels else {
            throw ValidationError("The data has no label column '\(data.label)'; give --label COLUMN.")
        }
        let report = try classifier.evaluate(dataset, k: k)
        func f(_ v: Double?) -> String { v.map { $0.isNaN ? "n/a" : String(format: "%.4f", $0) } ?? "n/a (no --group)" }
        print("model     \(model) (\(loaded.kindName))")
        print("data      \(Self.scoredRows(data.source, all: all))")
        print("rows      \(report.rows) (\(String(format: "%.2f", report.positiveRate * 100))% positive)")
        print("AUC       \(f(report.auc))")
        print("log-loss  \(f(report.logLoss))")
        print("Brier     \(f(report.brier))")
        print("P@\(k)      \(f(report.ranking?.precision))")
        print("NDCG@\(k)   \(f(report.ranking?.ndcg))")
        if reasons > 0, case let .gradientBoosted(m) = loaded {
            let aligned = try dataset.aligned(to: m.schema)
            for r in 0..<min(reasons, aligned.rowCount) {
                let row = aligned.row(r)
                let (raising, lowering) = TopReasons.both(m, row: row)
                func words(_ list: [RecommendationReason]) -> String {
                    list.isEmpty ? "nothing" : list.map { String(format: "%@ (%+.2f)", $0.phrase, $0.contribution) }.joined(separator: ", ")
                }
                print(String(format: "row %d  p=%.3f  raised by: %@; lowered by: %@", r, m.predictProbability(row: row), words(raising), words(lowering)))
            }
        }
    }

    /// Which rows `evaluate` scored, in the words of the split it used.
    static func scoredRows(_ source: TrainingSource, all: Bool) -> String {
        switch source {
        case let .market(directory):
            return all ? "every interaction of the market in \(directory.path)"
                : "the market's test window: its last 20% of interactions by time (after the 70% training and 10% validation windows `train` used); --all scores every interaction"
        case let .csv(file, _, _):
            return "every row of \(file.path)"
        }
    }
}

enum LearningCLI {
    /// The commit to record in a model: $TOWER_GIT_COMMIT, else `git rev-parse HEAD` in the
    /// working directory, else "unknown".
    static func gitCommit() -> String {
        if let env = ProcessInfo.processInfo.environment["TOWER_GIT_COMMIT"], !env.isEmpty { return env }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["git", "rev-parse", "HEAD"]
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = FileHandle.nullDevice
        do { try process.run() } catch { return "unknown" }
        process.waitUntilExit()
        let out = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
            .trimmingCharacters(in: .whitespacesAndNewlines)
        return process.terminationStatus == 0 && !out.isEmpty ? out : "unknown"
    }
}
