import ArgumentParser
import Foundation
import Logging
import ServiceLifecycle
import NIOCore
import NIOPosix
import Observability
import Wire
import WorkerKit

@main
struct WorkerCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "worker",
        abstract: "Run tasks for a Tower coordinator.",
        discussion: """
            Connects over mutual TLS, reconnects with backoff, drains on SIGTERM (finishes running tasks, accepts none).

            Example:
              worker --coordinator tower-1.internal:7443 --cert w1.pem --key w1-key.pem --ca ca.pem --slots 8 --label zone=a
            """)

    @Option(help: "Coordinator HOST:PORT.") var coordinator: String
    @Option(help: "Worker certificate (PEM), issued with --role worker.") var cert: String
    @Option(help: "Worker private key (PEM).") var key: String
    @Option(help: "Cluster CA certificate (PEM).") var ca: String
    @Option(help: "Name shown to operators (default: the certificate's name).") var name: String?
    @Option(help: "Tasks run at once (default: cores).") var slots: Int?
    @Option(name: .customLong("label"), help: "KEY=VALUE advertised to the scheduler (repeatable).") var labels: [String] = []
    @Option(name: .customLong("cache-dir"), help: "Blob cache, content-addressed (default: $XDG_CACHE_HOME/tower/worker-NAME, else ~/.cache/tower/worker-NAME, NAME being the certificate's name).") var cacheDir: String?
    @Option(name: .customLong("max-frame-bytes"), help: "Largest frame accepted from the coordinator; match the coordinator's max_frame_bytes.") var maxFrameBytes = WireFraming.defaultMaxFrameBytes
    @Option(name: .customLong("log-level"), help: ArgumentHelp(stringLiteral: LogLevelSetting.help)) var logLevel: String?
    @Option(name: .customLong("metrics-listen"),
            help: "Serve Prometheus metrics at http://HOST:PORT/metrics (plain HTTP: keep it on loopback or a private network; default: off).")
    var metricsListen: String?

    /// Refuses numbers that would trap or mean nothing once converted, naming the flag.
    func validate() throws {
        if let slots, !(1...4096).contains(slots) {
            throw ValidationError("--slots must be from 1 to 4096, got \(slots)")
        }
        guard (4096...Int(Int32.max)).contains(maxFrameBytes) else {
            throw ValidationError("--max-frame-bytes must be from 4096 to \(Int32.max), got \(maxFrameBytes)")
        }
        do { _ = try LogLevelSetting.parse(logLevel) } catch { throw ValidationError("\(error)") }
        if let metricsListen { _ = try Self.hostPort(metricsListen, flag: "--metrics-listen") }
    }

    /// HOST:PORT (IPv6 in brackets) or a refusal naming the flag.
    static func hostPort(_ text: String, flag: String) throws -> (String, Int) {
        guard let colon = text.lastIndex(of: ":"), let port = Int(text[text.index(after: colon)...]), (0...65_535).contains(port) else {
            throw ValidationError("\(flag) must be HOST:PORT, e.g. 127.0.0.1:9465, got \(text)")
        }
        return (String(text[..<colon]).trimmingCharacters(in: CharacterSet(charactersIn: "[]")), port)
    }

    func run() async throws {
        LogLevelSetting.bootstrap((try? LogLevelSetting.parse(logLevel)) ?? .info)
        let logger = Logger(label: "tower.worker")
        BulkTransfer.tuneAllocator()
        do {
            let (host, port) = try Self.hostPort(coordinator, flag: "--coordinator")
            let identity = try TLSIdentity(certificate: cert, key: key, ca: ca)
            guard identity.role == .worker else {
                throw IdentityError.unreadable(path: cert, reason: "issued for role \(identity.role?.rawValue ?? "none"); a worker needs `coordinator certs issue NAME --role worker`")
            }
            if let warning = identity.keyFileWarning { logger.warning("\(warning)") }
            var labelMap: [String: String] = [:]
            for label in labels {
                let parts = label.split(separator: "=", maxSplits: 1)
                guard parts.count == 2 else { throw ValidationError("--label must be KEY=VALUE, got \(label)") }
                labelMap[String(parts[0])] = String(parts[1])
            }
            var config = WorkerConfig(host: host, port: port, identity: identity, name: name ?? identity.name,
                                      slots: slots ?? ProcessInfo.processInfo.activeProcessorCount,
                                      cacheDirectory: cacheDir.map { URL(fileURLWithPath: $0) } ?? WorkerConfig.defaultCacheDirectory(name: identity.name))
            config.labels = labelMap
            config.maxFrameBytes = maxFrameBytes
            let agent = try WorkerAgent(config: config, group: MultiThreadedEventLoopGroup.singleton, logger: logger)
            var metricsChannel: Channel?
            if let metricsListen {
                let (metricsHost, metricsPort) = try Self.hostPort(metricsListen, flag: "--metrics-listen")
                let metrics = agent.metrics
                do {
                    metricsChannel = try await MetricsEndpoint.bind(host: metricsHost, port: metricsPort, group: MultiThreadedEventLoopGroup.singleton) { metrics.text() }
                } catch {
                    throw CannotListen(description: "--metrics-listen \(metricsListen): cannot listen (\(error)); pick a free port or another address")
                }
                let bound = metricsChannel?.localAddress?.port ?? metricsPort
                logger.info("metrics at http://\(metricsHost):\(bound)/metrics")
            }
            defer { metricsChannel?.close(promise: nil) }
            // SIGTERM and SIGINT drain: running tasks finish and report, none start.
            let group = ServiceGroup(configuration: .init(services: [WorkerService(agent: agent)], gracefulShutdownSignals: [.sigterm, .sigint], logger: logger))
            try await group.run()
        } catch let error as ValidationError {
            throw error
        } catch {
            FileHandle.standardError.write(Data("error: \(error)\n".utf8))
            throw ExitCode(2)
        }
    }
}

/// A listener the worker could not open, said the way the operator fixes it.
struct CannotListen: Error, CustomStringConvertible {
    var description: String
}
