import Foundation
import Testing
@testable import Wire

@Suite struct BlobStoreTests {
    func store() throws -> BlobStore {
        try BlobStore(root: FileManager.default.temporaryDirectory.appendingPathComponent("tower-blobs-\(UUID().uuidString.prefix(8))"))
    }

    /// Found by the coordinator's message fuzzer: 64 fullwidth digits passed as an
    /// address, so a request for one was answered "not found" instead of refused.
    @Test func anAddressIsSixtyFourLowercaseASCIIHexDigits() throws {
        let valid = String(repeating: "0123456789abcdef", count: 4)
        #expect(BlobStore.isValidAddress(valid))
        #expect(!BlobStore.isValidAddress(String(repeating: "\u{FF10}", count: 64)))
        #expect(!BlobStore.isValidAddress(String(repeating: "\u{FF41}", count: 64)))
        #expect(!BlobStore.isValidAddress(valid.uppercased()))
        #expect(!BlobStore.isValidAddress(String(valid.dropLast())))
        #expect(!BlobStore.isValidAddress(String(valid.dropLast()) + "g"))
        #expect(throws: WireError.invalidArgument("\(String(repeating: "\u{FF10}", count: 64)) is not a SHA-256 address")) {
            try store().chunkReader(for: String(repeating: "\u{FF10}", count: 64))
        }
    }

    @Test func blobsAreAddressedBySHA256() throws {
        let s = try store()
        let hash = try s.put(Data("hello".utf8))
        #expect(hash == "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824")
        #expect(s.contains(hash))
        #expect(try s.read(hash) == Data("hello".utf8))
    }

    @Test func chunksReassembleAndVerify() throws {
        let source = try store(), target = try store()
        let data = Data((0..<10_000).map { UInt8(truncatingIfNeeded: $0 &* 31) })
        let hash = try source.put(data)
        let chunks = try chunks(source, hash, chunkBytes: 3000)
        #expect(chunks.count == 4)
        var assembler = BlobAssembler(hash: hash)
        var done = false
        for chunk in chunks { done = try assembler.append(chunk, into: target) }
        #expect(done)
        #expect(try target.read(hash) == data)
    }

    @Test func corruptedChunkIsRejectedAndNothingIsStored() throws {
        let source = try store(), target = try store()
        let hash = try source.put(Data(repeating: 9, count: 5000))
        var chunks = try chunks(source, hash, chunkBytes: 2000)
        chunks[1].data[0] ^= 0xFF
        var assembler = BlobAssembler(hash: hash)
        #expect(throws: WireError.self) {
            for chunk in chunks { _ = try assembler.append(chunk, into: target) }
        }
        #expect(!target.contains(hash))
    }

    @Test func outOfOrderChunkIsRefused() throws {
        let source = try store(), target = try store()
        let hash = try source.put(Data(repeating: 1, count: 5000))
        let chunks = try chunks(source, hash, chunkBytes: 2000)
        var assembler = BlobAssembler(hash: hash)
        #expect(throws: WireError.self) { _ = try assembler.append(chunks[1], into: target) }
    }

    @Test func aClaimedTotalBeyondTheLimitIsRefusedBeforeAnyReservation() throws {
        let target = try store()
        let hash = String(repeating: "ab", count: 32)
        var chunk = WireBlobChunk()
        chunk.sha256 = hash
        chunk.totalSize = UInt64(Int.max)
        chunk.data = Data([1, 2, 3])
        var assembler = BlobAssembler(hash: hash, maxBytes: 1 << 20)
        #expect(throws: WireError.invalidArgument("blob \(hash) claims \(Int.max) bytes, more than the 1048576 this side accepts")) {
            _ = try assembler.append(chunk, into: target)
        }
        // The default limit holds too (what the worker and the CLI use).
        var defaults = BlobAssembler(hash: hash)
        #expect(throws: WireError.invalidArgument("blob \(hash) claims \(Int.max) bytes, more than the \(BlobAssembler.defaultMaxBytes) this side accepts")) {
            _ = try defaults.append(chunk, into: target)
        }
    }

    @Test func chunksCarryingMoreOrLessThanTheClaimAreRefused() throws {
        let source = try store(), target = try store()
        let hash = try source.put(Data(repeating: 7, count: 5000))
        let parts = try chunks(source, hash, chunkBytes: 2000)
        var understated = parts[0]
        understated.totalSize = 1000
        var assembler = BlobAssembler(hash: hash)
        #expect(throws: WireError.malformedFrame(reason: "blob \(hash) chunks carry more than the 1000 bytes claimed")) {
            _ = try assembler.append(understated, into: target)
        }
        var short = BlobAssembler(hash: hash)
        _ = try short.append(parts[0], into: target)
        _ = try short.append(parts[1], into: target)
        var early = parts[2]
        early.data = Data()
        early.last = true
        #expect(throws: WireError.malformedFrame(reason: "blob \(hash) ended after 4000 of the 5000 bytes claimed")) {
            _ = try short.append(early, into: target)
        }
        #expect(!target.contains(hash))
    }

    @Test func aBlobThatCannotBeWrittenNamesTheDirectoryAndLeavesNothing() throws {
        let s = try store()
        let data = Data("unwritable".utf8)
        let hash = BlobStore.sha256Hex(data)
        let dir = s.url(for: hash).deletingLastPathComponent()
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        // Immutable even for root (what a full or read-only disk looks like to a writer).
        guard Self.chattr("+i", dir.path) else { return }
        defer { _ = Self.chattr("-i", dir.path) }
        #expect(throws: BlobStoreError.cannotWrite(hash: hash, directory: dir.path, reason: "Operation not permitted")) {
            try s.put(data)
        }
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir.path).isEmpty)
        #expect(BlobStoreError.cannotWrite(hash: "ab", directory: "/d/ab", reason: "No space left on device").description
                == "cannot store blob ab in /d/ab: No space left on device; free space on that disk or fix its permissions (df -h, ls -ld), then retry")
    }

    static func chattr(_ flag: String, _ path: String) -> Bool {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        p.arguments = ["chattr", flag, path]
        p.standardOutput = FileHandle.nullDevice
        p.standardError = FileHandle.nullDevice
        guard (try? p.run()) != nil else { return false }
        p.waitUntilExit()
        return p.terminationStatus == 0
    }
}

/// Every chunk of a stored blob, as the coordinator streams them.
func chunks(_ store: BlobStore, _ hash: String, chunkBytes: Int) throws -> [WireBlobChunk] {
    let reader = try store.chunkReader(for: hash, chunkBytes: chunkBytes)
    var result: [WireBlobChunk] = []
    while let chunk = try reader.next() { result.append(chunk) }
    return result
}
