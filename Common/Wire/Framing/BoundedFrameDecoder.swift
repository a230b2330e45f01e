import NIOCore

/// Splits a byte stream into frames of a 4-byte big-endian length followed by that many
/// payload bytes, refusing any frame whose claimed length exceeds `maxFrameBytes`.
///
/// A pure state machine: no channel, no event loop, so the handler, the fuzzer and the
/// tests all drive the same logic.
///
/// Why not NIOExtras' `LengthFieldBasedFrameDecoder` behind a `ByteToMessageHandler`: it
/// accepts lengths up to `Int32.max` (a hostile peer could make us hold 2 GiB), and its
/// cumulation buffer grows by doubling while a large frame arrives in TLS-record-sized
/// reads — each growth copies what came before, and the buffer it keeps shares storage
/// with NIOSSL's plaintext buffer, so NIOSSL's next decrypt copies too. Here the claimed
/// length is checked as soon as the 4 header bytes are readable, and a frame that does
/// not arrive whole gets one buffer of exactly its announced size, so each payload byte is
/// copied once; a frame that arrives whole is passed on as a slice of the input (no copy).
///
/// Guarantees: never allocates for a frame larger than the limit; emits frames in order;
/// after a refusal it consumes nothing more.
public struct FrameAssembler {
    public static let headerBytes = 4
    public let maxFrameBytes: Int

    /// Header bytes received so far for the next frame (0…3 while a header is split).
    private var header: UInt32 = 0
    private var headerCount = 0
    /// The frame being filled; its capacity is the announced length.
    private var partial: ByteBuffer?
    private var announced = 0
    private var refused = false

    public init(maxFrameBytes: Int) {
        precondition(maxFrameBytes > 0, "maxFrameBytes must be positive")
        self.maxFrameBytes = maxFrameBytes
    }

    /// True between frames: nothing of a next frame has been received.
    public var isAtFrameBoundary: Bool { headerCount == 0 && partial == nil }

    /// Consumes all of `input`, calling `emit` for each completed frame in order.
    /// Throws ``WireError/frameTooLarge(claimed:limit:)`` for a length over the limit.
    public mutating func feed(_ input: inout ByteBuffer, allocator: ByteBufferAllocator = ByteBufferAllocator(),
                              emit: (ByteBuffer) throws -> Void) throws {
        guard !refused else { input.moveReaderIndex(to: input.writerIndex); return }
        while input.readableBytes > 0 {
            if var frame = partial {
                // Drop our reference while writing so the buffer stays uniquely owned.
                partial = nil
                var piece = input.readSlice(length: min(announced - frame.readableBytes, input.readableBytes))!
                frame.writeBuffer(&piece)
                if frame.readableBytes == announced { try emit(frame) } else { partial = frame }
                continue
            }
            if headerCount == 0, let length = input.getInteger(at: input.readerIndex, as: UInt32.self) {
                try check(length)
                input.moveReaderIndex(forwardBy: Self.headerBytes)
                if input.readableBytes >= Int(length) {
                    try emit(input.readSlice(length: Int(length))!)
                } else {
                    try begin(Int(length), allocator: allocator, emit: emit)
                }
                continue
            }
            // A header split across reads: collect it byte by byte.
            header = header << 8 | UInt32(input.readInteger(as: UInt8.self)!)
            headerCount += 1
            if headerCount == Self.headerBytes {
                let length = header
                header = 0
                headerCount = 0
                try check(length)
                try begin(Int(length), allocator: allocator, emit: emit)
            }
        }
    }

    /// The error for a stream that ended here, or nil at a frame boundary.
    public var truncation: WireError? {
        if let frame = partial {
            return .truncatedFrame(expected: Self.headerBytes + announced, received: Self.headerBytes + frame.readableBytes)
        }
        if headerCount > 0 { return .truncatedFrame(expected: nil, received: headerCount) }
        return nil
    }

    private mutating func check(_ length: UInt32) throws {
        guard UInt64(length) <= UInt64(maxFrameBytes) else {
            refused = true
            throw WireError.frameTooLarge(claimed: UInt64(length), limit: UInt64(maxFrameBytes))
        }
    }

    private mutating func begin(_ length: Int, allocator: ByteBufferAllocator, emit: (ByteBuffer) throws -> Void) throws {
        if length == 0 {
            try emit(allocator.buffer(capacity: 0))
        } else {
            partial = allocator.buffer(capacity: length)
            announced = length
        }
    }
}

/// Tower's inbound framing on a channel: ``FrameAssembler`` as a handler. Emits each
/// payload as a `ByteBuffer`; a refused length is fired as an error (the session handler
/// answers and closes), and a stream that ends mid-frame fires
/// ``WireError/truncatedFrame(expected:received:)`` before `channelInactive`.
public final class BoundedFrameDecoder: ChannelInboundHandler {
    public typealias InboundIn = ByteBuffer
    public typealias InboundOut = ByteBuffer

    public static var headerBytes: Int { FrameAssembler.headerBytes }
    private var assembler: FrameAssembler

    public init(maxFrameBytes: Int) {
        assembler = FrameAssembler(maxFrameBytes: maxFrameBytes)
    }

    public func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var input = unwrapInboundIn(data)
        do {
            try assembler.feed(&input, allocator: context.channel.allocator) { frame in
                context.fireChannelRead(wrapInboundOut(frame))
            }
        } catch {
            context.fireErrorCaught(error)
        }
    }

    public func channelInactive(context: ChannelHandlerContext) {
        if let truncation = assembler.truncation {
            assembler = FrameAssembler(maxFrameBytes: assembler.maxFrameBytes)
            context.fireErrorCaught(truncation)
        }
        context.fireChannelInactive()
    }
}
