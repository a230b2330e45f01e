import Foundation

/// How a feature's values are to be read.
///
/// Learners in this library bin categorical codes like numbers (ordered by code); the
/// kind is kept so that loaders can map category strings to codes consistently between
/// training and scoring, and so that later learners can treat them specially.
public enum FeatureKind: String, Sendable, Equatable, CaseIterable {
    case numeric
    case categorical
    case binary
}

/// One named feature. For a categorical feature `categories[code]` is the category
/// string that was encoded as `Float(code)`.
public struct Feature: Sendable, Equatable {
    public var name: String
    public var kind: FeatureKind
    public var categories: [String]

    public init(name: String, kind: FeatureKind = .numeric, categories: [String] = []) {
        self.name = name
        self.kind = kind
        self.categories = categories
    }
}

/// Ordered feature names and kinds. A model carries the schema it was trained on and
/// scores any data set by feature *name*, so column order in a file does not matter.
public struct FeatureSchema: Sendable, Equatable {
    public var features: [Feature]

    public init(_ features: [Feature]) { self.features = features }

    public var count: Int { features.count }
    public var names: [String] { features.map(\.name) }

    public func index(of name: String) -> Int? { features.firstIndex { $0.name == name } }
}

/// A table of Float32 features stored column by column, with optional binary labels,
/// a group id per row (the user, for ranking metrics) and a day per row (for time
/// splits). Missing values are NaN; every learner routes them explicitly.
///
/// Guarantees: every column, `labels` (when present), `groups` and `days` (when
/// present) have exactly `rowCount` entries.
public struct Dataset: Sendable {
    public let schema: FeatureSchema
    public private(set) var columns: [[Float]]
    /// 0 or 1 per row; empty for unlabeled data.
    public private(set) var labels: [Float]
    public private(set) var groups: [Int]?
    public private(set) var days: [Int]?
    public let rowCount: Int

    public init(schema: FeatureSchema, columns: [[Float]], labels: [Float] = [],
                groups: [Int]? = nil, days: [Int]? = nil) {
        precondition(columns.count == schema.count, "one column per schema feature")
        let n = columns.first?.count ?? labels.count
        precondition(columns.allSatisfy { $0.count == n }, "columns must have equal length")
        precondition(labels.isEmpty || labels.count == n, "one label per row")
        precondition(groups == nil || groups!.count == n, "one group per row")
        precondition(days == nil || days!.count == n, "one day per row")
        self.schema = schema
        self.columns = columns
        self.labels = labels
        self.groups = groups
        self.days = days
        self.rowCount = n
    }

    public var featureCount: Int { schema.count }
    public var hasLabels: Bool { !labels.isEmpty }

    public func value(row: Int, feature: Int) -> Float { columns[feature][row] }

    /// One row's features in schema order.
    public func row(_ r: Int) -> [Float] { columns.map { $0[r] } }

    /// The rows at `indices`, in that order.
    public func subset(_ indices: [Int]) -> Dataset {
        Dataset(schema: schema,
                columns: columns.map { col in indices.map { col[$0] } },
                labels: labels.isEmpty ? [] : indices.map { labels[$0] },
                groups: groups.map { g in indices.map { g[$0] } },
                days: days.map { d in indices.map { d[$0] } })
    }

    /// Columns rearranged to `target`'s feature order, matched by name; a missing
    /// feature is a `DataError.schemaMismatch`.
    public func aligned(to target: FeatureSchema) throws -> Dataset {
        if target.names == schema.names { return self }
        var cols: [[Float]] = []
        var missing: [String] = []
        for f in target.features {
            if let i = schema.index(of: f.name) { cols.append(columns[i]) } else { missing.append(f.name) }
        }
        if !missing.isEmpty { throw DataError.schemaMismatch(missing: missing) }
        return Dataset(schema: target, columns: cols, labels: labels, groups: groups, days: days)
    }

    /// Fraction of positive labels.
    public var positiveRate: Double {
        labels.isEmpty ? 0 : labels.reduce(0.0) { $0 + Double($1) } / Double(labels.count)
    }

    /// Writes the data set as CSV (features, then `label`, `group`, `day` when present);
    /// categorical features are written as their codes so any numeric tool reads them.
    public func writeCSV(to url: URL) throws {
        var header = schema.names
        if hasLabels { header.append("label") }
        if groups != nil { header.append("group") }
        if days != nil { header.append("day") }
        var w = CSVWriter(header: header)
        var fields = [String](repeating: "", count: header.count)
        for r in 0..<rowCount {
            var k = 0
            for c in columns { fields[k] = csvNumber(c[r]); k += 1 }
            if hasLabels { fields[k] = csvNumber(labels[r]); k += 1 }
            if let g = groups { fields[k] = String(g[r]); k += 1 }
            if let d = days { fields[k] = String(d[r]); k += 1 }
            w.writeRow(fields)
        }
        try w.write(to: url)
    }
}

/// Loads any tabular CSV with a header row: the label column becomes labels, the
/// optional group column becomes group ids (for per-group ranking metrics), declared
/// categorical columns are encoded as category codes, and every other column must be
/// numeric and becomes a feature.
public struct TabularCSVOptions: Sendable, Equatable {
    public var labelColumn: String
    public var groupColumn: String?
    public var categoricalColumns: [String]
    /// Columns to ignore entirely (identifiers, free text).
    public var ignoredColumns: [String]

    public init(labelColumn: String = "label", groupColumn: String? = nil,
                categoricalColumns: [String] = [], ignoredColumns: [String] = []) {
        self.labelColumn = labelColumn
        self.groupColumn = groupColumn
        self.categoricalColumns = categoricalColumns
        self.ignoredColumns = ignoredColumns
    }
}

public enum TabularCSV {
    /// Reads `url`. When `schema` is given (scoring or a test file), the features are
    /// taken by name in that schema's order and categories are coded with its
    /// dictionaries (an unseen category becomes NaN); labels are optional then.
    public static func load(_ url: URL, options: TabularCSVOptions,
                            schema: FeatureSchema? = nil) throws -> Dataset {
        try load(table: CSVTable(contentsOf: url), options: options, schema: schema)
    }

    public static func load(table: CSVTable, options: TabularCSVOptions,
                            schema: FeatureSchema? = nil) throws -> Dataset {
        let file = table.file
        if table.rowCount == 0 { throw DataError.emptyFile(file: file) }
        let labelIndex: Int?
        if schema == nil {
            labelIndex = try table.columnIndex(options.labelColumn)
        } else {
            labelIndex = table.header.firstIndex(of: options.labelColumn)
        }
        let groupIndex = try options.groupColumn.map { try table.columnIndex($0) }
        for c in options.categoricalColumns where !table.header.contains(c) {
            throw DataError.missingColumn(file: file, column: c, available: table.header)
        }

        var labels: [Float] = []
        if let li = labelIndex {
            labels = [Float](repeating: 0, count: table.rowCount)
            for r in 0..<table.rowCount {
                let s = table.string(row: r, column: li).lowercased()
                switch s {
                case "1", "1.0", "true", "yes": labels[r] = 1
                case "0", "0.0", "false", "no": labels[r] = 0
                default: throw DataError.invalidLabel(file: file, line: table.lineNumbers[r], column: li + 1, value: s)
                }
            }
        }
        var groups: [Int]? = nil
        if let gi = groupIndex {
            // Group ids may be strings (e.g. "u17"); map each distinct id to an integer
            // in order of first appearance.
            var ids: [String: Int] = [:]
            var g = [Int](repeating: 0, count: table.rowCount)
            for r in 0..<table.rowCount {
                let s = table.string(row: r, column: gi)
                if let v = Int(s) { g[r] = v; continue }
                if let k = ids[s] { g[r] = k } else { let k = -(ids.count + 1); ids[s] = k; g[r] = k }
            }
            groups = g
        }

        var features: [Feature] = []
        var columns: [[Float]] = []
        if let schema {
            var missing: [String] = []
            for f in schema.features {
                guard let ci = table.header.firstIndex(of: f.name) else { missing.append(f.name); continue }
                if f.kind == .categorical {
                    columns.append(encode(table, ci, dictionary: f.categories).codes)
                } else {
                    columns.append(try table.floatColumn(ci))
                }
            }
            if !missing.isEmpty { throw DataError.schemaMismatch(missing: missing) }
            features = schema.features
        } else {
            let skip = Set([options.labelColumn] + [options.groupColumn].compactMap { $0 } + options.ignoredColumns)
            let categorical = Set(options.categoricalColumns)
            for (ci, name) in table.header.enumerated() where !skip.contains(name) {
                if categorical.contains(name) {
                    let (codes, dict) = encode(table, ci, dictionary: nil)
                    features.append(Feature(name: name, kind: .categorical, categories: dict))
                    columns.append(codes)
                } else {
                    let col = try table.floatColumn(ci)
                    let binary = col.allSatisfy { $0.isNaN || $0 == 0 || $0 == 1 }
                    features.append(Feature(name: name, kind: binary ? .binary : .numeric))
                    columns.append(col)
                }
            }
            if features.isEmpty {
                throw DataError.emptyDataSet(reason: "\(file) has no feature columns besides label/group")
            }
        }
        return Dataset(schema: FeatureSchema(features), columns: columns, labels: labels, groups: groups)
    }

    /// Category strings → codes. With a fixed dictionary, unseen values become NaN (the
    /// learners' missing-value path) rather than a new code the model never saw.
    private static func encode(_ table: CSVTable, _ column: Int, dictionary: [String]?) -> (codes: [Float], dictionary: [String]) {
        var dict = dictionary ?? []
        var lookup: [String: Int] = [:]
        for (i, s) in dict.enumerated() { lookup[s] = i }
        var codes = [Float](repeating: .nan, count: table.rowCount)
        for r in 0..<table.rowCount {
            if table.isMissing(row: r, column: column) { continue }
            let s = table.string(row: r, column: column)
            if let k = lookup[s] { codes[r] = Float(k); continue }
            if dictionary == nil { lookup[s] = dict.count; codes[r] = Float(dict.count); dict.append(s) }
        }
        return (codes, dict)
    }
}
