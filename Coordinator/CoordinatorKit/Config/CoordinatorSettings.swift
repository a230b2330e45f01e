import Foundation
import Wire
import Yams

/// Everything `coordinator serve` can be told, from the YAML file (see
/// Deploy/tower.yaml) and then from flags, which win.
public struct CoordinatorSettings: Sendable, Equatable {
    public var listenHost = "0.0.0.0"
    public var listenPort = 7443
    public var dataDirectory = "./tower-data"
    public var certificate = "./tower-certs/coordinator.pem"
    public var privateKey = "./tower-certs/coordinator-key.pem"
    public var ca = "./tower-certs/ca.pem"
    /// The certificate directory whose index.json lists revoked serials; nil = the CA's.
    public var certsDirectory: String?
    public var leaseTimeoutMs: UInt64 = 30_000
    public var heartbeatIntervalMs: UInt32 = 5_000
    public var maxAttempts = 3
    public var maxFrameBytes = WireFraming.defaultMaxFrameBytes
    public var prefetchPerSlot = 2
    /// host:port of the Prometheus endpoint; empty disables it. Plain HTTP, so it binds
    /// to loopback unless told otherwise.
    public var metricsListen = "127.0.0.1:9464"
    /// host:port of the read-only JSON API (HTTPS with client certificates); empty
    /// disables it.
    public var apiListen = "0.0.0.0:7444"
    /// When a search's winner becomes champion (`promotion:` in the YAML; a search may
    /// override it with `submit hpo --promotion FILE`).
    public var promotion = PromotionPolicy()
    /// Limits on peers still authenticating and on stalled frames (`connection_limits:`).
    public var connectionLimits = ConnectionLimits()

    public init() {}

    /// The planners of every job kind, configured from these settings.
    public var planners: JobPlanners {
        JobPlanners([EchoPlanner(), HPOPlanner(policy: promotion)])
    }

    public var revocationDirectory: String {
        certsDirectory ?? URL(fileURLWithPath: ca).deletingLastPathComponent().path
    }

    /// The YAML keys, all optional.
    struct File: Decodable {
        var listen: String?
        var data_dir: String?
        var certificate: String?
        var private_key: String?
        var ca: String?
        var certs_dir: String?
        var lease_timeout_seconds: Double?
        var heartbeat_interval_seconds: Double?
        var max_attempts: Int?
        var max_frame_bytes: Int?
        var prefetch_per_slot: Int?
        var metrics_listen: String?
        var promotion: PromotionPolicy?
        var api_listen: String?
        var connection_limits: ConnectionLimits?
    }

    /// Reads a YAML config; unknown keys and bad values are errors naming the key.
    public static func load(yaml text: String, path: String = "config") throws -> CoordinatorSettings {
        let known: Set<String> = ["listen", "data_dir", "certificate", "private_key", "ca", "certs_dir", "lease_timeout_seconds",
                                  "heartbeat_interval_seconds", "max_attempts", "max_frame_bytes", "prefetch_per_slot", "metrics_listen", "promotion", "api_listen",
                                  "connection_limits"]
        if let node = try Yams.compose(yaml: text), let mapping = node.mapping {
            for key in mapping.keys.compactMap(\.string) where !known.contains(key) {
                throw ConfigError.invalid("\(path): unknown key \"\(key)\"; known keys: \(known.sorted().joined(separator: ", "))")
            }
        }
        let file: File
        do { file = try YAMLDecoder().decode(File.self, from: text) }
        catch let error as PromotionPolicyError { throw ConfigError.invalid("\(path): \(error)") }
        catch let DecodingError.dataCorrupted(context) where context.underlyingError is PromotionPolicyError {
            throw ConfigError.invalid("\(path): \(context.underlyingError!)")
        }
        catch { throw ConfigError.invalid("\(path): \(error)") }
        var s = CoordinatorSettings()
        if let listen = file.listen { (s.listenHost, s.listenPort) = try parseHostPort(listen, key: "listen") }
        if let v = file.data_dir { s.dataDirectory = v }
        if let v = file.certificate { s.certificate = v }
        if let v = file.private_key { s.privateKey = v }
        if let v = file.ca { s.ca = v }
        s.certsDirectory = file.certs_dir
        if let v = file.lease_timeout_seconds { s.leaseTimeoutMs = UInt64(v * 1000) }
        if let v = file.heartbeat_interval_seconds { s.heartbeatIntervalMs = UInt32(v * 1000) }
        if let v = file.max_attempts { s.maxAttempts = v }
        if let v = file.max_frame_bytes { s.maxFrameBytes = v }
        if let v = file.prefetch_per_slot { s.prefetchPerSlot = v }
        if let v = file.metrics_listen { s.metricsListen = v }
        if let v = file.promotion { s.promotion = v }
        if let v = file.api_listen { s.apiListen = v }
        if let v = file.connection_limits { s.connectionLimits = v }
        try s.validate()
        return s
    }

    public func validate() throws {
        guard leaseTimeoutMs >= 200 else { throw ConfigError.invalid("lease_timeout_seconds must be at least 0.2") }
        guard heartbeatIntervalMs >= 50, UInt64(heartbeatIntervalMs) * 2 <= leaseTimeoutMs else {
            throw ConfigError.invalid("heartbeat_interval_seconds must be at least 0.05 and at most half of lease_timeout_seconds")
        }
        guard maxAttempts >= 1 else { throw ConfigError.invalid("max_attempts must be at least 1") }
        guard maxFrameBytes >= 4096 && maxFrameBytes <= Int(Int32.max) else {
            throw ConfigError.invalid("max_frame_bytes must be between 4096 and \(Int32.max)")
        }
        guard prefetchPerSlot >= 1 else { throw ConfigError.invalid("prefetch_per_slot must be at least 1") }
        try connectionLimits.validate()
    }

    public static func parseHostPort(_ text: String, key: String) throws -> (String, Int) {
        guard let colon = text.lastIndex(of: ":"), let port = Int(text[text.index(after: colon)...]), (0...65535).contains(port) else {
            throw ConfigError.invalid("\(key) must be HOST:PORT, got \"\(text)\"")
        }
        var host = String(text[..<colon])
        if host.hasPrefix("[") && host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
        return (host.isEmpty ? "0.0.0.0" : host, port)
    }
}

public enum ConfigError: Error, CustomStringConvertible {
    case invalid(String)
    public var description: String {
        switch self { case let .invalid(m): return "configuration error: \(m)" }
    }
}
