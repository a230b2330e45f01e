import Foundation
import Learning
import Logging
import Wire

/// The one way a candidate model reaches the registry, whichever path produced it (a
/// search, the nightly pipeline, retraining after drift): evaluate it and the current
/// champion on the same holdout → register the candidate → let the policy decide → move
/// the alias by compare-and-set → publish (subscribers hear of every move).
///
/// Guarantees: one version per source (a job that runs this again after a crash gets the
/// version it registered, and the decision it recorded, not new ones); a decision is
/// recorded whether or not the alias moves, with its numbers and reasons; two candidates
/// racing for the alias cannot both win — the loser's decision says so.
public struct PromotionService: Sendable {
    public struct Candidate: Sendable {
        public var model: String
        public var modelFile: Data
        public var runID: String?
        /// Metrics known before evaluation (e.g. validation), kept with the version.
        public var metrics: [String: Double]
        /// What produced it (a job id): registration is idempotent per source.
        public var source: String
        public var description: String
        public var alias = "champion"

        public init(model: String, modelFile: Data, runID: String?, metrics: [String: Double], source: String, description: String) {
            self.model = model
            self.modelFile = modelFile
            self.runID = runID
            self.metrics = metrics
            self.source = source
            self.description = description
        }
    }

    public struct Outcome: Sendable, Equatable {
        public var version: Int
        public var promoted: Bool
        public var reasons: [String]
    }

    let registry: ModelRegistry
    let blobs: BlobStore
    let logger: Logger

    public init(registry: ModelRegistry, blobs: BlobStore, logger: Logger) {
        self.registry = registry
        self.blobs = blobs
        self.logger = logger
    }

    public func consider(_ candidate: Candidate, holdout: Dataset, policy: PromotionPolicy) throws -> Outcome {
        let candidateModel = try ModelFile.decode(candidate.modelFile)
        let candidatePredictions = try Self.predictions(candidateModel, on: holdout)
        let report = EvaluationReport(probabilities: candidatePredictions.probabilities, labels: candidatePredictions.labels,
                                      groups: candidatePredictions.groups)
        var metrics = report.dictionary.reduce(into: [String: Double]()) { $0[MetricName.holdout($1.key)] = $1.value }
        for (k, v) in candidate.metrics { metrics[k] = v }
        let sha = try blobs.put(candidate.modelFile)
        let version = try registry.registerVersion(model: candidate.model, runID: candidate.runID, sha256: sha, metrics: metrics,
                                                   description: candidate.description, sourceJob: candidate.source)
        let actor = "policy:\(candidate.source)"
        // Resumed after a crash that came after the decision: report it, decide nothing twice.
        if let recorded = try registry.decision(model: candidate.model, version: version, actor: actor) {
            return Outcome(version: version, promoted: recorded.promoted, reasons: recorded.reasons)
        }
        let championVersion = try registry.alias(candidate.model, candidate.alias)
        var championPredictions: HoldoutPredictions?
        if let championVersion {
            let row = try registry.version(candidate.model, championVersion)
            championPredictions = try Self.predictions(try ModelFile.decode(try blobs.read(row.sha256)), on: holdout)
        }
        let decision = policy.decide(candidate: candidatePredictions, champion: championPredictions)
        var reasons = decision.reasons
        if championVersion == nil { reasons.insert("no champion yet: absolute floors apply", at: 0) }
        do {
            try registry.decide(model: candidate.model, alias: candidate.alias, version: version, expected: championVersion,
                                promoted: decision.promoted, action: "auto", reasons: reasons, numbers: decision.numbers, actor: actor)
            logger.info("promotion decision", metadata: ["model": "\(candidate.model)", "version": "\(version)", "promoted": "\(decision.promoted)"])
            return Outcome(version: version, promoted: decision.promoted, reasons: reasons)
        } catch let error as RegistryError {
            // Another promotion moved the alias first: recorded as declined, with why.
            let lost = reasons + ["not promoted: \(error)"]
            try registry.decide(model: candidate.model, alias: candidate.alias, version: version, expected: championVersion,
                                promoted: false, action: "auto", reasons: lost, numbers: decision.numbers, actor: actor)
            return Outcome(version: version, promoted: false, reasons: lost)
        }
    }

    /// A model's holdout predictions with users as groups and region / price band segments.
    static func predictions(_ model: TowerModel, on data: Dataset) throws -> HoldoutPredictions {
        let classifier = model.classifier
        let aligned = try data.aligned(to: classifier.schema)
        let probabilities = try classifier.predictProbability(aligned)
        var segments: [String: [String?]] = [:]
        if let r = data.schema.index(of: "region") {
            let names = data.schema.features[r].categories
            segments["region"] = data.columns[r].map { v in v.isNaN ? nil : (Int(v) < names.count ? names[Int(v)] : "\(Int(v))") }
        }
        if let p = data.schema.index(of: "price") {
            let sorted = data.columns[p].filter { !$0.isNaN }.sorted()
            if !sorted.isEmpty {
                let low = sorted[sorted.count / 3], high = sorted[2 * sorted.count / 3]
                segments["price_band"] = data.columns[p].map { v in v.isNaN ? nil : (v < low ? "low" : (v < high ? "mid" : "high")) }
            }
        }
        return try HoldoutPredictions(probabilities: probabilities, labels: data.labels,
                                      groups: data.groups ?? Array(0..<data.rowCount), segments: segments)
    }
}
