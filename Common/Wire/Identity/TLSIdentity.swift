import Foundation
import NIOCore
import NIOSSL
import X509

/// The certificate, private key and cluster CA one process presents and trusts. Every
/// Tower connection is TLS 1.3 with both sides authenticated against the cluster CA;
/// nothing here can produce a plaintext or one-sided configuration.
public struct TLSIdentity: Sendable {
    public let certificateChain: [NIOSSLCertificate]
    public let privateKey: NIOSSLPrivateKey
    public let trustRoots: [NIOSSLCertificate]
    /// The parsed leaf certificate (its role and name).
    public let certificate: Certificate
    /// Set when the private key file can be read by other users: the process still starts
    /// (a shared test host is not an attack), but it should say so loudly.
    public private(set) var keyFileWarning: String?

    public init(certificatePEM: String, privateKeyPEM: String, caPEM: String) throws {
        try self.init(certificatePEM: certificatePEM, privateKeyPEM: privateKeyPEM, caPEM: caPEM,
                      sources: (certificate: "(in memory)", key: "(in memory)", ca: "(in memory)"))
    }

    /// Parses each PEM apart so that an error names the one file at fault, and checks the
    /// key against the certificate here: otherwise the mismatch surfaces only later as
    /// BoringSSL's bare `failedToLoadPrivateKey` when a TLS context is built.
    init(certificatePEM: String, privateKeyPEM: String, caPEM: String,
         sources: (certificate: String, key: String, ca: String)) throws {
        func parse<T>(_ source: String, _ what: String, _ body: () throws -> T) throws -> T {
            do { return try body() }
            catch { throw IdentityError.unreadable(path: source, reason: "not a valid PEM \(what): \(error)") }
        }
        certificateChain = try parse(sources.certificate, "certificate") { try NIOSSLCertificate.fromPEMBytes(Array(certificatePEM.utf8)) }
        certificate = try parse(sources.certificate, "certificate") { try Certificate(pemEncoded: certificatePEM) }
        privateKey = try parse(sources.key, "private key") { try NIOSSLPrivateKey(bytes: Array(privateKeyPEM.utf8), format: .pem) }
        trustRoots = try parse(sources.ca, "CA certificate") { try NIOSSLCertificate.fromPEMBytes(Array(caPEM.utf8)) }
        guard !certificateChain.isEmpty else {
            throw IdentityError.unreadable(path: sources.certificate, reason: "no certificate in the PEM text")
        }
        guard !trustRoots.isEmpty else {
            throw IdentityError.unreadable(path: sources.ca, reason: "no certificate in the PEM text")
        }
        // Keys X509 cannot parse (none that Tower issues) are left to BoringSSL's check.
        if let key = try? Certificate.PrivateKey(pemEncoded: privateKeyPEM), key.publicKey != certificate.publicKey {
            throw IdentityError.keyMismatch(certificate: sources.certificate, key: sources.key)
        }
    }

    /// Loads the three PEM files; errors name the file that could not be read.
    public init(certificate certPath: String, key keyPath: String, ca caPath: String) throws {
        func read(_ path: String, _ what: String) throws -> String {
            do { return try String(contentsOfFile: path, encoding: .utf8) }
            catch { throw IdentityError.unreadable(path: path, reason: "\(what) file: \(error.localizedDescription)") }
        }
        let cert = try read(certPath, "certificate"), key = try read(keyPath, "private key"), ca = try read(caPath, "CA")
        try self.init(certificatePEM: cert, privateKeyPEM: key, caPEM: ca, sources: (certPath, keyPath, caPath))
        keyFileWarning = Self.keyFileWarning(keyPath)
    }

    /// Why the key file at `path` is exposed, or nil when only its owner can read it.
    public static func keyFileWarning(_ path: String) -> String? {
        guard let mode = (try? FileManager.default.attributesOfItem(atPath: path)[.posixPermissions]) as? NSNumber,
              mode.intValue & 0o077 != 0 else { return nil }
        return "the private key \(path) is readable by other users (mode \(String(mode.intValue & 0o777, radix: 8))); run `chmod 600 \(path)`"
    }

    public var role: ClusterRole? { certificate.towerRole }
    public var name: String { certificate.towerName }

    /// Server side: requires a client certificate signed by the cluster CA. Host names
    /// are not checked for clients (workers connect from anywhere); roles are checked per
    /// message instead.
    public func makeServerContext() throws -> NIOSSLContext {
        var config = TLSConfiguration.makeServerConfigurationWithMTLS(
            certificateChain: certificateChain.map { .certificate($0) },
            privateKey: .privateKey(privateKey),
            trustRoots: .certificates(trustRoots))
        config.minimumTLSVersion = .tlsv13
        config.certificateVerification = .noHostnameVerification
        return try NIOSSLContext(configuration: config)
    }

    /// Client side: presents our certificate and verifies the coordinator's certificate
    /// against the cluster CA, including its host name or IP address.
    public func makeClientContext() throws -> NIOSSLContext {
        var config = TLSConfiguration.makeClientConfiguration()
        config.certificateChain = certificateChain.map { .certificate($0) }
        config.privateKey = .privateKey(privateKey)
        config.trustRoots = .certificates(trustRoots)
        config.minimumTLSVersion = .tlsv13
        config.certificateVerification = .fullVerification
        return try NIOSSLContext(configuration: config)
    }
}

/// Who is on the other end of an authenticated connection, read from the certificate the
/// TLS handshake verified.
public struct PeerIdentity: Sendable, Equatable, CustomStringConvertible {
    public var name: String
    public var role: ClusterRole
    public var serial: String

    public init(name: String, role: ClusterRole, serial: String) {
        self.name = name
        self.role = role
        self.serial = serial
    }

    /// Reads the identity from the peer certificate of a completed handshake.
    public init(peerCertificate: NIOSSLCertificate) throws {
        let certificate = try Certificate(derEncoded: try peerCertificate.toDERBytes())
        guard let role = certificate.towerRole else {
            throw IdentityError.noRole(subject: certificate.subject.description)
        }
        self.init(name: certificate.towerName, role: role, serial: certificate.serialNumber.hexString)
    }

    public var description: String { "\(name) (\(role.rawValue), serial \(serial))" }
}
