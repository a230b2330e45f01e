import Foundation
import Learning
import Yams

/// One hyperparameter value as written in a search space or drawn by a sampler.
public enum ParameterValue: Sendable, Hashable, Codable, CustomStringConvertible {
    case int(Int)
    case double(Double)
    case string(String)

    /// The text handed to the learning library (`BoostingParameters.set`).
    public var description: String {
        switch self {
        case let .int(i): return String(i)
        case let .double(d): return "\(d)"
        case let .string(s): return s
        }
    }

    /// Numeric view for samplers; nil for strings.
    public var number: Double? {
        switch self {
        case let .int(i): return Double(i)
        case let .double(d): return d
        case .string: return nil
        }
    }

    public init(from decoder: Decoder) throws {
        let c = try decoder.singleValueContainer()
        if let i = try? c.decode(Int.self) { self = .int(i) }
        else if let d = try? c.decode(Double.self) { self = .double(d) }
        else { self = .string(try c.decode(String.self)) }
    }

    public func encode(to encoder: Encoder) throws {
        var c = encoder.singleValueContainer()
        switch self {
        case let .int(i): try c.encode(i)
        case let .double(d): try c.encode(d)
        case let .string(s): try c.encode(s)
        }
    }
}

/// The values of one trial, keyed by the search space's parameter names (as written in
/// the space, before mapping to the learning library's keys).
public struct TrialParameters: Sendable, Hashable, Codable {
    public var values: [String: ParameterValue]
    public init(_ values: [String: ParameterValue] = [:]) { self.values = values }
    public subscript(name: String) -> ParameterValue? {
        get { values[name] }
        set { values[name] = newValue }
    }

    // Encoded as a plain name → value object, the shape a run record shows.
    public init(from decoder: Decoder) throws {
        values = try decoder.singleValueContainer().decode([String: ParameterValue].self)
    }

    public func encode(to encoder: Encoder) throws {
        var c = encoder.singleValueContainer()
        try c.encode(values)
    }
}

/// Where one parameter may range.
///
/// Guarantees (checked when a space is parsed): ranges are non-empty (`low < high` for
/// reals, `low ≤ high` for integers), log-scaled ranges have `low > 0`, categoricals have
/// at least one choice, and every bound and choice is a value the learning library accepts
/// for that parameter.
public enum ParameterDomain: Sendable, Equatable {
    /// Always this value; never sampled.
    case fixed(ParameterValue)
    /// A real number in [low, high], uniform in log space when `log`.
    case real(low: Double, high: Double, log: Bool)
    /// An integer in [low, high], uniform in log space when `log`.
    case integer(low: Int, high: Int, log: Bool)
    /// One of these values, each equally likely a priori.
    case categorical([ParameterValue])
}

// `ModelFamily` and the parameter names a space may use (canonical names and aliases)
// come from the learning library's table, `LearningParameter.all`, so a search accepts
// exactly the names the trainers parse, and resolves them the same way.

/// The quantity a search optimizes, measured on the validation data.
public enum ObjectiveMetric: String, Sendable, CaseIterable, Codable {
    // Raw values are the learning library's `MetricName`s, which run records use.
    case auc, logloss

    /// The metric's name in run records (before its `valid_` prefix).
    public var metricName: String { self == .auc ? MetricName.auc : MetricName.logLoss }

    /// AUC is maximized, log-loss minimized.
    public var maximize: Bool { self == .auc }

    /// True when `a` is strictly better than `b` for this metric. NaN is never better.
    public func isBetter(_ a: Double, than b: Double) -> Bool {
        guard !a.isNaN else { return false }
        guard !b.isNaN else { return true }
        return maximize ? a > b : a < b
    }
}

/// Which sampler proposes trials.
public enum SamplerKind: String, Sendable, CaseIterable, Codable {
    case random, tpe
}

/// Settings of asynchronous successive halving (see `AshaScheduler`).
public struct AshaSettings: Sendable, Equatable {
    public var minIterations: Int
    public var maxIterations: Int
    public var reductionFactor: Int
    public init(minIterations: Int, maxIterations: Int, reductionFactor: Int = 3) {
        self.minIterations = minIterations
        self.maxIterations = maxIterations
        self.reductionFactor = reductionFactor
    }
}

/// Settings of the TPE sampler; defaults follow Bergstra et al. (2011) and common practice.
public struct TPESettings: Sendable, Equatable {
    /// Trials drawn at random before the model is trusted.
    public var startupTrials = 10
    /// Candidates drawn from l(x) per suggestion; the best l/g ratio wins.
    public var candidates = 24
    /// Fraction of observed trials that form the "good" group.
    public var gamma = 0.25
    public init() {}
}

/// Why a search space was refused. Every case names the offending field by its path in
/// the document (`params.learning_rate`, `asha.reduction_factor`) and says what would be
/// accepted, so the message can be shown to the person who submitted the search as is.
public enum SearchSpaceError: Error, Equatable, CustomStringConvertible, Sendable {
    /// The text is not YAML/JSON, or the document is not a mapping.
    case syntax(String)
    case unknownKey(path: String, known: [String])
    case missingKey(path: String, hint: String)
    case unknownChoice(path: String, value: String, known: [String])
    case unknownParameter(path: String, model: ModelFamily, known: [String])
    case emptyRange(path: String, low: String, high: String)
    case nonPositiveLogBound(path: String, low: String)
    case emptyCategorical(path: String)
    case invalidValue(path: String, value: String, expected: String)
    case impossibleLimit(path: String, value: String, expected: String)

    public var description: String {
        switch self {
        case let .syntax(problem):
            return "search space: \(problem)"
        case let .unknownKey(path, known):
            return "\(path): unknown key. Known keys here: \(known.joined(separator: ", "))."
        case let .missingKey(path, hint):
            return "\(path): missing. \(hint)"
        case let .unknownChoice(path, value, known):
            return "\(path): unknown value '\(value)'. Use one of: \(known.joined(separator: ", "))."
        case let .unknownParameter(path, model, known):
            return "\(path): not a parameter of the \(model.rawValue) model. Known parameters: \(known.joined(separator: ", "))."
        case let .emptyRange(path, low, high):
            return "\(path): empty range [\(low), \(high)]; write the range as [low, high] with low < high."
        case let .nonPositiveLogBound(path, low):
            return "\(path): log scale needs a positive lower bound, got \(low); raise the lower bound or drop log."
        case let .emptyCategorical(path):
            return "\(path): categorical with no choices; list at least one value."
        case let .invalidValue(path, value, expected):
            return "\(path): '\(value)' is invalid: expected \(expected)."
        case let .impossibleLimit(path, value, expected):
            return "\(path): \(value) is impossible: expected \(expected)."
        }
    }
}

/// A validated hyperparameter search: what to train, what to optimize, how to sample,
/// the limits of the search and where each parameter may range.
///
/// Guarantees: a `SearchSpace` value only exists if every rule in `SearchSpaceError` holds,
/// so samplers and schedulers never see an empty range, an unknown parameter or an
/// impossible limit; `parameters(for:)` yields keys the learning library accepts.
/// Parameter names are stored canonically (aliases such as `num_trees` are renamed).
public struct SearchSpace: Sendable, Equatable {
    public var model: ModelFamily
    public var metric: ObjectiveMetric
    public var sampler: SamplerKind
    public var seed: UInt64
    public var maxTrials: Int
    /// At most `maxTrials`: asking for more concurrent trials than trials is clamped,
    /// since it is harmless and only means the whole search runs at once.
    public var maxConcurrent: Int
    /// nil: no time limit.
    public var timeBudgetSeconds: Double?
    public var asha: AshaSettings?
    public var tpe: TPESettings
    /// Canonical parameter name → domain.
    public var params: [String: ParameterDomain]

    static let topLevelKeys = ["model", "metric", "sampler", "seed", "max_trials", "max_concurrent",
                               "time_budget_seconds", "asha", "tpe", "params"]

    /// Names of the parameters a sampler chooses (not fixed), sorted so that draws are
    /// made in the same order on every run.
    public var searchedParameters: [String] {
        params.filter { if case .fixed = $0.value { return false } else { return true } }.keys.sorted()
    }

    /// Parses and validates a search space written in YAML or JSON.
    ///
    /// Defaults: `metric: auc`, `sampler: tpe`, `seed: 0`, `max_trials: 20`,
    /// `max_concurrent: 1`, no time budget, no ASHA. `model` and `params` are required.
    public init(yaml text: String) throws {
        let root: Node?
        do { root = try Yams.compose(yaml: text) } catch {
            throw SearchSpaceError.syntax("cannot read the document as YAML or JSON: \(error)")
        }
        guard let mapping = root?.mapping else {
            throw SearchSpaceError.syntax("the document must be a mapping with keys \(Self.topLevelKeys.joined(separator: ", ")).")
        }
        var fields: [String: Node] = [:]
        for (k, v) in mapping {
            guard let key = k.string, Self.topLevelKeys.contains(key) else {
                throw SearchSpaceError.unknownKey(path: k.string ?? "\(k)", known: Self.topLevelKeys)
            }
            fields[key] = v
        }

        guard let modelNode = fields["model"] else {
            throw SearchSpaceError.missingKey(path: "model", hint: "Set model: gbdt or model: logistic.")
        }
        model = try Self.choice(modelNode, path: "model", ModelFamily.self)
        metric = try fields["metric"].map { try Self.choice($0, path: "metric", ObjectiveMetric.self, aliases: ["binary_logloss": "logloss"]) } ?? .auc
        sampler = try fields["sampler"].map { try Self.choice($0, path: "sampler", SamplerKind.self) } ?? .tpe
        seed = 0
        if let n = fields["seed"] {
            guard let s = n.string.flatMap({ UInt64($0) }) else {
                throw SearchSpaceError.invalidValue(path: "seed", value: n.string ?? "\(n)", expected: "a non-negative integer")
            }
            seed = s
        }
        maxTrials = try fields["max_trials"].map { try Self.integer($0, path: "max_trials") } ?? 20
        guard maxTrials >= 1 else {
            throw SearchSpaceError.impossibleLimit(path: "max_trials", value: String(maxTrials), expected: "at least 1 trial")
        }
        let concurrent = try fields["max_concurrent"].map { try Self.integer($0, path: "max_concurrent") } ?? 1
        guard concurrent >= 1 else {
            throw SearchSpaceError.impossibleLimit(path: "max_concurrent", value: String(concurrent), expected: "at least 1 concurrent trial")
        }
        maxConcurrent = min(concurrent, maxTrials)
        if let n = fields["time_budget_seconds"] {
            let t = try Self.real(n, path: "time_budget_seconds")
            guard t > 0 else {
                throw SearchSpaceError.impossibleLimit(path: "time_budget_seconds", value: n.string ?? "\(t)",
                                                       expected: "a positive number of seconds (omit the key for no limit)")
            }
            timeBudgetSeconds = t
        }

        guard let paramsNode = fields["params"] else {
            throw SearchSpaceError.missingKey(path: "params", hint: "List the parameters to search, e.g. params: {learning_rate: {loguniform: [0.01, 0.3]}}.")
        }
        guard let paramsMapping = paramsNode.mapping else {
            throw SearchSpaceError.invalidValue(path: "params", value: paramsNode.string ?? "a non-mapping",
                                                expected: "a mapping of parameter name → domain")
        }
        var params: [String: ParameterDomain] = [:]
        for (k, v) in paramsMapping {
            let written = k.string ?? "\(k)"
            let path = "params.\(written)"
            guard let name = model.canonicalName(written) else {
                throw SearchSpaceError.unknownParameter(path: path, model: model, known: model.knownParameters)
            }
            guard params[name] == nil else {
                throw SearchSpaceError.invalidValue(path: path, value: written, expected: "each parameter once (\(name) is already given under another name)")
            }
            params[name] = try Self.domain(v, path: path, name: name, model: model)
        }
        guard params.values.contains(where: { if case .fixed = $0 { return false } else { return true } }) else {
            throw SearchSpaceError.invalidValue(path: "params", value: "only fixed values",
                                                expected: "at least one parameter with a range or choices to search")
        }
        self.params = params

        tpe = TPESettings()
        if let n = fields["tpe"] {
            tpe = try Self.tpeSettings(n)
        }

        if let n = fields["asha"] {
            guard model == .gbdt else {
                throw SearchSpaceError.invalidValue(path: "asha", value: "asha with model \(model.rawValue)",
                                                    expected: "no asha section: the logistic model trains in one step, there is nothing to stop early")
            }
            let a = try Self.ashaSettings(n)
            if case let .fixed(v)? = params["num_iterations"], let total = v.number, Double(a.maxIterations) > total {
                throw SearchSpaceError.impossibleLimit(path: "asha.max_iterations", value: String(a.maxIterations),
                                                       expected: "at most params.num_iterations (\(v)); a trial never reaches more iterations than it trains")
            }
            if case let .integer(_, high, _)? = params["num_iterations"], a.maxIterations > high {
                throw SearchSpaceError.impossibleLimit(path: "asha.max_iterations", value: String(a.maxIterations),
                                                       expected: "at most the upper bound of params.num_iterations (\(high))")
            }
            asha = a
        }
    }

    /// JSON is YAML; this is `init(yaml:)` under the name a caller holding JSON looks for.
    public init(json text: String) throws { try self.init(yaml: text) }

    /// The trial's settings under the learning library's keys, ready for
    /// `BoostingParameters(dictionary:)` / `BoostingParameters.set`: fixed values plus the
    /// trial's draws. Unless the space fixes `seed`, the search seed is passed as the
    /// training seed so that trials differ only by their hyperparameters. For the logistic
    /// family `c` becomes `lambda_l2 = 1 / c`.
    public func parameters(for trial: TrialParameters) -> [String: String] {
        var out: [String: String] = [:]
        // A logistic `c` is written last so it decides lambda_l2 even when the space also
        // fixes lambda_l2; dictionary order would otherwise pick either, run to run.
        let ordered = params.sorted { a, b in (a.key == "c" ? 1 : 0, a.key) < (b.key == "c" ? 1 : 0, b.key) }
        for (name, domain) in ordered {
            let value: ParameterValue?
            if case let .fixed(v) = domain { value = trial[name] ?? v } else { value = trial[name] }
            guard let v = value else { continue }
            if model == .logistic && name == "c" {
                if let c = v.number, c > 0 { out["lambda_l2"] = "\(1 / c)" }
            } else {
                out[name] = v.description
            }
        }
        if out["seed"] == nil { out["seed"] = String(seed) }
        return out
    }

    /// The inverse of `parameters(for:)`: recovers a trial's sampled values from the
    /// settings stored with its task (a resumed search rebuilding its history). Values are
    /// typed by their domain (integers stay integers, `"31"` for a categorical of strings
    /// stays a string) and the logistic `c` is recovered from `lambda_l2`. Settings that
    /// are not searched parameters, or do not fit their domain, are left out.
    public func trialParameters(fromSettings settings: [String: String]) -> TrialParameters {
        var out = TrialParameters()
        for name in searchedParameters {
            guard let domain = params[name] else { continue }
            let text: String?
            if model == .logistic && name == "c" {
                text = settings["lambda_l2"].flatMap(Double.init).flatMap { $0 > 0 ? "\(1 / $0)" : nil }
            } else {
                text = settings[name]
            }
            guard let t = text else { continue }
            switch domain {
            case .fixed: continue
            case let .real(low, high, _):
                // 1/(1/c) may differ from c in the last bit; clamp so it stays in range.
                if let d = Double(t) { out[name] = .double(min(max(d, low), high)) }
            case .integer:
                if let i = Int(t) { out[name] = .int(i) }
            case let .categorical(choices):
                out[name] = choices.first { $0.description == t || ($0.number != nil && $0.number == Double(t)) }
            }
        }
        return out
    }

    // MARK: - Parsing helpers

    private static func choice<T: RawRepresentable & CaseIterable>(_ node: Node, path: String, _: T.Type,
                                                                    aliases: [String: String] = [:]) throws -> T where T.RawValue == String {
        let known = T.allCases.map(\.rawValue)
        guard let raw = node.string else {
            throw SearchSpaceError.unknownChoice(path: path, value: "\(node)", known: known)
        }
        guard let value = T(rawValue: aliases[raw.lowercased()] ?? raw.lowercased()) else {
            throw SearchSpaceError.unknownChoice(path: path, value: raw, known: known)
        }
        return value
    }

    private static func integer(_ node: Node, path: String) throws -> Int {
        if let i = node.int { return i }
        if let d = node.float, d == d.rounded(), abs(d) < 1e15 { return Int(d) }
        throw SearchSpaceError.invalidValue(path: path, value: node.string ?? "\(node)", expected: "an integer")
    }

    private static func real(_ node: Node, path: String) throws -> Double {
        guard let d = node.float, d.isFinite, node.scalar != nil, !isQuoted(node) else {
            throw SearchSpaceError.invalidValue(path: path, value: node.string ?? "\(node)", expected: "a finite number")
        }
        return d
    }

    private static func isQuoted(_ node: Node) -> Bool {
        guard let s = node.scalar else { return false }
        return s.style == .singleQuoted || s.style == .doubleQuoted
    }

    /// A scalar as a value: quoted text stays a string even if it looks like a number
    /// (so `"31"` in JSON is the string 31, as the writer asked).
    private static func scalarValue(_ node: Node, path: String) throws -> ParameterValue {
        guard let s = node.scalar else {
            throw SearchSpaceError.invalidValue(path: path, value: "a \(node.mapping != nil ? "mapping" : "list")", expected: "a single number or word")
        }
        if !isQuoted(node) {
            if let i = node.int { return .int(i) }
            if let d = node.float, d.isFinite { return .double(d) }
        }
        return .string(s.string)
    }

    private static func bounds(_ node: Node, path: String) throws -> (Node, Node) {
        guard let seq = node.sequence, seq.count == 2 else {
            throw SearchSpaceError.invalidValue(path: path, value: node.string ?? "\(node.sequence?.count ?? 0) values",
                                                expected: "a range [low, high] of two numbers")
        }
        return (seq[0], seq[1])
    }

    private static let domainKeys = ["uniform", "loguniform", "int", "categorical", "log", "value"]

    private static func domain(_ node: Node, path: String, name: String, model: ModelFamily) throws -> ParameterDomain {
        guard let m = node.mapping else {
            let v = try scalarValue(node, path: path)
            try check(v, path: path, name: name, model: model)
            return .fixed(v)
        }
        var fields: [String: Node] = [:]
        for (k, v) in m {
            guard let key = k.string, domainKeys.contains(key) else {
                throw SearchSpaceError.unknownKey(path: "\(path).\(k.string ?? "\(k)")", known: domainKeys)
            }
            fields[key] = v
        }
        let kinds = ["uniform", "loguniform", "int", "categorical", "value"].filter { fields[$0] != nil }
        guard kinds.count == 1, let kind = kinds.first else {
            throw SearchSpaceError.invalidValue(path: path, value: kinds.isEmpty ? "no distribution" : kinds.joined(separator: " and "),
                                                expected: "exactly one of uniform, loguniform, int, categorical or value")
        }
        var log = false
        if let l = fields["log"] {
            guard let b = l.bool else {
                throw SearchSpaceError.invalidValue(path: "\(path).log", value: l.string ?? "\(l)", expected: "true or false")
            }
            log = b
        }
        let body = fields[kind]!
        let bodyPath = "\(path).\(kind)"
        switch kind {
        case "value":
            let v = try scalarValue(body, path: bodyPath)
            try check(v, path: path, name: name, model: model)
            return .fixed(v)
        case "categorical":
            guard let seq = body.sequence else {
                throw SearchSpaceError.invalidValue(path: bodyPath, value: body.string ?? "\(body)", expected: "a list of choices")
            }
            guard seq.count > 0 else { throw SearchSpaceError.emptyCategorical(path: bodyPath) }
            var choices: [ParameterValue] = []
            for (i, item) in seq.enumerated() {
                let v = try scalarValue(item, path: "\(bodyPath)[\(i)]")
                try check(v, path: "\(bodyPath)[\(i)]", name: name, model: model)
                // A repeated choice would silently double its prior weight.
                guard !choices.contains(v) else {
                    throw SearchSpaceError.invalidValue(path: "\(bodyPath)[\(i)]", value: v.description, expected: "each choice once")
                }
                choices.append(v)
            }
            return .categorical(choices)
        case "int":
            let (a, b) = try bounds(body, path: bodyPath)
            let low = try integer(a, path: "\(bodyPath)[0]")
            let high = try integer(b, path: "\(bodyPath)[1]")
            guard low <= high else { throw SearchSpaceError.emptyRange(path: path, low: String(low), high: String(high)) }
            if log && low <= 0 { throw SearchSpaceError.nonPositiveLogBound(path: path, low: String(low)) }
            try check(.int(low), path: path, name: name, model: model)
            try check(.int(high), path: path, name: name, model: model)
            return low == high ? .fixed(.int(low)) : .integer(low: low, high: high, log: log)
        default: // uniform, loguniform
            if kind == "loguniform" { log = true }
            let (a, b) = try bounds(body, path: bodyPath)
            let low = try real(a, path: "\(bodyPath)[0]")
            let high = try real(b, path: "\(bodyPath)[1]")
            guard low < high else {
                throw SearchSpaceError.emptyRange(path: path, low: a.string ?? "\(low)", high: b.string ?? "\(high)")
            }
            if log && low <= 0 { throw SearchSpaceError.nonPositiveLogBound(path: path, low: a.string ?? "\(low)") }
            try check(.double(low), path: path, name: name, model: model)
            try check(.double(high), path: path, name: name, model: model)
            return .real(low: low, high: high, log: log)
        }
    }

    /// Asks the learning library whether it accepts the value, so a space can never
    /// propose a trial that fails at its first line of training.
    private static func check(_ value: ParameterValue, path: String, name: String, model: ModelFamily) throws {
        // `parameters(for:)` turns c into 1/c, which needs a number, not quoted text.
        if model == .logistic && name == "c" && value.number == nil {
            throw SearchSpaceError.invalidValue(path: path, value: value.description, expected: "a positive number (C is the inverse regularization strength)")
        }
        do {
            switch model {
            case .gbdt:
                var probe = BoostingParameters()
                try probe.set(name, value.description)
            case .logistic:
                var probe = LogisticParameters()
                try probe.set(name, value.description)
            }
        } catch let e as ParameterError {
            if case let .invalidValue(_, v, expected) = e {
                throw SearchSpaceError.invalidValue(path: path, value: v, expected: expected)
            }
            throw SearchSpaceError.invalidValue(path: path, value: value.description, expected: e.description)
        }
    }

    private static func ashaSettings(_ node: Node) throws -> AshaSettings {
        let known = ["min_iterations", "max_iterations", "reduction_factor"]
        guard let m = node.mapping else {
            throw SearchSpaceError.invalidValue(path: "asha", value: node.string ?? "\(node)", expected: "a mapping with \(known.joined(separator: ", "))")
        }
        var f: [String: Int] = [:]
        for (k, v) in m {
            guard let key = k.string, known.contains(key) else {
                throw SearchSpaceError.unknownKey(path: "asha.\(k.string ?? "\(k)")", known: known)
            }
            f[key] = try integer(v, path: "asha.\(key)")
        }
        guard let low = f["min_iterations"] else { throw SearchSpaceError.missingKey(path: "asha.min_iterations", hint: "Set the first rung, e.g. min_iterations: 10.") }
        guard let high = f["max_iterations"] else { throw SearchSpaceError.missingKey(path: "asha.max_iterations", hint: "Set the iterations of a full trial, e.g. max_iterations: 200.") }
        let eta = f["reduction_factor"] ?? 3
        guard low >= 1 else { throw SearchSpaceError.impossibleLimit(path: "asha.min_iterations", value: String(low), expected: "at least 1") }
        guard low < high else {
            throw SearchSpaceError.impossibleLimit(path: "asha.min_iterations", value: String(low),
                                                   expected: "less than asha.max_iterations (\(high)), or there is no rung to stop at")
        }
        guard eta >= 2 else {
            throw SearchSpaceError.impossibleLimit(path: "asha.reduction_factor", value: String(eta), expected: "at least 2 (keep the top 1/reduction_factor at each rung)")
        }
        return AshaSettings(minIterations: low, maxIterations: high, reductionFactor: eta)
    }

    private static func tpeSettings(_ node: Node) throws -> TPESettings {
        let known = ["startup_trials", "candidates", "gamma"]
        guard let m = node.mapping else {
            throw SearchSpaceError.invalidValue(path: "tpe", value: node.string ?? "\(node)", expected: "a mapping with \(known.joined(separator: ", "))")
        }
        var s = TPESettings()
        for (k, v) in m {
            switch k.string {
            case "startup_trials":
                s.startupTrials = try integer(v, path: "tpe.startup_trials")
                guard s.startupTrials >= 1 else { throw SearchSpaceError.impossibleLimit(path: "tpe.startup_trials", value: String(s.startupTrials), expected: "at least 1") }
            case "candidates":
                s.candidates = try integer(v, path: "tpe.candidates")
                guard s.candidates >= 1 else { throw SearchSpaceError.impossibleLimit(path: "tpe.candidates", value: String(s.candidates), expected: "at least 1") }
            case "gamma":
                s.gamma = try real(v, path: "tpe.gamma")
                guard s.gamma > 0 && s.gamma < 1 else { throw SearchSpaceError.impossibleLimit(path: "tpe.gamma", value: "\(s.gamma)", expected: "a fraction strictly between 0 and 1") }
            default:
                throw SearchSpaceError.unknownKey(path: "tpe.\(k.string ?? "\(k)")", known: known)
            }
        }
        return s
    }
}
