import Foundation
import Logging
import Testing
import Wire
@testable import CoordinatorKit

/// Revocation fails closed: an index that cannot be read refuses everyone but the
/// coordinator's own certificate, and a repaired index lets them in again.
/// Inside the serialized SecurityTests: its coordinators share the process-wide metrics
/// registry with the metrics test, which must not see their gauges.
extension SecurityTests {
@Suite(.serialized) struct RevocationTests {
    static let corruptReason = "is not a valid certificate index (a JSON list as written by `coordinator certs`)"

    func temporaryDirectory() throws -> URL {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("tower-revocation-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        return url
    }

    @Test func aMissingIndexRevokesNothing() throws {
        let dir = try temporaryDirectory()
        let list = RevocationList(directory: dir.path)
        let worker = PeerIdentity(name: "w1", role: .worker, serial: "AB01")
        #expect(try list.admit(worker) == worker)
        #expect(try list.checkRevoked(serial: "ab01") == false)
    }

    @Test func aCorruptIndexRefusesEveryoneButTheCoordinatorUntilItIsFixed() throws {
        let dir = try temporaryDirectory()
        let index = dir.appendingPathComponent(ClusterCA.indexFile)
        let list = RevocationList(directory: dir.path)
        try Data("[]".utf8).write(to: index)
        let worker = PeerIdentity(name: "w1", role: .worker, serial: "ab01")
        let op = PeerIdentity(name: "operator", role: .operator, serial: "ab02")
        let coordinator = PeerIdentity(name: "coordinator", role: .coordinator, serial: "ab03")
        #expect(try list.admit(worker) == worker)

        try Data("[{\"serial\": \"ab01\", \"revo".utf8).write(to: index)
        let expected = RevocationError.indexUnreadable(path: index.path, reason: Self.corruptReason)
        #expect(throws: WireError.unauthenticated(reason: expected.description)) { try list.admit(worker) }
        #expect(throws: WireError.unauthenticated(reason: expected.description)) { try list.admit(op) }
        #expect(throws: expected) { try list.checkRevoked(serial: "ab02") }
        #expect(list.isRevoked(serial: "ab02"))
        #expect(try list.admit(coordinator) == coordinator)
        #expect(expected.description.contains(index.path))

        // Fixed (same size is not needed: a broken index is re-read on every check).
        try Data("[]".utf8).write(to: index)
        #expect(try list.admit(worker) == worker)
        #expect(try list.admit(op) == op)
    }

    /// Collects log lines at error level, to count them.
    final class ErrorLines: LogHandler, @unchecked Sendable {
        private let lock = NSLock()
        private var lines: [String] = []
        var metadata: Logger.Metadata = [:]
        var logLevel: Logger.Level = .trace
        subscript(metadataKey key: String) -> Logger.Metadata.Value? {
            get { metadata[key] }
            set { metadata[key] = newValue }
        }
        func log(level: Logger.Level, message: Logger.Message, metadata: Logger.Metadata?, source: String, file: String, function: String, line: UInt) {
            guard level == .error else { return }
            lock.withLock { lines.append("\(message) \(metadata?["refused_since_last_report"].map { "\($0)" } ?? "")") }
        }
        var all: [String] { lock.withLock { lines } }
    }

    /// A metric's current value from the process-wide Prometheus registry (0 if absent).
    static func metric(_ name: String) -> Double {
        for line in TowerMetrics.exposition().split(separator: "\n") where line.hasPrefix(name + " ") {
            return Double(line.dropFirst(name.count + 1)) ?? .nan
        }
        return 0
    }

    @Test func aFloodOfRefusalsLogsOnceAndCountsTheRest() throws {
        let dir = try temporaryDirectory()
        try Data("{".utf8).write(to: dir.appendingPathComponent(ClusterCA.indexFile))
        TowerMetrics.bootstrap()
        let before = Self.metric("tower_revocation_index_refusals_total")
        let lines = ErrorLines()
        // An interval no test outlives: every refusal after the first is only counted.
        let list = RevocationList(directory: dir.path, logger: Logger(label: "t", factory: { _ in lines }), errorLogInterval: .infinity)
        for i in 0..<50 {
            #expect(throws: WireError.self) { try list.admit(PeerIdentity(name: "w\(i)", role: .worker, serial: "\(i)")) }
        }
        #expect(lines.all == ["refusing every peer: revocation index unreadable 0"])
        // Every refusal is counted, and the index is flagged broken.
        #expect(Self.metric("tower_revocation_index_refusals_total") - before == 50)
        #expect(Self.metric("tower_revocation_index_broken") == 1)
        // A zero interval reports every refusal with the count suppressed before it.
        let every = ErrorLines()
        let loud = RevocationList(directory: dir.path, logger: Logger(label: "t", factory: { _ in every }), errorLogInterval: 0)
        for i in 0..<3 { _ = try? loud.admit(PeerIdentity(name: "w\(i)", role: .worker, serial: "\(i)")) }
        #expect(every.all.count == 3)
    }

    @Test func anIndexThatIsADirectoryIsRefused() throws {
        let dir = try temporaryDirectory()
        let index = dir.appendingPathComponent(ClusterCA.indexFile)
        try FileManager.default.createDirectory(at: index, withIntermediateDirectories: true)
        let list = RevocationList(directory: dir.path)
        let expected = RevocationError.indexUnreadable(path: index.path, reason: "is a directory, not a file")
        #expect(throws: WireError.unauthenticated(reason: expected.description)) {
            try list.admit(PeerIdentity(name: "w1", role: .worker, serial: "01"))
        }
    }

    @Test func aCorruptIndexRefusesConnectionsAndRecoversWithoutRestart() async throws {
        let c = try await InProcessCoordinator.start(workers: ["w1", "w2"])
        defer { Task { await c.stop() } }
        try ClusterCA.revoke("w2", in: c.cluster.certs)
        let index = c.cluster.certs.appendingPathComponent(ClusterCA.indexFile)
        let good = try Data(contentsOf: index)
        try Data("not json".utf8).write(to: index)
        let expected = WireError.unauthenticated(
            reason: RevocationError.indexUnreadable(path: index.path, reason: Self.corruptReason).description).description
        for name in ["w1", "operator"] {
            do {
                let client = try await c.connect(name, role: name == "w1" ? .worker : .operator)
                client.close()
                Issue.record("\(name) was accepted with a corrupt revocation index")
            } catch let WireError.remote(code, message) {
                #expect(code == .unauthenticated)
                #expect(message == expected)
            }
        }
        try good.write(to: index)
        let w1 = try await c.connect("w1", role: .worker)
        w1.close()
        // The revocation recorded before the corruption holds again.
        do {
            _ = try await c.connect("w2", role: .worker)
            Issue.record("a revoked certificate was accepted after the index was restored")
        } catch let WireError.remote(code, message) {
            #expect(code == .unauthenticated)
            #expect(message.contains("has been revoked"), "\(message)")
        }
    }
}
}

typealias RevocationTests = SecurityTests.RevocationTests
