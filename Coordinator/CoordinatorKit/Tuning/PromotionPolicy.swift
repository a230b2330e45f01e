import Foundation
import Learning
import Yams

/// Why a promotion policy was refused; each case names the field (`promotion.margin`,
/// `promotion.guardrails.ndcg_at_5`) and what would be accepted.
public enum PromotionPolicyError: Error, Equatable, CustomStringConvertible, Sendable {
    case unknownKey(path: String, known: [String])
    case invalidValue(path: String, value: String, expected: String)
    case wrongType(path: String, expected: String)
    case syntax(String)

    public var description: String {
        switch self {
        case let .unknownKey(path, known):
            return "\(path): unknown key. Known keys here: \(known.joined(separator: ", "))."
        case let .invalidValue(path, value, expected):
            return "\(path): '\(value)' is invalid: expected \(expected)."
        case let .wrongType(path, expected):
            return "\(path): expected \(expected)."
        case let .syntax(problem):
            return "promotion: cannot read the policy as YAML or JSON: \(problem)"
        }
    }
}

/// The outcome of putting a candidate through a `PromotionPolicy`, ready to be recorded.
public struct PromotionDecision: Sendable, Equatable, Codable {
    public var promoted: Bool
    /// One sentence per check, passed or failed, in the order the checks ran; the failed
    /// ones say what failed and by how much.
    public var reasons: [String]
    /// The numbers behind the reasons (AUCs, differences, interval bounds, per-segment
    /// AUCs), keyed for the run record, e.g. `auc_diff_ci_low`, `segment.region=3.candidate_auc`.
    /// Only finite numbers are kept (JSON and SQL have no NaN); an undefined metric is
    /// explained in `reasons` instead.
    public var numbers: [String: Double]

    public init(promoted: Bool, reasons: [String], numbers: [String: Double]) {
        self.promoted = promoted
        self.reasons = reasons
        self.numbers = numbers.filter { $0.value.isFinite }
    }
}

/// When a candidate model may replace the champion.
///
/// With a champion, the candidate is promoted only if all of these hold:
/// - the holdout has at least `minHoldoutRows` rows, and both models scored the same rows
///   (same labels and users in the same order);
/// - the lower bound of the `confidence`-level percentile interval of the AUC difference
///   (candidate − champion), from a paired bootstrap over users, is at least `margin`;
/// - no guardrail metric is worse than the champion's by more than its tolerance (point
///   estimates on the whole holdout; log-loss is worse when higher);
/// - in every segment (each value of each segment dimension) with at least
///   `minSegmentRows` rows and both classes, the candidate's AUC is not below the
///   champion's by more than `segmentTolerance`.
///
/// Without a champion, the row minimum and the absolute `floors` apply (point estimates;
/// `logloss` is a ceiling, the others minimums).
///
/// Resampling is over users, not rows, because a user's rows are correlated (one person,
/// one session of listings); resampling rows would understate the variance and promote on
/// noise. The same resampled users are used for both models (paired), which cancels the
/// between-user variance both share. Guarantees: the decision is a pure function of the
/// two prediction sets and the policy (including `seed`); the same inputs always give the
/// same decision, whatever the number of threads.
public struct PromotionPolicy: Sendable, Equatable, Codable {
    /// Required AUC gain at the interval's lower bound.
    public var margin = 0.002
    /// Two-sided level of the bootstrap interval, in (0, 1).
    public var confidence = 0.95
    public var bootstrapSamples = 1000
    public var minHoldoutRows = 1000
    /// Metric → largest tolerated worsening (absolute). Keys: precision_at_10, ndcg_at_10,
    /// logloss. A `guardrails` section in the config replaces this whole set: metrics it
    /// does not list are not guarded.
    public var guardrails: [String: Double] = [Self.precisionKey: 0.01, Self.ndcgKey: 0.01, Self.logLossKey: 0.01]
    public var segmentTolerance = 0.02
    public var minSegmentRows = 200
    /// Segment dimensions to check; nil checks every dimension the holdout carries.
    public var segments: [String]?
    /// Metric → absolute bound when there is no champion. Keys: auc, precision_at_10,
    /// ndcg_at_10 (minimums), logloss (maximum). A `floors` section replaces this whole set.
    public var floors: [String: Double] = [Self.aucKey: 0.6]
    public var seed: UInt64 = 0

    public static let guardrailMetrics = [precisionKey, ndcgKey, logLossKey]
    public static let floorMetrics = [aucKey, precisionKey, ndcgKey, logLossKey]
    /// Cut-off of the ranking metrics.
    static let rankingK = 10
    // The policy's metric keys: the learning library's metric names, spelled as
    // identifiers since they are typed in tower.yaml (precision_at_10).
    static let aucKey = MetricName.identifier(MetricName.auc)
    static let logLossKey = MetricName.identifier(MetricName.logLoss)
    static let precisionKey = MetricName.identifier(MetricName.precisionAt(rankingK))
    static let ndcgKey = MetricName.identifier(MetricName.ndcgAt(rankingK))

    public init() {}

    enum CodingKeys: String, CodingKey, CaseIterable {
        case margin, confidence, guardrails, segments, floors, seed
        case bootstrapSamples = "bootstrap_samples"
        case minHoldoutRows = "min_holdout_rows"
        case segmentTolerance = "segment_tolerance"
        case minSegmentRows = "min_segment_rows"
    }

    private struct AnyKey: CodingKey {
        var stringValue: String
        var intValue: Int? { nil }
        init(stringValue: String) { self.stringValue = stringValue }
        init?(intValue: Int) { nil }
    }

    /// Decodes from the snake_case keys of the config file; unknown keys are refused
    /// rather than ignored, since a misspelt `margn` would otherwise silently leave the
    /// default in force. Validates like `validate()`.
    public init(from decoder: Decoder) throws {
        let any = try decoder.container(keyedBy: AnyKey.self)
        let prefix = (["promotion"] + decoder.codingPath.map(\.stringValue)).joined(separator: ".")
        for key in any.allKeys where CodingKeys(stringValue: key.stringValue) == nil {
            throw PromotionPolicyError.unknownKey(path: "\(prefix).\(key.stringValue)", known: CodingKeys.allCases.map(\.stringValue))
        }
        let c = try decoder.container(keyedBy: CodingKeys.self)
        margin = try c.decodeIfPresent(Double.self, forKey: .margin) ?? margin
        confidence = try c.decodeIfPresent(Double.self, forKey: .confidence) ?? confidence
        bootstrapSamples = try c.decodeIfPresent(Int.self, forKey: .bootstrapSamples) ?? bootstrapSamples
        minHoldoutRows = try c.decodeIfPresent(Int.self, forKey: .minHoldoutRows) ?? minHoldoutRows
        guardrails = try c.decodeIfPresent([String: Double].self, forKey: .guardrails) ?? guardrails
        segmentTolerance = try c.decodeIfPresent(Double.self, forKey: .segmentTolerance) ?? segmentTolerance
        minSegmentRows = try c.decodeIfPresent(Int.self, forKey: .minSegmentRows) ?? minSegmentRows
        segments = try c.decodeIfPresent([String].self, forKey: .segments)
        floors = try c.decodeIfPresent([String: Double].self, forKey: .floors) ?? floors
        seed = try c.decodeIfPresent(UInt64.self, forKey: .seed) ?? seed
        try validate()
    }

    /// Parses a policy from YAML or JSON (the `promotion:` section of the config, or a
    /// file of its own). Missing keys keep their defaults.
    public init(yaml text: String) throws {
        do {
            self = try YAMLDecoder().decode(PromotionPolicy.self, from: text)
        } catch {
            throw Self.explain(error)
        }
    }

    /// Turns a decoding failure into the policy error it stands for: the decoder wraps
    /// errors thrown by `init(from:)`, and its own type errors name Swift types rather
    /// than what to write in the file. Use it when decoding a policy inside a larger
    /// config document, too.
    public static func explain(_ error: Error) -> PromotionPolicyError {
        switch error {
        case let e as PromotionPolicyError:
            return e
        case let DecodingError.dataCorrupted(context):
            if let inner = context.underlyingError { return explain(inner) }
            return .syntax(context.debugDescription)
        case let DecodingError.typeMismatch(type, context), let DecodingError.valueNotFound(type, context):
            let path = (["promotion"] + context.codingPath.map(\.stringValue)).joined(separator: ".")
            // The decoder may name its own node types (Mapping, Scalar), so the field
            // decides what to ask for.
            let keys = context.codingPath.map(\.stringValue)
            let expected: String
            switch (keys.first, keys.count) {
            case ("margin"?, _), ("confidence"?, _), ("segment_tolerance"?, _), ("guardrails"?, 2...), ("floors"?, 2...):
                expected = "a number"
            case ("bootstrap_samples"?, _), ("min_holdout_rows"?, _), ("min_segment_rows"?, _):
                expected = "an integer"
            case ("seed"?, _): expected = "a non-negative integer"
            case ("guardrails"?, _), ("floors"?, _): expected = "a mapping of metric name → number"
            case ("segments"?, _): expected = "a list of segment dimension names"
            default: expected = "a value of type \(type)"
            }
            return .wrongType(path: path, expected: expected)
        default:
            return .syntax("\(error)")
        }
    }

    /// Checks every setting; called by the decoders, call it after building one in code.
    public func validate() throws {
        func bad(_ field: String, _ value: Any, _ expected: String) -> PromotionPolicyError {
            .invalidValue(path: "promotion.\(field)", value: "\(value)", expected: expected)
        }
        guard margin.isFinite && margin >= 0 else { throw bad("margin", margin, "a number ≥ 0 (the AUC gain required at the interval's lower bound)") }
        guard confidence > 0 && confidence < 1 else { throw bad("confidence", confidence, "a level strictly between 0 and 1, e.g. 0.95") }
        guard bootstrapSamples >= 100 else { throw bad("bootstrap_samples", bootstrapSamples, "at least 100 resamples (1000 is usual) for the interval's tails to mean anything") }
        guard minHoldoutRows >= 1 else { throw bad("min_holdout_rows", minHoldoutRows, "at least 1") }
        guard segmentTolerance.isFinite && segmentTolerance >= 0 else { throw bad("segment_tolerance", segmentTolerance, "a number ≥ 0 (largest tolerated AUC loss in a segment)") }
        guard minSegmentRows >= 1 else { throw bad("min_segment_rows", minSegmentRows, "at least 1") }
        for (k, v) in guardrails {
            guard Self.guardrailMetrics.contains(k) else {
                throw PromotionPolicyError.unknownKey(path: "promotion.guardrails.\(k)", known: Self.guardrailMetrics)
            }
            guard v.isFinite && v >= 0 else { throw bad("guardrails.\(k)", v, "a tolerance ≥ 0") }
        }
        for (k, v) in floors {
            guard Self.floorMetrics.contains(k) else {
                throw PromotionPolicyError.unknownKey(path: "promotion.floors.\(k)", known: Self.floorMetrics)
            }
            guard v.isFinite && v >= 0 else { throw bad("floors.\(k)", v, "a number ≥ 0") }
        }
    }

    // MARK: - Deciding

    /// Decides whether `candidate` replaces `champion` (or, with no champion, whether it
    /// may become the first one). See the type's documentation for the rules.
    ///
    /// CPU-bound and multi-threaded (about 0.4 s for 50 000 rows × 1000 resamples on two
    /// cores in a release build): call it off an event loop.
    public func decide(candidate: HoldoutPredictions, champion: HoldoutPredictions?) -> PromotionDecision {
        var reasons: [String] = []
        var numbers: [String: Double] = [:]
        var ok = true
        let n = candidate.count
        numbers["rows"] = Double(n)
        numbers["users"] = Double(Set(candidate.groups).count)

        if n >= minHoldoutRows {
            reasons.append("holdout has \(n) rows ≥ minimum \(minHoldoutRows)")
        } else {
            ok = false
            reasons.append("holdout has \(n) rows, fewer than the minimum \(minHoldoutRows); evaluate on a larger holdout or lower min_holdout_rows")
            return PromotionDecision(promoted: false, reasons: reasons, numbers: numbers)
        }

        let positives = candidate.labels.reduce(0) { $0 + ($1 > 0.5 ? 1 : 0) }
        guard positives > 0 && positives < n else {
            reasons.append("the holdout has only \(positives == 0 ? "negative" : "positive") labels, so AUC is undefined; evaluate on a holdout with both outcomes")
            return PromotionDecision(promoted: false, reasons: reasons, numbers: numbers)
        }

        let cand = Self.pointMetrics(candidate)
        for (k, v) in cand { numbers["candidate.\(k)"] = v }

        guard let champion else {
            for metric in floors.keys.sorted() {
                let bound = floors[metric]!
                let value = cand[metric] ?? .nan
                let isCeiling = metric == Self.logLossKey
                let passes = isCeiling ? value <= bound : value >= bound
                if passes {
                    reasons.append("no champion: \(Self.label(metric)) \(Self.fmt(value)) \(isCeiling ? "≤ ceiling" : "≥ floor") \(Self.fmt(bound))")
                } else {
                    ok = false
                    reasons.append("no champion: \(Self.label(metric)) \(Self.fmt(value)) \(isCeiling ? "above the ceiling" : "below the floor") \(Self.fmt(bound))")
                }
            }
            return PromotionDecision(promoted: ok, reasons: reasons, numbers: numbers)
        }

        guard champion.count == n, champion.labels == candidate.labels, champion.groups == candidate.groups else {
            reasons.append("the candidate and the champion were not scored on the same holdout (\(n) vs \(champion.count) rows, or different labels/users); score both on the same holdout")
            return PromotionDecision(promoted: false, reasons: reasons, numbers: numbers)
        }
        let champ = Self.pointMetrics(champion)
        for (k, v) in champ { numbers["champion.\(k)"] = v }

        // AUC margin at the bootstrap interval's lower bound.
        let boot = bootstrap(candidate: candidate, champion: champion)
        let aucDiff = cand[Self.aucKey]! - champ[Self.aucKey]!
        numbers["auc_diff"] = aucDiff
        numbers["auc_diff_ci_low"] = boot.auc.low
        numbers["auc_diff_ci_high"] = boot.auc.high
        numbers[Self.precisionKey + "_diff"] = cand[Self.precisionKey]! - champ[Self.precisionKey]!
        numbers[Self.precisionKey + "_diff_ci_low"] = boot.precision.low
        numbers[Self.precisionKey + "_diff_ci_high"] = boot.precision.high
        numbers["bootstrap_samples_used"] = Double(boot.used)
        let level = "\(Self.fmt(confidence * 100, digits: 0))% CI"
        let interval = "(\(level) \(Self.signed(boot.auc.low))…\(Self.signed(boot.auc.high)))"
        if boot.auc.low >= margin {
            reasons.append("AUC \(Self.signed(aucDiff)) \(interval) ≥ margin \(Self.fmt(margin)) at the lower bound")
        } else {
            ok = false
            reasons.append("AUC \(Self.signed(aucDiff)) \(interval): lower bound below the margin \(Self.fmt(margin)); the gain is not established")
        }
        reasons.append("\(Self.label(Self.precisionKey)) \(Self.signed(numbers[Self.precisionKey + "_diff"]!)) (\(level) \(Self.signed(boot.precision.low))…\(Self.signed(boot.precision.high))), for the record")

        // Guardrails on point estimates.
        for metric in guardrails.keys.sorted() {
            let tolerance = guardrails[metric]!
            let c = cand[metric] ?? .nan, h = champ[metric] ?? .nan
            // Positive = worse, whatever the metric's direction.
            let worsening = metric == Self.logLossKey ? c - h : h - c
            if c.isNaN || h.isNaN {
                reasons.append("guardrail \(Self.label(metric)): not computable on this holdout (no user with a positive), skipped")
            } else if worsening <= tolerance {
                reasons.append("guardrail \(Self.label(metric)): \(Self.fmt(c)) vs champion \(Self.fmt(h)), within tolerance \(Self.fmt(tolerance))")
            } else {
                ok = false
                reasons.append("guardrail \(Self.label(metric)): \(Self.fmt(c)) vs champion \(Self.fmt(h)) is worse by \(Self.fmt(worsening)), more than the tolerance \(Self.fmt(tolerance))")
            }
        }

        // Segments.
        let dimensions = (segments ?? Array(candidate.segments.keys)).sorted()
        var checked = 0, skipped = 0
        var worst: (name: String, loss: Double)?
        for dimension in dimensions {
            guard let column = candidate.segments[dimension] else {
                reasons.append("segment dimension \(dimension): the holdout has no such column, skipped; add it to the holdout or remove it from promotion.segments")
                continue
            }
            var rowsBySegment: [String: [Int]] = [:]
            for (i, v) in column.enumerated() { if let v { rowsBySegment[v, default: []].append(i) } }
            for value in rowsBySegment.keys.sorted() {
                let rows = rowsBySegment[value]!
                let labels = rows.map { candidate.labels[$0] }
                let positives = labels.reduce(0) { $0 + ($1 > 0.5 ? 1 : 0) }
                guard rows.count >= minSegmentRows, positives > 0, positives < rows.count else { skipped += 1; continue }
                checked += 1
                let name = "\(dimension)=\(value)"
                let ca = Learning.Metrics.auc(scores: rows.map { candidate.probabilities[$0] }, labels: labels)
                let ha = Learning.Metrics.auc(scores: rows.map { champion.probabilities[$0] }, labels: labels)
                numbers["segment.\(name).candidate_auc"] = ca
                numbers["segment.\(name).champion_auc"] = ha
                numbers["segment.\(name).rows"] = Double(rows.count)
                let loss = ha - ca
                if loss > segmentTolerance {
                    ok = false
                    reasons.append("segment \(name): AUC \(Self.fmt(ca)) vs champion \(Self.fmt(ha)) (\(Self.signed(-loss))), worse than the tolerance \(Self.fmt(segmentTolerance)) on \(rows.count) rows")
                }
                if worst == nil || loss > worst!.loss { worst = (name, loss) }
            }
        }
        numbers["segments_checked"] = Double(checked)
        numbers["segments_skipped"] = Double(skipped)
        if let worst, worst.loss <= segmentTolerance {
            reasons.append("segments: \(checked) checked (\(skipped) too small or one-class), worst \(worst.name) \(Self.signed(-worst.loss)) within tolerance \(Self.fmt(segmentTolerance))")
        } else if worst == nil && dimensions.isEmpty {
            reasons.append("segments: the holdout carries no segment labels, nothing to check")
        } else if worst == nil {
            reasons.append("segments: none large enough to check (\(skipped) with fewer than \(minSegmentRows) rows or one class)")
        }
        return PromotionDecision(promoted: ok, reasons: reasons, numbers: numbers)
    }

    struct Interval { var low: Double; var high: Double }

    /// Paired bootstrap over users: each resample draws as many users as the holdout has,
    /// with replacement, and weights every row by its user's draw count. Resample b uses
    /// its own stream (seed, b), so the result does not depend on how resamples are split
    /// across threads. Resamples where a model's AUC is undefined (no positive or no
    /// negative drawn) are dropped and counted out of `used`.
    func bootstrap(candidate: HoldoutPredictions, champion: HoldoutPredictions) -> (auc: Interval, precision: Interval, used: Int) {
        var userIndex: [Int: Int32] = [:]
        var rowsOfUser: [[Int]] = []
        var userOfRow = [Int32](repeating: 0, count: candidate.count)
        // Users indexed in order of first appearance, which is fixed by the holdout.
        for (i, g) in candidate.groups.enumerated() {
            if let u = userIndex[g] { userOfRow[i] = u; rowsOfUser[Int(u)].append(i) } else {
                let u = Int32(rowsOfUser.count)
                userIndex[g] = u
                userOfRow[i] = u
                rowsOfUser.append([i])
            }
        }
        let users = rowsOfUser.count
        let hasPositive = rowsOfUser.map { rows in rows.contains { candidate.labels[$0] > 0.5 } }
        let c = BootstrapModelView(scores: candidate.probabilities, labels: candidate.labels, userOfRow: userOfRow, rowsOfUser: rowsOfUser, k: Self.rankingK)
        let h = BootstrapModelView(scores: champion.probabilities, labels: champion.labels, userOfRow: userOfRow, rowsOfUser: rowsOfUser, k: Self.rankingK)
        // Per user, the P@10 difference; a resample's mean difference is its weighted mean.
        let precisionDiff = (0..<users).map { c.precision[$0] - h.precision[$0] }

        let samples = bootstrapSamples
        var aucDiffs = [Double](repeating: .nan, count: samples)
        var precisionDiffs = [Double](repeating: .nan, count: samples)
        let seed = self.seed
        let chunks = min(samples, max(1, ProcessInfo.processInfo.activeProcessorCount))
        aucDiffs.withUnsafeMutableBufferPointer { aucOut in
            precisionDiffs.withUnsafeMutableBufferPointer { precOut in
                let aucBase = aucOut.baseAddress!, precBase = precOut.baseAddress!
                DispatchQueue.concurrentPerform(iterations: chunks) { chunk in
                    var weights = [Double](repeating: 0, count: users)
                    var b = chunk
                    while b < samples {
                        var rng = TuningRandom(seed: seed, stream: UInt64(b))
                        for u in 0..<users { weights[u] = 0 }
                        for _ in 0..<users { weights[rng.below(users)] += 1 }
                        var pw = 0.0, ps = 0.0
                        for u in 0..<users where hasPositive[u] { pw += weights[u]; ps += weights[u] * precisionDiff[u] }
                        let (ca, ha) = weights.withUnsafeBufferPointer { w in (c.weightedAUC(w), h.weightedAUC(w)) }
                        aucBase[b] = ca - ha
                        precBase[b] = pw > 0 ? ps / pw : .nan
                        b += chunks
                    }
                }
            }
        }
        let validAUC = aucDiffs.filter { !$0.isNaN }.sorted()
        let validPrecision = precisionDiffs.filter { !$0.isNaN }.sorted()
        let alpha = (1 - confidence) / 2
        func interval(_ v: [Double]) -> Interval {
            Interval(low: Self.quantile(v, alpha), high: Self.quantile(v, 1 - alpha))
        }
        return (interval(validAUC), interval(validPrecision), validAUC.count)
    }

    /// Linear interpolation between order statistics (type 7); NaN when empty.
    static func quantile(_ sorted: [Double], _ q: Double) -> Double {
        guard !sorted.isEmpty else { return .nan }
        let position = q * Double(sorted.count - 1)
        let lower = Int(position.rounded(.down))
        let upper = min(lower + 1, sorted.count - 1)
        let t = position - Double(lower)
        return sorted[lower] * (1 - t) + sorted[upper] * t
    }

    /// Whole-holdout metrics under the learning library's definitions, so the numbers
    /// recorded here match those reported by training and evaluation.
    static func pointMetrics(_ p: HoldoutPredictions) -> [String: Double] {
        let ranking = Learning.Metrics.ranking(scores: p.probabilities, labels: p.labels, groups: p.groups, k: rankingK)
        return [aucKey: Learning.Metrics.auc(scores: p.probabilities, labels: p.labels),
                logLossKey: Learning.Metrics.logLoss(probabilities: p.probabilities, labels: p.labels),
                precisionKey: ranking.precision,
                ndcgKey: ranking.ndcg]
    }

    static func label(_ metric: String) -> String {
        [aucKey: "AUC", logLossKey: "log-loss", precisionKey: "Precision@\(rankingK)", ndcgKey: "NDCG@\(rankingK)"][metric] ?? metric
    }

    static func fmt(_ x: Double, digits: Int = 4) -> String { String(format: "%.\(digits)f", x) }

    static func signed(_ x: Double) -> String {
        // A negative zero would print as "-0.0000" and read as a loss.
        let v = abs(x) < 5e-5 ? 0 : x
        return String(format: "%+.4f", v)
    }
}
