import Foundation

/// Training and validation data with their bins learned once, for many trainings on the
/// same rows: the trials of a hyperparameter search differ in their parameters, not in
/// their data, so binning (sorting a sample of every feature, then a bin code per value)
/// need not be repeated per trial. The coordinator builds one per search and ships it
/// as a blob (``encode()``); workers decode it once and train every trial from it with
/// ``GBDTTrainer/train(_:parameters:objective:recordCurve:callback:)``.
///
/// Guarantees: a model trained from a binned set is byte-for-byte the model trained from
/// `train` and `valid` themselves with the same parameters — the bins are exactly those
/// ``GBDTTrainer`` would learn, and a trial whose parameters would bin differently
/// (another `max_bin` or `min_data_in_bin`, or another seed when the bounds are learned
/// from a sample) is
/// binned afresh (see ``binsApply(to:)``).
public final class BinnedTrainingSet: @unchecked Sendable {
    public let train: Dataset
    /// Aligned to `train`'s schema; nil when there is no validation data.
    public let valid: Dataset?
    public let maxBin: Int
    public let minDataInBin: Int
    /// The seed the bounds were learned with. It matters only for a training set larger
    /// than the binning sample (``Binner/sampleLimit``), where it picks the sample.
    public let binningSeed: UInt64
    public let binnings: [FeatureBinning]
    /// Immutable after init (hence Sendable).
    let matrix: BinnedMatrix
    let validMatrix: BinnedMatrix?

    /// Bins `train` (and `valid` with the same bounds) as a training with `maxBin`,
    /// `minDataInBin` and `seed` would.
    public init(train: Dataset, valid: Dataset?, maxBin: Int = BoostingParameters().maxBin,
                minDataInBin: Int = FeatureBinning.minDataInBin, seed: UInt64 = 0, threads: Int = 0) throws {
        let threads = threads > 0 ? threads : availableCores
        let aligned: Dataset?
        // As GBDTTrainer reads them: an empty validation set is none; a missing feature
        // is the trainer's schema error.
        do { aligned = try valid.flatMap { $0.rowCount == 0 ? nil : try $0.aligned(to: train.schema) } }
        catch DataError.schemaMismatch(let missing) { throw TrainingError.schemaMismatch(missing: missing) }
        let bins = Self.clamped(maxBin)
        let minData = max(1, minDataInBin)
        let binnings = Binner.fit(train, maxBin: bins, minDataInBin: minData, seed: seed, threads: threads)
        self.train = train
        self.valid = aligned
        self.maxBin = bins
        self.minDataInBin = minData
        self.binningSeed = seed
        self.binnings = binnings
        self.matrix = BinnedMatrix(train, binnings: binnings, threads: threads)
        self.validMatrix = aligned.map { BinnedMatrix($0, binnings: binnings, threads: threads) }
    }

    /// Bins `train` (and `valid`) as a training with `p` would: the one place that
    /// knows which parameters decide the bins.
    public convenience init(train: Dataset, valid: Dataset?, binningAs p: BoostingParameters) throws {
        try self.init(train: train, valid: valid, maxBin: p.maxBin, minDataInBin: p.minDataInBin, seed: p.seed,
                      threads: p.threads)
    }

    private init(train: Dataset, valid: Dataset?, maxBin: Int, minDataInBin: Int, binningSeed: UInt64,
                 binnings: [FeatureBinning], matrix: BinnedMatrix, validMatrix: BinnedMatrix?) {
        self.train = train
        self.valid = valid
        self.maxBin = maxBin
        self.minDataInBin = minDataInBin
        self.binningSeed = binningSeed
        self.binnings = binnings
        self.matrix = matrix
        self.validMatrix = validMatrix
    }

    /// The bin count a training actually uses for `maxBin` (as ``BoostingParameters``
    /// and ``FeatureBinning/fit(_:maxBin:)`` clamp it).
    static func clamped(_ maxBin: Int) -> Int { min(255, max(2, maxBin)) }

    /// Whether a training with `p` would learn exactly these bins: the same bin count and
    /// rows per bin, and — only when the bounds come from a sample of the rows — the same
    /// seed.
    public func binsApply(to p: BoostingParameters) -> Bool {
        Self.clamped(p.maxBin) == maxBin && max(1, p.minDataInBin) == minDataInBin
            && (train.rowCount <= Binner.sampleLimit || p.seed == binningSeed)
    }

    /// The same rows binned as a training with `p` would bin them: `self` when the bins
    /// apply, else a new set (the caller may keep it for other trials with such `p`).
    public func rebinned(for p: BoostingParameters) throws -> BinnedTrainingSet {
        if binsApply(to: p) { return self }
        return try BinnedTrainingSet(train: train, valid: valid, binningAs: p)
    }

    /// The key under which a worker keeps the binned variants of one data set of
    /// `rows` training rows: two parameter sets with equal keys bin the rows identically.
    public static func binningKey(rows: Int, parameters p: BoostingParameters) -> String {
        let bins = "max_bin=\(clamped(p.maxBin)),min_data_in_bin=\(max(1, p.minDataInBin))"
        return rows <= Binner.sampleLimit ? bins : bins + ",seed=\(p.seed)"
    }

    /// This set's own key (see ``binningKey(rows:parameters:)``).
    public var binningKey: String {
        var p = BoostingParameters()
        p.maxBin = maxBin
        p.minDataInBin = minDataInBin
        p.seed = binningSeed
        return Self.binningKey(rows: train.rowCount, parameters: p)
    }

    // MARK: Blob format

    /// "TWBN", then a little-endian version; the rest is documented in ``encode()``.
    public static let magic = Array("TWBN".utf8)
    /// Version 2 added `min_data_in_bin`; a version 1 blob was binned one value per bin.
    public static let version: UInt16 = 2

    public static func isBinnedTrainingSet(_ data: Data) -> Bool {
        data.count >= 4 && Array(data.prefix(4)) == magic
    }

    /// The blob: magic, version, max_bin (u16), min_data_in_bin (u16), seed (u64), the
    /// training rows and the
    /// validation rows (a flag, then the rows) as data sets, every feature's upper bounds,
    /// then the bin codes (one byte per value, column by column) of training, then of
    /// validation rows. Data sets are written as: feature count, per feature its name,
    /// kind and categories; row count; Float32 columns; then labels, groups and days, each
    /// behind a presence flag. Little-endian throughout, as the hosts are.
    public func encode() -> Data {
        var w = ByteWriter()
        w.raw(Self.magic)
        w.u16(Self.version)
        w.u16(UInt16(maxBin))
        w.u16(UInt16(clamping: minDataInBin))
        w.u64(binningSeed)
        Self.write(train, to: &w)
        w.u8(valid == nil ? 0 : 1)
        if let valid { Self.write(valid, to: &w) }
        for b in binnings { w.f32s(b.upperBounds) }
        w.buffer.append(contentsOf: UnsafeBufferPointer(start: matrix.bins, count: matrix.rowCount * matrix.featureCount))
        if let vm = validMatrix {
            w.buffer.append(contentsOf: UnsafeBufferPointer(start: vm.bins, count: vm.rowCount * vm.featureCount))
        }
        return Data(w.buffer)
    }

    private static func write(_ d: Dataset, to w: inout ByteWriter) {
        w.schemaAndColumns(d)
        w.u8(d.hasLabels ? 1 : 0)
        if d.hasLabels { w.f32Block(d.labels) }
        w.u8(d.groups == nil ? 0 : 1)
        for g in d.groups ?? [] { w.u64(UInt64(bitPattern: Int64(g))) }
        w.u8(d.days == nil ? 0 : 1)
        for x in d.days ?? [] { w.u32(UInt32(bitPattern: Int32(clamping: x))) }
    }

    /// Reads a blob written by ``encode()``. Every inconsistency — a short blob, counts
    /// that do not fit, bounds that are not ascending, a bin code beyond its feature's
    /// bins — is a ``BinnedTrainingSetError``, so a damaged blob never trains a model.
    public static func decode(_ data: Data) throws -> BinnedTrainingSet {
        var r = Reader(bytes: [UInt8](data))
        guard isBinnedTrainingSet(data) else { throw BinnedTrainingSetError.notBinned }
        r.position = 4
        let version = try r.u16("the version")
        guard (1...Self.version).contains(version) else { throw BinnedTrainingSetError.unsupportedVersion(Int(version), supported: Int(Self.version)) }
        let maxBin = Int(try r.u16("max_bin"))
        guard maxBin == clamped(maxBin) else { throw BinnedTrainingSetError.malformed("max_bin \(maxBin) is outside 2…255") }
        let minDataInBin = version == 1 ? 1 : Int(try r.u16("min_data_in_bin"))
        guard minDataInBin >= 1 else { throw BinnedTrainingSetError.malformed("min_data_in_bin is 0; 1 or more expected") }
        let seed = try r.u64("the seed")
        let train = try read(&r, what: "training rows", schema: nil)
        let valid = try r.u8("the validation flag") == 0 ? nil : try read(&r, what: "validation rows", schema: train.schema)
        var binnings: [FeatureBinning] = []
        for f in train.schema.features {
            let count = Int(try r.u32("the bin count of \(f.name)"))
            guard (1...255).contains(count) else { throw BinnedTrainingSetError.malformed("feature \(f.name) has \(count) bins; 1…255 expected") }
            let bounds = try r.floats(count, "the bin bounds of \(f.name)")
            guard bounds.last == .infinity, zip(bounds, bounds.dropFirst()).allSatisfy({ $0 < $1 }) else {
                throw BinnedTrainingSetError.malformed("the bin bounds of \(f.name) are not ascending up to +∞")
            }
            binnings.append(FeatureBinning(upperBounds: bounds))
        }
        let matrix = try r.bins(rows: train.rowCount, binnings: binnings, what: "training")
        let validMatrix = try valid.map { try r.bins(rows: $0.rowCount, binnings: binnings, what: "validation") }
        guard r.position == r.bytes.count else {
            throw BinnedTrainingSetError.malformed("\(r.bytes.count - r.position) bytes after the last bin code")
        }
        return BinnedTrainingSet(train: train, valid: valid, maxBin: maxBin, minDataInBin: minDataInBin,
                                 binningSeed: seed, binnings: binnings, matrix: matrix, validMatrix: validMatrix)
    }

    private static func read(_ r: inout Reader, what: String, schema: FeatureSchema?) throws -> Dataset {
        let width = Int(try r.u32("the feature count of the \(what)"))
        guard width > 0, width < 10_000 else { throw BinnedTrainingSetError.malformed("the \(what) claim \(width) features") }
        var features: [Feature] = []
        for _ in 0..<width {
            let name = try r.string("a feature name")
            let kindName = try r.string("the kind of \(name)")
            guard let kind = FeatureKind(rawValue: kindName) else { throw BinnedTrainingSetError.malformed("feature \(name) has unknown kind '\(kindName)'") }
            let count = Int(try r.u32("the category count of \(name)"))
            guard count <= r.remaining / 4 else { throw BinnedTrainingSetError.truncated(at: r.position, reading: "the categories of \(name)") }
            var categories: [String] = []
            for _ in 0..<count { categories.append(try r.string("a category of \(name)")) }
            features.append(Feature(name: name, kind: kind, categories: categories))
        }
        let found = FeatureSchema(features)
        if let schema, schema != found {
            throw BinnedTrainingSetError.malformed("the validation rows' features differ from the training rows'")
        }
        let rows = try r.u64("the row count of the \(what)")
        guard rows <= UInt64(r.remaining) / UInt64(4 * width) else {
            throw BinnedTrainingSetError.truncated(at: r.position, reading: "\(rows) \(what)")
        }
        let n = Int(rows)
        var columns: [[Float]] = []
        for f in features { columns.append(try r.floats(n, "column \(f.name) of the \(what)")) }
        let labels = try r.u8("the label flag of the \(what)") == 0 ? [] : try r.floats(n, "the labels of the \(what)")
        var groups: [Int]? = nil
        if try r.u8("the group flag of the \(what)") != 0 {
            try r.need(8 * n, "the groups of the \(what)")
            groups = (0..<n).map { _ in Int(Int64(bitPattern: r.u64Unchecked())) }
        }
        var days: [Int]? = nil
        if try r.u8("the day flag of the \(what)") != 0 {
            try r.need(4 * n, "the days of the \(what)")
            days = (0..<n).map { _ in Int(Int32(bitPattern: r.u32Unchecked())) }
        }
        return Dataset(schema: found, columns: columns, labels: labels, groups: groups, days: days)
    }

    /// A cursor over the blob whose every read says what it was reading when it ran out.
    private struct Reader {
        let bytes: [UInt8]
        var position = 0
        var remaining: Int { bytes.count - position }

        func need(_ n: Int, _ what: String) throws {
            guard n >= 0, n <= remaining else { throw BinnedTrainingSetError.truncated(at: position, reading: what) }
        }
        mutating func integer<T: FixedWidthInteger>(_: T.Type, _ what: String) throws -> T {
            try need(MemoryLayout<T>.size, what)
            return integerUnchecked(T.self)
        }
        mutating func integerUnchecked<T: FixedWidthInteger>(_: T.Type) -> T {
            var v: T = 0
            for i in 0..<MemoryLayout<T>.size { v |= T(bytes[position + i]) << (8 * i) }
            position += MemoryLayout<T>.size
            return v
        }
        mutating func u8(_ what: String) throws -> UInt8 { try integer(UInt8.self, what) }
        mutating func u16(_ what: String) throws -> UInt16 { try integer(UInt16.self, what) }
        mutating func u32(_ what: String) throws -> UInt32 { try integer(UInt32.self, what) }
        mutating func u64(_ what: String) throws -> UInt64 { try integer(UInt64.self, what) }
        mutating func u32Unchecked() -> UInt32 { integerUnchecked(UInt32.self) }
        mutating func u64Unchecked() -> UInt64 { integerUnchecked(UInt64.self) }
        mutating func string(_ what: String) throws -> String {
            let n = Int(try u32(what))
            try need(n, what)
            defer { position += n }
            return String(decoding: bytes[position..<(position + n)], as: UTF8.self)
        }
        mutating func floats(_ n: Int, _ what: String) throws -> [Float] {
            try need(4 * n, what)
            defer { position += 4 * n }
            return [Float](unsafeUninitializedCapacity: n) { out, count in
                bytes.withUnsafeBytes { src in
                    if n > 0 { memcpy(out.baseAddress!, src.baseAddress! + position, 4 * n) }
                }
                count = n
            }
        }
        /// Bin codes column by column; a code beyond its feature's NaN bin would index past
        /// the learner's histograms, so every code is checked.
        mutating func bins(rows n: Int, binnings: [FeatureBinning], what: String) throws -> BinnedMatrix {
            try need(n * binnings.count, "the \(what) bin codes")
            let matrix = BinnedMatrix(rowCount: n, featureCount: binnings.count)
            bytes.withUnsafeBufferPointer { src in
                if n > 0 { matrix.bins.update(from: src.baseAddress! + position, count: n * binnings.count) }
            }
            for (f, b) in binnings.enumerated() {
                let column = matrix.column(f), nanBin = UInt8(truncatingIfNeeded: b.nanBin)
                var highest: UInt8 = 0
                for r in 0..<n { highest = max(highest, column[r]) }
                guard highest <= nanBin else {
                    throw BinnedTrainingSetError.malformed("a \(what) bin code of feature \(f) is \(highest), beyond its \(b.totalBinCount) bins")
                }
            }
            position += n * binnings.count
            return matrix
        }
    }
}

/// Why a binned training set blob cannot be used. The blob is made by the coordinator
/// from the search's data set, so every case means a damaged or foreign blob.
public enum BinnedTrainingSetError: Error, Equatable, CustomStringConvertible, Sendable {
    case notBinned
    case unsupportedVersion(Int, supported: Int)
    case truncated(at: Int, reading: String)
    case malformed(String)

    public var description: String {
        let fix = "the coordinator prepares this blob from the search's data set; submit the search again"
        switch self {
        case .notBinned:
            return "not a binned training set (no TWBN header)"
        case let .unsupportedVersion(v, supported):
            return "binned training set format \(v) is not this build's \(supported); update the worker or \(fix)"
        case let .truncated(at, reading):
            return "binned training set truncated at byte \(at) while reading \(reading); \(fix)"
        case let .malformed(reason):
            return "binned training set malformed: \(reason); \(fix)"
        }
    }
}
