import Foundation

/// Why a model file could not be loaded. Each case says which failure it is, so an
/// operator knows whether to re-download (truncated, corrupt), upgrade (newer version)
/// or check the path (not a model).
public enum ModelFileError: Error, Equatable, CustomStringConvertible, Sendable {
    case unreadable(file: String, reason: String)
    case notATowerModel(file: String)
    case truncated(file: String, expectedBytes: Int, actualBytes: Int)
    case unsupportedVersion(file: String, found: UInt16, supported: UInt16)
    case checksumMismatch(file: String, stored: UInt32, computed: UInt32)
    case malformed(file: String, reason: String)

    public var description: String {
        switch self {
        case let .unreadable(file, reason):
            return "\(file): cannot read the model file (\(reason))."
        case let .notATowerModel(file):
            return "\(file): not a Tower model file (no TWRM magic bytes). Check the path; models are written by `coordinator train --out`."
        case let .truncated(file, expected, actual):
            return "\(file): the model file is truncated (\(actual) of \(expected) bytes). Copy or download it again."
        case let .unsupportedVersion(file, found, supported):
            return "\(file): model format version \(found) is newer than this build supports (\(supported)). Upgrade Tower to load it."
        case let .checksumMismatch(file, stored, computed):
            return "\(file): the model file is corrupt (checksum \(String(stored, radix: 16)) stored, \(String(computed, radix: 16)) computed). Copy or download it again."
        case let .malformed(file, reason):
            return "\(file): the model payload is malformed (\(reason))."
        }
    }
}

/// A model of any kind Tower can store.
public enum TowerModel: Sendable {
    case gradientBoosted(GradientBoostedModel)
    case logistic(LogisticModel)

    public var classifier: any Classifier {
        switch self {
        case let .gradientBoosted(m): return m
        case let .logistic(m): return m
        }
    }

    public var kindName: String {
        switch self {
        case .gradientBoosted: return "gbdt"
        case .logistic: return "logistic"
        }
    }
}

/// The Tower model file: one versioned, checksummed binary format for every model kind.
///
/// Layout (little-endian): magic "TWRM" · format version (UInt16) · model kind (UInt8)
/// · reserved (UInt8) · payload length (UInt64) · payload · CRC-32 of everything before
/// it (UInt32). The payload carries the trees or coefficients, the feature schema and
/// bin bounds, the training parameters, metrics and the git commit.
///
/// Guarantees: `load(save(m))` predicts bit-identically to `m` (all numbers are stored
/// in their binary form); a truncated, corrupt, foreign or too-new file is rejected with
/// the matching `ModelFileError`, never half-loaded.
public enum ModelFile {
    public static let magic: [UInt8] = Array("TWRM".utf8)
    public static let formatVersion: UInt16 = 1
    static let headerSize = 16
    static let trailerSize = 4

    public static func save(_ model: TowerModel, to url: URL) throws {
        do { try encode(model).write(to: url, options: .atomic) } catch {
            throw ModelFileError.unreadable(file: url.path, reason: "cannot write: \(error.localizedDescription)")
        }
    }

    public static func load(from url: URL) throws -> TowerModel {
        let data: Data
        do { data = try Data(contentsOf: url) } catch {
            throw ModelFileError.unreadable(file: url.path, reason: error.localizedDescription)
        }
        return try decode(data, file: url.path)
    }

    public static func encode(_ model: TowerModel) -> Data {
        var w = ByteWriter()
        let kind: UInt8
        switch model {
        case let .gradientBoosted(m):
            kind = 1
            writeCommon(&w, schema: m.schema, parameters: m.parameters.dictionary, metrics: m.metrics, gitCommit: m.gitCommit)
            w.f64(m.initialScore)
            w.u32(UInt32(m.binnings.count))
            for b in m.binnings { w.f32s(b.upperBounds) }
            w.f64s(m.curve.trainLogLoss); w.f64s(m.curve.validLogLoss); w.f64s(m.curve.validAUC)
            w.u32(UInt32(m.trees.count))
            for t in m.trees {
                w.i32s(t.splitFeature); w.bytes(t.thresholdBin); w.f32s(t.threshold)
                w.bytes(t.defaultLeft.map { $0 ? 1 : 0 }); w.i32s(t.leftChild); w.i32s(t.rightChild)
                w.f32s(t.splitGain); w.f64s(t.nodeCover); w.f64s(t.leafValue); w.f64s(t.leafCover)
            }
        case let .logistic(m):
            kind = 2
            writeCommon(&w, schema: m.schema, parameters: [:], metrics: m.metrics, gitCommit: m.gitCommit)
            w.f64s(m.means); w.f64s(m.scales); w.f64s(m.coefficients); w.f64(m.intercept)
            w.u32(UInt32(m.iterations)); w.u8(m.converged ? 1 : 0)
        }
        var out = ByteWriter()
        out.raw(magic)
        out.u16(formatVersion)
        out.u8(kind)
        out.u8(0)
        out.u64(UInt64(w.buffer.count))
        out.raw(w.buffer)
        out.u32(CRC32.checksum(out.buffer))
        return Data(out.buffer)
    }

    public static func decode(_ data: Data, file: String = "<memory>") throws -> TowerModel {
        let bytes = [UInt8](data)
        guard bytes.count >= 4, Array(bytes[0..<4]) == magic else { throw ModelFileError.notATowerModel(file: file) }
        guard bytes.count >= headerSize else {
            throw ModelFileError.truncated(file: file, expectedBytes: headerSize + trailerSize, actualBytes: bytes.count)
        }
        var header = ByteReader(bytes, file: file)
        header.position = 4
        let version = try header.u16()
        let kind = try header.u8()
        _ = try header.u8()
        let length = try header.u64()
        guard version >= 1 && version <= formatVersion else {
            throw ModelFileError.unsupportedVersion(file: file, found: version, supported: formatVersion)
        }
        let expected = UInt64(headerSize) &+ length &+ UInt64(trailerSize)
        guard length < UInt64(Int32.max), UInt64(bytes.count) >= expected else {
            throw ModelFileError.truncated(file: file, expectedBytes: Int(min(expected, UInt64(Int.max))), actualBytes: bytes.count)
        }
        let end = headerSize + Int(length)
        let computed = CRC32.checksum(bytes[0..<end])
        var trailer = ByteReader(bytes, file: file)
        trailer.position = end
        let stored = try trailer.u32()
        guard stored == computed, bytes.count == end + trailerSize else {
            throw ModelFileError.checksumMismatch(file: file, stored: stored, computed: computed)
        }
        var r = ByteReader(Array(bytes[headerSize..<end]), file: file)
        let common = try readCommon(&r)
        switch kind {
        case 1:
            let initial = try r.f64()
            let nb = Int(try r.u32())
            guard nb == common.schema.count else { throw r.malformed("\(nb) binnings for \(common.schema.count) features") }
            var binnings: [FeatureBinning] = []
            for _ in 0..<nb {
                let bounds = try r.f32s()
                guard !bounds.isEmpty && bounds.count <= 255 else { throw r.malformed("bin count \(bounds.count)") }
                binnings.append(FeatureBinning(upperBounds: bounds))
            }
            var curve = LearningCurve()
            curve.trainLogLoss = try r.f64s(); curve.validLogLoss = try r.f64s(); curve.validAUC = try r.f64s()
            let treeCount = Int(try r.u32())
            var trees: [RegressionTree] = []
            for _ in 0..<treeCount {
                var t = RegressionTree()
                t.splitFeature = try r.i32s(); t.thresholdBin = try r.byteArray(); t.threshold = try r.f32s()
                t.defaultLeft = try r.byteArray().map { $0 != 0 }; t.leftChild = try r.i32s(); t.rightChild = try r.i32s()
                t.splitGain = try r.f32s(); t.nodeCover = try r.f64s(); t.leafValue = try r.f64s(); t.leafCover = try r.f64s()
                try validate(t, features: nb, reader: r)
                trees.append(t)
            }
            try r.expectEnd()
            return .gradientBoosted(GradientBoostedModel(
                schema: common.schema, binnings: binnings, trees: trees, initialScore: initial,
                parameters: BoostingParameters(dictionary: common.parameters), curve: curve,
                metrics: common.metrics, gitCommit: common.gitCommit))
        case 2:
            let means = try r.f64s(), scales = try r.f64s(), coefficients = try r.f64s()
            let intercept = try r.f64()
            let iterations = Int(try r.u32())
            let converged = try r.u8() != 0
            try r.expectEnd()
            let d = common.schema.count
            guard means.count == d, scales.count == d, coefficients.count == d else {
                throw r.malformed("coefficient count does not match the schema")
            }
            return .logistic(LogisticModel(schema: common.schema, means: means, scales: scales, coefficients: coefficients,
                                           intercept: intercept, iterations: iterations, converged: converged,
                                           metrics: common.metrics, gitCommit: common.gitCommit))
        default:
            throw ModelFileError.malformed(file: file, reason: "unknown model kind \(kind)")
        }
    }

    private static func validate(_ t: RegressionTree, features: Int, reader r: ByteReader) throws {
        let n = t.nodeCount
        guard t.thresholdBin.count == n, t.threshold.count == n, t.defaultLeft.count == n, t.leftChild.count == n,
              t.rightChild.count == n, t.splitGain.count == n, t.nodeCover.count == n,
              t.leafValue.count == n + 1, t.leafCover.count == n + 1 else { throw r.malformed("tree arrays disagree in length") }
        for i in 0..<n {
            guard t.splitFeature[i] >= 0 && Int(t.splitFeature[i]) < features else { throw r.malformed("split on unknown feature") }
            for c in [t.leftChild[i], t.rightChild[i]] {
                // Children point forward (the learner appends nodes), which also rules out cycles.
                guard (c >= 0 && Int(c) > i && Int(c) < n) || (c < 0 && Int(~c) <= n) else { throw r.malformed("bad child reference") }
            }
        }
    }

    private static func writeCommon(_ w: inout ByteWriter, schema: FeatureSchema, parameters: [String: String],
                                    metrics: [String: Double], gitCommit: String) {
        w.string(gitCommit)
        w.u32(UInt32(schema.count))
        for f in schema.features {
            w.string(f.name)
            w.u8(UInt8(FeatureKind.allCases.firstIndex(of: f.kind)!))
            w.u32(UInt32(f.categories.count))
            for c in f.categories { w.string(c) }
        }
        w.u32(UInt32(parameters.count))
        for k in parameters.keys.sorted() { w.string(k); w.string(parameters[k]!) }
        w.u32(UInt32(metrics.count))
        for k in metrics.keys.sorted() { w.string(k); w.f64(metrics[k]!) }
    }

    private static func readCommon(_ r: inout ByteReader) throws
        -> (schema: FeatureSchema, parameters: [String: String], metrics: [String: Double], gitCommit: String) {
        let commit = try r.string()
        var features: [Feature] = []
        for _ in 0..<(try r.count()) {
            let name = try r.string()
            let k = Int(try r.u8())
            guard k < FeatureKind.allCases.count else { throw r.malformed("unknown feature kind \(k)") }
            var categories: [String] = []
            for _ in 0..<(try r.count()) { categories.append(try r.string()) }
            features.append(Feature(name: name, kind: FeatureKind.allCases[k], categories: categories))
        }
        var parameters: [String: String] = [:]
        for _ in 0..<(try r.count()) { let k = try r.string(); parameters[k] = try r.string() }
        var metrics: [String: Double] = [:]
        for _ in 0..<(try r.count()) { let k = try r.string(); metrics[k] = try r.f64() }
        return (FeatureSchema(features), parameters, metrics, commit)
    }
}

struct ByteWriter {
    var buffer: [UInt8] = []
    mutating func raw(_ b: [UInt8]) { buffer.append(contentsOf: b) }
    mutating func u8(_ v: UInt8) { buffer.append(v) }
    mutating func u16(_ v: UInt16) { withUnsafeBytes(of: v.littleEndian) { buffer.append(contentsOf: $0) } }
    mutating func u32(_ v: UInt32) { withUnsafeBytes(of: v.littleEndian) { buffer.append(contentsOf: $0) } }
    mutating func u64(_ v: UInt64) { withUnsafeBytes(of: v.littleEndian) { buffer.append(contentsOf: $0) } }
    mutating func f32(_ v: Float) { u32(v.bitPattern) }
    mutating func f64(_ v: Double) { u64(v.bitPattern) }
    mutating func string(_ s: String) { let b = Array(s.utf8); u32(UInt32(b.count)); raw(b) }
    mutating func bytes(_ b: [UInt8]) { u32(UInt32(b.count)); raw(b) }
    mutating func f32s(_ a: [Float]) { u32(UInt32(a.count)); for v in a { f32(v) } }
    mutating func f64s(_ a: [Double]) { u32(UInt32(a.count)); for v in a { f64(v) } }
    mutating func i32s(_ a: [Int32]) { u32(UInt32(a.count)); for v in a { u32(UInt32(bitPattern: v)) } }
}

struct ByteReader {
    let bytes: [UInt8]
    let file: String
    var position = 0
    init(_ bytes: [UInt8], file: String) { self.bytes = bytes; self.file = file }

    func malformed(_ reason: String) -> ModelFileError { .malformed(file: file, reason: reason) }

    mutating func take(_ n: Int) throws -> ArraySlice<UInt8> {
        guard n >= 0, position + n <= bytes.count else { throw malformed("field runs past the end of the payload") }
        defer { position += n }
        return bytes[position..<(position + n)]
    }
    private mutating func int<T: FixedWidthInteger>(_: T.Type) throws -> T {
        var v: T = 0
        for (i, b) in try take(MemoryLayout<T>.size).enumerated() { v |= T(b) << (8 * i) }
        return v
    }
    mutating func u8() throws -> UInt8 { try take(1).first! }
    mutating func u16() throws -> UInt16 { try int(UInt16.self) }
    mutating func u32() throws -> UInt32 { try int(UInt32.self) }
    mutating func u64() throws -> UInt64 { try int(UInt64.self) }
    mutating func f64() throws -> Double { Double(bitPattern: try u64()) }
    /// An element count, bounded by the bytes left so a corrupt count cannot allocate wildly.
    mutating func count(elementSize: Int = 1) throws -> Int {
        let n = Int(try u32())
        guard n * elementSize <= bytes.count - position else { throw malformed("count \(n) exceeds the payload") }
        return n
    }
    mutating func string() throws -> String { String(decoding: try take(try count()), as: UTF8.self) }
    mutating func byteArray() throws -> [UInt8] { Array(try take(try count())) }
    mutating func f32s() throws -> [Float] { try (0..<(try count(elementSize: 4))).map { _ in Float(bitPattern: try u32()) } }
    mutating func f64s() throws -> [Double] { try (0..<(try count(elementSize: 8))).map { _ in try f64() } }
    mutating func i32s() throws -> [Int32] { try (0..<(try count(elementSize: 4))).map { _ in Int32(bitPattern: try u32()) } }
    func expectEnd() throws { guard position == bytes.count else { throw malformed("\(bytes.count - position) unexpected trailing bytes") } }
}
