/// How much the market wants each listing, as a model predicts it: the mean predicted
/// engagement of a set of users with the listing, where a user whose hard filters exclude
/// it (over budget, another region) counts as zero. Marketing asks "which new listings
/// would our buyers want most", so the demand of a listing is measured against the same
/// buyers for every listing.
public enum ListingDemand {
    /// Users the estimate reads at most: the mean over an evenly spaced sample of this
    /// many is within a percent or two of the mean over all, at a fraction of the cost.
    public static let maxUsers = 1_000

    /// Each listing's demand (listing id → mean engagement in 0…1) over `users`, sampled
    /// evenly (by position) down to ``maxUsers``.
    public static func estimate(_ recommender: Recommender, users: [MarketUser]) -> [Int: Double] {
        let sample = evenSample(users, count: maxUsers)
        var sums = [Double](repeating: 0, count: recommender.listings.count)
        for user in sample {
            let (candidates, raw) = recommender.rawScores(user)
            for (j, i) in candidates.enumerated() { sums[Int(i)] += logistic(raw[j]) }
        }
        let n = Double(max(sample.count, 1))
        var demand: [Int: Double] = [:]
        for (i, l) in recommender.listings.enumerated() { demand[l.id] = sums[i] / n }
        return demand
    }

    /// The ids among `candidates` whose demand is in the top `percent` of all the values
    /// in `demand`: at least as high as the ⌈percent·N/100⌉-th highest (ties included),
    /// in descending demand (ties by id). Empty when `percent` ≤ 0 or nothing is known.
    public static func topPercent(_ percent: Double, of demand: [Int: Double], candidates: [Int]) -> [Int] {
        guard percent > 0, !demand.isEmpty else { return [] }
        let sorted = demand.values.sorted(by: >)
        let rank = min(sorted.count, max(1, Int((percent / 100 * Double(sorted.count)).rounded(.up))))
        let threshold = sorted[rank - 1]
        var chosen: [(id: Int, demand: Double)] = []
        for id in Set(candidates) {
            if let d = demand[id], d >= threshold { chosen.append((id, d)) }
        }
        chosen.sort { a, b in a.demand != b.demand ? a.demand > b.demand : a.id < b.id }
        return chosen.map(\.id)
    }

    /// `count` items spaced evenly through `items` (all of them when there are fewer).
    public static func evenSample<T>(_ items: [T], count: Int) -> [T] {
        guard items.count > count, count > 0 else { return items }
        return (0..<count).map { items[$0 * items.count / count] }
    }
}
