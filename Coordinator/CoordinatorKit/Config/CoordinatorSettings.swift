import Foundation
import Wire
import Yams

/// Everything `coordinator serve` can be told, from the YAML file (see
/// Deploy/tower.yaml) and then from flags, which win.
public struct CoordinatorSettings: Sendable, Equatable {
    public var listenHost = "0.0.0.0"
    public var listenPort = 7443
    public var dataDirectory = "./tower-data"
    /// The directory the listings' `photos` paths are relative to (`photos_dir:`); nil =
    /// `<data_dir>/photos`. Render jobs read photos from here only.
    public var photosDirectory: String?
    /// Explicit paths of this coordinator's certificate, key and the cluster CA
    /// (`certificate:`/`--cert`, `private_key:`/`--key`, `ca:`/`--ca`); nil = the file
    /// `certs issue` wrote into the certificate directory, so `certs_dir` alone suffices.
    public var certificate: String?
    public var privateKey: String?
    public var ca: String?
    /// The certificate directory (`certs_dir:`/`--certs-dir`): where the files above are
    /// looked for and whose index.json lists revoked serials; nil = the CA's directory
    /// when `ca` is given, else ./tower-certs.
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
    /// What a committed write survives (`durability: normal|strict`); see ``Durability``.
    public var durability: Durability = .normal
    /// Drift thresholds and alerting (`drift:`).
    public var drift = DriftSettings()
    /// Scheduled and triggered pipelines (`pipelines:`); see ``PipelineDefinition``.
    public var pipelines: [PipelineDefinition] = []
    /// Which pipeline a drifted data set starts, and how often (`retrain_on_drift:`).
    public var retrainOnDrift = RetrainOnDrift()
    /// When ingest queues a marketing short and where approved ones go (`shorts:`).
    public var shorts = ShortSettings()
    /// How often the pipeline service looks at its clocks, runs and jobs. Not in the
    /// YAML: a second is plenty for cron slots and job steps; tests shorten it.
    public var pipelineTickSeconds: Double = 1

    /// Longest lease timeout accepted: a day. Longer would only hide dead workers.
    public static let maxLeaseTimeoutSeconds: Double = 86_400

    public init() {}

    /// The planners of every job kind, configured from these settings.
    public var planners: JobPlanners {
        JobPlanners([EchoPlanner(), HPOPlanner(policy: promotion), ScorePlanner(), DriftPlanner(settings: drift),
                     RenderPlanner(photosDirectory: photosDirectory.map { URL(fileURLWithPath: $0) })])
    }

    public var revocationDirectory: String {
        certsDirectory ?? ca.map { URL(fileURLWithPath: $0).deletingLastPathComponent().path } ?? Self.defaultCertsDirectory
    }

    public static let defaultCertsDirectory = "./tower-certs"

    /// What stops `directory` from being created, in the system's words: the first
    /// ancestor that exists and is not a writable directory.
    static func reason(creating directory: URL) -> String {
        var ancestor = directory
        while !FileManager.default.fileExists(atPath: ancestor.path) && ancestor.path != "/" {
            ancestor = ancestor.deletingLastPathComponent()
        }
        var isDirectory: ObjCBool = false
        _ = FileManager.default.fileExists(atPath: ancestor.path, isDirectory: &isDirectory)
        if !isDirectory.boolValue { return "\(ancestor.path) is a file, not a directory" }
        return access(ancestor.path, W_OK) == 0 ? "cannot create it" : "\(ancestor.path): \(String(cString: strerror(errno)))"
    }

    private var certificatesDirectory: URL { URL(fileURLWithPath: certsDirectory ?? Self.defaultCertsDirectory) }
    public var certificatePath: String { certificate ?? certificatesDirectory.appendingPathComponent("coordinator.pem").path }
    public var privateKeyPath: String { privateKey ?? certificatesDirectory.appendingPathComponent("coordinator-key.pem").path }
    public var caPath: String { ca ?? certificatesDirectory.appendingPathComponent(ClusterCA.caFile).path }

    /// Loads the coordinator's certificate; a missing file names the key and flag that
    /// chose it, since the usual cause is a config whose paths are not where the
    /// certificates were made.
    public func identity() throws -> TLSIdentity {
        let files: [(path: String, explicit: Bool, key: String, flag: String, name: String)] = [
            (certificatePath, certificate != nil, "certificate", "--cert", "coordinator.pem"),
            (privateKeyPath, privateKey != nil, "private_key", "--key", "coordinator-key.pem"),
            (caPath, ca != nil, "ca", "--ca", ClusterCA.caFile),
        ]
        for file in files where !FileManager.default.isReadableFile(atPath: file.path) {
            let chosenBy = file.explicit ? "\(file.key): in the config or \(file.flag)"
                : certsDirectory == nil ? "the default certificate directory \(Self.defaultCertsDirectory) (its \(file.name)); set certs_dir: / --certs-dir"
                : "certs_dir: / --certs-dir (its \(file.name))"
            throw ConfigError.missingFile(path: file.path, chosenBy: chosenBy)
        }
        return try TLSIdentity(certificate: certificatePath, key: privateKeyPath, ca: caPath)
    }

    /// Creates the data directory if needed and proves it writable before anything opens
    /// in it, so a read-only or foreign-owned directory is one clear error at start.
    public func writableDataDirectory() throws -> URL {
        let data = URL(fileURLWithPath: dataDirectory)
        do {
            try FileManager.default.createDirectory(at: data, withIntermediateDirectories: true)
        } catch {
            throw ConfigError.dataDirectoryNotWritable(path: data.path, reason: Self.reason(creating: data))
        }
        let probe = data.appendingPathComponent(".write-check-\(getpid())").path
        let fd = open(probe, O_CREAT | O_WRONLY, 0o600)
        guard fd >= 0 else { throw ConfigError.dataDirectoryNotWritable(path: data.path, reason: String(cString: strerror(errno))) }
        close(fd)
        unlink(probe)
        return data
    }

    /// The YAML keys, all optional.
    struct File: Decodable {
        var listen: String?
        var data_dir: String?
        var photos_dir: String?
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
        var durability: String?
        var drift: DriftSettings?
        var retrain_on_drift: RetrainOnDrift?
    }

    /// Every top-level key the YAML may hold.
    public static let yamlKeys: Set<String> = [
        "listen", "data_dir", "photos_dir", "certificate", "private_key", "ca", "certs_dir", "lease_timeout_seconds",
        "heartbeat_interval_seconds", "max_attempts", "max_frame_bytes", "prefetch_per_slot", "metrics_listen", "promotion", "api_listen", "durability",
        "connection_limits", "drift", "pipelines", "retrain_on_drift", "shorts",
    ]

    /// Reads a YAML config; unknown keys and bad values are errors naming the key.
    public static func load(yaml text: String, path: String = "config") throws -> CoordinatorSettings {
        let known = yamlKeys
        let root: Node?
        do { root = try Yams.compose(yaml: text) }
        catch { throw ConfigError.malformedYAML(path: path, line: Self.line(of: error), reason: Self.problem(of: error)) }
        if let node = root, let mapping = node.mapping {
            for key in mapping.keys.compactMap(\.string) where !known.contains(key) {
                throw ConfigError.invalid("\(path): unknown key \"\(key)\"; known keys: \(known.sorted().joined(separator: ", "))")
            }
        }
        let file: File
        do { file = try YAMLDecoder().decode(File.self, from: text) }
        catch let error as PromotionPolicyError { throw ConfigError.invalid("\(path): \(error)") }
        catch let DecodingError.dataCorrupted(context) where context.underlyingError is ConfigError {
            // A section that checks its own values (drift:) names the key already.
            throw context.underlyingError as! ConfigError
        }
        catch let DecodingError.dataCorrupted(context) where context.underlyingError is PromotionPolicyError {
            throw ConfigError.invalid("\(path): \(context.underlyingError!)")
        }
        catch { throw ConfigError.invalid("\(path): \(error)") }
        var s = CoordinatorSettings()
        if let listen = file.listen { (s.listenHost, s.listenPort) = try parseHostPort(listen, key: "listen") }
        if let v = file.data_dir { s.dataDirectory = v }
        s.photosDirectory = file.photos_dir
        s.certificate = file.certificate
        s.privateKey = file.private_key
        s.ca = file.ca
        s.certsDirectory = file.certs_dir
        if let v = file.lease_timeout_seconds {
            s.leaseTimeoutMs = try milliseconds(v, key: "\(path): lease_timeout_seconds", from: 0.2, to: maxLeaseTimeoutSeconds)
        }
        if let v = file.heartbeat_interval_seconds {
            s.heartbeatIntervalMs = UInt32(try milliseconds(v, key: "\(path): heartbeat_interval_seconds", from: 0.05, to: maxLeaseTimeoutSeconds / 2))
        }
        if let v = file.durability {
            guard let d = Durability(rawValue: v) else {
                throw ConfigError.invalidValue(key: "\(path): durability", value: v, expected: Durability.allCases.map(\.rawValue).joined(separator: " or "))
            }
            s.durability = d
        }
        if let v = file.max_attempts { s.maxAttempts = v }
        if let v = file.max_frame_bytes { s.maxFrameBytes = v }
        if let v = file.prefetch_per_slot { s.prefetchPerSlot = v }
        if let v = file.metrics_listen { s.metricsListen = v }
        if let v = file.promotion { s.promotion = v }
        if let v = file.api_listen { s.apiListen = v }
        if let v = file.connection_limits { s.connectionLimits = v }
        if let v = file.drift { s.drift = v }
        if let v = file.retrain_on_drift {
            // The decoder would skip a misspelt key and leave its default in force.
            let keys = root?.mapping?["retrain_on_drift"]?.mapping?.keys.compactMap(\.string) ?? []
            for key in keys where !["pipeline", "debounce_hours"].contains(key) {
                throw ConfigError.invalid("\(path): retrain_on_drift: unknown key \"\(key)\"; known keys: pipeline, debounce_hours")
            }
            s.retrainOnDrift = v
        }
        // Read from the node, not `File`, so errors name the key inside the section.
        if let node = root?.mapping?["pipelines"] { s.pipelines = try PipelineDefinition.parse(node, path: path) }
        if let node = root?.mapping?["shorts"] { s.shorts = try ShortSettings.parse(node, path: path) }
        try s.validate()
        return s
    }

    /// Seconds from a config file or flag as milliseconds, refusing what is not a finite
    /// number in `from...to` instead of trapping on the conversion.
    public static func milliseconds(_ seconds: Double, key: String, from lower: Double, to upper: Double) throws -> UInt64 {
        guard seconds.isFinite, seconds >= lower, seconds <= upper else {
            throw ConfigError.invalidValue(key: key, value: "\(seconds)", expected: "a number of seconds from \(lower) to \(upper)")
        }
        return UInt64((seconds * 1000).rounded())
    }

    public func validate() throws {
        guard leaseTimeoutMs >= 200, leaseTimeoutMs <= UInt64(Self.maxLeaseTimeoutSeconds * 1000) else {
            throw ConfigError.invalid("lease_timeout_seconds must be from 0.2 to \(Self.maxLeaseTimeoutSeconds)")
        }
        guard heartbeatIntervalMs >= 50, UInt64(heartbeatIntervalMs) * 2 <= leaseTimeoutMs else {
            throw ConfigError.invalid("heartbeat_interval_seconds must be at least 0.05 and at most half of lease_timeout_seconds")
        }
        guard maxAttempts >= 1 else { throw ConfigError.invalid("max_attempts must be at least 1") }
        guard maxFrameBytes >= 4096 && maxFrameBytes <= Int(Int32.max) else {
            throw ConfigError.invalid("max_frame_bytes must be between 4096 and \(Int32.max)")
        }
        guard prefetchPerSlot >= 1 else { throw ConfigError.invalid("prefetch_per_slot must be at least 1") }
        try connectionLimits.validate()
        try retrainOnDrift.validate()
        guard pipelineTickSeconds.isFinite, pipelineTickSeconds >= 0.01, pipelineTickSeconds <= 60 else {
            throw ConfigError.invalid("the pipeline tick must be from 0.01 to 60 seconds, got \(pipelineTickSeconds)")
        }
    }

    static func line(of error: Error) -> Int? {
        switch error as? YamlError {
        case let .scanner(_, _, mark, _)?, let .parser(_, _, mark, _)?, let .composer(_, _, mark, _)?:
            return mark.line
        default:
            return nil
        }
    }

    static func problem(of error: Error) -> String {
        switch error as? YamlError {
        case let .scanner(context, problem, _, _)?, let .parser(context, problem, _, _)?, let .composer(context, problem, _, _)?:
            return context.map { "\($0.text): \(problem)" } ?? problem
        default:
            return "\(error)"
        }
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

/// `retrain_on_drift:` — the pipeline a drift job starts when the data set drifted, and
/// the least time between two such starts.
///
/// Guarantees: once validated, `pipeline` is non-empty and `debounce_hours` is a finite
/// number from 0 to a year (0 = no debounce).
public struct RetrainOnDrift: Sendable, Equatable, Codable {
    public var pipeline = "retrain"
    public var debounce_hours: Double = 24

    public init(pipeline: String = "retrain", debounceHours: Double = 24) {
        self.pipeline = pipeline
        self.debounce_hours = debounceHours
    }

    enum CodingKeys: String, CodingKey { case pipeline, debounce_hours }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        pipeline = try c.decodeIfPresent(String.self, forKey: .pipeline) ?? "retrain"
        debounce_hours = try c.decodeIfPresent(Double.self, forKey: .debounce_hours) ?? 24
    }

    public var debounceInterval: TimeInterval { debounce_hours * 3600 }

    public func validate() throws {
        guard !pipeline.isEmpty else { throw ConfigError.invalid("retrain_on_drift.pipeline must name a pipeline") }
        guard debounce_hours.isFinite, debounce_hours >= 0, debounce_hours <= 8760 else {
            throw ConfigError.invalidValue(key: "retrain_on_drift.debounce_hours", value: "\(debounce_hours)", expected: "a number of hours from 0 to 8760")
        }
    }
}

public enum ConfigError: Error, Equatable, CustomStringConvertible {
    case invalid(String)
    /// `key` (a YAML key prefixed with its file, or a flag) holds a value out of range.
    case invalidValue(key: String, value: String, expected: String)
    /// The file is not YAML at all; `line` is where the parser gave up.
    case malformedYAML(path: String, line: Int?, reason: String)
    /// A listener could not bind `address`, usually because another process holds it.
    case cannotListen(service: String, address: String, reason: String, flag: String)
    /// A certificate file the settings point at cannot be read; `chosenBy` says which
    /// key or flag chose the path.
    case missingFile(path: String, chosenBy: String)
    case dataDirectoryNotWritable(path: String, reason: String)

    public var description: String {
        switch self {
        case let .invalid(m):
            return "configuration error: \(m)"
        case let .invalidValue(key, value, expected):
            return "configuration error: \(key) is \(value); expected \(expected)"
        case let .malformedYAML(path, line, reason):
            let place = line.map { "\(path), line \($0)" } ?? path
            return "configuration error: \(place) is not valid YAML: \(reason); fix the syntax there (see Deploy/tower.yaml for a sample)"
        case let .cannotListen(service, address, reason, flag):
            let disable = flag == "--listen" ? "" : ", or \"\" to disable it"
            return "configuration error: cannot serve \(service) on \(address): \(reason) — is another coordinator or program using that address? choose another with \(flag)\(disable)"
        case let .missingFile(path, chosenBy):
            return "configuration error: cannot read \(path) (chosen by \(chosenBy)); point it at the directory `coordinator certs init/issue --dir DIR` wrote, e.g. --certs-dir DIR"
        case let .dataDirectoryNotWritable(path, reason):
            return "configuration error: the data directory \(path) is not writable (\(reason)); create it for the user running the coordinator (e.g. `sudo install -d -o $USER \(path)`) or choose another with data_dir: / --data-dir"
        }
    }
}
