import ArgumentParser
import CoordinatorKit
import Foundation
import Logging
import ServiceLifecycle
import Wire

struct Serve: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Run the coordinator: accept workers and operators over mutual TLS.")

    @Option(help: "YAML configuration file (see Deploy/tower.yaml). Flags override it.") var config: String?
    @Option(help: "Cluster listener, HOST:PORT.") var listen: String?
    @Option(name: .customLong("data-dir"), help: "Directory for the SQLite store and blobs.") var dataDir: String?
    @Option(name: .customLong("photos-dir"), help: "Directory the listings' photo paths are relative to (default: DATA_DIR/photos).") var photosDir: String?
    @Option(help: "Coordinator certificate (PEM).") var cert: String?
    @Option(help: "Coordinator private key (PEM).") var key: String?
    @Option(help: "Cluster CA certificate (PEM).") var ca: String?
    @Option(name: .customLong("certs-dir"), help: "Certificate directory whose index lists revoked serials (default: the CA's directory).") var certsDir: String?
    @Option(name: .customLong("lease-timeout"), help: "Seconds before an unrenewed lease returns its task to the queue.") var leaseTimeout: Double?
    @Option(name: .customLong("heartbeat-interval"), help: "Seconds between worker heartbeats.") var heartbeatInterval: Double?
    @Option(name: .customLong("max-attempts"), help: "Attempts before a task fails for good.") var maxAttempts: Int?
    @Option(name: .customLong("max-frame-bytes"), help: "Largest frame accepted.") var maxFrameBytes: Int?
    @Option(name: .customLong("metrics-listen"), help: "Prometheus endpoint HOST:PORT (plain HTTP; empty string disables).") var metricsListen: String?
    @Option(name: .customLong("api-listen"), help: "Read-only JSON API over HTTPS with client certificates, HOST:PORT (empty string disables).") var apiListen: String?
    @Option(help: "What a committed write survives: normal (a process crash loses nothing; the default) or strict (a power loss loses nothing; slower writes).") var durability: String?
    @Option(name: .customLong("log-level")) var logLevel: String?

    func run() async throws {
        LogSetup.bootstrap(level: logLevel)
        TowerMetrics.bootstrap()
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
