import Foundation
import Wire

/// Where the operator's client finds the coordinator and the certificate it presents.
///
/// Guarantees: each of the four settings comes from the first of its flag, its
/// environment variable and the operator's credentials directory (`TOWER_CERTS_DIR`, else
/// `$XDG_CONFIG_HOME/tower`, else `~/.config/tower`, which `coordinator login` fills), and
/// a file that cannot be read is reported with every way to point at another one.
public struct OperatorCredentials: Equatable, Sendable {
    public var coordinator: String
    public var certificate: String
    public var key: String
    public var ca: String

    /// The file names inside the credentials directory.
    public static let certificateFile = "operator.pem"
    public static let keyFile = "operator-key.pem"
    public static let coordinatorFile = "coordinator"
    public static let defaultCoordinator = "127.0.0.1:7443"

    public struct Flags: Sendable {
        public var coordinator, certificate, key, ca: String?
        public init(coordinator: String? = nil, certificate: String? = nil, key: String? = nil, ca: String? = nil) {
            self.coordinator = coordinator
            self.certificate = certificate
            self.key = key
            self.ca = ca
        }
    }

    public init(coordinator: String, certificate: String, key: String, ca: String) {
        self.coordinator = coordinator
        self.certificate = certificate
        self.key = key
        self.ca = ca
    }

    /// The per-user directory, so credentials set up once do not depend on the shell's
    /// working directory.
    public static func directory(environment: [String: String] = ProcessInfo.processInfo.environment) -> URL {
        if let dir = environment["TOWER_CERTS_DIR"], !dir.isEmpty { return URL(fileURLWithPath: dir) }
        if let config = environment["XDG_CONFIG_HOME"], !config.isEmpty { return URL(fileURLWithPath: config).appendingPathComponent("tower") }
        let home = environment["HOME"].flatMap { $0.isEmpty ? nil : $0 } ?? NSHomeDirectory()
        return URL(fileURLWithPath: home).appendingPathComponent(".config/tower")
    }

    /// How help texts name the directory: the rule, not this user's expansion of it.
    public static let defaultDirectoryDescription = "$TOWER_CERTS_DIR or ~/.config/tower"

    public static func resolve(_ flags: Flags, environment: [String: String] = ProcessInfo.processInfo.environment) -> OperatorCredentials {
        let dir = directory(environment: environment)
        func pick(_ flag: String?, _ variable: String, _ file: String) -> String {
            flag ?? environment[variable].flatMap { $0.isEmpty ? nil : $0 } ?? dir.appendingPathComponent(file).path
        }
        let saved = (try? String(contentsOf: dir.appendingPathComponent(coordinatorFile), encoding: .utf8))?
            .trimmingCharacters(in: .whitespacesAndNewlines)
        let address = flags.coordinator ?? environment["TOWER_COORDINATOR"].flatMap { $0.isEmpty ? nil : $0 }
            ?? saved.flatMap { $0.isEmpty ? nil : $0 } ?? defaultCoordinator
        return OperatorCredentials(coordinator: address,
                                   certificate: pick(flags.certificate, "TOWER_CERT", certificateFile),
                                   key: pick(flags.key, "TOWER_KEY", keyFile),
                                   ca: pick(flags.ca, "TOWER_CA", ClusterCA.caFile))
    }

    /// Loads the three files; a missing one is an ``OperatorCredentialsError`` that says
    /// how to point at it, any other problem the file's own error.
    public func identity() throws -> TLSIdentity {
        for (path, file) in [(certificate, OperatorCredentialsFile.certificate), (key, .key), (ca, .ca)]
        where !FileManager.default.isReadableFile(atPath: path) {
            throw OperatorCredentialsError.missing(file, path: path)
        }
        let identity = try TLSIdentity(certificate: certificate, key: key, ca: ca)
        guard identity.role == .operator else { throw OperatorCredentialsError.notAnOperator(path: certificate, role: identity.role?.rawValue ?? "none") }
        return identity
    }

    /// Copies the three files into `directory` (the key and the directory owner-only) and
    /// remembers the coordinator's address, after checking they belong together.
    public func save(to directory: URL) throws {
        _ = try identity()
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        func text(_ path: String) throws -> String { try String(contentsOfFile: path, encoding: .utf8) }
        try ClusterCA.writeFile(directory.appendingPathComponent(Self.certificateFile), try text(certificate), private: false)
        try ClusterCA.writeFile(directory.appendingPathComponent(Self.keyFile), try text(key), private: true)
        try ClusterCA.writeFile(directory.appendingPathComponent(ClusterCA.caFile), try text(ca), private: false)
        try ClusterCA.writeFile(directory.appendingPathComponent(Self.coordinatorFile), coordinator + "\n", private: false)
    }
}

public enum OperatorCredentialsFile: String, Sendable {
    case certificate = "operator certificate"
    case key = "operator private key"
    case ca = "cluster CA certificate"

    var flag: String {
        switch self {
        case .certificate: return "--cert"
        case .key: return "--key"
        case .ca: return "--ca"
        }
    }

    var variable: String {
        switch self {
        case .certificate: return "TOWER_CERT"
        case .key: return "TOWER_KEY"
        case .ca: return "TOWER_CA"
        }
    }
}

public enum OperatorCredentialsError: Error, Equatable, CustomStringConvertible, Sendable {
    case missing(OperatorCredentialsFile, path: String)
    case notAnOperator(path: String, role: String)

    public var description: String {
        switch self {
        case let .missing(file, path):
            return "no \(file.rawValue) at \(path): pass \(file.flag) FILE or set \(file.variable), "
                + "or set TOWER_CERTS_DIR to a directory holding operator.pem, operator-key.pem and ca.pem, "
                + "or run once `coordinator login --cert NAME.pem --key NAME-key.pem --ca ca.pem --coordinator HOST:7443` "
                + "with the files from `coordinator certs issue NAME --role operator`"
        case let .notAnOperator(path, role):
            return "\(path) was issued for role \(role); operator commands need a certificate from `coordinator certs issue NAME --role operator`"
        }
    }
}
