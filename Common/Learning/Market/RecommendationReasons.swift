import Foundation

/// A reason a listing was recommended: a feature with a positive SHAP contribution,
/// phrased for the user.
public struct RecommendationReason: Sendable, Equatable {
    public var feature: String
    public var phrase: String
    public var contribution: Double
}

/// Turns SHAP contributions into the reasons shown beside a recommendation, in the
/// market's words (`PairFeatures.reasonPhrases`) unless given other phrases.
public enum TopReasons {
    /// The `count` largest positive contributions as short phrases ("price within
    /// budget", "same region as preferred"); features without a known phrase are named
    /// as they are. Ties keep schema order.
    public static func reasons(contributions: [Double], schema: FeatureSchema, count: Int = 3,
                               phrases: [String: String] = PairFeatures.reasonPhrases) -> [RecommendationReason] {
        let order = contributions.indices
            .filter { contributions[$0] > 0 }
            .sorted { contributions[$0] > contributions[$1] || (contributions[$0] == contributions[$1] && $0 < $1) }
        return order.prefix(count).map { j in
            let name = schema.features[j].name
            return RecommendationReason(feature: name, phrase: phrase(name, phrases), contribution: contributions[j])
        }
    }

    /// A feature in words: its phrase, else its name read as words (`listing_age_days` →
    /// "listing age days"), so a reason line never mixes identifiers with phrases.
    static func phrase(_ feature: String, _ phrases: [String: String]) -> String {
        phrases[feature] ?? feature.replacingOccurrences(of: "_", with: " ")
    }

    /// What raised and what lowered one row's score, `count` of each at most, largest
    /// first: a low score is explained by what pulled it down, not only by what helped.
    public static func both(_ model: GradientBoostedModel, row: [Float], count: Int = 3,
                            phrases: [String: String] = PairFeatures.reasonPhrases) -> (raising: [RecommendationReason], lowering: [RecommendationReason]) {
        var phi = TreeSHAP.contributions(model, row: row)
        for (j, f) in model.schema.features.enumerated() where PairFeatures.userFeatures.contains(f.name) { phi[j] = 0 }
        let raising = reasons(contributions: phi, schema: model.schema, count: count, phrases: phrases)
        let lowering = reasons(contributions: phi.map { -$0 }, schema: model.schema, count: count, phrases: phrases)
            .map { RecommendationReason(feature: $0.feature, phrase: $0.phrase, contribution: -$0.contribution) }
        return (raising, lowering)
    }

    /// Reasons for one recommended pair. Features of the user alone (age, budget, …) raise
    /// the score of every listing for that user alike, so they say nothing about why this
    /// listing: only listing and pair features are given as reasons.
    /// `explainer`, when given, is the model prepared once for many rows (same values).
    public static func reasons(_ model: GradientBoostedModel, row: [Float], count: Int = 3, explainer: PreparedTreeSHAP? = nil) -> [RecommendationReason] {
        var phi = explainer?.contributions(row: row) ?? TreeSHAP.contributions(model, row: row)
        for (j, f) in model.schema.features.enumerated() where PairFeatures.userFeatures.contains(f.name) { phi[j] = 0 }
        return reasons(contributions: phi, schema: model.schema, count: count)
    }
}
