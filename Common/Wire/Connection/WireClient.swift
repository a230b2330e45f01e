import Foundation
import Logging
import NIOCore
import NIOPosix
import NIOSSL

/// An authenticated client connection to the coordinator: TLS 1.3 with the caller's
/// certificate, Tower framing, a Hello/Welcome exchange, then request/response by id plus
/// unsolicited messages in both directions.
///
/// Guarantees: every request completes — with the response, with the typed error the
/// coordinator sent for it, or with ``WireError/connectionClosed`` when the connection
/// drops. Unsolicited messages are delivered to `onMessage` on the channel's event loop,
/// in order.
public final class WireClient: @unchecked Sendable {
    public let channel: Channel
    public private(set) var welcome = WireWelcome()
    private let handler: ClientSessionHandler

    private init(channel: Channel, handler: ClientSessionHandler) {
        self.channel = channel
        self.handler = handler
    }

    public var closeFuture: EventLoopFuture<Void> { channel.closeFuture }

    /// Connects, completes the TLS handshake and the Hello exchange.
    public static func connect(
        host: String, port: Int, identity: TLSIdentity, hello: WireHello,
        maxFrameBytes: Int = WireFraming.defaultMaxFrameBytes,
        group: EventLoopGroup, connectTimeout: TimeAmount = .seconds(10),
        onMessage: @escaping (WireEnvelope) -> Void = { _ in }
    ) async throws -> WireClient {
        let sslContext = try identity.makeClientContext()
        let handler = ClientSessionHandler(onMessage: onMessage, dialled: host)
        let isIP = IPAddressBytes(host) != nil
        let channel: Channel
        do {
            channel = try await ClientBootstrap(group: group)
                .connectTimeout(connectTimeout)
                .channelOption(.socketOption(.tcp_nodelay), value: 1)
                .channelOption(.recvAllocator, value: BulkTransfer.receiveAllocator)
                .channelInitializer { channel in
                    channel.eventLoop.makeCompletedFuture {
                        let tls = try NIOSSLClientHandler(context: sslContext, serverHostname: isIP ? nil : host)
                        try channel.pipeline.syncOperations.addHandler(ConnectionAbort.handler())
                        try channel.pipeline.syncOperations.addHandler(tls)
                        try channel.pipeline.syncOperations.addHandlers(WireFraming.handlers(maxFrameBytes: maxFrameBytes))
                        try channel.pipeline.syncOperations.addHandler(handler)
                    }
                }
                .connect(host: host, port: port).get()
        } catch {
            throw WireError.unreachable("cannot connect to \(host):\(port): \(error) — is the coordinator running and reachable?")
        }
        let client = WireClient(channel: channel, handler: handler)
        do {
            guard case let .welcome(welcome) = try await client.request(.hello(hello), timeout: .seconds(15)) else {
                throw WireError.malformedFrame(reason: "coordinator answered Hello with something other than Welcome")
            }
            client.welcome = welcome
        } catch {
            channel.close(promise: nil)
            throw error
        }
        return client
    }

    /// Sends a request and waits for its response body. An error frame becomes
    /// ``WireError/remote(code:message:)``.
    public func request(_ body: WireEnvelope.Body, timeout: TimeAmount = .seconds(30)) async throws -> WireEnvelope.Body {
        try await requestFuture(body, timeout: timeout).get()
    }

    /// The same as ``request(_:timeout:)`` for callers on an event loop (e.g. heartbeats,
    /// which must not depend on Swift's cooperative thread pool being free).
    public func requestFuture(_ body: WireEnvelope.Body, timeout: TimeAmount = .seconds(30)) -> EventLoopFuture<WireEnvelope.Body> {
        let promise = channel.eventLoop.makePromise(of: WireEnvelope.Body.self)
        channel.eventLoop.execute {
            self.handler.send(body, promise: promise, timeout: timeout)
        }
        return promise.futureResult
    }

    /// Sends an unsolicited message. Messages sent in the same event-loop tick share one
    /// flush, which is what makes many small results cheap.
    ///
    /// A non-zero `requestID` outside the range `request` uses (e.g. ≥ 2^62) lets the caller
    /// match the answers itself: they arrive through `onMessage`.
    /// `promise` fails if the message could not be handed to the socket (the connection
    /// is closing), so the caller can keep it for the next connection.
    public func send(_ body: WireEnvelope.Body, requestID: UInt64 = 0, promise: EventLoopPromise<Void>? = nil) {
        if channel.eventLoop.inEventLoop {
            handler.sendUnsolicited(body, requestID: requestID, promise: promise)
        } else {
            channel.eventLoop.execute { self.handler.sendUnsolicited(body, requestID: requestID, promise: promise) }
        }
    }

    public func close() {
        channel.close(promise: nil)
    }

    /// How long since the last frame arrived. Call on the channel's event loop. A peer
    /// streaming bulk data is alive even while answers queue behind that data.
    public var silence: TimeAmount {
        channel.eventLoop.preconditionInEventLoop()
        return .now() - handler.lastRead
    }

    /// Closes cleanly (TLS close_notify both ways) and waits until the connection is gone,
    /// so a process that exits next leaves no unclean shutdown on the coordinator's side.
    public func shutdown() async {
        try? await channel.close()
    }

    /// Closes the socket at once without waiting for the peer: for a peer that stopped
    /// answering (see ``ConnectionAbort``).
    public func abort() {
        ConnectionAbort.abort(channel)
    }
}

/// Request/response bookkeeping for one client connection; confined to its event loop.
final class ClientSessionHandler: ChannelInboundHandler {
    typealias InboundIn = WireEnvelope
    typealias OutboundOut = WireEnvelope

    private var context: ChannelHandlerContext?
    private var nextRequestID: UInt64 = 1
    private var pending: [UInt64: (EventLoopPromise<WireEnvelope.Body>, Scheduled<Void>?)] = [:]
    private var flushScheduled = false
    private var closedError: Error?
    /// When the last frame arrived; read on the channel's event loop.
    private(set) var lastRead = NIODeadline.now()
    private let onMessage: (WireEnvelope) -> Void
    /// The host as dialled, for errors that must name it (BoringSSL's do not).
    private let dialled: String

    init(onMessage: @escaping (WireEnvelope) -> Void, dialled: String) {
        self.dialled = dialled
        self.onMessage = onMessage
    }

    func handlerAdded(context: ChannelHandlerContext) { self.context = context }

    func send(_ body: WireEnvelope.Body, promise: EventLoopPromise<WireEnvelope.Body>, timeout: TimeAmount) {
        guard let context, closedError == nil else {
            promise.fail(closedError ?? WireError.connectionClosed)
            return
        }
        let id = nextRequestID
        nextRequestID += 1
        let what = Permissions.name(of: body)
        let timer: Scheduled<Void> = context.eventLoop.scheduleTask(in: timeout) { [weak self] in
            guard let self, let entry = self.pending.removeValue(forKey: id) else { return }
            entry.0.fail(WireError.timedOut(what: "the answer to \(what)"))
        }
        pending[id] = (promise, timer)
        context.writeAndFlush(wrapOutboundOut(WireEnvelope(requestID: id, body)), promise: nil)
    }

    func sendUnsolicited(_ body: WireEnvelope.Body, requestID: UInt64, promise: EventLoopPromise<Void>?) {
        guard let context, closedError == nil else {
            promise?.fail(closedError ?? WireError.connectionClosed)
            return
        }
        context.write(wrapOutboundOut(WireEnvelope(requestID: requestID, body)), promise: promise)
        if !flushScheduled {
            flushScheduled = true
            context.eventLoop.execute {
                self.flushScheduled = false
                self.context?.flush()
            }
        }
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        lastRead = .now()
        let envelope = unwrapInboundIn(data)
        if envelope.requestID != 0, let (promise, timer) = pending.removeValue(forKey: envelope.requestID) {
            timer?.cancel()
            if case let .error(frame) = envelope.body {
                promise.fail(WireError.remote(code: frame.code, message: frame.message))
            } else if let body = envelope.body {
                promise.succeed(body)
            }
            return
        }
        if case let .error(frame) = envelope.body, envelope.requestID == 0 {
            // An error about the connection as a whole (revoked certificate, frame too
            // large): fail everything outstanding with it, the coordinator closes next.
            failAll(WireError.remote(code: frame.code, message: frame.message))
        }
        onMessage(envelope)
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        failAll(Self.explain(error, dialled: dialled))
        context.close(promise: nil)
    }

    func channelInactive(context: ChannelHandlerContext) {
        failAll(closedError ?? WireError.connectionClosed)
        context.fireChannelInactive()
    }

    private func failAll(_ error: Error) {
        if closedError == nil { closedError = error }
        let waiting = pending
        pending.removeAll()
        for (_, (promise, timer)) in waiting {
            timer?.cancel()
            promise.fail(error)
        }
    }

    /// TLS failures arrive as BoringSSL error stacks; say what they mean for an operator.
    static func explain(_ error: Error, dialled host: String) -> Error {
        if let wire = error as? WireError { return wire }
        // BoringSSL's own words name no address ("Couldn't find <none>" when dialling an IP).
        if let ssl = error as? NIOSSLExtraError, ssl == .failedToValidateHostname {
            return WireError.hostNotInCertificate(host: host)
        }
        if let frame = error as? WireFrameError { return frame.error }
        if let ssl = error as? NIOSSLError, case .handshakeFailed = ssl {
            return WireError.unauthenticated(reason: "TLS handshake failed (\(ssl)): check that this certificate was issued by the cluster's CA, is not expired or revoked, and that the coordinator's certificate names the host you dialed")
        }
        return error
    }
}
