import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif
import GRDB
import Learning
import Logging
import Wire
import Yams

/// What the coordinator does about drift beyond the job's own spec (`drift:` in the YAML).
public struct DriftSettings: Sendable, Equatable, Decodable {
    public var thresholds = DriftThresholds()
    /// Drift reports are POSTed here as JSON (retried with backoff); empty = none.
    public var webhook = ""
    public var webhookAttempts = 5

    public init() {}

    enum CodingKeys: String, CodingKey { case thresholds, webhook, webhook_attempts }

    /// The thresholds' YAML keys, as Evidently names them in its docs.
    struct ThresholdKeys: Decodable {
        var small_sample_rows: Int?
        var p_value: Double?
        var wasserstein_normed: Double?
        var jensen_shannon: Double?
        var psi_moderate: Double?
        var psi_major: Double?
        var dataset_drift_share: Double?

        func apply(to t: inout DriftThresholds) throws {
            if let v = small_sample_rows { guard v >= 0 else { throw ConfigError.invalid("drift.thresholds.small_sample_rows must be ≥ 0") }; t.smallSampleRows = v }
            for (key, value) in [("p_value", p_value), ("wasserstein_normed", wasserstein_normed), ("jensen_shannon", jensen_shannon),
                                 ("psi_moderate", psi_moderate), ("psi_major", psi_major), ("dataset_drift_share", dataset_drift_share)] {
                if let v = value, !(v.isFinite && v >= 0) { throw ConfigError.invalid("drift.thresholds.\(key) must be a number ≥ 0, got \(v)") }
            }
            if let v = p_value { t.pValue = v }
            if let v = wasserstein_normed { t.wassersteinNormed = v }
            if let v = jensen_shannon { t.jensenShannon = v }
            if let v = psi_moderate { t.psiModerate = v }
            if let v = psi_major { t.psiMajor = v }
            if let v = dataset_drift_share { t.datasetDriftShare = v }
        }
    }

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        if let keys = try c.decodeIfPresent(ThresholdKeys.self, forKey: .thresholds) { try keys.apply(to: &thresholds) }
        webhook = try c.decodeIfPresent(String.self, forKey: .webhook) ?? ""
        webhookAttempts = try c.decodeIfPresent(Int.self, forKey: .webhook_attempts) ?? 5
        if !webhook.isEmpty {
            guard let url = URL(string: webhook), url.scheme == "http" || url.scheme == "https", url.host != nil else {
                throw ConfigError.invalidValue(key: "drift.webhook", value: webhook, expected: "an http:// or https:// URL")
            }
        }
    }

    /// A job's thresholds: the spec's YAML over these settings.
    func thresholds(overrides yaml: String) throws -> DriftThresholds {
        var t = thresholds
        guard !yaml.isEmpty else { return t }
        do { try YAMLDecoder().decode(ThresholdKeys.self, from: yaml).apply(to: &t) }
        catch { throw WireError.invalidArgument("drift.thresholds: \(error)") }
        return t
    }
}

/// Job kind `drift`: the reference (the champion's training set, or a named one) against
/// the current window (impressions of the last hours, featurized as of their time), for
/// every feature, the champion's score and the label rate. Bins come from the reference;
/// workers count row ranges; the controller merges the counts, decides, stores the report
/// with an SVG per drifted feature, alerts, and starts retraining when the data set drifts.
public struct DriftPlanner: JobPlanner {
    public let descriptor = DriftKind.erased
    public var settings: DriftSettings
    public var logger: Logger

    public init(settings: DriftSettings = DriftSettings(), logger: Logger = Logger(label: "tower.drift")) {
        self.settings = settings
        self.logger = logger
    }

    static let scoreColumn = "model_score"
    static let labelColumn = "label"

    func decode(_ data: Data) throws -> WireDriftSpec {
        do { return try WireDriftSpec(serializedBytes: data) }
        catch { throw WireError.invalidArgument("drift spec is not a valid DriftSpec message: \(error)") }
    }

    public func plan(spec data: Data, context: JobContext) throws -> [PlannedTask] {
        let spec = try decode(data)
        _ = try settings.thresholds(overrides: spec.thresholds)
        let model = spec.modelName.isEmpty ? ScorePlanner.defaultModel : spec.modelName
        let champion = try? context.registry.alias(model, "champion").flatMap { try context.registry.version(model, $0) }

        // The reference: named, or what the champion was trained on.
        var referenceSha = spec.referenceSha256
        if referenceSha.isEmpty {
            guard let champion, let run = champion.runID, let sha = try? context.tracking.run(run).tags["dataset_sha256"] else {
                throw WireError.invalidArgument("drift: no reference — \(model) has no champion trained by a search; pass reference_sha256 (a training set)")
            }
            referenceSha = sha
        }
        guard context.blobs.contains(referenceSha) else { throw WireError.notFound(what: "reference data set \(referenceSha.prefix(16))") }
        let reference = try Self.dataset(try context.blobs.read(referenceSha), context: context, sha: referenceSha)

        let now = Date().timeIntervalSince1970
        let to = spec.currentToMs == 0 ? now : Double(spec.currentToMs) / 1000
        let from = spec.currentFromMs == 0 ? to - Double(spec.windowHours == 0 ? 24 : spec.windowHours) * 3600 : Double(spec.currentFromMs) / 1000
        guard from < to else { throw WireError.invalidArgument("drift: the current window must start before it ends") }
        let current: Dataset
        do { current = try context.features.buildTrainingSet(TrainingSetDefinition(from: from, to: to, asOf: now)).dataset }
        catch let error as DataError { throw WireError.invalidArgument("drift: current window \(Timestamp.format(from)) to \(Timestamp.format(to)): \(error)") }

        let modelFile = try champion.map { try ModelFile.decode(try context.blobs.read($0.sha256)) }
        let (refFrame, specs) = try Self.frame(reference, model: modelFile)
        let (curFrame, _) = try Self.frame(current, model: modelFile)
        let binning = DriftBinning.fromReference(columns: refFrame.columns, specs: specs)
        let binningSha = try context.blobs.put(binning.encoded())
        let window = TrainingSetDefinition(from: from, to: to, asOf: now)
        let refSha = try context.blobs.put(TrainingSetFile.encode(refFrame, definition: window))
        let curSha = try context.blobs.put(TrainingSetFile.encode(curFrame, definition: window))
        let perTask = Int(spec.rowsPerTask == 0 ? 250_000 : spec.rowsPerTask)
        var tasks: [PlannedTask] = []
        for (side, frame, sha) in [(0, refFrame, refSha), (1, curFrame, curSha)] {
            for begin in stride(from: 0, to: frame.rowCount, by: perTask) {
                var input = WireDriftInput()
                input.binningSha256 = binningSha
                input.frameSha256 = sha
                input.side = UInt32(side)
                input.begin = UInt64(begin)
                input.end = UInt64(min(frame.rowCount, begin + perTask))
                tasks.append(PlannedTask(input: try input.serializedData(), blobs: [binningSha, sha]))
            }
        }
        return tasks
    }

    /// A training set or a market archive as one data set.
    static func dataset(_ bytes: Data, context: JobContext, sha: String) throws -> Dataset {
        if TrainingSetFile.isTrainingSet(bytes) { return try TrainingSetFile.decode(bytes).0 }
        let directory = context.dataDirectory.appendingPathComponent("datasets").appendingPathComponent(sha)
        try DatasetArchive.unpack(bytes, into: directory)
        return try LearningWorkflow.evaluationData(.market(directory: directory), schema: PairFeatures.schema, wholeMarket: true)
    }

    /// The columns drift is measured on: every feature, the model's score (when there is a
    /// model) and the label.
    static func frame(_ data: Dataset, model: TowerModel?) throws -> (Dataset, [DriftFeatureSpec]) {
        var features = data.schema.features
        var columns = data.columns
        if let model {
            features.append(Feature(name: scoreColumn))
            columns.append(try model.classifier.predictProbability(data).map { Float($0) })
        }
        features.append(Feature(name: labelColumn, kind: .binary))
        columns.append(data.hasLabels ? data.labels : [Float](repeating: .nan, count: data.rowCount))
        let specs = features.map { DriftFeatureSpec(name: $0.name, categorical: $0.kind != .numeric) }
        return (Dataset(schema: FeatureSchema(features), columns: columns, groups: data.groups, days: data.days), specs)
    }

    public func summarize(spec: Data, results: [TaskResultRow]) throws -> Data { Data() }

    public func controller(for job: JobRow, existing: [TaskResultRow], context: JobContext) throws -> (any JobController)? {
        let spec = try decode(job.spec)
        return DriftController(job: job.id, spec: spec, thresholds: try settings.thresholds(overrides: spec.thresholds),
                               settings: settings, context: context, logger: logger)
    }
}

/// Merges the shards' histograms when the job ends and acts on the report.
final class DriftController: JobController {
    let job: String
    let spec: WireDriftSpec
    let thresholds: DriftThresholds
    let settings: DriftSettings
    let context: JobContext
    let logger: Logger

    init(job: String, spec: WireDriftSpec, thresholds: DriftThresholds, settings: DriftSettings, context: JobContext, logger: Logger) {
        self.job = job
        self.spec = spec
        self.thresholds = thresholds
        self.settings = settings
        self.context = context
        self.logger = logger
    }

    func progress(index: Int, step: Int, metrics: [String: Double]) -> Bool { true }

    func validate(output: Data) throws {
        let out = try WireDriftOutput(serializedBytes: output)
        guard out.side <= 1 else { throw WireError.invalidArgument("drift output names side \(out.side)") }
        _ = try DriftHistograms(decoding: out.histograms)
    }

    func completed(index: Int, output: Data) -> JobDirective { JobDirective() }
    func failed(index: Int, error: String) -> JobDirective { JobDirective() }

    func finish(results: [TaskResultRow]) throws -> Data {
        guard results.allSatisfy({ $0.state == .done }) else { return Data() }
        // Merged in task order; counts add exactly whatever the order.
        var sides: [DriftHistograms?] = [nil, nil]
        let inputs = try context.store.taskInputs(job: job)
        var binningSha = ""
        for row in results.sorted(by: { $0.index < $1.index }) {
            let out = try WireDriftOutput(serializedBytes: row.output ?? Data())
            let h = try DriftHistograms(decoding: out.histograms)
            if sides[Int(out.side)] == nil { sides[Int(out.side)] = h } else { try sides[Int(out.side)]!.merge(h) }
            if binningSha.isEmpty, let bytes = inputs[row.index] { binningSha = try WireDriftInput(serializedBytes: bytes).binningSha256 }
        }
        guard let reference = sides[0], let current = sides[1] else {
            throw WireError.invalidArgument("drift job \(job) has no \(sides[0] == nil ? "reference" : "current") rows")
        }
        let binning = try DriftBinning(decoding: try context.blobs.read(binningSha))
        let report = DriftReport.compute(reference: reference, current: current, binning: binning, thresholds: thresholds)
        let reportID = "drift-\(job)"
        var svgs: [String: String] = [:]
        for (i, f) in report.features.enumerated() where f.drifted {
            svgs[f.name] = try context.blobs.put(Data(report.svg(feature: i, reference: reference, current: current, binning: binning).utf8))
        }
        var summary = WireDriftSummary()
        summary.datasetDrift = report.datasetDrift
        summary.driftedShare = report.driftedShare
        summary.driftedFeatures = report.features.filter(\.drifted).map(\.name)
        summary.features = UInt32(report.features.count)
        summary.referenceRows = reference.rowCount
        summary.currentRows = current.rowCount
        summary.reportID = reportID
        summary.lines = report.summaryLines.filter { line in summary.driftedFeatures.contains { line.hasPrefix($0 + ":") } }
        let json = DriftReportJSON.encode(report, reportID: reportID, job: job)
        logger.notice("drift report", metadata: ["report": "\(reportID)", "dataset_drift": "\(report.datasetDrift)",
                                                 "drifted": "\(summary.driftedFeatures.joined(separator: ","))"])
        if report.datasetDrift && spec.retrainOnDrift {
            if let pipelines = context.pipelines {
                do {
                    if let run = try pipelines.retrainForDrift(reportID: reportID, jobID: job) { summary.retrainingRun = run }
                } catch {
                    logger.error("drift could not start retraining", metadata: ["report": "\(reportID)", "error": "\(error)"])
                }
            } else {
                logger.warning("data set drift, but this coordinator runs no pipelines to retrain with", metadata: ["report": "\(reportID)"])
            }
        }
        // Stored once, naming the retraining run when drift started one.
        try DriftReportStore(context.store).save(id: reportID, job: job, summary: summary, json: json, svgs: svgs)
        if report.datasetDrift && !settings.webhook.isEmpty, let url = URL(string: settings.webhook) {
            DriftAlert.post(json: json, to: url, attempts: settings.webhookAttempts, logger: logger)
        }
        return try summary.serializedData()
    }
}

/// Stored drift reports (the report JSON and its SVG blobs), newest first.
public struct DriftReportStore: Sendable {
    let pool: DatabasePool

    public init(_ store: ClusterStore) { pool = store.pool }

    func save(id: String, job: String, summary: WireDriftSummary, json: String, svgs: [String: String]) throws {
        let svgJSON = String(decoding: try JSONSerialization.data(withJSONObject: svgs, options: [.sortedKeys]), as: UTF8.self)
        try pool.write { db in
            try db.execute(sql: "INSERT OR REPLACE INTO drift_report (id, job_id, summary, report, svgs, created_at) VALUES (?,?,?,?,?,?)",
                           arguments: [id, job, try summary.serializedData(), json, svgJSON, Date().timeIntervalSince1970])
        }
    }

    public func report(_ id: String) throws -> WireDriftReportInfo {
        try pool.read { db in
            let row: Row?
            if id.isEmpty {
                row = try Row.fetchOne(db, sql: "SELECT * FROM drift_report ORDER BY created_at DESC LIMIT 1")
            } else {
                row = try Row.fetchOne(db, sql: "SELECT * FROM drift_report WHERE id = ?", arguments: [id])
            }
            guard let row else {
                throw WireError.notFound(what: id.isEmpty ? "drift reports: none yet; run `coordinator submit drift`" : "drift report \(id)")
            }
            var info = WireDriftReportInfo()
            info.reportID = row["id"]
            info.jobID = row["job_id"]
            info.summary = try WireDriftSummary(serializedBytes: row["summary"] as Data)
            info.reportJson = row["report"]
            let svgs: String = row["svgs"]
            info.svgs = (try? JSONSerialization.jsonObject(with: Data(svgs.utf8)) as? [String: String]) ?? [:]
            info.createdAtMs = Int64((row["created_at"] as Double) * 1000)
            return info
        }
    }
}

/// The report as JSON for the store, the webhook and the API (numbers written in their
/// shortest form that reads back to the same double; a measure that does not apply is null).
struct DriftReportJSON: Codable, Equatable {
    struct Feature: Codable, Equatable {
        var name: String
        var categorical: Bool
        var method: String
        var score: Double?
        var threshold: Double
        var drifted: Bool
        var psi: Double?
        var psi_band: String
        var ks: Double?
        var ks_p_value: Double?
        var wasserstein_normed: Double?
        var jensen_shannon: Double?
        var chi_squared_p_value: Double?
        var reference_rows: UInt64
        var current_rows: UInt64
    }
    var report_id: String
    var job_id: String
    var dataset_drift: Bool
    var drifted_share: Double
    var features: [Feature]

    static func encode(_ r: DriftReport, reportID: String, job: String) -> String {
        func finite(_ v: Double?) -> Double? { v.flatMap { $0.isFinite ? $0 : nil } }
        let value = DriftReportJSON(report_id: reportID, job_id: job, dataset_drift: r.datasetDrift, drifted_share: r.driftedShare,
                                    features: r.features.map { f in
            Feature(name: f.name, categorical: f.categorical, method: f.method, score: finite(f.score), threshold: f.threshold,
                    drifted: f.drifted, psi: finite(f.psi), psi_band: f.psiBand, ks: finite(f.ks), ks_p_value: finite(f.ksPValue),
                    wasserstein_normed: finite(f.wassersteinNormed), jensen_shannon: finite(f.jensenShannon),
                    chi_squared_p_value: finite(f.chiSquaredPValue), reference_rows: f.referenceRows, current_rows: f.currentRows)
        })
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        return String(decoding: (try? encoder.encode(value)) ?? Data(), as: UTF8.self)
    }
}

/// POSTs a drift report to the operator's webhook off the job's path, retrying with
/// exponential backoff (1 s, 2 s, 4 s, …) on errors and non-2xx answers.
enum DriftAlert {
    static func post(json: String, to url: URL, attempts: Int, logger: Logger) {
        Task.detached {
            var delay = 1.0
            for attempt in 1...max(1, attempts) {
                var request = URLRequest(url: url, timeoutInterval: 10)
                request.httpMethod = "POST"
                request.setValue("application/json", forHTTPHeaderField: "Content-Type")
                request.httpBody = Data(json.utf8)
                do {
                    let (_, response) = try await URLSession.shared.data(for: request)
                    let status = (response as? HTTPURLResponse)?.statusCode ?? 0
                    if (200..<300).contains(status) {
                        logger.info("drift alert delivered", metadata: ["url": "\(url)", "attempt": "\(attempt)"])
                        return
                    }
                    logger.warning("drift alert refused", metadata: ["url": "\(url)", "status": "\(status)", "attempt": "\(attempt)"])
                } catch {
                    logger.warning("drift alert failed", metadata: ["url": "\(url)", "error": "\(error)", "attempt": "\(attempt)"])
                }
                if attempt < attempts { try? await Task.sleep(for: .seconds(delay)) }
                delay = min(delay * 2, 60)
            }
            logger.error("drift alert given up", metadata: ["url": "\(url)", "attempts": "\(attempts)"])
        }
    }
}
