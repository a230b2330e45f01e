import Foundation
import Logging
import NIOConcurrencyHelpers
import Wire

/// Feedback events that could not reach the coordinator, on disk until they do.
///
/// Layout: one file of records, each a big-endian UInt32 length then a serialized
/// `FeedbackEvent`. Appends are fsync'd before they are acknowledged, so an event the
/// gateway accepted survives a crash of the gateway; delivered records are removed by
/// rewriting the rest to a new file and renaming it over the old one.
///
/// Guarantees: events leave in the order they were accepted; the queue never grows past
/// `maxBytes` (an append that would is refused with ``QueueError/full``); a torn last
/// record (a crash mid-append) is dropped on open, never half-read.
public final class EventQueue: @unchecked Sendable {
    public enum QueueError: Error, Equatable, CustomStringConvertible {
        case full(bytes: Int, limit: Int)
        case io(String)

        public var description: String {
            switch self {
            case let .full(bytes, limit):
                return "the gateway's event queue is full (\(bytes) of \(limit) bytes) while the coordinator is unreachable; retry later or raise --queue-max-bytes"
            case let .io(reason):
                return "the gateway's event queue cannot be written: \(reason)"
            }
        }
    }

    public let url: URL
    public let maxBytes: Int
    private let lock = NIOLock()
    private var pending: [WireFeedbackEvent] = []
    private var bytes = 0

    public init(directory: URL, maxBytes: Int = 64 << 20) throws {
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        url = directory.appendingPathComponent("events.queue")
        self.maxBytes = maxBytes
        if let data = try? Data(contentsOf: url) {
            var at = 0
            while at + 4 <= data.count {
                let n = data[at..<at + 4].reduce(0) { $0 << 8 | Int($1) }
                guard at + 4 + n <= data.count, let e = try? WireFeedbackEvent(serializedBytes: data[(at + 4)..<(at + 4 + n)]) else { break }
                pending.append(e)
                at += 4 + n
            }
            bytes = at
            if at != data.count { try rewrite(pending) }
        }
    }

    public var count: Int { lock.withLock { pending.count } }
    public var isEmpty: Bool { lock.withLock { pending.isEmpty } }

    /// Appends and fsyncs; throws ``QueueError/full`` rather than grow past the limit.
    public func append(_ events: [WireFeedbackEvent]) throws {
        try lock.withLock {
            var record = Data()
            for e in events {
                let body = try e.serializedData()
                withUnsafeBytes(of: UInt32(body.count).bigEndian) { record.append(contentsOf: $0) }
                record.append(body)
            }
            guard bytes + record.count <= maxBytes else { throw QueueError.full(bytes: bytes, limit: maxBytes) }
            let fd = open(url.path, O_WRONLY | O_CREAT | O_APPEND, 0o600)
            guard fd >= 0 else { throw QueueError.io("open \(url.path): \(String(cString: strerror(errno)))") }
            defer { close(fd) }
            let written = record.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
            guard written == record.count, fsync(fd) == 0 else { throw QueueError.io("write \(url.path): \(String(cString: strerror(errno)))") }
            pending += events
            bytes += record.count
        }
    }

    /// The oldest `limit` events, to send.
    public func peek(_ limit: Int) -> [WireFeedbackEvent] {
        lock.withLock { Array(pending.prefix(limit)) }
    }

    /// Removes the oldest `count` events once the coordinator has them.
    public func drop(_ count: Int) throws {
        try lock.withLock {
            let rest = Array(pending.dropFirst(count))
            try rewrite(rest)
            pending = rest
        }
    }

    private func rewrite(_ events: [WireFeedbackEvent]) throws {
        var data = Data()
        for e in events {
            let body = try e.serializedData()
            withUnsafeBytes(of: UInt32(body.count).bigEndian) { data.append(contentsOf: $0) }
            data.append(body)
        }
        let tmp = url.appendingPathExtension("tmp")
        let fd = open(tmp.path, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
        guard fd >= 0 else { throw QueueError.io("open \(tmp.path): \(String(cString: strerror(errno)))") }
        let written = data.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
        let synced = fsync(fd)
        close(fd)
        guard written == data.count, synced == 0, rename(tmp.path, url.path) == 0 else {
            throw QueueError.io("rewrite \(url.path): \(String(cString: strerror(errno)))")
        }
        bytes = data.count
    }
}
