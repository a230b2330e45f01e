import Foundation
import Logging
import NIOCore
import NIOPosix
import NIOSSL
import Wire
@testable import CoordinatorKit

/// An in-process coordinator with real certificates on a real loopback socket.
struct InProcessCoordinator {
    let cluster: LocalCluster
    let ca: ClusterCA
    let service: CoordinatorService
    var port: Int { service.port! }

    static func start(maxFrameBytes: Int = WireFraming.defaultMaxFrameBytes, workers: [String] = ["w1"], extra: [(String, ClusterRole)] = [], metrics: Bool = false,
                      frameStallSeconds: Double = 30, settings adjust: (inout CoordinatorSettings) -> Void = { _ in }) async throws -> InProcessCoordinator {
        let cluster = try LocalCluster.temporary(prefix: "tower-test")
        let ca = try cluster.issueCertificates(workers: workers, extra: extra)
        var settings = cluster.coordinatorSettings(metrics: metrics)
        settings.maxFrameBytes = maxFrameBytes
        // The suite shares two cores with process clusters and builds: a generous deadline
        // keeps a starved event loop from reading as a peer that never authenticated.
        settings.connectionLimits.handshake_timeout_seconds = 60
        settings.connectionLimits.frame_stall_timeout_seconds = frameStallSeconds
        adjust(&settings)
        var logger = Logger(label: "test")
        logger.logLevel = .critical
        let service = try CoordinatorService(settings: settings, group: MultiThreadedEventLoopGroup.singleton, logger: logger)
        try await service.start()
        return InProcessCoordinator(cluster: cluster, ca: ca, service: service)
    }

    func hello(_ role: WireRole, name: String = "t", version: UInt32 = WireProtocol.version) -> WireHello {
        var h = WireHello()
        h.protocolVersion = version
        h.role = role
        h.name = name
        h.capabilities.slots = 1
        h.capabilities.jobKinds = JobKind.builtIn.map(\.name)
        return h
    }

    func connect(_ name: String, role: WireRole, version: UInt32 = WireProtocol.version) async throws -> WireClient {
        try await WireClient.connect(host: "127.0.0.1", port: port, identity: try cluster.identity(name),
                                     hello: hello(role, name: name, version: version), group: MultiThreadedEventLoopGroup.singleton)
    }

    func operatorClient() async throws -> OperatorClient {
        try await OperatorClient.connect(host: "127.0.0.1", port: port, identity: try cluster.identity("operator"), group: MultiThreadedEventLoopGroup.singleton)
    }

    func stop() async { await service.shutdown() }
}

/// A TLS connection that writes raw bytes and reads whatever frames come back, to play a
/// misbehaving peer.
final class RawTLSClient: ChannelInboundHandler, @unchecked Sendable {
    typealias InboundIn = ByteBuffer
    private(set) var channel: Channel!
    private let lock = NSLock()
    private var envelopes: [WireEnvelope] = []
    private var closed = false

    static func connect(port: Int, identity: TLSIdentity) async throws -> RawTLSClient {
        let client = RawTLSClient()
        let context = try identity.makeClientContext()
        client.channel = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(try NIOSSLClientHandler(context: context, serverHostname: nil))
                    try channel.pipeline.syncOperations.addHandler(BoundedFrameDecoder(maxFrameBytes: 1 << 26))
                    try channel.pipeline.syncOperations.addHandler(client)
                }
            }
            .connect(host: "127.0.0.1", port: port).get()
        return client
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        if let envelope = try? WireEnvelope(frame: unwrapInboundIn(data)) {
            lock.withLock { envelopes.append(envelope) }
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        lock.withLock { closed = true }
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        context.close(promise: nil)
    }

    func write(_ bytes: [UInt8]) async throws {
        try await channel.writeAndFlush(ByteBuffer(bytes: bytes))
    }

    func write(_ envelope: WireEnvelope) async throws {
        let payload = try envelope.framePayload()
        var bytes = withUnsafeBytes(of: UInt32(payload.readableBytes).bigEndian) { Array($0) }
        bytes += payload.readableBytesView
        try await write(bytes)
    }

    /// Waits (bounded) for the next envelope.
    func next(timeout: Duration = .seconds(10)) async throws -> WireEnvelope? {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            if let e = lock.withLock({ envelopes.isEmpty ? nil : envelopes.removeFirst() }) { return e }
            if lock.withLock({ closed }) { return nil }
            try await Task.sleep(for: .milliseconds(10))
        }
        return nil
    }

    func waitUntilClosed(timeout: Duration = .seconds(10)) async -> Bool {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            if lock.withLock({ closed }) { return true }
            try? await Task.sleep(for: .milliseconds(10))
        }
        return false
    }
}
