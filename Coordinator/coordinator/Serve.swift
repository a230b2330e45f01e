import ArgumentParser
import CoordinatorKit
import Foundation
import Logging
import ServiceLifecycle
import Wire

struct Serve: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run the coordinator: accept workers and operators over mutual TLS.",
        discussion: """
            Settings come from the YAML file, then from flags, which win. YAML keys and their flags: \
            listen (--listen), data_dir (--data-dir), photos_dir (--photos-dir), certs_dir (--certs-dir), \
            certificate (--cert), private_key (--key), ca (--ca), lease_timeout_seconds (--lease-timeout), \
            heartbeat_interval_seconds (--heartbeat-interval), max_attempts (--max-attempts), \
            max_frame_bytes (--max-frame-bytes), metrics_listen (--metrics-listen), api_listen (--api-listen), \
            durability (--durability); prefetch_per_slot and the sections promotion, connection_limits, drift, pipelines and \
            retrain_on_drift are YAML only (see Deploy/tower.yaml).

            The certificate directory alone is enough: --certs-dir DIR reads DIR/coordinator.pem, \
            DIR/coordinator-key.pem, DIR/ca.pem and DIR/index.json, as `coordinator certs init/issue --dir DIR` wrote them. \
            The data directory must be writable by the user running the coordinator.

            Example:
              coordinator serve --certs-dir /etc/tower/certs --data-dir /var/lib/tower
            """)

    @Option(help: "YAML configuration file (see Deploy/tower.yaml). Flags override it.") var config: String?
    @Option(help: "Cluster listener, HOST:PORT (default 0.0.0.0:7443).") var listen: String?
    @Option(name: .customLong("data-dir"), help: "Directory for the SQLite store and blobs; must be writable (default ./tower-data).") var dataDir: String?
    @Option(name: .customLong("photos-dir"), help: "Directory the listings' photo paths are relative to (default DATA_DIR/photos).") var photosDir: String?
    @Option(help: "Coordinator certificate, PEM (default CERTS_DIR/coordinator.pem).") var cert: String?
    @Option(help: "Coordinator private key, PEM (default CERTS_DIR/coordinator-key.pem).") var key: String?
    @Option(help: "Cluster CA certificate, PEM (default CERTS_DIR/ca.pem).") var ca: String?
    @Option(name: .customLong("certs-dir"), help: "Certificate directory: the default place of the three files above, and its index.json lists revoked serials (default: the CA's directory if --ca is given, else ./tower-certs).") var certsDir: String?
    @Option(name: .customLong("lease-timeout"), help: "Seconds before an unrenewed lease returns its task to the queue (default 30).") var leaseTimeout: Double?
    @Option(name: .customLong("heartbeat-interval"), help: "Seconds between worker heartbeats (default 5).") var heartbeatInterval: Double?
    @Option(name: .customLong("max-attempts"), help: "Attempts before a task fails for good (default 3).") var maxAttempts: Int?
    @Option(name: .customLong("max-frame-bytes"), help: "Largest frame accepted (default 67108864, 64 MiB).") var maxFrameBytes: Int?
    @Option(name: .customLong("metrics-listen"), help: "Prometheus endpoint HOST:PORT, plain HTTP; empty string disables (default 127.0.0.1:9464).") var metricsListen: String?
    @Option(name: .customLong("api-listen"), help: "Read-only JSON API over HTTPS with client certificates, HOST:PORT; empty string disables (default 0.0.0.0:7444).") var apiListen: String?
    @Option(help: "What a committed write survives: normal (a process crash loses nothing; the default) or strict (a power loss loses nothing; slower writes).") var durability: String?
    @Option(name: .customLong("log-level"), help: LogSetup.help) var logLevel: String?

    func validate() throws { _ = try LogSetup.level(logLevel) }

    func run() async throws {
        LogSetup.bootstrap(level: logLevel)
        TowerMetrics.bootstrap()
        BulkTransfer.tuneAllocator()
        do {
            let logger = Logger(label: "tower.coordinator")
            let service = try CoordinatorService(settings: try settings(), logger: logger)
            // SIGTERM and SIGINT shut down in order: listeners, connections, store, loops.
            let group = ServiceGroup(configuration: .init(services: [service], gracefulShutdownSignals: [.sigterm, .sigint], logger: logger))
            try await group.run()
        } catch {
            throw fail(error)
        }
    }

    func settings() throws -> CoordinatorSettings {
        var s = CoordinatorSettings()
        if let config {
            let text: String
            do { text = try String(contentsOfFile: config, encoding: .utf8) }
            catch { throw ConfigError.invalid("cannot read \(config): \(error.localizedDescription)") }
            s = try CoordinatorSettings.load(yaml: text, path: config)
        }
        if let listen { (s.listenHost, s.listenPort) = try CoordinatorSettings.parseHostPort(listen, key: "--listen") }
        if let dataDir { s.dataDirectory = dataDir }
        if let photosDir { s.photosDirectory = photosDir }
        if let cert { s.certificate = cert }
        if let key { s.privateKey = key }
        if let ca { s.ca = ca }
        if let certsDir { s.certsDirectory = certsDir }
        if let leaseTimeout {
            s.leaseTimeoutMs = try CoordinatorSettings.milliseconds(leaseTimeout, key: "--lease-timeout", from: 0.2, to: CoordinatorSettings.maxLeaseTimeoutSeconds)
        }
        if let heartbeatInterval {
            s.heartbeatIntervalMs = UInt32(try CoordinatorSettings.milliseconds(heartbeatInterval, key: "--heartbeat-interval", from: 0.05, to: CoordinatorSettings.maxLeaseTimeoutSeconds / 2))
        }
        if let durability {
            guard let d = Durability(rawValue: durability) else {
                throw ConfigError.invalidValue(key: "--durability", value: durability, expected: "normal or strict")
            }
            s.durability = d
        }
        if let maxAttempts { s.maxAttempts = maxAttempts }
        if let maxFrameBytes { s.maxFrameBytes = maxFrameBytes }
        if let metricsListen { s.metricsListen = metricsListen }
        if let apiListen { s.apiListen = apiListen }
        try s.validate()
        return s
    }
}
