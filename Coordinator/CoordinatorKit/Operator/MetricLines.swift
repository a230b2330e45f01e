import Learning

/// How the operator CLI shows the metrics of a registered model version.
///
/// Guarantees: every metric under the asked prefix is shown — whatever the learning
/// library recorded, including ranking metrics at any K — once each, sorted by name, under
/// its bare `MetricName` and formatted by `MetricName.formatted`, so the listing never
/// depends on a list of names kept here.
public enum MetricLines {
    /// One line per metric of `metrics` whose name starts with `prefix` (by default the
    /// holdout's), names padded so that the values line up: `auc           0.8123`.
    public static func lines(_ metrics: [String: Double], prefix: String = MetricName.holdoutPrefix) -> [String] {
        let bare = MetricName.withPrefix(prefix, in: metrics)
        let width = bare.keys.map(\.count).max() ?? 0
        return bare.keys.sorted().map { name in
            name.padding(toLength: width, withPad: " ", startingAt: 0) + "  " + MetricName.formatted(bare[name]!, of: name)
        }
    }
}
