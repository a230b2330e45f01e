import Foundation

/// The facts about one listing that a short is made from. Plain data: nothing here is
/// validated beyond what the script needs (ScriptWriter skips the optional facts that are
/// nil), so any source — the market generator, the feature store, an operator — can fill it.
public struct ListingFacts: Sendable, Equatable, Codable {
    public var id: Int
    /// Asking price in million KRW (1,250 means 12억 5천만 원).
    public var price: Double
    public var areaM2: Double
    public var rooms: Int
    public var region: String
    public var subwayDistanceM: Double?
    /// School district score, 0–100 in the demo market.
    public var schoolScore: Double?
    /// Expected yearly rental yield in percent.
    public var expectedYield: Double
    public var newBuild: Bool
    /// Why the model finds it attractive: TreeSHAP reason phrases, strongest first
    /// (`PairFeatures.reasonPhrases` in Learning, e.g. "close to the subway").
    public var reasons: [String]

    public init(id: Int, price: Double, areaM2: Double, rooms: Int, region: String, subwayDistanceM: Double? = nil,
                schoolScore: Double? = nil, expectedYield: Double, newBuild: Bool, reasons: [String] = []) {
        self.id = id; self.price = price; self.areaM2 = areaM2; self.rooms = rooms; self.region = region
        self.subwayDistanceM = subwayDistanceM; self.schoolScore = schoolScore; self.expectedYield = expectedYield
        self.newBuild = newBuild; self.reasons = reasons
    }
}

/// The language of a short's script, speech and captions.
public enum ShortLanguage: String, Sendable, Codable, CaseIterable {
    case korean = "ko"
    case english = "en"

    /// The espeak-ng voice that speaks it.
    public var espeakVoice: String { rawValue }
}
