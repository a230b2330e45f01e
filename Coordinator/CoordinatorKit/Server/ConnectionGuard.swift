import Foundation
import Logging
import Metrics
import NIOCore
import NIOSSL
import NIOTLS
import Wire

/// Bounds on peers that have not proven who they are, and on frames that stop arriving.
/// YAML `connection_limits:` with these keys, all optional.
public struct ConnectionLimits: Sendable, Equatable, Decodable {
    /// A peer must finish the TLS handshake and (on the cluster port) its Hello within this.
    public var handshake_timeout_seconds: Double = 10
    /// A frame that started must finish arriving within this, or the connection closes.
    public var frame_stall_timeout_seconds: Double = 30
    /// Connections still authenticating, over all addresses and per address. Peers that
    /// authenticated are not counted, so a flood of silent connections cannot keep
    /// registered workers and operators out.
    public var max_unauthenticated: Int = 256
    public var max_unauthenticated_per_address: Int = 32

    public init() {}

    public init(from decoder: Decoder) throws {
        let all = try decoder.container(keyedBy: AnyKey.self)
        for key in all.allKeys where Keys(rawValue: key.stringValue) == nil {
            throw ConfigError.invalid("connection_limits: unknown key \"\(key.stringValue)\"; known keys: \(Keys.allCases.map(\.rawValue).joined(separator: ", "))")
        }
        let c = try decoder.container(keyedBy: Keys.self)
        if let v = try c.decodeIfPresent(Double.self, forKey: .handshake_timeout_seconds) { handshake_timeout_seconds = v }
        if let v = try c.decodeIfPresent(Double.self, forKey: .frame_stall_timeout_seconds) { frame_stall_timeout_seconds = v }
        if let v = try c.decodeIfPresent(Int.self, forKey: .max_unauthenticated) { max_unauthenticated = v }
        if let v = try c.decodeIfPresent(Int.self, forKey: .max_unauthenticated_per_address) { max_unauthenticated_per_address = v }
    }

    struct AnyKey: CodingKey {
        var stringValue: String
        var intValue: Int? { nil }
        init?(stringValue: String) { self.stringValue = stringValue }
        init?(intValue: Int) { nil }
    }

    enum Keys: String, CodingKey, CaseIterable {
        case handshake_timeout_seconds, frame_stall_timeout_seconds, max_unauthenticated, max_unauthenticated_per_address
    }

    public func validate() throws {
        for (key, value) in [("handshake_timeout_seconds", handshake_timeout_seconds), ("frame_stall_timeout_seconds", frame_stall_timeout_seconds)] {
            guard value.isFinite, value >= 0.1, value <= 3600 else {
                throw ConfigError.invalid("connection_limits.\(key) must be between 0.1 and 3600 seconds, got \(value)")
            }
        }
        guard max_unauthenticated >= 1, max_unauthenticated_per_address >= 1, max_unauthenticated_per_address <= max_unauthenticated else {
            throw ConfigError.invalid("connection_limits: max_unauthenticated and max_unauthenticated_per_address must be at least 1, the second no larger than the first")
        }
    }

    var handshakeTimeout: TimeAmount { .milliseconds(Int64(handshake_timeout_seconds * 1000)) }
    var frameStallTimeout: TimeAmount { .milliseconds(Int64(frame_stall_timeout_seconds * 1000)) }
}

/// Counts the connections of one listener that have not authenticated yet, per address
/// and in all, and keeps every live connection so shutdown can close them in order.
/// Shared by all of a listener's connections, on any event loop.
public final class ConnectionLimiter: @unchecked Sendable {
    public let limits: ConnectionLimits
    private let listener: String
    private let logger: Logger
    private let lock = NSLock()
    private var unauthenticated = 0
    private var perAddress: [String: Int] = [:]
    private var live: [ObjectIdentifier: Channel] = [:]
    /// Refusals are counted each and logged at most every few seconds.
    private var refusalLog = RateLimitedLog(interval: 5)
    private let refusals = Counter(label: "tower_refused_connections_total")

    public init(limits: ConnectionLimits, listener: String, logger: Logger) {
        self.limits = limits
        self.listener = listener
        self.logger = logger
    }

    /// Whether a new connection from `address` may start authenticating. A refused one is
    /// counted, and logged at most every few seconds with how many were suppressed.
    func admit(_ channel: Channel, address: String) -> Bool {
        let ok = lock.withLock { () -> Bool in
            if unauthenticated < limits.max_unauthenticated, perAddress[address, default: 0] < limits.max_unauthenticated_per_address {
                unauthenticated += 1
                perAddress[address, default: 0] += 1
                live[ObjectIdentifier(channel)] = channel
                return true
            }
            refusalLog.log(logger, "refusing connections: too many still authenticating", key: "limit", metadata: [
                "listener": "\(listener)", "address": "\(address)",
                "max_unauthenticated": "\(limits.max_unauthenticated)", "per_address": "\(limits.max_unauthenticated_per_address)"])
            return false
        }
        if !ok { refusals.increment() }
        return ok
    }

    func authenticated(address: String) {
        lock.withLock { release(address) }
    }

    func closed(_ channel: Channel, address: String, wasAuthenticated: Bool) {
        lock.withLock {
            live[ObjectIdentifier(channel)] = nil
            if !wasAuthenticated { release(address) }
        }
    }

    private func release(_ address: String) {
        unauthenticated -= 1
        let left = perAddress[address, default: 1] - 1
        perAddress[address] = left > 0 ? left : nil
    }

    /// The start of every pipeline on this listener: refuses a connection over the caps
    /// before TLS costs anything, then adds the abort handler, TLS and the guard. The
    /// caller adds the rest on success.
    func secure(_ channel: Channel, tls: NIOSSLContext, authentication: ConnectionGuard.Authentication) -> EventLoopFuture<Void> {
        let address = channel.remoteAddress?.ipAddress ?? "?"
        guard admit(channel, address: address) else {
            return channel.close().flatMapThrowing { throw ChannelError.inputClosed }
        }
        return channel.eventLoop.makeCompletedFuture {
            let sync = channel.pipeline.syncOperations
            try sync.addHandler(ConnectionAbort.handler())
            try sync.addHandler(NIOSSLServerHandler(context: tls))
            try sync.addHandler(ConnectionGuard(limiter: self, authentication: authentication, address: address, logger: logger))
        }
    }

    /// Connections still authenticating (tests and the metrics read it).
    public var unauthenticatedCount: Int { lock.withLock { unauthenticated } }

    /// Closes every live connection and waits for them.
    public func closeAll() async {
        let channels = lock.withLock { Array(live.values) }
        for channel in channels { try? await channel.close() }
    }
}

/// The first handler after TLS on a listener's connections: enforces ``ConnectionLimits``
/// (a deadline to authenticate, a deadline for a started frame to finish) and gives the
/// connection back to the ``ConnectionLimiter`` when it closes.
///
/// It watches the decrypted byte stream for frame boundaries (4-byte length, payload)
/// only to know whether a frame is half-received; the decoder after it does the framing.
final class ConnectionGuard: ChannelDuplexHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer
    typealias OutboundIn = Any
    typealias OutboundOut = Any

    /// What completes authentication on this listener.
    enum Authentication {
        /// The TLS handshake (the HTTPS API: the certificate is the whole login).
        case tlsHandshake
        /// The session handler's Hello (the cluster port).
        case hello
    }

    private let limiter: ConnectionLimiter
    private let authentication: Authentication
    private let address: String
    private var isAuthenticated = false
    private var deadline: Scheduled<Void>?
    private var stall: Scheduled<Void>?
    /// Bytes still to come in the current frame (header or payload); 0 between frames.
    private var frameRemaining = 0
    private var header: [UInt8] = []
    private let logger: Logger

    init(limiter: ConnectionLimiter, authentication: Authentication, address: String, logger: Logger) {
        self.limiter = limiter
        self.authentication = authentication
        self.address = address
        self.logger = logger
    }

    func handlerAdded(context: ChannelHandlerContext) {
        let timeout = limiter.limits.handshakeTimeout
        deadline = context.eventLoop.scheduleTask(in: timeout) { [weak self] in
            guard let self, !self.isAuthenticated else { return }
            self.logger.info("closing a connection that did not authenticate in time", metadata: [
                "remote": "\(self.address)", "timeout_s": "\(self.limiter.limits.handshake_timeout_seconds)"])
            ConnectionAbort.abort(context.channel)
        }
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        deadline?.cancel()
        stall?.cancel()
    }

    /// Called by the session handler once the peer's Hello was accepted.
    func authenticated() {
        guard !isAuthenticated else { return }
        isAuthenticated = true
        deadline?.cancel()
        limiter.authenticated(address: address)
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if authentication == .tlsHandshake, let tls = event as? TLSUserEvent, case .handshakeCompleted = tls {
            authenticated()
            closeIfIdle(context: context)
        }
        context.fireUserInboundEventTriggered(event)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch authentication {
        case .hello: track(unwrapInboundIn(data), context: context)
        case .tlsHandshake: closeIfIdle(context: context)
        }
        context.fireChannelRead(data)
    }

    /// HTTP has no frames to follow: a request that stops arriving, or a kept-alive
    /// connection left idle, is closed once nothing has arrived for the stall deadline.
    private func closeIfIdle(context: ChannelHandlerContext) {
        stall?.cancel()
        stall = context.eventLoop.scheduleTask(in: limiter.limits.frameStallTimeout) {
            ConnectionAbort.abort(context.channel)
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        deadline?.cancel()
        stall?.cancel()
        limiter.closed(context.channel, address: address, wasAuthenticated: isAuthenticated)
        context.fireChannelInactive()
    }

    /// Follows frame boundaries; arms the stall timer while a frame is incomplete.
    private func track(_ buffer: ByteBuffer, context: ChannelHandlerContext) {
        var view = buffer.readableBytesView[...]
        while !view.isEmpty {
            if frameRemaining == 0 && header.count < BoundedFrameDecoder.headerBytes {
                let take = min(BoundedFrameDecoder.headerBytes - header.count, view.count)
                header += view.prefix(take)
                view = view.dropFirst(take)
                if header.count == BoundedFrameDecoder.headerBytes {
                    frameRemaining = Int(header.reduce(UInt32(0)) { $0 << 8 | UInt32($1) })
                    header.removeAll(keepingCapacity: true)
                }
                continue
            }
            let take = min(frameRemaining, view.count)
            frameRemaining -= take
            view = view.dropFirst(take)
        }
        stall?.cancel()
        stall = nil
        guard frameRemaining > 0 || !header.isEmpty else { return }
        stall = context.eventLoop.scheduleTask(in: limiter.limits.frameStallTimeout) { [weak self] in
            guard let self else { return }
            self.logger.warning("closing a connection whose frame stopped arriving", metadata: [
                "remote": "\(self.address)", "timeout_s": "\(self.limiter.limits.frame_stall_timeout_seconds)"])
            context.fireErrorCaught(WireError.truncatedFrame(expected: nil, received: 0))
        }
    }
}
