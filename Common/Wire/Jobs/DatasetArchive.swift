import Foundation

/// A data set's files (e.g. a market's users.csv, listings.csv, interactions.csv) packed
/// into one blob, so it moves and is cached by a single SHA-256 address.
///
/// Layout: "TWDS", u16 version, u32 file count, then per file: u16 name length, UTF-8
/// name, u64 size, bytes. All integers big-endian. Names are plain file names (no paths),
/// so unpacking can never write outside its directory.
public enum DatasetArchive {
    public static let magic = Array("TWDS".utf8)
    public static let version: UInt16 = 1

    public enum ArchiveError: Error, CustomStringConvertible, Equatable {
        case notAnArchive
        case truncated(at: Int)
        case badName(String)
        case noFiles(String)

        public var description: String {
            switch self {
            case .notAnArchive: return "not a Tower data set archive (bad magic or version)"
            case let .truncated(at): return "data set archive truncated at byte \(at)"
            case let .badName(name): return "data set archive names an invalid file \"\(name)\""
            case let .noFiles(dir): return "no data files found in \(dir); expected users.csv, listings.csv and interactions.csv (see `coordinator demo-data`)"
            }
        }
    }

    /// Packs every regular `.csv` file directly in `directory`, in name order.
    public static func pack(directory: URL) throws -> Data {
        let names = try FileManager.default.contentsOfDirectory(atPath: directory.path)
            .filter { $0.hasSuffix(".csv") }.sorted()
        guard !names.isEmpty else { throw ArchiveError.noFiles(directory.path) }
        return try pack(names.map { ($0, try Data(contentsOf: directory.appendingPathComponent($0))) })
    }

    public static func pack(_ files: [(name: String, data: Data)]) throws -> Data {
        var out = Data(magic)
        func append<T: FixedWidthInteger>(_ v: T) { withUnsafeBytes(of: v.bigEndian) { out.append(contentsOf: $0) } }
        append(version)
        append(UInt32(files.count))
        for (name, data) in files {
            guard isSafe(name) else { throw ArchiveError.badName(name) }
            let utf8 = Array(name.utf8)
            append(UInt16(utf8.count))
            out.append(contentsOf: utf8)
            append(UInt64(data.count))
            out.append(data)
        }
        return out
    }

    public static func unpack(_ data: Data) throws -> [(name: String, data: Data)] {
        let bytes = [UInt8](data)
        var at = 0
        func read<T: FixedWidthInteger>(_: T.Type) throws -> T {
            let size = MemoryLayout<T>.size
            guard at + size <= bytes.count else { throw ArchiveError.truncated(at: at) }
            var v: T = 0
            for b in bytes[at..<at + size] { v = v << 8 | T(b) }
            at += size
            return v
        }
        guard bytes.count >= 4, Array(bytes[0..<4]) == magic else { throw ArchiveError.notAnArchive }
        at = 4
        guard try read(UInt16.self) == version else { throw ArchiveError.notAnArchive }
        let count = try read(UInt32.self)
        var files: [(String, Data)] = []
        for _ in 0..<count {
            let nameLength = Int(try read(UInt16.self))
            guard at + nameLength <= bytes.count else { throw ArchiveError.truncated(at: at) }
            let name = String(decoding: bytes[at..<at + nameLength], as: UTF8.self)
            at += nameLength
            guard isSafe(name) else { throw ArchiveError.badName(name) }
            let size = try read(UInt64.self)
            guard size <= UInt64(bytes.count - at) else { throw ArchiveError.truncated(at: at) }
            files.append((name, Data(bytes[at..<at + Int(size)])))
            at += Int(size)
        }
        return files
    }

    /// Unpacks into `directory` (created if needed), atomically per file.
    public static func unpack(_ data: Data, into directory: URL) throws {
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        for (name, bytes) in try unpack(data) {
            try bytes.write(to: directory.appendingPathComponent(name), options: .atomic)
        }
    }

    static func isSafe(_ name: String) -> Bool {
        !name.isEmpty && !name.contains("/") && name != "." && name != ".." && !name.hasPrefix(".")
    }
}
