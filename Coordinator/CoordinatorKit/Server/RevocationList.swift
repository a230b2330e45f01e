import Foundation
import Logging
import Metrics
import NIOCore
import NIOSSL
import Wire

/// Why the revocation list cannot say which certificates are revoked.
public enum RevocationError: Error, Equatable, CustomStringConvertible, Sendable {
    /// `index.json` exists but could not be read or parsed.
    case indexUnreadable(path: String, reason: String)

    public var description: String {
        switch self {
        case let .indexUnreadable(path, reason):
            return "the revocation index \(path) \(reason), so no certificate but the coordinator's own is accepted until it is fixed: restore it from a backup (or repair the JSON, or move it away if nothing was ever revoked); it is re-read on the next connection, no restart needed"
        }
    }
}

/// The serials `coordinator certs revoke` denied, read from the certificate directory's
/// index and re-read whenever the file changes, so a revocation takes effect on the next
/// connection without restarting the coordinator.
///
/// Fails closed: an index that exists but cannot be read or parsed refuses every peer
/// except the coordinator role (it cannot tell who was revoked), logs an error at most once
/// per `errorLogInterval` (a flood of refused peers does not flood the log), counts each refusal in `tower_revocation_index_refusals_total`,
/// and lets peers in again on the first check after the file is fixed. A missing index
/// means nothing was ever revoked.
public final class RevocationList: @unchecked Sendable {
    /// How often a broken index is reported in the log by default; refusals in between are
    /// counted and reported with the next line.
    public static let defaultErrorLogInterval: TimeInterval = 30

    private let directory: URL
    private let errorLogInterval: TimeInterval
    private let logger: Logger
    private let lock = NSLock()
    private var modified: Date?
    private var size: Int?
    private var serials: Set<String> = []
    private var broken: RevocationError?
    private var lastErrorLog: Date?
    private var refusedSinceLog = 0
    private let refusals = Counter(label: "tower_revocation_index_refusals_total")
    private let brokenGauge = Gauge(label: "tower_revocation_index_broken")

    public init(directory: String, logger: Logger = Logger(label: "tower.revocation"),
                errorLogInterval: TimeInterval = RevocationList.defaultErrorLogInterval) {
        self.directory = URL(fileURLWithPath: directory)
        self.logger = logger
        self.errorLogInterval = errorLogInterval
    }

    public var indexPath: String { directory.appendingPathComponent(ClusterCA.indexFile).path }

    /// Whether `serial` was revoked; throws when the index cannot be read, because then
    /// nobody can say.
    public func checkRevoked(serial: String) throws -> Bool {
        lock.lock()
        defer { lock.unlock() }
        try refreshLocked()
        return serials.contains(serial.lowercased())
    }

    /// Whether `serial` was revoked; an unreadable index counts as revoked (fail closed).
    public func isRevoked(serial: String) -> Bool {
        (try? checkRevoked(serial: serial)) ?? true
    }

    /// Admits or refuses an authenticated peer by its certificate serial.
    public func admit(_ identity: PeerIdentity) throws -> PeerIdentity {
        let revoked: Bool
        do {
            revoked = try checkRevoked(serial: identity.serial)
        } catch let error as RevocationError {
            // The coordinator's own certificate stays usable so that local tooling can
            // still reach it while the index is being repaired.
            if identity.role == .coordinator { return identity }
            noteRefusal(of: identity, because: error)
            throw WireError.unauthenticated(reason: error.description)
        }
        guard !revoked else {
            throw WireError.unauthenticated(reason: "certificate serial \(identity.serial) (\(identity.name)) has been revoked; ask the operator for a new one")
        }
        return identity
    }

    /// Who is on the other end of a connection whose TLS handshake completed: refused if
    /// it presented no certificate, one without a Tower role, or a revoked one. Both the
    /// cluster port and the JSON API authenticate through here.
    func authenticate(_ pipeline: ChannelPipeline.SynchronousOperations) throws -> PeerIdentity {
        guard let certificate = try pipeline.handler(type: NIOSSLHandler.self).peerCertificate else {
            throw WireError.unauthenticated(reason: "no client certificate")
        }
        return try admit(try PeerIdentity(peerCertificate: certificate))
    }

    /// Re-reads the index when it changed, and on every call while it is broken, so a
    /// repair is seen even if it kept the old timestamp and size.
    private func refreshLocked() throws {
        let path = indexPath
        let attributes = try? FileManager.default.attributesOfItem(atPath: path)
        let stamp = attributes?[.modificationDate] as? Date
        let length = (attributes?[.size] as? NSNumber)?.intValue
        if broken == nil, stamp == modified, length == size { return }
        modified = stamp
        size = length
        do {
            serials = try Self.readRevokedSerials(at: path)
            if let was = broken {
                broken = nil
                brokenGauge.record(0)
                logger.notice("revocation index readable again; accepting peers", metadata: ["index": "\(path)", "was": "\(was)"])
            }
        } catch let error as RevocationError {
            if broken == nil { brokenGauge.record(1) }
            broken = error
            serials = []
            throw error
        }
    }

    static func readRevokedSerials(at path: String) throws -> Set<String> {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else { return [] }
        guard !isDirectory.boolValue else {
            throw RevocationError.indexUnreadable(path: path, reason: "is a directory, not a file")
        }
        let data: Data
        do {
            data = try Data(contentsOf: URL(fileURLWithPath: path))
        } catch {
            throw RevocationError.indexUnreadable(path: path, reason: "cannot be read (\((error as NSError).localizedDescription))")
        }
        guard let records = try? ClusterCA.decodeIndex(data) else {
            throw RevocationError.indexUnreadable(path: path, reason: "is not a valid certificate index (a JSON list as written by `coordinator certs`)")
        }
        return Set(records.filter(\.revoked).map { $0.serial.lowercased() })
    }

    private func noteRefusal(of identity: PeerIdentity, because error: RevocationError) {
        refusals.increment()
        lock.lock()
        let now = Date()
        let due = lastErrorLog.map { now.timeIntervalSince($0) >= errorLogInterval } ?? true
        let suppressed = refusedSinceLog
        if due {
            lastErrorLog = now
            refusedSinceLog = 0
        } else {
            refusedSinceLog += 1
        }
        lock.unlock()
        if due {
            logger.error("refusing every peer: revocation index unreadable", metadata: [
                "peer": "\(identity)", "error": "\(error)", "refused_since_last_report": "\(suppressed)",
            ])
        }
    }
}
