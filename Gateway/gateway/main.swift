import ArgumentParser
import Foundation
import GatewayKit
import Logging
import ServiceLifecycle
import Wire

/// `gateway`: serves the champion's recommendations over HTTP and feeds users' events back.
@main
struct GatewayCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "gateway",
        abstract: "Tower's inference gateway: recommendations from the champion, feedback events into the feature store.",
        discussion: "Needs a certificate issued with `coordinator certs issue NAME --role gateway`. GET /v1/recommendations?user_id=ID&k=10, POST /v1/recommendations (a profile), POST /v1/events, GET /healthz, /readyz, /metrics, and the user app at /.")

    @Option(help: "Coordinator HOST:PORT.") var coordinator = "127.0.0.1:7443"
    @Option(help: "Gateway certificate (role gateway).") var cert = "./tower-certs/gateway.pem"
    @Option(help: "Gateway private key.") var key = "./tower-certs/gateway-key.pem"
    @Option(help: "Cluster CA certificate.") var ca = "./tower-certs/ca.pem"
    @Option(help: "HTTP listen HOST:PORT (plain HTTP: put TLS in front for the internet).") var listen = "0.0.0.0:8080"
    @Option(help: "Registered model to serve (its champion).") var model = "match"
    @Option(name: .customLong("queue-dir"), help: "Directory of the on-disk event queue.") var queueDirectory = "./tower-gateway-queue"
    @Option(name: .customLong("queue-max-bytes"), help: "Largest the event queue may grow while the coordinator is unreachable.") var queueMaxBytes = 64 << 20
    @Option(name: .customLong("refresh-seconds"), help: "How often listings and stored recommendations are checked for changes.") var refreshSeconds = 5.0
    @Option(name: .customLong("log-level")) var logLevel = "info"

    func run() async throws {
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = Logger.Level(rawValue: logLevel) ?? .info
            return handler
        }
        func hostPort(_ text: String, _ flag: String) throws -> (String, Int) {
            guard let colon = text.lastIndex(of: ":"), let port = Int(text[text.index(after: colon)...]), (0...65535).contains(port) else {
                throw ValidationError("\(flag) must be HOST:PORT, got \"\(text)\"")
            }
            return (String(text[..<colon]), port)
        }
        let (chost, cport) = try hostPort(coordinator, "--coordinator")
        let (lhost, lport) = try hostPort(listen, "--listen")
        guard refreshSeconds >= 0.1, refreshSeconds <= 3600 else { throw ValidationError("--refresh-seconds must be from 0.1 to 3600") }
        let identity: TLSIdentity
        do { identity = try TLSIdentity(certificate: cert, key: key, ca: ca) }
        catch { throw ValidationError("\(error) (pass --cert/--key/--ca; issue one with `coordinator certs issue gateway --role gateway`)") }
        var settings = CoordinatorLink.Settings(host: chost == "0.0.0.0" ? "127.0.0.1" : chost, port: cport, identity: identity,
                                                queueDirectory: URL(fileURLWithPath: queueDirectory))
        settings.model = model
        settings.queueMaxBytes = queueMaxBytes
        settings.refreshInterval = .milliseconds(Int(refreshSeconds * 1000))
        let logger = Logger(label: "tower.gateway")
        let gateway = try Gateway(listenHost: lhost, listenPort: lport, link: settings, logger: logger)
        let group = ServiceGroup(configuration: .init(services: gateway.services(), gracefulShutdownSignals: [.sigterm, .sigint], logger: logger))
        try await group.run()
    }
}
