import ArgumentParser
import CoordinatorKit
import Foundation
import NIOCore
import NIOExtras
import NIOPosix
import NIOSSL
import Wire

/// Tower framing over TLS 1.3 on loopback, client and server in this process on separate
/// event loops, next to `openssl speed` on the same machine in the same run.
///
/// The one-way streams run twice per repetition: with the product's framing (the
/// ``FrameAssembler`` and ``BulkTransfer/receiveAllocator``) and with what it replaced
/// (a `ByteToMessageHandler` cumulation buffer and NIO's default 64 KiB reads), so the
/// change is measured side by side. The allocator is tuned as the coordinator and worker
/// tune it (``BulkTransfer/tuneAllocator()``) for both.
struct TLSThroughput: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "tls", abstract: "Framed TLS throughput: 1 KiB request/response and a one-way 1 MiB blob stream.")
    @Option(help: "Seconds per request/response measure.") var seconds = 3.0
    @Option(name: .customLong("stream-mib"), help: "MiB per one-way stream (envelopes stream half of it).") var streamMiB = 2048
    @Option(help: "Repetitions of every measure (median, min and max reported).") var runs = 3
    @Flag(name: .customLong("no-pin"), help: "Leave the two event loops where the scheduler puts them instead of one core each.") var noPin = false

    func run() async throws {
        BulkTransfer.tuneAllocator()
        let cluster = try LocalCluster.temporary(prefix: "tower-tls")
        defer { try? FileManager.default.removeItem(at: cluster.directory) }
        try cluster.issueCertificates(workers: ["client"])
        let serverIdentity = try cluster.identity("coordinator")
        let clientIdentity = try cluster.identity("client")
        let serverGroup = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let clientGroup = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        defer {
            try? serverGroup.syncShutdownGracefully()
            try? clientGroup.syncShutdownGracefully()
        }
        // One core each, as a sender and a receiver on two hosts have. Left to the
        // scheduler, its wake-affine placement often puts the receiver on the sender's
        // core (the sender wakes it with every write): the same binary then measured
        // 1,200–1,500 or 2,400–2,900 MB/s from one repetition to the next.
        var pinned: (server: Int, client: Int)? = nil
        if !noPin, let cpus = allowedCPUs(), cpus.count >= 2,
           try await serverGroup.next().submit({ pinCurrentThread(toCPU: cpus[0]) }).get(),
           try await clientGroup.next().submit({ pinCurrentThread(toCPU: cpus[1]) }).get() {
            pinned = (cpus[0], cpus[1])
        }
        var samples: [String: [Double]] = [:]
        /// One stream: bytes per second of wall time under `key`, and under `key-cpu`
        /// bytes per CPU-second of the busier end (its event loop's thread CPU time). The
        /// second is what "a share of one core's AES speed" means, and it does not move
        /// with where the scheduler puts the threads or what else runs.
        func stream(_ key: String, port: Int, mib: Int, envelope: Bool, framing: BenchFraming) async throws {
            let before = (try await threadCPUSeconds(on: serverGroup), try await threadCPUSeconds(on: clientGroup))
            let rate = try await Stream.run(port: port, identity: clientIdentity, group: clientGroup, chunkBytes: 1 << 20,
                                            totalMiB: mib, envelope: envelope, framing: framing)
            let after = (try await threadCPUSeconds(on: serverGroup), try await threadCPUSeconds(on: clientGroup))
            samples[key, default: []].append(rate)
            let busier = max(after.0 - before.0, after.1 - before.1)
            samples[key + "-cpu", default: []].append(Double(mib << 20) / busier)
        }
        for run in 1...runs {
            for framing in [BenchFraming.product, .assemblingSmallReads, .cumulating] {
                let server = try await BenchServer.start(identity: serverIdentity, group: serverGroup, framing: framing)
                if framing == .product {
                    for inFlight in [1, 16] {
                        samples["pp\(inFlight)", default: []].append(try await PingPong.run(port: server.port, identity: clientIdentity, group: clientGroup, frameBytes: 1024, inFlight: inFlight, seconds: seconds))
                    }
                }
                try await stream("raw-\(framing)", port: server.port, mib: streamMiB, envelope: false, framing: framing)
                try await stream("blob-\(framing)", port: server.port, mib: streamMiB / 2, envelope: true, framing: framing)
                try await server.channel.close()
            }
            // For comparison, no framing at all: the server only counts decrypted bytes.
            let rawStream = streamMiB << 20
            let counting = try await BenchServer.start(identity: serverIdentity, group: serverGroup, framing: .tlsOnly,
                                                       expect: (plaintext: rawStream + (rawStream >> 20) * 5 + 4, payload: rawStream))
            try await stream("raw-tlsOnly", port: counting.port, mib: streamMiB, envelope: false, framing: .tlsOnly)
            try await counting.channel.close()
            if let ceiling = OpenSSLSpeed.aes128gcm16k() { samples["openssl", default: []].append(ceiling) }
            FileHandle.standardError.write(Data("run \(run)/\(runs) done\n".utf8))
        }
        let ceiling = samples["openssl"].map(median)
        func cell(_ key: String, scale: Double) -> String {
            let values = (samples[key] ?? []).map { $0 / scale }
            return values.isEmpty ? "-" : String(format: "%.0f (%.0f–%.0f)", median(values), values.min()!, values.max()!)
        }
        func share(_ key: String) -> String {
            guard let ceiling, let values = samples[key] else { return "" }
            return format(100 * median(values) / ceiling, 1) + "% of ceiling"
        }
        var rows: [[String]] = [
            ["1 KiB request/response, 1 in flight", cell("pp1", scale: 1), "frames/s", ""],
            ["1 KiB request/response, 16 in flight", cell("pp16", scale: 1), "frames/s", ""],
        ]
        for (key, what) in [("raw", "1 MiB frames one way (raw payload)"), ("blob", "1 MiB BlobChunk envelopes one way (protobuf)")] {
            rows.append([what + ", product framing, per CPU-second of the busier end", cell("\(key)-product-cpu", scale: 1e6), "MB/core-s", share("\(key)-product-cpu")])
            rows.append([what + ", product framing", cell("\(key)-product", scale: 1e6), "MB/s", share("\(key)-product")])
            rows.append([what + ", assembler with 64 KiB reads", cell("\(key)-assemblingSmallReads", scale: 1e6), "MB/s", share("\(key)-assemblingSmallReads")])
            rows.append([what + ", before (cumulation, 64 KiB reads)", cell("\(key)-cumulating", scale: 1e6), "MB/s", share("\(key)-cumulating")])
        }
        rows.append(["1 MiB frames one way, TLS alone (receiver counts decrypted bytes, no framing)", cell("raw-tlsOnly", scale: 1e6), "MB/s", share("raw-tlsOnly")])
        rows.append(["same, per CPU-second of the busier end", cell("raw-tlsOnly-cpu", scale: 1e6), "MB/core-s", share("raw-tlsOnly-cpu")])
        rows.append(["openssl speed -evp aes-128-gcm, 16 KiB blocks", cell("openssl", scale: 1e6), "MB/s", "single-core ceiling"])
        let placement = pinned.map { "server and client event loops pinned to CPUs \($0.server) and \($0.client)" } ?? "event loops placed by the scheduler"
        printTable("TLS 1.3 over loopback with Tower framing (\(placement)), median of \(runs) (min–max)", ["measure", "value", "unit", "ratio"], rows)
        if let ceiling, let raw = samples["raw-product"], let blob = samples["blob-product"],
           let rawCPU = samples["raw-product-cpu"], let blobCPU = samples["blob-product-cpu"] {
            print(String(format: "RESULT tls_raw_share=%.3f tls_blob_share=%.3f tls_raw_cpu_share=%.3f tls_blob_cpu_share=%.3f",
                         median(raw) / ceiling, median(blob) / ceiling, median(rawCPU) / ceiling, median(blobCPU) / ceiling))
        }
    }
}

/// CPU time the event loop thread of a one-thread `group` has used so far.
func threadCPUSeconds(on group: EventLoopGroup) async throws -> Double {
    try await group.next().submit {
        var ts = timespec()
        clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts)
        return Double(ts.tv_sec) + Double(ts.tv_nsec) / 1e9
    }.get()
}

/// The CPUs this process may run on, in order (a container's cpuset need not start
/// at 0). Glibc's Swift module leaves out the GNU affinity calls, so they are looked up.
func allowedCPUs() -> [Int]? {
    typealias GetAffinity = @convention(c) (Int32, Int, UnsafeMutableRawPointer) -> Int32
    guard let symbol = dlsym(UnsafeMutableRawPointer(bitPattern: 0), "sched_getaffinity") else { return nil }
    var set = cpu_set_t()
    let getAffinity = unsafeBitCast(symbol, to: GetAffinity.self)
    guard withUnsafeMutableBytes(of: &set, { getAffinity(0, $0.count, $0.baseAddress!) }) == 0 else { return nil }
    return withUnsafeBytes(of: &set) { bytes in
        (0..<(bytes.count * 8)).filter { bytes[$0 / 8] & UInt8(1 << ($0 % 8)) != 0 }
    }
}

/// Restricts the calling thread to one CPU (`sched_setaffinity` with pid 0 is the
/// calling thread); false if the kernel refused.
func pinCurrentThread(toCPU cpu: Int) -> Bool {
    typealias SetAffinity = @convention(c) (Int32, Int, UnsafeRawPointer) -> Int32
    guard let symbol = dlsym(UnsafeMutableRawPointer(bitPattern: 0), "sched_setaffinity") else { return false }
    var set = cpu_set_t()
    withUnsafeMutableBytes(of: &set) { $0[cpu / 8] |= UInt8(1 << (cpu % 8)) }
    let setAffinity = unsafeBitCast(symbol, to: SetAffinity.self)
    return withUnsafeBytes(of: &set) { setAffinity(0, $0.count, $0.baseAddress!) } == 0
}

/// The inbound framing a benchmark connection uses.
enum BenchFraming: String, CustomStringConvertible {
    /// What the coordinator and workers install.
    case product
    /// The product's decoder with NIO's default receive allocator, to tell the two apart.
    case assemblingSmallReads
    /// What session 4 shipped: NIO's cumulation buffer and default receive allocator.
    case cumulating
    /// No inbound framing on the server: what NIOSSL and the kernel leave for framing to
    /// use (the client still frames, with the product's framing).
    case tlsOnly
    var description: String { rawValue }

    func install(on channel: Channel, server: Bool = false) throws {
        let sync = channel.pipeline.syncOperations
        switch self {
        case .tlsOnly where server:
            try sync.addHandler(LengthFieldPrepender(lengthFieldLength: .four))
            return
        case .product, .assemblingSmallReads, .tlsOnly:
            try sync.addHandler(BoundedFrameDecoder(maxFrameBytes: 64 << 20))
        case .cumulating:
            try sync.addHandler(ByteToMessageHandler(CumulatingFrameDecoder(maxFrameBytes: 64 << 20)))
        }
        try sync.addHandler(LengthFieldPrepender(lengthFieldLength: .four))
    }

    var receiveAllocator: RecvByteBufferAllocator {
        self == .product || self == .tlsOnly ? BulkTransfer.receiveAllocator : AdaptiveRecvByteBufferAllocator()
    }
}

/// The decoder of session 4, kept only as this benchmark's baseline.
struct CumulatingFrameDecoder: ByteToMessageDecoder {
    typealias InboundOut = ByteBuffer
    let maxFrameBytes: Int
    mutating func decode(context: ChannelHandlerContext, buffer: inout ByteBuffer) throws -> DecodingState {
        guard let length = buffer.getInteger(at: buffer.readerIndex, as: UInt32.self) else { return .needMoreData }
        guard Int(length) <= maxFrameBytes else { throw WireError.frameTooLarge(claimed: UInt64(length), limit: UInt64(maxFrameBytes)) }
        guard buffer.readableBytes >= 4 + Int(length) else { return .needMoreData }
        buffer.moveReaderIndex(forwardBy: 4)
        context.fireChannelRead(wrapInboundOut(buffer.readSlice(length: Int(length))!))
        return .continue
    }
}

enum OpenSSLSpeed {
    /// Bytes per second for 16 KiB blocks, parsed from `openssl speed`'s summary line.
    static func aes128gcm16k() -> Double? {
        guard let text = runWithDefaultSignals(["openssl", "speed", "-seconds", "2", "-bytes", "16384", "-evp", "aes-128-gcm"]) else { return nil }
        // Last line: "AES-128-GCM  4412345.67k" (thousands of bytes per second).
        guard let line = text.split(separator: "\n").last(where: { $0.lowercased().hasPrefix("aes-128-gcm") }),
              let field = line.split(separator: " ").last, field.hasSuffix("k"), let k = Double(field.dropLast()) else { return nil }
        return k * 1000
    }

    /// Runs a command with an empty signal mask and returns its standard output.
    /// `openssl speed` times itself with SIGALRM, which this process's threads (NIO,
    /// Dispatch) block — a child inheriting that mask through Foundation's Process never
    /// stops. posix_spawn lets us hand the child a clean mask.
    static func runWithDefaultSignals(_ argv: [String]) -> String? {
        var fds: [Int32] = [0, 0]
        guard pipe(&fds) == 0 else { return nil }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        posix_spawn_file_actions_adddup2(&actions, fds[1], 1)
        posix_spawn_file_actions_addclose(&actions, fds[0])
        posix_spawn_file_actions_addopen(&actions, 2, "/dev/null", O_WRONLY, 0)
        var attr = posix_spawnattr_t()
        posix_spawnattr_init(&attr)
        var empty = sigset_t()
        sigemptyset(&empty)
        posix_spawnattr_setsigmask(&attr, &empty)
        var defaults = sigset_t()
        sigemptyset(&defaults)
        sigaddset(&defaults, SIGALRM)
        posix_spawnattr_setsigdefault(&attr, &defaults)
        posix_spawnattr_setflags(&attr, Int16(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF))
        var cArgs = argv.map { strdup($0) } + [nil]
        defer { cArgs.forEach { free($0) } }
        var pid: pid_t = 0
        let rc = posix_spawnp(&pid, argv[0], &actions, &attr, &cArgs, environ)
        posix_spawn_file_actions_destroy(&actions)
        posix_spawnattr_destroy(&attr)
        close(fds[1])
        guard rc == 0 else { close(fds[0]); return nil }
        let output = FileHandle(fileDescriptor: fds[0], closeOnDealloc: true).readDataToEndOfFile()
        var status: Int32 = 0
        waitpid(pid, &status, 0)
        return String(decoding: output, as: UTF8.self)
    }
}

/// Answers each frame: echoes frames up to 64 KiB, and acknowledges a stream of larger
/// ones with one 8-byte frame carrying the byte count when a zero-length frame ends it.
final class BenchServer {
    let channel: Channel
    var port: Int { channel.localAddress!.port! }
    init(channel: Channel) { self.channel = channel }

    /// `expect`: for `.tlsOnly`, the plaintext bytes of the whole stream (frame headers
    /// included) and the payload byte count to acknowledge once they have arrived.
    static func start(identity: TLSIdentity, group: EventLoopGroup, framing: BenchFraming = .product,
                      expect: (plaintext: Int, payload: Int) = (0, 0)) async throws -> BenchServer {
        let ssl = try identity.makeServerContext()
        let channel = try await ServerBootstrap(group: group)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(.socketOption(.tcp_nodelay), value: 1)
            .childChannelOption(.recvAllocator, value: framing.receiveAllocator)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(NIOSSLServerHandler(context: ssl))
                    try framing.install(on: channel, server: true)
                    if framing == .tlsOnly {
                        try channel.pipeline.syncOperations.addHandler(CountingHandler(expect: expect))
                    } else {
                        try channel.pipeline.syncOperations.addHandler(Handler())
                    }
                }
            }
            .bind(host: "127.0.0.1", port: 0).get()
        return BenchServer(channel: channel)
    }

    /// Counts decrypted bytes; acknowledges the payload count when the stream is in.
    final class CountingHandler: ChannelInboundHandler {
        typealias InboundIn = ByteBuffer
        typealias OutboundOut = ByteBuffer
        let expect: (plaintext: Int, payload: Int)
        var received = 0
        init(expect: (plaintext: Int, payload: Int)) { self.expect = expect }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            received += unwrapInboundIn(data).readableBytes
            if received == expect.plaintext {
                var ack = context.channel.allocator.buffer(capacity: 8)
                ack.writeInteger(UInt64(expect.payload))
                context.writeAndFlush(wrapOutboundOut(ack), promise: nil)
            }
        }
    }

    final class Handler: ChannelInboundHandler {
        typealias InboundIn = ByteBuffer
        typealias OutboundOut = ByteBuffer
        var received = 0
        var pendingFlush = false

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            let frame = unwrapInboundIn(data)
            if frame.readableBytes == 0 {
                var ack = context.channel.allocator.buffer(capacity: 8)
                ack.writeInteger(UInt64(received))
                received = 0
                context.writeAndFlush(wrapOutboundOut(ack), promise: nil)
            } else if frame.readableBytes <= 65536 {
                context.write(wrapOutboundOut(frame), promise: nil)
                pendingFlush = true
            } else if frame.getInteger(at: frame.readerIndex, as: UInt8.self) == 1 {
                // A BlobChunk envelope: decode it as the coordinator would.
                var payload = frame
                payload.moveReaderIndex(forwardBy: 1)
                if let envelope = try? WireEnvelope(frame: payload), case let .blobChunk(chunk) = envelope.body {
                    received += chunk.data.count
                }
            } else {
                received += frame.readableBytes - 1
            }
        }

        func channelReadComplete(context: ChannelHandlerContext) {
            if pendingFlush { context.flush(); pendingFlush = false }
        }
    }
}

func connectClient(port: Int, identity: TLSIdentity, group: EventLoopGroup, handler: ChannelHandler, framing: BenchFraming = .product) async throws -> Channel {
    let ssl = try identity.makeClientContext()
    return try await ClientBootstrap(group: group)
        .channelOption(.socketOption(.tcp_nodelay), value: 1)
        .channelOption(.recvAllocator, value: framing.receiveAllocator)
        .channelInitializer { channel in
            channel.eventLoop.makeCompletedFuture {
                try channel.pipeline.syncOperations.addHandler(try NIOSSLClientHandler(context: ssl, serverHostname: "localhost"))
                try framing.install(on: channel)
                try channel.pipeline.syncOperations.addHandler(handler)
            }
        }
        .connect(host: "127.0.0.1", port: port).get()
}

/// Keeps `inFlight` 1 KiB requests outstanding for a fixed time; returns responses/s.
final class PingPong: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer
    let payload: ByteBuffer
    let inFlight: Int
    let deadline: DispatchTime
    var completed = 0
    var outstanding = 0
    let done: EventLoopPromise<Int>

    init(payload: ByteBuffer, inFlight: Int, deadline: DispatchTime, done: EventLoopPromise<Int>) {
        self.payload = payload
        self.inFlight = inFlight
        self.deadline = deadline
        self.done = done
    }

    static func run(port: Int, identity: TLSIdentity, group: EventLoopGroup, frameBytes: Int, inFlight: Int, seconds: Double) async throws -> Double {
        let loop = group.next()
        let done = loop.makePromise(of: Int.self)
        let start = DispatchTime.now()
        let handler = PingPong(payload: ByteBuffer(repeating: 7, count: frameBytes), inFlight: inFlight,
                               deadline: start + seconds, done: done)
        let channel = try await connectClient(port: port, identity: identity, group: loop, handler: handler)
        try await loop.submit { handler.kick(channel) }.get()
        let count = try await done.futureResult.get()
        let elapsed = Double(DispatchTime.now().uptimeNanoseconds - start.uptimeNanoseconds) / 1e9
        try await channel.close()
        return Double(count) / elapsed
    }

    func kick(_ channel: Channel) {
        for _ in 0..<inFlight { channel.write(payload, promise: nil) }
        outstanding = inFlight
        channel.flush()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        completed += 1
        outstanding -= 1
        if DispatchTime.now() < deadline {
            context.write(wrapOutboundOut(payload), promise: nil)
            outstanding += 1
        } else if outstanding == 0 {
            done.succeed(completed)
        }
    }

    func channelReadComplete(context: ChannelHandlerContext) { context.flush() }
}

/// Streams chunks one way as fast as the channel accepts them, then a zero-length frame;
/// returns bytes/s once the server acknowledges the total.
final class Stream: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer
    let chunk: ByteBuffer
    var remaining: Int
    var outstanding = 0
    let window = 8
    let done: EventLoopPromise<UInt64>

    init(chunk: ByteBuffer, count: Int, done: EventLoopPromise<UInt64>) {
        self.chunk = chunk
        self.remaining = count
        self.done = done
    }

    static func run(port: Int, identity: TLSIdentity, group: EventLoopGroup, chunkBytes: Int, totalMiB: Int, envelope: Bool, framing: BenchFraming) async throws -> Double {
        var frame = ByteBuffer()
        if envelope {
            // Marker byte 1, then a BlobChunk envelope as a worker would receive it.
            var chunk = WireBlobChunk()
            chunk.sha256 = String(repeating: "ab", count: 32)
            chunk.data = Data(repeating: 5, count: chunkBytes)
            chunk.totalSize = UInt64(chunkBytes * totalMiB)
            frame.writeInteger(UInt8(1))
            var payload = try WireEnvelope(.blobChunk(chunk)).framePayload()
            frame.writeBuffer(&payload)
        } else {
            frame.writeInteger(UInt8(0))
            frame.writeRepeatingByte(5, count: chunkBytes)
        }
        let count = totalMiB * (1 << 20) / chunkBytes
        let loop = group.next()
        let done = loop.makePromise(of: UInt64.self)
        let handler = Stream(chunk: frame, count: count, done: done)
        let channel = try await connectClient(port: port, identity: identity, group: loop, handler: handler, framing: framing)
        let start = DispatchTime.now()
        try await loop.submit { handler.pump(channel) }.get()
        let bytes = try await done.futureResult.get()
        let elapsed = Double(DispatchTime.now().uptimeNanoseconds - start.uptimeNanoseconds) / 1e9
        try await channel.close()
        guard bytes == UInt64(count * chunkBytes) else { throw ValidationError("server received \(bytes) bytes, expected \(count * chunkBytes)") }
        return Double(bytes) / elapsed
    }

    /// Keeps at most `window` chunks between us and the socket. NIOSSL buffers writes made
    /// before the handshake without touching the channel's writability, so writability
    /// alone is not enough back-pressure (4 GiB queued that way overflows a ByteBuffer).
    func pump(_ channel: Channel) {
        while remaining > 0 && outstanding < window && channel.isWritable {
            remaining -= 1
            outstanding += 1
            let promise = channel.eventLoop.makePromise(of: Void.self)
            promise.futureResult.whenComplete { _ in
                self.outstanding -= 1
                self.pump(channel)
            }
            channel.write(chunk, promise: promise)
            if remaining == 0 { channel.write(ByteBuffer(), promise: nil) }
            channel.flush()
        }
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        if context.channel.isWritable { pump(context.channel) }
        context.fireChannelWritabilityChanged()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var buffer = unwrapInboundIn(data)
        done.succeed(buffer.readInteger(as: UInt64.self) ?? 0)
    }
}
