import Foundation

/// Batch scoring: the champion (or a named version) scores every user against the
/// candidate listings, sharded by user ranges; each user's top K with reasons is stored.
public enum ScoreKind: JobKindDescriptor {
    public typealias Spec = WireScoreSpec
    public typealias Summary = WireScoreSummary
    public static let name = "score"

    public static var summaryShape: JSONShape<WireScoreSummary>? {
        JSONShape([
            .string("model_name", \.modelName, "The registered model that scored."),
            .integer("version", \.version, "Its version."),
            .integer("users", \.users, "Users scored."),
            .integer("pairs", \.pairs, "User × listing pairs scored."),
            .integer("recommendations", \.recommendations, "Recommendations stored."),
        ])
    }

    public static func describe(_ s: WireScoreSummary) -> [String] {
        ["score: \(s.users) users × candidates = \(s.pairs) pairs scored with \(s.modelName) v\(s.version); \(s.recommendations) recommendations stored (`coordinator recommendations USER`)"]
    }
}
