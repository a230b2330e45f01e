import Crypto
import Foundation
import SwiftASN1
import X509

/// A certificate and its private key as PEM text, as written to disk.
public struct IssuedIdentity: Sendable {
    public var certificatePEM: String
    public var privateKeyPEM: String
    public var serial: String
    public var name: String
    public var role: ClusterRole
    public var notValidAfter: Date
}

/// One entry of the certificate directory's index (`index.json`): what `certs list` shows
/// and where `certs revoke` records a denied serial.
public struct CertificateRecord: Codable, Sendable, Equatable {
    public var serial: String
    public var name: String
    public var role: ClusterRole
    public var notValidAfter: Date
    public var revoked: Bool
    public var revokedAt: Date?

    /// Neither revoked nor expired: the certificate a name stands for.
    public var isLive: Bool { !revoked && notValidAfter > Date() }
}

public enum IdentityError: Error, CustomStringConvertible, Equatable {
    case caExists(String)
    case caMissing(String)
    case unreadable(path: String, reason: String)
    case noRole(subject: String)
    case unknownCertificate(String)
    case invalidName(String)
    /// The private key is not the one the certificate was issued for.
    case keyMismatch(certificate: String, key: String)
    /// A valid certificate already carries this name: a second one would make `revoke NAME`
    /// ambiguous and the two holders indistinguishable in logs.
    case nameTaken(name: String, serial: String)
    /// Several unrevoked certificates share the name (an index written before names were
    /// unique): revoking by name would deny them all.
    case ambiguousName(name: String, serials: [String])

    public var description: String {
        switch self {
        case let .caExists(dir):
            return "a cluster CA already exists in \(dir); use it, or choose another --dir"
        case let .caMissing(dir):
            return "no cluster CA in \(dir); run `coordinator certs init --dir \(dir)` first"
        case let .unreadable(path, reason):
            return "cannot read \(path): \(reason)"
        case let .noRole(subject):
            return "certificate \(subject) carries no Tower role; issue it with `coordinator certs issue NAME --role ROLE`"
        case let .unknownCertificate(what):
            return "no certificate named or numbered \(what) in the index; see `coordinator certs list`"
        case let .invalidName(name):
            return "invalid certificate name \(name): use letters, digits, '-', '_' and '.'"
        case let .keyMismatch(certificate, key):
            return "the private key \(key) does not belong to the certificate \(certificate); pass the key file issued with that certificate (NAME-key.pem beside NAME.pem)"
        case let .nameTaken(name, serial):
            return "a valid certificate named \(name) exists already (serial \(serial)); add --replace to issue a new one and revoke that serial, or choose another name"
        case let .ambiguousName(name, serials):
            return "\(serials.count) valid certificates are named \(name) (serials \(serials.joined(separator: ", "))); revoke one by its serial: `coordinator certs revoke SERIAL`"
        }
    }
}

/// The cluster's certificate authority: creates the CA, issues role certificates signed by
/// it, and keeps the index of issued and revoked serials. Keys are P-256; private key files
/// are written with mode 0600.
///
/// Layout of the directory: `ca.pem`, `ca-key.pem`, `NAME.pem`, `NAME-key.pem`, `index.json`.
public struct ClusterCA {
    public let directory: URL
    public let certificate: Certificate
    private let key: P256.Signing.PrivateKey

    public static let caFile = "ca.pem"
    public static let caKeyFile = "ca-key.pem"
    public static let indexFile = "index.json"

    /// Creates a new CA in `directory`. Refuses to overwrite an existing one.
    public static func initialize(in directory: URL, commonName: String = "Tower cluster CA", validityDays: Int = 3650) throws -> ClusterCA {
        let fm = FileManager.default
        try fm.createDirectory(at: directory, withIntermediateDirectories: true)
        let caURL = directory.appendingPathComponent(caFile)
        guard !fm.fileExists(atPath: caURL.path) else { throw IdentityError.caExists(directory.path) }
        let key = P256.Signing.PrivateKey()
        let name = try DistinguishedName {
            OrganizationName("Tower")
            CommonName(commonName)
        }
        let now = Date()
        let certificate = try Certificate(
            version: .v3,
            serialNumber: Certificate.SerialNumber(),
            publicKey: .init(key.publicKey),
            notValidBefore: now.addingTimeInterval(-300),
            notValidAfter: now.addingTimeInterval(Double(validityDays) * 86_400),
            issuer: name,
            subject: name,
            signatureAlgorithm: .ecdsaWithSHA256,
            extensions: try Certificate.Extensions {
                Critical(BasicConstraints.isCertificateAuthority(maxPathLength: 0))
                Critical(KeyUsage(keyCertSign: true, cRLSign: true))
            },
            issuerPrivateKey: .init(key)
        )
        try writeFile(caURL, try certificate.serializeAsPEM().pemString, private: false)
        try writeFile(directory.appendingPathComponent(caKeyFile), key.pemRepresentation, private: true)
        try writeIndex([], in: directory)
        return ClusterCA(directory: directory, certificate: certificate, key: key)
    }

    /// Loads the CA (certificate and key) from `directory`.
    public static func load(from directory: URL) throws -> ClusterCA {
        let caURL = directory.appendingPathComponent(caFile)
        let keyURL = directory.appendingPathComponent(caKeyFile)
        guard FileManager.default.fileExists(atPath: caURL.path),
              FileManager.default.fileExists(atPath: keyURL.path) else {
            throw IdentityError.caMissing(directory.path)
        }
        let certificate = try Certificate(pemEncoded: try readText(caURL))
        let key = try P256.Signing.PrivateKey(pemRepresentation: try readText(keyURL))
        return ClusterCA(directory: directory, certificate: certificate, key: key)
    }

    /// Issues a certificate for `name` with `role`, valid for TLS client and server use.
    /// `hosts` become subject alternative names (DNS names or IP addresses); a coordinator
    /// certificate needs the names its workers dial. `notValidAfter` may lie in the past
    /// (tests of expiry use it).
    public func issue(name: String, role: ClusterRole, hosts: [String] = [], validityDays: Int = 825, notValidBefore: Date? = nil, notValidAfter: Date? = nil) throws -> IssuedIdentity {
        guard !name.isEmpty, name.allSatisfy({ $0.isLetter || $0.isNumber || "-_.".contains($0) }) else {
            throw IdentityError.invalidName(name)
        }
        let key = P256.Signing.PrivateKey()
        let subject = try DistinguishedName {
            OrganizationName("Tower")
            OrganizationalUnitName(role.rawValue)
            CommonName(name)
        }
        let now = Date()
        let serial = Certificate.SerialNumber()
        let after = notValidAfter ?? now.addingTimeInterval(Double(validityDays) * 86_400)
        let before = notValidBefore ?? min(now.addingTimeInterval(-300), after.addingTimeInterval(-3600))
        let sans: [GeneralName] = hosts.map { host in
            if let ip = IPAddressBytes(host) { return .ipAddress(ASN1OctetString(contentBytes: ip.bytes[...])) }
            return .dnsName(host)
        }
        let certificate = try Certificate(
            version: .v3,
            serialNumber: serial,
            publicKey: .init(key.publicKey),
            notValidBefore: before,
            notValidAfter: after,
            issuer: self.certificate.subject,
            subject: subject,
            signatureAlgorithm: .ecdsaWithSHA256,
            extensions: try Certificate.Extensions {
                Critical(BasicConstraints.notCertificateAuthority)
                Critical(KeyUsage(digitalSignature: true))
                try ExtendedKeyUsage([.serverAuth, .clientAuth])
                if !sans.isEmpty { SubjectAlternativeNames(sans) }
            },
            issuerPrivateKey: .init(self.key)
        )
        return IssuedIdentity(
            certificatePEM: try certificate.serializeAsPEM().pemString,
            privateKeyPEM: key.pemRepresentation,
            serial: serial.hexString,
            name: name,
            role: role,
            notValidAfter: after
        )
    }

    /// Issues and writes `NAME.pem` / `NAME-key.pem` into `outputDirectory` (default: the
    /// CA directory), and records the serial in the index. A name held by a valid
    /// certificate is refused unless `replace`, which revokes the old serial in the same
    /// index write, so the name never stands for two live certificates.
    @discardableResult
    public func issueAndWrite(name: String, role: ClusterRole, hosts: [String] = [], validityDays: Int = 825, outputDirectory: URL? = nil,
                              replace: Bool = false) throws -> (IssuedIdentity, certificate: URL, key: URL) {
        var index = try Self.readIndex(in: directory)
        let holders = index.indices.filter { index[$0].name == name && index[$0].isLive }
        if let current = holders.first, !replace { throw IdentityError.nameTaken(name: name, serial: index[current].serial) }
        let identity = try issue(name: name, role: role, hosts: hosts, validityDays: validityDays)
        let out = outputDirectory ?? directory
        try FileManager.default.createDirectory(at: out, withIntermediateDirectories: true)
        let certURL = out.appendingPathComponent("\(name).pem")
        let keyURL = out.appendingPathComponent("\(name)-key.pem")
        try Self.writeFile(certURL, identity.certificatePEM, private: false)
        try Self.writeFile(keyURL, identity.privateKeyPEM, private: true)
        for i in holders {
            index[i].revoked = true
            index[i].revokedAt = Date()
        }
        index.append(CertificateRecord(serial: identity.serial, name: name, role: role, notValidAfter: identity.notValidAfter, revoked: false, revokedAt: nil))
        try Self.writeIndex(index, in: directory)
        return (identity, certURL, keyURL)
    }

    /// Revokes the certificate with serial `serialOrName`, or the one valid certificate
    /// with that name (a replaced one is already revoked, so a name still picks exactly
    /// one). Returns the records it changed. A running coordinator re-reads the index on
    /// the next connection.
    @discardableResult
    public static func revoke(_ serialOrName: String, in directory: URL) throws -> [CertificateRecord] {
        var index = try readIndex(in: directory)
        let needle = serialOrName.lowercased()
        var targets = index.indices.filter { index[$0].serial.lowercased() == needle }
        if targets.isEmpty {
            let named = index.indices.filter { index[$0].name == serialOrName }
            let live = named.filter { index[$0].isLive }
            guard live.count <= 1 else { throw IdentityError.ambiguousName(name: serialOrName, serials: live.map { index[$0].serial }) }
            // Revoking a name whose certificates are all revoked already changes nothing
            // and says so by listing them.
            targets = live.isEmpty ? named : live
        }
        guard !targets.isEmpty else { throw IdentityError.unknownCertificate(serialOrName) }
        for i in targets where !index[i].revoked {
            index[i].revoked = true
            index[i].revokedAt = Date()
        }
        try writeIndex(index, in: directory)
        return targets.map { index[$0] }
    }

    public static func readIndex(in directory: URL) throws -> [CertificateRecord] {
        let url = directory.appendingPathComponent(indexFile)
        guard FileManager.default.fileExists(atPath: url.path) else { return [] }
        do {
            return try decodeIndex(Data(contentsOf: url))
        } catch {
            throw IdentityError.unreadable(path: url.path, reason: "\(error)")
        }
    }

    /// Parses the contents of an `index.json`.
    public static func decodeIndex(_ data: Data) throws -> [CertificateRecord] {
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .iso8601
        return try decoder.decode([CertificateRecord].self, from: data)
    }

    static func writeIndex(_ records: [CertificateRecord], in directory: URL) throws {
        let encoder = JSONEncoder()
        encoder.dateEncodingStrategy = .iso8601
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        let text = String(decoding: try encoder.encode(records), as: UTF8.self)
        try writeFile(directory.appendingPathComponent(indexFile), text, private: false)
    }

    /// Writes atomically (temp file + rename) with mode 0600 for private keys, so a key is
    /// never readable by others, not even for an instant.
    public static func writeFile(_ url: URL, _ text: String, private isPrivate: Bool) throws {
        let tmp = url.deletingLastPathComponent().appendingPathComponent(".\(url.lastPathComponent).\(UUID().uuidString)")
        let created = FileManager.default.createFile(
            atPath: tmp.path, contents: Data(text.utf8),
            attributes: [.posixPermissions: isPrivate ? 0o600 : 0o644])
        guard created else { throw IdentityError.unreadable(path: tmp.path, reason: "cannot create file") }
        guard rename(tmp.path, url.path) == 0 else {
            let reason = String(cString: strerror(errno))
            try? FileManager.default.removeItem(at: tmp)
            throw IdentityError.unreadable(path: url.path, reason: "cannot write: \(reason)")
        }
    }

    static func readText(_ url: URL) throws -> String {
        do { return try String(contentsOf: url, encoding: .utf8) }
        catch { throw IdentityError.unreadable(path: url.path, reason: error.localizedDescription) }
    }
}

extension Certificate.SerialNumber {
    /// Lowercase hex without separators, as `certs list` prints it.
    public var hexString: String {
        bytes.map { byte in
            let s = String(byte, radix: 16)
            return s.count == 1 ? "0" + s : s
        }.joined()
    }
}

extension Certificate {
    /// The Tower role carried in the subject's organizational unit, if any.
    public var towerRole: ClusterRole? {
        for rdn in subject {
            for attribute in rdn where attribute.type == .RDNAttributeType.organizationalUnitName {
                if let role = ClusterRole(rawValue: String(describing: attribute.value)) { return role }
            }
        }
        return nil
    }

    /// The subject's common name (the name the certificate was issued to).
    public var towerName: String {
        for rdn in subject {
            for attribute in rdn where attribute.type == .RDNAttributeType.commonName {
                return String(describing: attribute.value)
            }
        }
        return subject.description
    }
}

/// The four or sixteen bytes of a textual IPv4 or IPv6 address.
struct IPAddressBytes {
    let bytes: [UInt8]
    init?(_ text: String) {
        var v4 = in_addr()
        var v6 = in6_addr()
        if inet_pton(AF_INET, text, &v4) == 1 {
            bytes = withUnsafeBytes(of: &v4) { Array($0) }
        } else if inet_pton(AF_INET6, text, &v6) == 1 {
            bytes = withUnsafeBytes(of: &v6) { Array($0) }
        } else {
            return nil
        }
    }
}
