import Crypto
import Foundation

/// A blob could not be written to the local store.
public enum BlobStoreError: Error, Equatable, CustomStringConvertible, Sendable {
    case cannotWrite(hash: String, directory: String, reason: String)

    public var description: String {
        switch self {
        case let .cannotWrite(hash, directory, reason):
            return "cannot store blob \(hash) in \(directory): \(reason); free space on that disk or fix its permissions (df -h, ls -ld), then retry"
        }
    }
}

/// A content-addressed store on disk: every blob is named by the SHA-256 of its bytes
/// (lowercase hex) and lives at `root/ab/abcdef…`. Writes go to a temporary file that is
/// renamed into place, so a reader never sees a partial blob and a crash leaves none.
/// Safe to use from several threads and processes.
public final class BlobStore: @unchecked Sendable {
    public let root: URL

    public init(root: URL) throws {
        self.root = root
        try FileManager.default.createDirectory(at: root, withIntermediateDirectories: true)
    }

    public static func sha256Hex<D: DataProtocol>(_ data: D) -> String {
        SHA256.hash(data: data).map { byte in
            let s = String(byte, radix: 16)
            return s.count == 1 ? "0" + s : s
        }.joined()
    }

    public static func isValidAddress(_ hash: String) -> Bool {
        // By bytes: `Character.isHexDigit` also accepts fullwidth digits and letters.
        hash.utf8.count == 64 && hash.utf8.allSatisfy { (UInt8(ascii: "0")...UInt8(ascii: "9")).contains($0) || (UInt8(ascii: "a")...UInt8(ascii: "f")).contains($0) }
    }

    public func url(for hash: String) -> URL {
        root.appendingPathComponent(String(hash.prefix(2))).appendingPathComponent(hash)
    }

    public func contains(_ hash: String) -> Bool {
        Self.isValidAddress(hash) && FileManager.default.fileExists(atPath: url(for: hash).path)
    }

    /// Stores `data` and returns its address. Storing the same bytes twice is a no-op.
    @discardableResult
    public func put(_ data: Data) throws -> String {
        let hash = Self.sha256Hex(data)
        try write(data, as: hash)
        return hash
    }

    /// Stores `data` under `expected` after checking that it really hashes to it.
    public func putVerified(_ data: Data, expected: String) throws {
        let actual = Self.sha256Hex(data)
        guard actual == expected else { throw WireError.blobCorrupt(expected: expected, actual: actual) }
        try write(data, as: actual)
    }

    public func read(_ hash: String) throws -> Data {
        guard Self.isValidAddress(hash) else { throw WireError.invalidArgument("\(hash) is not a SHA-256 address") }
        do {
            return try Data(contentsOf: url(for: hash))
        } catch {
            throw WireError.notFound(what: "blob \(hash)")
        }
    }

    public func size(_ hash: String) -> UInt64? {
        (try? FileManager.default.attributesOfItem(atPath: url(for: hash).path)[.size] as? NSNumber)?.uint64Value
    }

    func write(_ data: Data, as hash: String) throws {
        let target = url(for: hash)
        if FileManager.default.fileExists(atPath: target.path) { return }
        let dir = target.deletingLastPathComponent()
        let tmp = dir.appendingPathComponent(".\(hash).\(UUID().uuidString).tmp")
        do {
            try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        } catch {
            throw BlobStoreError.cannotWrite(hash: hash, directory: dir.path, reason: (error as NSError).localizedDescription)
        }
        if let code = Self.writeFile(tmp.path, data) {
            // A half-written temporary file would only eat more of a full disk.
            unlink(tmp.path)
            throw BlobStoreError.cannotWrite(hash: hash, directory: dir.path, reason: String(cString: strerror(code)))
        }
        if rename(tmp.path, target.path) != 0 {
            let code = errno
            try? FileManager.default.removeItem(at: tmp)
            throw BlobStoreError.cannotWrite(hash: hash, directory: dir.path, reason: String(cString: strerror(code)))
        }
    }

    /// Writes with POSIX calls so a failure keeps its errno ("No space left on device"),
    /// which Foundation's `Data.write` turns into a generic message. Returns the errno.
    static func writeFile(_ path: String, _ data: Data) -> Int32? {
        let fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o644)
        guard fd >= 0 else { return errno }
        var failure: Int32?
        data.withUnsafeBytes { raw in
            var offset = 0
            while offset < raw.count {
                let n = Foundation.write(fd, raw.baseAddress! + offset, raw.count - offset)
                if n < 0 {
                    if errno == EINTR { continue }
                    failure = errno
                    return
                }
                offset += n
            }
        }
        if close(fd) != 0, failure == nil { failure = errno }
        return failure
    }

    /// Reads a stored blob chunk by chunk, in order; safe to call `next()` from any thread,
    /// one call at a time per chunk (calls are serialized internally).
    public final class ChunkReader: @unchecked Sendable {
        private let handle: FileHandle
        private let hash: String
        private let total: UInt64
        private let chunkBytes: Int
        private var offset: UInt64 = 0
        private var done = false
        private let lock = NSLock()

        init(url: URL, hash: String, chunkBytes: Int) throws {
            do { handle = try FileHandle(forReadingFrom: url) }
            catch { throw WireError.notFound(what: "blob \(hash)") }
            self.hash = hash
            self.chunkBytes = chunkBytes
            total = (try? handle.seekToEnd()) ?? 0
            try? handle.seek(toOffset: 0)
        }

        deinit { try? handle.close() }

        /// The next chunk, or nil after the last one was returned.
        public func next() throws -> WireBlobChunk? {
            lock.lock()
            defer { lock.unlock() }
            guard !done else { return nil }
            var chunk = WireBlobChunk()
            chunk.sha256 = hash
            chunk.offset = offset
            chunk.totalSize = total
            chunk.data = try handle.read(upToCount: chunkBytes) ?? Data()
            offset += UInt64(chunk.data.count)
            chunk.last = offset >= total || chunk.data.isEmpty
            done = chunk.last
            return chunk
        }
    }

    public func chunkReader(for hash: String, chunkBytes: Int = WireProtocol.blobChunkBytes) throws -> ChunkReader {
        guard Self.isValidAddress(hash) else { throw WireError.invalidArgument("\(hash) is not a SHA-256 address") }
        return try ChunkReader(url: url(for: hash), hash: hash, chunkBytes: chunkBytes)
    }
}

/// Reassembles one blob from its chunks, in order, and stores it only if the bytes hash to
/// the address they were requested by.
///
/// The total size a chunk claims comes from the network, so it is checked against
/// ``maxBytes`` and never reserved beyond ``maxReservationBytes`` up front: memory grows
/// only with bytes that actually arrive, and a sender cannot make the receiver allocate
/// by claiming a huge blob.
public struct BlobAssembler {
    /// The largest blob accepted by default (datasets and model files are far smaller).
    public static let defaultMaxBytes = 16 << 30
    /// The most memory reserved ahead of the bytes that back it.
    public static let maxReservationBytes = 64 << 20

    public let hash: String
    public let maxBytes: Int
    private var data = Data()
    private var claimed: UInt64?

    public init(hash: String, maxBytes: Int = BlobAssembler.defaultMaxBytes) {
        self.hash = hash
        self.maxBytes = maxBytes
    }

    /// Appends a chunk; returns true when the blob is complete and stored.
    public mutating func append(_ chunk: WireBlobChunk, into store: BlobStore) throws -> Bool {
        guard let data = try append(chunk) else { return false }
        try store.putVerified(data, expected: hash)
        return true
    }

    /// Appends a chunk; returns the whole blob when this was the last chunk, not yet
    /// verified against its address (hashing a large blob belongs off the event loop).
    public mutating func append(_ chunk: WireBlobChunk) throws -> Data? {
        guard chunk.sha256 == hash else {
            throw WireError.invalidArgument("chunk of blob \(chunk.sha256) arrived for \(hash)")
        }
        guard chunk.offset == UInt64(data.count) else {
            throw WireError.malformedFrame(reason: "blob \(hash) chunk at offset \(chunk.offset), expected \(data.count)")
        }
        guard chunk.totalSize <= UInt64(maxBytes) else {
            throw WireError.invalidArgument("blob \(hash) claims \(chunk.totalSize) bytes, more than the \(maxBytes) this side accepts")
        }
        if let claimed, claimed != chunk.totalSize {
            throw WireError.malformedFrame(reason: "blob \(hash) chunk claims a total of \(chunk.totalSize) bytes, earlier chunks claimed \(claimed)")
        }
        guard UInt64(data.count) + UInt64(chunk.data.count) <= chunk.totalSize else {
            throw WireError.malformedFrame(reason: "blob \(hash) chunks carry more than the \(chunk.totalSize) bytes claimed")
        }
        if claimed == nil {
            claimed = chunk.totalSize
            data.reserveCapacity(Int(min(chunk.totalSize, UInt64(Self.maxReservationBytes))))
        }
        data.append(chunk.data)
        guard chunk.last else { return nil }
        guard UInt64(data.count) == chunk.totalSize else {
            throw WireError.malformedFrame(reason: "blob \(hash) ended after \(data.count) of the \(chunk.totalSize) bytes claimed")
        }
        return data
    }
}
