import CoordinatorKit
import Foundation
import Learning
import Wire

/// The demo's story of the product loop on a market whose preferences shift on day 60
/// of 90: ingest, first champion, recommendations, drift on the shifted period,
/// drift-started retraining through the pipeline, the promotion decision, new
/// recommendations — with precision@10 before drift, after drift and after retraining.
/// Precision@10 is measured against the market's hidden preferences
/// (``DemoMarket/oraclePrecision``) for the users active in the last days, which no model
/// here trained on.
struct LoopStory {
    let client: OperatorClient
    let directory: URL
    let space: String

    static let days = 90
    /// The demo's files: what `coordinator ingest` reads, and the photos directory.
    static let filesDirectory = "feature-files"
    static var market: Market {
        DemoMarket(.init(users: 500, listings: 300, interactions: 60_000, days: Self.days, seed: 5, driftAfterDay: Self.driftDay)).generate()
    }
    static let driftDay = 60
    static let day = 86_400.0

    /// What the story measured; also written to loop.json for tests and tooling.
    struct Numbers: Codable {
        var precisionBeforeDrift: Double
        var precisionAfterDrift: Double
        var precisionAfterRetraining: Double
        var precisionTrainedOnShiftedData: Double
        var firstVersion: Int
        var retrainedVersion: Int
        var promoted: Bool
        var driftedFeatures: [String]
        var retrainingRun: String
        var completed: Bool
    }

    struct Outcome {
        var completed: Bool
        var line: String
        /// The champion's version at the end.
        var servedVersion: Int = 1
    }

    /// The pipeline drift starts: a training set of the last 30 days, a search, scoring.
    static func pipelines(space: URL) throws -> [PipelineDefinition] {
        [try PipelineDefinition(name: "retrain", steps: [
            PipelineStep(name: "training_set", kind: "training_set", retries: 1, options: ["days": "30"]),
            PipelineStep(name: "search", kind: "hpo", retries: 1, after: ["training_set"], options: ["experiment": "retrain", "space": space.path]),
            PipelineStep(name: "score", kind: "score", retries: 1, after: ["search"]),
        ])]
    }

    func run() async throws -> Outcome {
        let now = Date().timeIntervalSince1970
        let start = ((now / Self.day).rounded(.down) - Double(Self.days)) * Self.day
        func at(_ d: Int) -> Int64 { Int64((start + Double(d) * Self.day) * 1000) }

        print("5. feature store: a synthetic market whose buyers change on day \(Self.driftDay) of \(Self.days) (younger, bolder, bigger budgets)")
        let market = Self.market
        let files = directory.appendingPathComponent(Self.filesDirectory)
        try FeatureStoreFiles.write(market, start: start, to: files)
        for table in ["users", "listings", "events"] {
            let r = try await client.ingest(table: table, csv: try Data(contentsOf: files.appendingPathComponent("\(table).csv")), fileName: "\(table).csv")
            print("   coordinator ingest \(table) \(table).csv → \(r.rows) rows, \(r.inserted) new")
        }

        print("6. first champion: a point-in-time training set of days 0–\(Self.driftDay), then a search on the workers")
        let firstSet = try await client.buildTrainingSet(.with { $0.fromMs = at(0); $0.toMs = at(Self.driftDay) })
        print("   training set \(firstSet.sha256.prefix(12)): \(firstSet.rows) examples, \(firstSet.positives) positive")
        var search = WireHPOSpec()
        search.experiment = "demo-search"
        search.modelName = "match"
        search.space = space
        search.datasetSha256 = firstSet.sha256
        let searchJob = try await client.submit(.with { $0.kind = JobKind.hpo; $0.name = "demo-search"; $0.spec = try! search.serializedData() })
        try await followJob(client, searchJob.jobID)
        let first = try WireHPOSummary(serializedBytes: try await client.job(searchJob.jobID).summary)
        let scoreJob = try await client.submit(.with { $0.kind = ScoreKind.name; $0.name = "demo-score"; $0.spec = try! WireScoreSpec.with { $0.usersPerTask = 100 }.serializedData() })
        try await followJob(client, scoreJob.jobID)
        try await showRecommendations(user: market.users[0].id)

        // Measured locally, with the models the cluster registered, for the users active in
        // the last days (no model here trained on those days).
        let m0 = try await model("match", version: Int(first.version))
        let lastDays = Set(market.interactions.filter { $0.day >= Self.days - 6 }.map(\.userID))
        let users = market.users.filter { lastDays.contains($0.id) }
        func precision(_ m: TowerModel, drifted: Bool) -> Double {
            DemoMarket.oraclePrecision(m, users: users, listings: market.listings, drifted: drifted)
        }
        let before = precision(m0, drifted: false)

        print("7. drift: the champion's training set against the last 30 days, counted in shards on the workers")
        var drift = WireDriftSpec()
        drift.currentFromMs = at(Self.driftDay)
        drift.currentToMs = at(Self.days)
        drift.rowsPerTask = 2_000
        drift.retrainOnDrift = true
        let driftJob = try await client.submit(.with { $0.kind = DriftKind.name; $0.name = "demo-drift"; $0.spec = try! drift.serializedData() })
        try await followJob(client, driftJob.jobID)
        let driftSummary = try WireDriftSummary(serializedBytes: try await client.job(driftJob.jobID).summary)

        var numbers = Numbers(precisionBeforeDrift: before, precisionAfterDrift: .nan, precisionAfterRetraining: .nan,
                              precisionTrainedOnShiftedData: .nan, firstVersion: Int(first.version), retrainedVersion: 0, promoted: false,
                              driftedFeatures: driftSummary.driftedFeatures, retrainingRun: driftSummary.retrainingRun, completed: false)
        guard !driftSummary.retrainingRun.isEmpty else {
            print("   no retraining was started (no data set drift)")
            try write(numbers)
            return Outcome(completed: false, line: "drift was not detected")
        }

        print("8. retraining started by drift: pipeline run \(driftSummary.retrainingRun) (training set of the last 30 days → search → promotion → scoring)")
        let run = try await followRun(driftSummary.retrainingRun)
        guard run.state == "succeeded" else {
            print("   the run ended \(run.state): \(run.error)")
            try write(numbers)
            return Outcome(completed: false, line: "retraining \(run.state)")
        }
        let detail = try await client.model("match")
        let latest = try require(detail.versions.map(\.version).max(), "no versions")
        let decision = detail.decisions.last
        numbers.retrainedVersion = Int(latest)
        numbers.promoted = detail.aliases["champion"] == latest
        print("   promotion decision for match v\(latest): \(numbers.promoted ? "PROMOTED" : "declined")")
        for reason in decision?.reasons ?? [] { print("     - \(reason)") }
        try await showRecommendations(user: market.users[0].id)

        let retrainSet = try require(run.steps.first { $0.name == "training_set" }.map(\.output), "training set step has no output")
        let shifted = try TrainingSetFile.decode(try await client.blob(retrainSet)).0
        let m1 = try await model("match", version: Int(latest))
        let champion = try await model("match", version: Int(detail.aliases["champion"] ?? UInt32(first.version)))
        numbers.precisionAfterDrift = precision(m0, drifted: true)
        numbers.precisionAfterRetraining = precision(champion, drifted: true)
        // A model trained by hand directly on the shifted days the pipeline trained on (its
        // training split), with the learner's default settings: what the loop must match.
        _ = m1
        let split = try TimeSplit(shifted, trainFraction: 0.7, validFraction: 0.1)
        let direct = try LearningWorkflow.train(PreparedData(train: split.train, valid: nil, test: nil), parameters: BoostingParameters(),
                                                gitCommit: "demo", progressEvery: 0)
        numbers.precisionTrainedOnShiftedData = precision(direct.model, drifted: true)
        numbers.completed = true
        try write(numbers)
        print(String(format: "   P@10 against the buyers' real preferences, %d users active in the last days: before drift %.3f → after drift %.3f → after retraining %.3f (a model trained only on shifted data: %.3f)", users.count,
                     numbers.precisionBeforeDrift, numbers.precisionAfterDrift, numbers.precisionAfterRetraining, numbers.precisionTrainedOnShiftedData))
        return Outcome(completed: true, line: String(format: "P@10 %.3f before drift, %.3f after, %.3f after drift-started retraining (v%d %@)",
                                                     numbers.precisionBeforeDrift, numbers.precisionAfterDrift, numbers.precisionAfterRetraining,
                                                     numbers.retrainedVersion, numbers.promoted ? "promoted" : "declined"),
                       servedVersion: Int(detail.aliases["champion"] ?? 1))
    }

    func model(_ name: String, version: Int) async throws -> TowerModel {
        let detail = try await client.model(name)
        let sha = try require(detail.versions.first { Int($0.version) == version }?.sha256, "\(name) has no version \(version)")
        return try ModelFile.decode(try await client.blob(sha))
    }

    func showRecommendations(user: Int) async throws {
        let list = try await client.recommendations(user: UInt64(user))
        print("   coordinator recommendations \(user)  (\(list.model) v\(list.modelVersion), \(list.items.count) listings)")
        for item in list.items.prefix(3) {
            print(String(format: "     %d. listing %llu  score %.3f  — %@", item.rank, item.listingID, item.score, item.reasons.joined(separator: "; ")))
        }
    }

    /// Polls the pipeline run until it ends, printing each step as it changes.
    func followRun(_ id: String) async throws -> WirePipelineRunInfo {
        var seen: [String: String] = [:]
        for _ in 0..<3_000 {
            let runs = try await client.pipelineRuns("retrain", limit: 20)
            if let run = runs.first(where: { $0.runID == id }) {
                for step in run.steps where seen[step.name] != step.state {
                    seen[step.name] = step.state
                    print("   step \(step.name): \(step.state)\(step.jobID.isEmpty ? "" : " (job \(step.jobID))")\(step.error.isEmpty ? "" : " — \(step.error)")")
                }
                if ["succeeded", "failed", "cancelled"].contains(run.state) { return run }
            }
            try await Task.sleep(for: .milliseconds(200))
        }
        throw WireError.timedOut(what: "pipeline run \(id)")
    }

    func write(_ numbers: Numbers) throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        encoder.nonConformingFloatEncodingStrategy = .convertToString(positiveInfinity: "inf", negativeInfinity: "-inf", nan: "nan")
        try encoder.encode(numbers).write(to: directory.appendingPathComponent("loop.json"))
    }
}

/// `#require` for plain code: the value, or an error saying what was missing.
func require<T>(_ value: T?, _ what: @autoclosure () -> String) throws -> T {
    guard let value else { throw WireError.notFound(what: what()) }
    return value
}
