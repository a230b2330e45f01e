import Foundation

/// Why a data file or data set could not be used. Every case names the file and, where
/// there is one, the 1-based line and the column, so a user can open the file at the
/// offending value. Loaders throw on the first problem and return nothing partial.
public enum DataError: Error, Equatable, CustomStringConvertible, Sendable {
    case unreadable(file: String, reason: String)
    case emptyFile(file: String)
    case wrongColumnCount(file: String, line: Int, expected: Int, found: Int)
    case nonNumericValue(file: String, line: Int, column: Int, columnName: String, value: String)
    case invalidLabel(file: String, line: Int, column: Int, value: String)
    case invalidValue(file: String, line: Int, column: Int, columnName: String, value: String, expected: String)
    case missingColumn(file: String, column: String, available: [String])
    case duplicateColumn(file: String, column: String)
    case unknownReference(file: String, line: Int, column: String, value: String)
    case unbalancedQuote(file: String, line: Int)
    case schemaMismatch(missing: [String])
    case emptyDataSet(reason: String)
    case lineTooLong(file: String, line: Int, limit: Int)
    case fileTooLarge(file: String, bytes: Int, limit: Int)
    case duplicateID(file: String, line: Int, column: String, value: String, firstLine: Int)
    case unexpectedColumn(file: String, column: String, expected: [String])
    case conflictingID(file: String, line: Int, column: String, value: String, reason: String)

    public var description: String {
        switch self {
        case let .unreadable(file, reason):
            return "\(file): cannot read the file (\(reason)). Check the path and permissions."
        case let .emptyFile(file):
            return "\(file): the file is empty; expected a header row and at least one data row."
        case let .wrongColumnCount(file, line, expected, found):
            return "\(file):\(line): expected \(expected) columns as in the header but found \(found). Check for a missing or extra comma on that line."
        case let .nonNumericValue(file, line, column, name, value):
            return "\(file):\(line): column \(column) ('\(name)') has non-numeric value '\(value)'. Fix the value, leave it empty or write NA for missing, or declare the column categorical (--categorical \(name))."
        case let .invalidLabel(file, line, column, value):
            return "\(file):\(line): label in column \(column) is '\(value)'; labels must be 0 or 1 (or true/false)."
        case let .invalidValue(file, line, column, name, value, expected):
            return "\(file):\(line): column \(column) ('\(name)') has value '\(value)'; expected \(expected)."
        case let .missingColumn(file, column, available):
            return "\(file): no column named '\(column)'. Columns in the header: \(available.joined(separator: ", "))."
        case let .duplicateColumn(file, column):
            return "\(file): column '\(column)' appears twice in the header; rename one of them."
        case let .unknownReference(file, line, column, value):
            return "\(file):\(line): '\(column)' refers to \(value), which is not in the referenced table. Regenerate or fix the data directory so all three files belong together."
        case let .unbalancedQuote(file, line):
            return "\(file):\(line): a quoted field is not closed on this line (quoted line breaks are not supported)."
        case let .schemaMismatch(missing):
            return "the data lacks features the model was trained on: \(missing.joined(separator: ", ")). Score data built the same way as the training data."
        case let .emptyDataSet(reason):
            return "no rows to work with: \(reason)"
        case let .lineTooLong(file, line, limit):
            return "\(file):\(line): the line is longer than \(limit) bytes; this is not a CSV file with one record per line (check the file and its line endings)."
        case let .fileTooLarge(file, bytes, limit):
            return "\(file): the file has \(bytes) bytes, more than the \(limit) a CSV table may have; split it (e.g. `split -l`) or sample it before loading."
        case let .duplicateID(file, line, column, value, firstLine):
            return "\(file):\(line): '\(column)' \(value) appears again (first on line \(firstLine)); each id may appear once per file."
        case let .unexpectedColumn(file, column, expected):
            return "\(file): unknown column '\(column)'; the file may have: \(expected.joined(separator: ", "))."
        case let .conflictingID(file, line, column, value, reason):
            return "\(file):\(line): '\(column)' \(value) \(reason)."
        }
    }
}
