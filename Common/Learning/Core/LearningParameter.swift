import Foundation

/// A family of models the learning library trains; decides which parameters exist.
public enum ModelFamily: String, Sendable, CaseIterable, Codable {
    case gbdt, logistic

    /// Parameter names this family accepts, canonical names only, in the order the
    /// parameter table lists them. `searchableOnly` leaves out settings of how training
    /// runs (threads), which a hyperparameter search never varies.
    public func knownParameters(searchableOnly: Bool) -> [String] {
        LearningParameter.all.filter { $0.models.contains(self) && (!searchableOnly || $0.searchable) }.map(\.name)
    }

    /// Parameter names a search space may use for this family, canonical first. Aliases
    /// (num_trees, lambda, C, …) are accepted too; see `LearningParameter.all`.
    public var knownParameters: [String] { knownParameters(searchableOnly: true) }

    /// The canonical name of `name` (itself or an alias) for this family, or nil when the
    /// family has no such searchable parameter.
    public func canonicalName(_ name: String) -> String? {
        LearningParameter.named(name, for: self).flatMap { $0.searchable ? $0.name : nil }
    }
}

/// One training parameter: its canonical name (LightGBM's, or scikit-learn's where
/// LightGBM has none), the other names it is known by, and the model families it
/// configures.
///
/// `LearningParameter.all` is the one table of names: `BoostingParameters` and
/// `LogisticParameters` parse through it, and the coordinator's search space accepts
/// exactly the names it lists, so a name means the same thing wherever it is written.
/// Guarantees (checked by tests): no name or alias appears twice, and every parameter of
/// a family has a setter in that family's parameter type.
public struct LearningParameter: Sendable, Equatable {
    public let name: String
    public let aliases: [String]
    public let models: Set<ModelFamily>
    /// False for settings of how training runs rather than of what is learned.
    public let searchable: Bool

    public init(_ name: String, aliases: [String] = [], models: Set<ModelFamily>, searchable: Bool = true) {
        self.name = name
        self.aliases = aliases
        self.models = models
        self.searchable = searchable
    }

    /// The canonical name first, then the aliases.
    public var names: [String] { [name] + aliases }

    // Order matters: it is the order of "Known parameters" in error messages. `c` leads
    // because it is what a logistic search is usually about.
    public static let all: [LearningParameter] = [
        LearningParameter("c", aliases: ["C"], models: [.logistic]),
        LearningParameter("num_iterations", aliases: ["num_trees", "num_boost_round", "n_estimators", "iterations"], models: [.gbdt]),
        LearningParameter("learning_rate", aliases: ["eta", "shrinkage_rate"], models: [.gbdt]),
        LearningParameter("num_leaves", aliases: ["max_leaves"], models: [.gbdt]),
        LearningParameter("max_depth", models: [.gbdt]),
        LearningParameter("min_data_in_leaf", aliases: ["min_child_samples", "min_data"], models: [.gbdt]),
        LearningParameter("min_sum_hessian_in_leaf", aliases: ["min_child_weight", "min_hessian"], models: [.gbdt]),
        LearningParameter("lambda_l2", aliases: ["reg_lambda", "lambda"], models: [.gbdt, .logistic]),
        LearningParameter("min_gain_to_split", aliases: ["min_split_gain"], models: [.gbdt]),
        LearningParameter("feature_fraction", aliases: ["colsample_bytree", "sub_feature"], models: [.gbdt]),
        LearningParameter("bagging_fraction", aliases: ["subsample", "sub_row"], models: [.gbdt]),
        LearningParameter("bagging_freq", aliases: ["subsample_freq"], models: [.gbdt]),
        LearningParameter("max_bin", models: [.gbdt]),
        LearningParameter("min_data_in_bin", models: [.gbdt]),
        LearningParameter("early_stopping_round", aliases: ["early_stopping_rounds", "early_stopping"], models: [.gbdt]),
        LearningParameter("early_stopping_metric", aliases: ["metric"], models: [.gbdt]),
        LearningParameter("seed", aliases: ["random_state"], models: [.gbdt, .logistic]),
        LearningParameter("num_threads", aliases: ["threads", "n_jobs"], models: [.gbdt, .logistic], searchable: false),
    ]

    private static let byName: [String: LearningParameter] = {
        var table: [String: LearningParameter] = [:]
        for p in all { for n in p.names { table[n] = p } }
        return table
    }()

    /// The parameter `key` names (canonically or by an alias) for `model`, or nil.
    public static func named(_ key: String, for model: ModelFamily) -> LearningParameter? {
        byName[key].flatMap { $0.models.contains(model) ? $0 : nil }
    }
}

/// Parses "key=value,key=value" into pairs, trimming spaces and skipping empty items.
func parameterPairs(_ text: String) throws -> [(String, String)] {
    var pairs: [(String, String)] = []
    for pair in text.split(separator: ",").map({ $0.trimmingCharacters(in: .whitespaces) }) where !pair.isEmpty {
        let parts = pair.split(separator: "=", maxSplits: 1).map { $0.trimmingCharacters(in: .whitespaces) }
        guard parts.count == 2, !parts[0].isEmpty else { throw ParameterError.malformed(pair) }
        pairs.append((parts[0], parts[1]))
    }
    return pairs
}

/// Value checks shared by the parameter types; each names the key as the user wrote it.
enum ParameterValueCheck {
    static func int(_ k: String, _ v: String, min: Int) throws -> Int {
        guard let x = Int(v), x >= min else { throw ParameterError.invalidValue(key: k, value: v, expected: "an integer ≥ \(min)") }
        return x
    }
    static func double(_ k: String, _ v: String, above: Double) throws -> Double {
        guard let x = Double(v), x > above, x.isFinite else { throw ParameterError.invalidValue(key: k, value: v, expected: "a number > \(above)") }
        return x
    }
    static func double(_ k: String, _ v: String, atLeast: Double) throws -> Double {
        guard let x = Double(v), x >= atLeast, x.isFinite else { throw ParameterError.invalidValue(key: k, value: v, expected: "a number ≥ \(atLeast)") }
        return x
    }
    static func fraction(_ k: String, _ v: String) throws -> Double {
        guard let x = Double(v), x > 0, x <= 1 else { throw ParameterError.invalidValue(key: k, value: v, expected: "a fraction in (0, 1]") }
        return x
    }
    static func seed(_ k: String, _ v: String) throws -> UInt64 {
        guard let s = UInt64(v) else { throw ParameterError.invalidValue(key: k, value: v, expected: "a non-negative integer") }
        return s
    }
}
