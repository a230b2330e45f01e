import Foundation
import NIOCore
import NIOSSL
import Wire

/// The serials `coordinator certs revoke` denied, read from the certificate directory's
/// index and re-read whenever the file changes, so a revocation takes effect on the next
/// connection without restarting the coordinator.
public final class RevocationList: @unchecked Sendable {
    private let directory: URL
    private let lock = NSLock()
    private var modified: Date?
    private var serials: Set<String> = []

    public init(directory: String) {
        self.directory = URL(fileURLWithPath: directory)
    }

    public func isRevoked(serial: String) -> Bool {
        lock.lock()
        defer { lock.unlock() }
        let url = directory.appendingPathComponent(ClusterCA.indexFile)
        let stamp = (try? FileManager.default.attributesOfItem(atPath: url.path)[.modificationDate]) as? Date
        if stamp != modified {
            modified = stamp
            let records = (try? ClusterCA.readIndex(in: directory)) ?? []
            serials = Set(records.filter(\.revoked).map { $0.serial.lowercased() })
        }
        return serials.contains(serial.lowercased())
    }

    /// Who is on the other end of a connection whose TLS handshake completed: refused if
    /// it presented no certificate, one without a Tower role, or a revoked one. Both the
    /// cluster port and the JSON API authenticate through here.
    func authenticate(_ pipeline: ChannelPipeline.SynchronousOperations) throws -> PeerIdentity {
        guard let certificate = try pipeline.handler(type: NIOSSLHandler.self).peerCertificate else {
            throw WireError.unauthenticated(reason: "no client certificate")
        }
        let identity = try PeerIdentity(peerCertificate: certificate)
        guard !isRevoked(serial: identity.serial) else {
            throw WireError.unauthenticated(reason: "certificate serial \(identity.serial) (\(identity.name)) has been revoked; ask the operator for a new one")
        }
        return identity
    }
}
