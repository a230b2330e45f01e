import Foundation

// The fuzzers in this folder drive a running coordinator from outside, over its real
// sockets, for the test suite (a small count) and `tower-bench` (`make fuzz`, at scale).
// No request path of the coordinator calls them.

/// A seedable generator (xorshift64*, seeded through splitmix64) and the value shapes the
/// fuzzers draw from. The same seed gives the same values, so a failure found at scale
/// replays from the seed it printed.
public struct FuzzRandom {
    private var state: UInt64

    public init(seed: UInt64) {
        // splitmix64: neighbouring seeds (connection 1, 2, 3...) give unrelated streams.
        var z = seed &+ 0x9E37_79B9_7F4A_7C15
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        state = (z ^ (z >> 31)) | 1
    }

    public mutating func next() -> UInt64 {
        state ^= state >> 12; state ^= state << 25; state ^= state >> 27
        return state &* 2_685_821_657_736_338_717
    }

    /// 0..<n (0 when n ≤ 1).
    public mutating func below(_ n: Int) -> Int { n <= 1 ? 0 : Int(next() % UInt64(n)) }
    public mutating func chance(_ oneIn: Int) -> Bool { below(oneIn) == 0 }
    public mutating func pick<T>(_ items: [T]) -> T { items[below(items.count)] }
    public mutating func bool() -> Bool { next() & 1 == 1 }

    public mutating func bytes(_ count: Int) -> [UInt8] {
        var out = [UInt8]()
        out.reserveCapacity(count)
        while out.count < count {
            var word = next()
            for _ in 0..<min(8, count - out.count) {
                out.append(UInt8(truncatingIfNeeded: word))
                word >>= 8
            }
        }
        return out
    }

    /// Random bytes, mostly short, sometimes empty or large.
    public mutating func data() -> Data {
        switch below(10) {
        case 0: return Data()
        case 1: return Data(bytes(64 * 1024 + below(64 * 1024)))
        default: return Data(bytes(below(64)))
        }
    }

    /// Numbers that sit on the edges validation code gets wrong: 0, 1, powers of two and
    /// their neighbours, the type's maximum, and plain random ones.
    public mutating func uint32() -> UInt32 {
        switch below(8) {
        case 0: return 0
        case 1: return 1
        case 2: return .max
        case 3: return .max - UInt32(below(2))
        case 4: let p = UInt32(1) << UInt32(below(32)); return bool() ? p : p &- 1
        case 5: return UInt32(below(100))
        default: return UInt32(truncatingIfNeeded: next())
        }
    }

    public mutating func uint64() -> UInt64 {
        switch below(6) {
        case 0: return 0
        case 1: return .max
        case 2: return UInt64(1) << UInt64(below(64))
        case 3: return UInt64(below(1000))
        default: return next()
        }
    }

    public mutating func double() -> Double {
        pick([0, -0.0, 1, -1, 0.5, .nan, .infinity, -.infinity, .greatestFiniteMagnitude, .leastNonzeroMagnitude,
              Double(bitPattern: next()), Double(below(1000)) / 7])
    }

    /// Unicode that breaks naive code: combining marks, right-to-left overrides, a BOM, NUL,
    /// emoji, fullwidth digits that `Character.isHexDigit` accepts, a lone replacement char.
    static let oddScalars = ["é", "e\u{301}", "日本語", "🚀", "👩‍👩‍👧", "\u{0}", "\u{202E}", "\u{FEFF}", "\u{FFFD}",
                             "０", "ａ", "Ａ", "\u{200B}", "ß", "İ", "\u{10FFFF}", "\n", "\r\n", "\t", "\"", "\\", "'", "%", "/"]
    /// Strings that mean something somewhere: paths, SQL, format strings, known names.
    static let loadedStrings = ["../../etc/passwd", "..", ".", "/", "%00", "%2e%2e%2f", "'; DROP TABLE jobs; --", "%s%s%n",
                                "${HOME}", "{}", "[]", "null", "NaN", "-1", "echo", "hpo", "champion", "operator",
                                "worker", "gateway", "coordinator", "fuzz-w1", "fuzz-gw", "w1", "job-", "holdout_auc"]

    /// Random text: empty, short ASCII, odd Unicode, loaded strings, hex hashes, or huge.
    public mutating func string() -> String {
        switch below(12) {
        case 0, 1: return ""
        case 2, 3: return String((0..<(1 + below(16))).map { _ in Character(UnicodeScalar(UInt8(33 + below(94)))) })
        case 4, 5: return (0..<(1 + below(8))).map { _ in pick(Self.oddScalars) }.joined()
        case 6, 7: return pick(Self.loadedStrings)
        case 8: return hash()
        case 9: return pick(Self.loadedStrings) + (0..<(1 + below(4))).map { _ in pick(Self.oddScalars) }.joined()
        case 10: return String(repeating: pick(["a", "é", "🚀", "/", "\u{0}"]), count: 1024 + below(16 * 1024))
        default:
            // Rarely, a string of a megabyte or two: large frames, well inside the limit.
            if chance(8) { return String(repeating: "x", count: (1 << 20) + below(1 << 20)) }
            return String(repeating: "ab", count: below(512))
        }
    }

    /// Something shaped like a blob address, or nearly: valid lowercase hex, uppercase,
    /// one character short or long, fullwidth digits, or empty.
    public mutating func hash() -> String {
        let hex = Array("0123456789abcdef")
        let valid = String((0..<64).map { _ in hex[below(16)] })
        switch below(6) {
        case 0, 1: return valid
        case 2: return valid.uppercased()
        case 3: return bool() ? String(valid.dropLast()) : valid + "0"
        case 4: return String(repeating: pick(["０", "ａ", "g", "/", "."]), count: 64)
        default: return ""
        }
    }

    /// Text that is JSON, nearly JSON, or JSON of the wrong shape, for specs that accept
    /// protobuf's JSON mapping.
    public mutating func json(fields: [String]) -> String {
        func value(_ depth: Int) -> String {
            switch below(depth > 2 ? 6 : 9) {
            case 0: return "\(Int64(bitPattern: next()))"
            case 1: return pick(["0", "1", "-1", "1e400", "-0", "4294967296", "18446744073709551616", "0.5", "NaN", "\"12\""])
            case 2: return "\"\(string().replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"").replacingOccurrences(of: "\n", with: "\\n").prefix(200))\""
            case 3: return pick(["true", "false", "null"])
            case 4: return "\"\\u0000\\ud800\""
            case 5: return "\(below(20))"
            case 6: return "[" + (0..<below(4)).map { _ in value(depth + 1) }.joined(separator: ",") + "]"
            default: return "{" + (0..<below(4)).map { _ in "\"\(pick(fields + ["x", ""]))\": \(value(depth + 1))" }.joined(separator: ",") + "}"
            }
        }
        var text = (bool() ? "" : pick([" ", "\n", "\t "])) + "{" + (0..<below(6)).map { _ in "\"\(pick(fields + ["unknownField"]))\": \(value(0))" }.joined(separator: ", ") + "}"
        switch below(6) {
        case 0: text.removeLast(1 + below(min(text.count, 4)))  // cut short
        case 1: text += pick(["}", ",", " garbage", "\u{0}"])
        default: break
        }
        return text
    }
}

/// The resident memory of this process, from /proc/self/statm (nil where there is none).
public enum ProcessMemory {
    public static func residentBytes() -> Int? {
        guard let text = try? String(contentsOfFile: "/proc/self/statm", encoding: .utf8) else { return nil }
        let fields = text.split(separator: " ")
        guard fields.count > 1, let pages = Int(fields[1]) else { return nil }
        return pages * Int(sysconf(Int32(_SC_PAGESIZE)))
    }

    public static func megabytes(_ bytes: Int?) -> String {
        bytes.map { String(format: "%.1f MiB", Double($0) / 1_048_576) } ?? "n/a"
    }
}
