import Foundation

/// Numbers as an operator reads them in a table: a count as a whole number, a fraction
/// to the precision that tells runs apart, never the 17 digits a Double prints.
public enum ReadableNumber {
    /// `9961.0` → `9961`, `0.92150826` → `0.9215`, `1234.5678` → `1234.57`, NaN → `n/a`.
    public static func metric(_ value: Double) -> String {
        guard value.isFinite else { return value.isNaN ? "n/a" : (value > 0 ? "inf" : "-inf") }
        if value == value.rounded(), abs(value) < 1e15 { return String(Int64(value)) }
        return abs(value) >= 100 ? String(format: "%.2f", value) : String(format: "%.4f", value)
    }

    /// A parameter as recorded (text): numbers with a fraction to four significant
    /// digits (`0.9215082667022023` → `0.9215`, `0.0312` stays), anything else as given.
    public static func parameter(_ text: String) -> String {
        guard text.contains("."), let value = Double(text), value.isFinite else { return text }
        return String(format: "%.4g", value)
    }
}
