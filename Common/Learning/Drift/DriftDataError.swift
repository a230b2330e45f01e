import Foundation

/// Why drift bins or histograms could not be decoded or merged. Decoding failures say
/// which artifact (`what`) and how it is damaged, so an operator knows whether a shard
/// result was cut off in transit (truncated, checksum), came from another build
/// (version) or was counted against other bins (the mismatch cases: the coordinator
/// must re-run that shard with the job's binning).
public enum DriftDataError: Error, Equatable, Sendable, CustomStringConvertible {
    case notDriftData(what: String)
    case unsupportedVersion(what: String, found: UInt16, supported: UInt16)
    case truncated(what: String, expectedBytes: Int, actualBytes: Int)
    case checksumMismatch(what: String, stored: UInt32, computed: UInt32)
    case malformed(what: String, reason: String)
    case featureCountMismatch(expected: Int, found: Int)
    case binCountMismatch(feature: Int, expected: Int, found: Int)
    case featureKindMismatch(feature: Int)
    case binningMismatch(expected: UInt64, found: UInt64)

    public var description: String {
        switch self {
        case let .notDriftData(what):
            return "not a \(what): the magic bytes are wrong. Check that the blob is the one the drift job produced."
        case let .unsupportedVersion(what, found, supported):
            return "\(what) format version \(found) is not supported by this build (supports \(supported)); run the same Tower version on coordinator and workers."
        case let .truncated(what, expected, actual):
            return "\(what) is truncated (\(actual) of \(expected) bytes); the shard result was cut off, run the shard again."
        case let .checksumMismatch(what, stored, computed):
            return "\(what) is corrupt (checksum \(String(stored, radix: 16)) stored, \(String(computed, radix: 16)) computed); run the shard again."
        case let .malformed(what, reason):
            return "\(what) is malformed: \(reason)."
        case let .featureCountMismatch(expected, found):
            return "drift histograms have \(found) features where \(expected) were expected; both sides must be counted with the job's binning."
        case let .binCountMismatch(feature, expected, found):
            return "drift histograms for feature \(feature) have \(found) bins where \(expected) were expected; both sides must be counted with the job's binning."
        case let .featureKindMismatch(feature):
            return "drift histograms disagree on whether feature \(feature) is numeric or categorical; both sides must be counted with the job's binning."
        case let .binningMismatch(expected, found):
            return "drift histograms were counted against binning \(String(found, radix: 16)), not the job's \(String(expected, radix: 16)); re-run the shard with the job's binning."
        }
    }
}

/// The framing shared by binnings and histograms: magic · version · payload length ·
/// payload · CRC-32, checked in that order so each kind of damage gets its own error.
enum DriftEnvelope {
    static func seal(magic: [UInt8], version: UInt16, payload: [UInt8]) -> Data {
        var w = ByteWriter()
        w.raw(magic)
        w.u16(version)
        w.u64(UInt64(payload.count))
        w.raw(payload)
        w.u32(CRC32.checksum(w.buffer))
        return Data(w.buffer)
    }

    static func open(_ data: Data, magic: [UInt8], version: UInt16, what: String) throws -> DriftByteReader {
        let bytes = [UInt8](data)
        let header = magic.count + 2 + 8
        guard bytes.count >= header else {
            if !bytes.prefix(magic.count).elementsEqual(magic.prefix(bytes.count)) { throw DriftDataError.notDriftData(what: what) }
            throw DriftDataError.truncated(what: what, expectedBytes: header + 4, actualBytes: bytes.count)
        }
        guard bytes.prefix(magic.count).elementsEqual(magic) else { throw DriftDataError.notDriftData(what: what) }
        var r = DriftByteReader(bytes, what: what)
        r.position = magic.count
        let found = try r.u16()
        guard found == version else {
            throw DriftDataError.unsupportedVersion(what: what, found: found, supported: version)
        }
        let length = try r.u64()
        let expected = UInt64(header) + length + 4
        guard expected <= UInt64(Int.max), UInt64(bytes.count) >= expected else {
            throw DriftDataError.truncated(what: what, expectedBytes: Int(clamping: expected), actualBytes: bytes.count)
        }
        let end = Int(expected) - 4
        guard bytes.count == Int(expected) else {
            throw DriftDataError.malformed(what: what, reason: "\(bytes.count - Int(expected)) unexpected trailing bytes")
        }
        var crc = DriftByteReader(bytes, what: what)
        crc.position = end
        let stored = try crc.u32()
        let computed = CRC32.checksum(bytes[0..<end])
        guard stored == computed else {
            throw DriftDataError.checksumMismatch(what: what, stored: stored, computed: computed)
        }
        return DriftByteReader(Array(bytes[header..<end]), what: what)
    }
}

/// Little-endian reads that fail with `DriftDataError.malformed` instead of trapping.
struct DriftByteReader {
    let bytes: [UInt8]
    let what: String
    var position = 0

    init(_ bytes: [UInt8], what: String) {
        self.bytes = bytes
        self.what = what
    }

    func malformed(_ reason: String) -> DriftDataError { .malformed(what: what, reason: reason) }

    private mutating func int<T: FixedWidthInteger>(_: T.Type) throws -> T {
        let size = MemoryLayout<T>.size
        guard position + size <= bytes.count else { throw malformed("a field runs past the end of the payload") }
        var v: T = 0
        for i in 0..<size { v |= T(bytes[position + i]) << (8 * i) }
        position += size
        return v
    }

    mutating func u8() throws -> UInt8 { try int(UInt8.self) }
    mutating func u16() throws -> UInt16 { try int(UInt16.self) }
    mutating func u32() throws -> UInt32 { try int(UInt32.self) }
    mutating func u64() throws -> UInt64 { try int(UInt64.self) }

    /// LEB128: seven bits per byte, low bits first.
    mutating func varint() throws -> UInt64 {
        var v: UInt64 = 0
        var shift: UInt64 = 0
        while true {
            let b = try u8()
            guard shift < 64, shift < 63 || b <= 1 else { throw malformed("a variable-length integer overflows 64 bits") }
            v |= UInt64(b & 0x7F) << shift
            if b & 0x80 == 0 { return v }
            shift += 7
        }
    }

    /// An element count, bounded by the bytes left so a corrupt count cannot allocate wildly.
    mutating func count(elementSize: Int = 1) throws -> Int {
        let n = Int(try u32())
        guard n * elementSize <= bytes.count - position else { throw malformed("count \(n) exceeds the payload") }
        return n
    }

    mutating func string() throws -> String {
        let n = try count()
        defer { position += n }
        return String(decoding: bytes[position..<(position + n)], as: UTF8.self)
    }

    func expectEnd() throws {
        guard position == bytes.count else { throw malformed("\(bytes.count - position) unexpected trailing bytes in the payload") }
    }
}

extension ByteWriter {
    mutating func varint(_ value: UInt64) {
        var v = value
        while v >= 0x80 {
            buffer.append(UInt8(truncatingIfNeeded: v) | 0x80)
            v >>= 7
        }
        buffer.append(UInt8(v))
    }
}
