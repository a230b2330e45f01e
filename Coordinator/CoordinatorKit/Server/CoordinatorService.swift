import Foundation
import Logging
import NIOConcurrencyHelpers
import NIOCore
import Observability
import NIOPosix
import NIOSSL
import ServiceLifecycle
import Wire

/// A running coordinator: the store and blob store under the data directory, the
/// ``ClusterCore``, the TLS listener for workers and operators, and the metrics endpoint.
public final class CoordinatorService: @unchecked Sendable {
    public let settings: CoordinatorSettings
    public let core: ClusterCore
    /// Runs the configured pipelines; nil when the config has none.
    public let pipelines: PipelineService?
    public let group: EventLoopGroup
    private let ownsGroup: Bool
    private var channel: Channel?
    private var metricsChannel: Channel?
    private var apiChannel: Channel?
    private let logger: Logger
    private let sslContext: NIOSSLContext
    private let revocations: RevocationList
    /// Live connections of the cluster port and the API, bounded while they authenticate.
    let clusterConnections: ConnectionLimiter
    let apiConnections: ConnectionLimiter

    /// Opens the data directory and loads the certificate; nothing listens yet.
    public init(settings: CoordinatorSettings, planners: JobPlanners? = nil, group: EventLoopGroup? = nil, logger: Logger = Logger(label: "tower.coordinator")) throws {
        try settings.validate()
        self.settings = settings
        self.logger = logger
        let identity = try settings.identity()
        guard identity.role == .coordinator else {
            throw IdentityError.unreadable(path: settings.certificatePath, reason: "this certificate was issued for role \(identity.role?.rawValue ?? "none"), the coordinator needs one issued with --role coordinator")
        }
        if let warning = identity.keyFileWarning { logger.warning("\(warning)") }
        sslContext = try identity.makeServerContext()
        revocations = RevocationList(directory: settings.revocationDirectory, logger: logger)
        // Said at startup too, not only when the first peer is refused.
        do { _ = try revocations.checkRevoked(serial: "") } catch {
            logger.error("revocation index unreadable: refusing every peer but the coordinator until it is fixed", metadata: ["error": "\(error)"])
        }
        clusterConnections = ConnectionLimiter(limits: settings.connectionLimits, listener: "cluster", logger: logger)
        apiConnections = ConnectionLimiter(limits: settings.connectionLimits, listener: "api", logger: logger)
        Self.raiseFileLimit(logger: logger)
        let data = try settings.writableDataDirectory()
        let store = try ClusterStore(path: data.appendingPathComponent("tower.sqlite").path, durability: settings.durability)
        let blobs = try BlobStore(root: data.appendingPathComponent("blobs"))
        ownsGroup = group == nil
        self.group = group ?? MultiThreadedEventLoopGroup(numberOfThreads: System.coreCount)
        core = ClusterCore(loop: self.group.next(), store: store, blobs: blobs, planners: planners ?? settings.planners, settings: settings, logger: logger)
        if settings.pipelines.isEmpty {
            pipelines = nil
        } else {
            let service = PipelineService(core: core, pipelines: settings.pipelines, retrainOnDrift: settings.retrainOnDrift,
                                          tickInterval: .milliseconds(Int64((settings.pipelineTickSeconds * 1000).rounded())), logger: logger)
            // Before the core starts: jobs it resumes (drift) may already trigger retraining.
            service.attach()
            pipelines = service
        }
    }

    /// The port the cluster listener is bound to (useful with port 0).
    public var port: Int? { channel?.localAddress?.port }
    public var metricsPort: Int? { metricsChannel?.localAddress?.port }
    public var apiPort: Int? { apiChannel?.localAddress?.port }

    /// Resumes unfinished jobs and starts listening.
    public func start() async throws {
        try core.start()
        // After the core: the runs it resumes re-attach to jobs the core has loaded.
        try pipelines?.start()
        let core = self.core, ssl = sslContext, revocations = self.revocations, logger = self.logger
        let maxFrame = settings.maxFrameBytes
        let limiter = clusterConnections
        do {
            channel = try await ServerBootstrap(group: group)
                .serverChannelOption(.backlog, value: 256)
                .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
                .childChannelOption(.socketOption(.tcp_nodelay), value: 1)
                .childChannelOption(.socketOption(.so_keepalive), value: 1)
                .childChannelOption(.recvAllocator, value: BulkTransfer.receiveAllocator)
                .childChannelInitializer { channel in
                    limiter.secure(channel, tls: ssl, authentication: .hello).flatMapThrowing {
                        let sync = channel.pipeline.syncOperations
                        try sync.addHandlers(WireFraming.handlers(maxFrameBytes: maxFrame))
                        try sync.addHandler(ServerSessionHandler(core: core, revocations: revocations, logger: logger))
                    }
                }
                .bind(host: settings.listenHost, port: settings.listenPort).get()
        } catch {
            throw ConfigError.cannotListen(service: "the cluster port", address: "\(settings.listenHost):\(settings.listenPort)", reason: "\(error)", flag: "--listen")
        }
        if !settings.metricsListen.isEmpty {
            let (host, port) = try CoordinatorSettings.parseHostPort(settings.metricsListen, key: "metrics_listen")
            do {
                metricsChannel = try await MetricsEndpoint.bind(host: host, port: port, group: group) { TowerMetrics.exposition() }
            } catch {
                throw ConfigError.cannotListen(service: "metrics", address: settings.metricsListen, reason: "\(error)", flag: "--metrics-listen")
            }
        }
        if !settings.apiListen.isEmpty {
            let (host, port) = try CoordinatorSettings.parseHostPort(settings.apiListen, key: "api_listen")
            do {
                apiChannel = try await HTTPSAPI.bind(host: host, port: port, group: group, ssl: ssl, core: core, revocations: revocations,
                                                     limiter: apiConnections, logger: logger)
            } catch {
                throw ConfigError.cannotListen(service: "the API", address: settings.apiListen, reason: "\(error)", flag: "--api-listen")
            }
        }
        logger.info("coordinator listening", metadata: [
            "address": "\(settings.listenHost):\(self.port ?? settings.listenPort)",
            "data": "\(settings.dataDirectory)",
            "metrics": "\(Self.hostPort(metricsChannel?.localAddress))",
            "api": "\(Self.hostPort(apiChannel?.localAddress))",
        ])
    }

    /// `127.0.0.1:9464` or `[::1]:7444`, as the flags take it; NIO's own description
    /// (`[IPv4]127.0.0.1/127.0.0.1:9464`) is not something an operator can paste.
    static func hostPort(_ address: SocketAddress?) -> String {
        guard let address, let ip = address.ipAddress, let port = address.port else { return "off" }
        if case .v6 = address { return "[\(ip)]:\(port)" }
        return "\(ip):\(port)"
    }

    /// Shuts down in order: listeners (nothing new arrives), then every connection (workers
    /// keep their results for the next coordinator), then the core and the store (every
    /// accepted change written), and only then the event loops — so nothing is left to run
    /// on a loop that is gone. Safe to call more than once.
    public func shutdown() async {
        guard shutdownState.withLockedValue({ state in defer { state.started = true }; return !state.started }) else {
            await waitForShutdown()
            return
        }
        try? await channel?.close()
        try? await metricsChannel?.close()
        try? await apiChannel?.close()
        await clusterConnections.closeAll()
        await apiConnections.closeAll()
        // Before the core: no step may submit or cancel a job on a core that is stopping.
        pipelines?.stop()
        await core.stop()
        logger.info("coordinator stopped; the store is flushed")
        let waiters = shutdownState.withLockedValue { state in
            state.finished = true
            defer { state.waiters.removeAll() }
            return state.waiters
        }
        waiters.forEach { $0.resume() }
        if ownsGroup { try? await group.shutdownGracefully() }
    }

    private struct ShutdownState {
        var started = false
        var finished = false
        var waiters: [CheckedContinuation<Void, Never>] = []
    }
    private let shutdownState = NIOLockedValueBox(ShutdownState())

    private func waitForShutdown() async {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let now = shutdownState.withLockedValue { state -> Bool in
                if state.finished { return true }
                state.waiters.append(continuation)
                return false
            }
            if now { continuation.resume() }
        }
    }

    /// Runs until ``shutdown()`` has finished.
    public func waitUntilClosed() async throws {
        try await channel?.closeFuture.get()
        await waitForShutdown()
    }

    /// Each connection costs a descriptor; the soft limit (often 1024) would let a flood
    /// exhaust it long before the caps matter, so raise it to the hard limit.
    static func raiseFileLimit(logger: Logger) {
        var limit = rlimit()
        guard getrlimit(__rlimit_resource_t(RLIMIT_NOFILE.rawValue), &limit) == 0, limit.rlim_cur < limit.rlim_max else { return }
        limit.rlim_cur = limit.rlim_max
        if setrlimit(__rlimit_resource_t(RLIMIT_NOFILE.rawValue), &limit) != 0 {
            logger.warning("could not raise the open-file limit", metadata: ["errno": "\(errno)"])
        }
    }
}

/// Under swift-service-lifecycle: starts, runs until graceful shutdown is asked (SIGTERM
/// or SIGINT through the service group), then shuts down in order.
extension CoordinatorService: Service {
    public func run() async throws {
        try await start()
        try? await gracefulShutdown()
        await shutdown()
    }
}
