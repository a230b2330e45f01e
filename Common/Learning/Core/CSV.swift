import Foundation

/// A parsed CSV file kept as raw bytes plus field boundaries, so that a million-row file
/// is parsed without creating a String per cell. Fields are converted on demand.
///
/// Supported dialect: comma separator, first row is the header, `\n` or `\r\n` line
/// ends, fields may be double-quoted with `""` as an escaped quote (but may not contain
/// line breaks), entirely empty lines are skipped.
public struct CSVTable: Sendable {
    public let file: String
    public let header: [String]
    private let bytes: [UInt8]
    /// Field byte ranges, row-major: rowCount × header.count pairs of (start, end).
    private let fieldStarts: [Int32]
    private let fieldEnds: [Int32]
    /// 1-based line number in the file of each data row, for error messages.
    public let lineNumbers: [Int]
    private let quotedFields: Set<Int>

    /// Longest line accepted. Real rows are a few hundred bytes; a longer "line" is a
    /// binary or newline-less file, refused before it is parsed as one giant header.
    public static let maxLineBytes = 1 << 20
    /// Largest file accepted: field offsets are stored as Int32 to halve their memory.
    public static let maxFileBytes = Int(Int32.max) - 1

    public var rowCount: Int { lineNumbers.count }
    public var columnCount: Int { header.count }

    public init(contentsOf url: URL) throws {
        // Checked before reading, so an oversized file costs no memory.
        if let size = (try? FileManager.default.attributesOfItem(atPath: url.path)[.size] as? NSNumber)?.intValue,
           size > Self.maxFileBytes {
            throw DataError.fileTooLarge(file: url.path, bytes: size, limit: Self.maxFileBytes)
        }
        let data: Data
        do { data = try Data(contentsOf: url) } catch {
            throw DataError.unreadable(file: url.path, reason: error.localizedDescription)
        }
        try self.init(bytes: [UInt8](data), file: url.path)
    }

    public init(text: String, file: String = "<memory>") throws {
        try self.init(bytes: Array(text.utf8), file: file)
    }

    public init(bytes: [UInt8], file: String) throws {
        self.file = file
        self.bytes = bytes
        var starts: [Int32] = [], ends: [Int32] = []
        var lines: [Int] = []
        var quoted = Set<Int>()
        var header: [String]? = nil
        var line = 0
        var pos = 0
        let n = bytes.count
        guard n <= Self.maxFileBytes else { throw DataError.fileTooLarge(file: file, bytes: n, limit: Self.maxFileBytes) }
        var rowStarts: [Int32] = [], rowEnds: [Int32] = [], rowQuoted: [Int] = []
        while pos < n {
            line += 1
            var lineEnd = pos
            let longest = min(n, pos + Self.maxLineBytes + 1)
            while lineEnd < longest && bytes[lineEnd] != 10 { lineEnd += 1 }
            if lineEnd - pos > Self.maxLineBytes { throw DataError.lineTooLong(file: file, line: line, limit: Self.maxLineBytes) }
            let next = lineEnd + 1
            var contentEnd = lineEnd
            if contentEnd > pos && bytes[contentEnd - 1] == 13 { contentEnd -= 1 }
            if contentEnd == pos { pos = next; continue }
            rowStarts.removeAll(keepingCapacity: true)
            rowEnds.removeAll(keepingCapacity: true)
            rowQuoted.removeAll(keepingCapacity: true)
            var p = pos
            while true {
                if p < contentEnd && bytes[p] == 34 {
                    // Quoted field: the stored range excludes the outer quotes; "" is
                    // unescaped when the field is read.
                    var q = p + 1
                    var closed = false
                    while q < contentEnd {
                        if bytes[q] == 34 {
                            if q + 1 < contentEnd && bytes[q + 1] == 34 { q += 2; continue }
                            closed = true; break
                        }
                        q += 1
                    }
                    if !closed { throw DataError.unbalancedQuote(file: file, line: line) }
                    rowQuoted.append(rowStarts.count)
                    rowStarts.append(Int32(p + 1)); rowEnds.append(Int32(q))
                    p = q + 1
                    while p < contentEnd && bytes[p] != 44 { p += 1 }
                } else {
                    let s = p
                    while p < contentEnd && bytes[p] != 44 { p += 1 }
                    rowStarts.append(Int32(s)); rowEnds.append(Int32(p))
                }
                if p >= contentEnd { break }
                p += 1  // skip comma
                if p == contentEnd { rowStarts.append(Int32(p)); rowEnds.append(Int32(p)); break }
            }
            if header == nil {
                var names: [String] = []
                for i in 0..<rowStarts.count {
                    let raw = String(decoding: bytes[Int(rowStarts[i])..<Int(rowEnds[i])], as: UTF8.self)
                    names.append(raw.trimmingCharacters(in: .whitespaces).replacingOccurrences(of: "\"\"", with: "\""))
                }
                var seen = Set<String>()
                for name in names where !seen.insert(name).inserted {
                    throw DataError.duplicateColumn(file: file, column: name)
                }
                header = names
            } else {
                let expected = header!.count
                if rowStarts.count != expected {
                    throw DataError.wrongColumnCount(file: file, line: line, expected: expected, found: rowStarts.count)
                }
                let base = lines.count * expected
                for q in rowQuoted { quoted.insert(base + q) }
                starts.append(contentsOf: rowStarts); ends.append(contentsOf: rowEnds)
                lines.append(line)
            }
            pos = next
        }
        guard let header else { throw DataError.emptyFile(file: file) }
        self.header = header
        self.fieldStarts = starts
        self.fieldEnds = ends
        self.lineNumbers = lines
        self.quotedFields = quoted
    }

    public func columnIndex(_ name: String) throws -> Int {
        guard let i = header.firstIndex(of: name) else {
            throw DataError.missingColumn(file: file, column: name, available: header)
        }
        return i
    }

    /// The field text with surrounding spaces removed.
    public func string(row: Int, column: Int) -> String {
        let k = row * header.count + column
        let raw = String(decoding: bytes[Int(fieldStarts[k])..<Int(fieldEnds[k])], as: UTF8.self)
        let trimmed = raw.trimmingCharacters(in: .whitespaces)
        return quotedFields.contains(k) ? trimmed.replacingOccurrences(of: "\"\"", with: "\"") : trimmed
    }

    /// True for an empty cell or one of the missing markers NA, NaN, null (any case).
    public func isMissing(row: Int, column: Int) -> Bool {
        let k = row * header.count + column
        var s = Int(fieldStarts[k]), e = Int(fieldEnds[k])
        while s < e && bytes[s] == 32 { s += 1 }
        while e > s && bytes[e - 1] == 32 { e -= 1 }
        if s == e { return true }
        let len = e - s
        if len == 2 { return (bytes[s] | 0x20) == 110 && (bytes[s + 1] | 0x20) == 97 }  // na
        if len == 3 { return (bytes[s] | 0x20) == 110 && (bytes[s + 1] | 0x20) == 97 && (bytes[s + 2] | 0x20) == 110 }  // nan
        if len == 4 { return String(decoding: bytes[s..<e], as: UTF8.self).lowercased() == "null" }
        return false
    }

    /// The numeric value of a field: NaN for a missing value, nil when not a number.
    public func number(row: Int, column: Int) -> Double? {
        if isMissing(row: row, column: column) { return .nan }
        let k = row * header.count + column
        return bytes.withUnsafeBufferPointer { buf in
            parseDecimal(buf, Int(fieldStarts[k]), Int(fieldEnds[k]))
        }
    }

    /// Numeric column as Float32 with missing values as NaN, or the first bad value as a
    /// typed error.
    public func floatColumn(_ column: Int) throws -> [Float] {
        var out = [Float](repeating: 0, count: rowCount)
        for r in 0..<rowCount {
            guard let v = number(row: r, column: column) else {
                throw DataError.nonNumericValue(file: file, line: lineNumbers[r], column: column + 1,
                                                columnName: header[column], value: string(row: r, column: column))
            }
            out[r] = Float(v)
        }
        return out
    }

    /// Integer column (identifiers, days); a missing or fractional value is an error.
    public func intColumn(_ column: Int) throws -> [Int] {
        var out = [Int](repeating: 0, count: rowCount)
        for r in 0..<rowCount {
            guard let v = number(row: r, column: column), v.isFinite, v == v.rounded(),
                  abs(v) < 9.0e15 else {
                throw DataError.nonNumericValue(file: file, line: lineNumbers[r], column: column + 1,
                                                columnName: header[column], value: string(row: r, column: column))
            }
            out[r] = Int(v)
        }
        return out
    }

    /// True when every non-missing value of the column parses as a number.
    public func isNumericColumn(_ column: Int) -> Bool {
        for r in 0..<rowCount where number(row: r, column: column) == nil { return false }
        return true
    }
}

private let powersOfTen: [Double] = (0...22).map { pow(10.0, Double($0)) }

/// Decimal parser over bytes for the common "-12.345e-6" shape; falls back to the
/// standard library for anything else (inf, hex floats, very long mantissas), which
/// keeps it exact where the fast path could round differently.
private func parseDecimal(_ b: UnsafeBufferPointer<UInt8>, _ start: Int, _ end: Int) -> Double? {
    var s = start, e = end
    while s < e && b[s] == 32 { s += 1 }
    while e > s && b[e - 1] == 32 { e -= 1 }
    if s == e { return nil }
    var i = s
    var negative = false
    if b[i] == 45 || b[i] == 43 { negative = b[i] == 45; i += 1 }
    var mantissa: UInt64 = 0
    var digits = 0
    var fractionDigits = 0
    var sawDigit = false
    while i < e, b[i] >= 48, b[i] <= 57 {
        mantissa = mantissa &* 10 &+ UInt64(b[i] - 48); digits += 1; sawDigit = true; i += 1
    }
    if i < e && b[i] == 46 {
        i += 1
        while i < e, b[i] >= 48, b[i] <= 57 {
            mantissa = mantissa &* 10 &+ UInt64(b[i] - 48); digits += 1; fractionDigits += 1; sawDigit = true; i += 1
        }
    }
    var exponent = 0
    if sawDigit && i < e && (b[i] | 0x20) == 101 {
        i += 1
        var expNegative = false
        if i < e && (b[i] == 45 || b[i] == 43) { expNegative = b[i] == 45; i += 1 }
        var expDigits = 0
        while i < e, b[i] >= 48, b[i] <= 57, expDigits < 6 { exponent = exponent * 10 + Int(b[i] - 48); expDigits += 1; i += 1 }
        if expDigits == 0 { return nil }
        if expNegative { exponent = -exponent }
    }
    if sawDigit && i == e && digits <= 15 {
        let scale = exponent - fractionDigits
        if scale >= -22 && scale <= 22 {
            // Exact: mantissa < 2^53 and 10^|scale| is exact in Double, one rounding.
            var v = Double(mantissa)
            v = scale < 0 ? v / powersOfTen[-scale] : v * powersOfTen[scale]
            return negative ? -v : v
        }
    }
    let text = String(decoding: UnsafeBufferPointer(rebasing: b[s..<e]), as: UTF8.self)
    guard let v = Double(text) else { return nil }
    return v
}

/// Writes CSV text; numbers are written with the shortest representation that reads
/// back to the same value, so files round-trip exactly.
public struct CSVWriter {
    private var buffer: [UInt8] = []

    public init(header: [String]) {
        buffer.reserveCapacity(1 << 20)
        writeRow(header.map(Self.escape))
    }

    public static func escape(_ field: String) -> String {
        if field.contains(",") || field.contains("\"") {
            return "\"" + field.replacingOccurrences(of: "\"", with: "\"\"") + "\""
        }
        return field
    }

    public mutating func writeRow(_ fields: [String]) {
        for (i, f) in fields.enumerated() {
            if i > 0 { buffer.append(44) }
            buffer.append(contentsOf: f.utf8)
        }
        buffer.append(10)
    }

    public var data: Data { Data(buffer) }

    public func write(to url: URL) throws {
        do { try data.write(to: url, options: .atomic) } catch {
            throw DataError.unreadable(file: url.path, reason: "cannot write: \(error.localizedDescription)")
        }
    }
}

/// Formats a number for CSV: integers without a fraction, NaN as empty (missing).
@inline(__always)
func csvNumber(_ v: Double) -> String {
    if v.isNaN { return "" }
    if v == v.rounded() && abs(v) < 1e15 { return String(Int64(v)) }
    return "\(v)"
}

@inline(__always)
func csvNumber(_ v: Float) -> String {
    if v.isNaN { return "" }
    if v == v.rounded() && abs(v) < 1e7 { return String(Int64(v)) }
    return "\(v)"
}
