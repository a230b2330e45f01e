import Foundation
import Logging
import Metrics
import NIOCore
import NIOSSL
import NIOTLS
import Wire

/// One authenticated connection to the coordinator. It reads the peer's identity from the
/// verified certificate, refuses revoked serials, requires a Hello of our protocol version
/// first, checks the certificate's role for every message (``Permissions``), and hands
/// the message to the ``ClusterCore``. Every refusal is an error frame with the request's
/// id; only framing errors and authentication failures close the connection.
final class ServerSessionHandler: ChannelInboundHandler {
    typealias InboundIn = WireEnvelope
    typealias OutboundOut = WireEnvelope

    private let core: ClusterCore
    private let revocations: RevocationList
    private var logger: Logger
    private var peer: PeerIdentity?
    private var session: SessionID?
    private var helloDone = false
    /// Messages a worker sent after its accepted Hello but before its session was
    /// registered on the core's loop: handled, in order, once it is (nil when not waiting).
    private var awaitingSession: [WireEnvelope]?
    private var address = "?"
    private let frameErrors = Counter(label: "tower_frame_errors_total")
    private let refusals = Counter(label: "tower_refused_connections_total")
    /// Bad frames are counted each and logged at most every few seconds.
    private var frameLog = RateLimitedLog(interval: 5)

    init(core: ClusterCore, revocations: RevocationList, logger: Logger) {
        self.core = core
        self.revocations = revocations
        self.logger = logger
    }

    func channelActive(context: ChannelHandlerContext) {
        address = context.remoteAddress.map { "\($0.ipAddress ?? "?"):\($0.port ?? 0)" } ?? "?"
        logger[metadataKey: "remote"] = "\(address)"
        context.fireChannelActive()
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if let tlsEvent = event as? TLSUserEvent, case .handshakeCompleted = tlsEvent {
            do {
                let identity = try revocations.authenticate(context.pipeline.syncOperations)
                peer = identity
                logger[metadataKey: "peer"] = "\(identity.name)"
                logger[metadataKey: "role"] = "\(identity.role.rawValue)"
            } catch {
                refusals.increment()
                logger.warning("refused connection", metadata: ["reason": "\(error)"])
                sendErrorAndClose(context: context, requestID: 0, error as? WireError ?? .unauthenticated(reason: "\(error)"))
                return
            }
        }
        context.fireUserInboundEventTriggered(event)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        handle(context: context, envelope: unwrapInboundIn(data))
    }

    private func handle(context: ChannelHandlerContext, envelope: WireEnvelope) {
        guard let peer, let body = envelope.body else { return }
        if awaitingSession != nil {
            awaitingSession?.append(envelope)
            return
        }
        let rid = envelope.requestID

        guard Permissions.allowed(body, for: peer.role) else {
            logger.warning("refused message for role", metadata: ["message": "\(Permissions.name(of: body))"])
            send(context: context, requestID: rid, error: .forbidden(role: peer.role.rawValue, message: "a \(peer.role.rawValue) certificate may not send \(Permissions.name(of: body))"))
            return
        }
        if !helloDone {
            guard case let .hello(hello) = body else {
                send(context: context, requestID: rid, error: .invalidArgument("send Hello before \(Permissions.name(of: body))"))
                return
            }
            return handleHello(context: context, requestID: rid, hello: hello, peer: peer)
        }
        switch body {
        case .hello:
            send(context: context, requestID: rid, error: .invalidArgument("Hello was already received on this connection"))
        case let .heartbeat(beat):
            if let session {
                let core = self.core
                core.loop.execute { core.renew(session, running: beat.runningTaskIds) }
            }
            if rid != 0 { context.writeAndFlush(wrapOutboundOut(WireEnvelope(requestID: rid, .ack(WireAck()))), promise: nil) }
        case let .results(batch):
            guard let session else { return }
            let core = self.core
            core.loop.execute { core.record(batch, from: session) }
        case .drain:
            guard let session else { return }
            let core = self.core
            core.loop.execute { core.drain(session) }
            if rid != 0 { context.writeAndFlush(wrapOutboundOut(WireEnvelope(requestID: rid, .ack(WireAck()))), promise: nil) }
        case let .blobRequest(request):
            serveBlob(context: context, requestID: rid, hash: request.sha256)
        case let .submitJob(submit):
            reply(context: context, requestID: rid, core.submit(submit.spec, by: peer).map { .jobAccepted($0) })
        case let .getJob(get):
            reply(context: context, requestID: rid, core.summary(of: get.jobID).map { .job($0) })
        case let .listJobs(list):
            reply(context: context, requestID: rid, core.listJobs(limit: list.limit == 0 ? 50 : Int(list.limit)).map { .jobList($0) })
        case .listWorkers:
            reply(context: context, requestID: rid, core.workers().map { .workerList($0) })
        case let .cancelJob(cancel):
            reply(context: context, requestID: rid, core.cancel(job: cancel.jobID, by: peer).map { .job($0) })
        case let .getTaskResults(get):
            reply(context: context, requestID: rid, core.taskResults(job: get.jobID).map { .taskResults($0) })
        case let .progress(batch):
            guard let session else { return }
            let core = self.core
            core.loop.execute { core.recordProgress(batch, from: session) }
        case let .listRuns(request):
            reply(context: context, requestID: rid, core.registry.runs(request).map { .runList($0) })
        case .listExperiments:
            reply(context: context, requestID: rid, core.registry.experiments().map { .experimentList($0) })
        case .listModels:
            reply(context: context, requestID: rid, core.registry.models().map { .modelList($0) })
        case let .getModel(request):
            reply(context: context, requestID: rid, core.registry.model(request.name).map { .modelDetail($0) })
        case let .promote(request):
            reply(context: context, requestID: rid, core.registry.promote(request, by: peer).map { .promotionResult($0) })
        case let .rollback(request):
            reply(context: context, requestID: rid, core.registry.rollback(request, by: peer).map { .promotionResult($0) })
        case let .rerunRun(request):
            reply(context: context, requestID: rid, core.rerun(request.runID, by: peer).map { .jobAccepted($0) })
        case let .subscribe(request):
            core.promotions.subscribe(context.channel, models: Set(request.models))
            if rid != 0 { context.writeAndFlush(wrapOutboundOut(WireEnvelope(requestID: rid, .ack(WireAck()))), promise: nil) }
        case let .blobChunk(chunk):
            receiveUpload(context: context, requestID: rid, chunk: chunk)
        case let .ingest(request):
            reply(context: context, requestID: rid, core.features.ingest(request, by: peer).map { .ingestResult($0) })
        case let .buildTrainingSet(request):
            reply(context: context, requestID: rid, core.features.buildTrainingSet(request).map { .trainingSet($0) })
        case let .events(batch):
            reply(context: context, requestID: rid, core.features.record(batch).map { .eventsAccepted($0) })
        case let .getServingSnapshot(request):
            reply(context: context, requestID: rid, core.features.servingSnapshot(request).map { .servingSnapshot($0) })
        case let .getRecommendations(request):
            reply(context: context, requestID: rid, core.features.recommendations(request).map { .recommendationList($0) })
        case let .getDriftReport(request):
            reply(context: context, requestID: rid, core.driftReport(request.reportID).map { .driftReport($0) })
        case .listPipelines, .listPipelineRuns, .triggerPipeline:
            reply(context: context, requestID: rid, core.pipelineRequest(body))
        case .listShorts:
            reply(context: context, requestID: rid, core.shorts().map { .shortList($0) })
        case let .getShort(request):
            reply(context: context, requestID: rid, core.short(request.id).map { .short($0) })
        case let .approveShort(request):
            reply(context: context, requestID: rid, core.approveShort(request, by: peer).map { .short($0) })
        case .ack, .error:
            break
        case .welcome, .tasks, .cancelTasks, .jobAccepted, .jobList, .job, .workerList, .taskResults,
             .runList, .experimentList, .modelList, .modelDetail, .promotionResult, .promotionEvent,
             .ingestResult, .recommendationList, .trainingSet, .eventsAccepted, .pipelineList, .pipelineRunList,
             .pipelineRun, .driftReport, .servingSnapshot, .shortList, .short:
            send(context: context, requestID: rid, error: .invalidArgument("\(Permissions.name(of: body)) is not a request the coordinator answers"))
        }
    }

    private func handleHello(context: ChannelHandlerContext, requestID: UInt64, hello: WireHello, peer: PeerIdentity) {
        guard hello.protocolVersion == WireProtocol.version else {
            logger.warning("protocol version mismatch", metadata: ["theirs": "\(hello.protocolVersion)", "ours": "\(WireProtocol.version)"])
            sendErrorAndClose(context: context, requestID: requestID, .versionMismatch(ours: WireProtocol.version, theirs: hello.protocolVersion))
            return
        }
        guard ClusterRole(wire: hello.role) == peer.role else {
            // A peer that lies about its role gets no second try on this connection.
            sendErrorAndClose(context: context, requestID: requestID, .forbidden(role: peer.role.rawValue, message: "Hello claims role \(hello.role) but the certificate was issued for \(peer.role.rawValue)"))
            return
        }
        // A worker is who its certificate says: one certificate cannot pose as another
        // worker (results are bound to the name their leases were granted to).
        guard hello.name.isEmpty || hello.name == peer.name else {
            sendErrorAndClose(context: context, requestID: requestID, .forbidden(role: peer.role.rawValue, message: "Hello names \"\(hello.name)\" but the certificate was issued to \"\(peer.name)\"; drop --name or issue a certificate for \"\(hello.name)\""))
            return
        }
        helloDone = true
        try? context.pipeline.syncOperations.handler(type: ConnectionGuard.self).authenticated()
        var welcome = WireWelcome()
        welcome.protocolVersion = WireProtocol.version
        welcome.heartbeatIntervalMs = core.settings.heartbeatIntervalMs
        welcome.leaseTimeoutMs = UInt32(core.settings.leaseTimeoutMs)
        welcome.maxFrameBytes = UInt64(core.settings.maxFrameBytes)
        if peer.role == .worker {
            let core = self.core
            let channel = context.channel
            let address = self.address
            let name = peer.name
            let capabilities = hello.capabilities

            // The session must exist before the Welcome leaves, so that the worker's first
            // results always find it; what arrives before then waits for it.
            awaitingSession = []
            core.loop.submit {
                core.join(name: name, address: address, capabilities: capabilities, channel: channel)
            }.hop(to: context.eventLoop).whenSuccess { id in
                self.session = id
                welcome.sessionID = id
                context.writeAndFlush(self.wrapOutboundOut(WireEnvelope(requestID: requestID, .welcome(welcome))), promise: nil)
                let waiting = self.awaitingSession ?? []
                self.awaitingSession = nil
                for envelope in waiting { self.handle(context: context, envelope: envelope) }
            }
        } else {
            welcome.sessionID = "\(peer.role.rawValue):\(peer.name)"
            context.writeAndFlush(wrapOutboundOut(WireEnvelope(requestID: requestID, .welcome(welcome))), promise: nil)
        }
        logger.info("peer said hello", metadata: ["version": "\(hello.protocolVersion)", "binary": "\(hello.binaryVersion)"])
    }

    /// Streams a blob from disk in chunks, keeping only a few chunks in flight: a blob
    /// of any size costs a few MiB of memory, and NIOSSL's buffers never see more than
    /// that at once.
    private func serveBlob(context: ChannelHandlerContext, requestID: UInt64, hash: String) {
        let loop = context.eventLoop
        let bound = NIOLoopBound((self, context), eventLoop: loop)
        let reader: BlobStore.ChunkReader
        do {
            reader = try core.blobs.chunkReader(for: hash)
        } catch {
            send(context: context, requestID: requestID, error: error as? WireError ?? .notFound(what: "blob \(hash)"))
            return
        }
        let window = 4
        // One serial queue per transfer keeps chunks in order from disk to socket.
        let disk = DispatchQueue(label: "tower.blob-send")
        var inFlight = 0
        var finished = false
        func pump() {
            while !finished && inFlight < window {
                inFlight += 1
                // Disk reads stay off the event loop; writes go back onto it.
                disk.async {
                    let next = Result { try reader.next() }
                    loop.execute {
                        let (handler, context) = bound.value
                        switch next {
                        case let .success(chunk?):
                            if chunk.last { finished = true }
                            context.writeAndFlush(handler.wrapOutboundOut(WireEnvelope(requestID: requestID, .blobChunk(chunk)))).whenComplete { result in
                                inFlight -= 1
                                if case .success = result, !finished { pump() }
                            }
                        case .success(nil):
                            inFlight -= 1
                        case let .failure(error):
                            finished = true
                            handler.send(context: context, requestID: requestID, error: error as? WireError ?? .notFound(what: "blob \(hash)"))
                        }
                    }
                }
            }
        }
        pump()
    }

    /// The blob an operator is uploading on this connection (one at a time), e.g. a CSV
    /// file to ingest; bounded by ``maxUploadBytes``.
    private var upload: BlobAssembler?
    static let maxUploadBytes = 2 << 30

    /// Assembles an uploaded blob; the last chunk is answered with an Ack once the bytes
    /// are verified against their address and stored (hashing runs off the event loop).
    private func receiveUpload(context: ChannelHandlerContext, requestID: UInt64, chunk: WireBlobChunk) {
        guard peer?.role == .operator else {
            send(context: context, requestID: requestID, error: .invalidArgument("BlobChunk is not a request the coordinator answers"))
            return
        }
        guard BlobStore.isValidAddress(chunk.sha256) else {
            upload = nil
            send(context: context, requestID: requestID, error: .invalidArgument("upload: \"\(chunk.sha256.prefix(80))\" is not a SHA-256 address"))
            return
        }
        if upload?.hash != chunk.sha256 {
            guard chunk.offset == 0 else {
                upload = nil
                send(context: context, requestID: requestID, error: .invalidArgument("upload of \(chunk.sha256.prefix(16)) must start at offset 0"))
                return
            }
            upload = BlobAssembler(hash: chunk.sha256, maxBytes: Self.maxUploadBytes)
        }
        do {
            guard let data = try upload!.append(chunk) else { return }
            upload = nil
            let blobs = core.blobs
            let hash = chunk.sha256
            let future: EventLoopFuture<WireEnvelope.Body> = context.eventLoop.submit {}.flatMap {
                let promise = context.eventLoop.makePromise(of: WireEnvelope.Body.self)
                DispatchQueue.global().async {
                    promise.completeWith(Result { try blobs.putVerified(data, expected: hash); return .ack(WireAck()) })
                }
                return promise.futureResult
            }
            reply(context: context, requestID: requestID, future)
        } catch {
            upload = nil
            send(context: context, requestID: requestID, error: error as? WireError ?? .invalidArgument("\(error)"))
        }
    }

    private func reply(context: ChannelHandlerContext, requestID: UInt64, _ future: EventLoopFuture<WireEnvelope.Body>) {
        future.hop(to: context.eventLoop).whenComplete { result in
            switch result {
            case let .success(body):
                context.writeAndFlush(self.wrapOutboundOut(WireEnvelope(requestID: requestID, body)), promise: nil)
            case let .failure(error):
                let wire = error as? WireError ?? (error as? RegistryError)?.wire ?? .remote(code: .invalidArgument, message: "\(error)")
                self.send(context: context, requestID: requestID, error: wire)
            }
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        let framed = error as? WireFrameError
        if let wire = framed?.error ?? error as? WireError {
            frameErrors.increment()
            frameLog.log(logger, "bad frame", key: "frame", metadata: ["error": "\(wire)"])
            switch wire {
            case .frameTooLarge, .truncatedFrame:
                // The stream can no longer be split into frames: say why, then hang up.
                sendErrorAndClose(context: context, requestID: 0, wire)
            default:
                send(context: context, requestID: framed?.requestID ?? 0, error: wire)
            }
            return
        }
        if peer == nil {
            refusals.increment()
            logger.warning("refused connection during TLS handshake", metadata: ["error": "\(error)"])
        } else {
            logger.info("connection error", metadata: ["error": "\(error)"])
        }
        context.close(promise: nil)
    }

    func channelInactive(context: ChannelHandlerContext) {
        core.promotions.unsubscribe(context.channel)
        if let session {
            let core = self.core
            core.loop.execute { core.leave(session) }
        }
        context.fireChannelInactive()
    }

    private func send(context: ChannelHandlerContext, requestID: UInt64, error: WireError) {
        context.writeAndFlush(wrapOutboundOut(WireEnvelope(requestID: requestID, .error(error.errorFrame))), promise: nil)
    }

    private func sendErrorAndClose(context: ChannelHandlerContext, requestID: UInt64, _ error: WireError) {
        context.writeAndFlush(wrapOutboundOut(WireEnvelope(requestID: requestID, .error(error.errorFrame)))).whenComplete { _ in
            context.close(promise: nil)
        }
    }
}
