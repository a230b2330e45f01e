import NIOCore

/// Splits a byte stream into frames of a 4-byte big-endian length followed by that many
/// payload bytes, refusing any frame whose claimed length exceeds `maxFrameBytes`.
///
/// NIOExtras' `LengthFieldBasedFrameDecoder` accepts lengths up to `Int32.max` and buffers
/// until the claimed frame has arrived, so a hostile peer could make us hold 2 GiB per
/// connection. This decoder checks the claim as soon as the 4 header bytes are readable —
/// before any payload is buffered — and throws ``WireError/frameTooLarge(claimed:limit:)``.
/// The outbound direction uses NIOExtras' `LengthFieldPrepender` unchanged.
///
/// Guarantees: never allocates for a frame larger than the limit; emits each payload as a
/// slice of the input (no copy); a stream that ends mid-frame raises
/// ``WireError/truncatedFrame(expected:received:)`` on `decodeLast`.
public struct BoundedFrameDecoder: ByteToMessageDecoder {
    public typealias InboundOut = ByteBuffer

    public static let headerBytes = 4
    public let maxFrameBytes: Int

    public init(maxFrameBytes: Int) {
        precondition(maxFrameBytes > 0, "maxFrameBytes must be positive")
        self.maxFrameBytes = maxFrameBytes
    }

    public mutating func decode(context: ChannelHandlerContext, buffer: inout ByteBuffer) throws -> DecodingState {
        guard let frame = try Self.nextFrame(from: &buffer, maxFrameBytes: maxFrameBytes) else {
            return .needMoreData
        }
        context.fireChannelRead(Self.wrapInboundOut(frame))
        return .continue
    }

    public mutating func decodeLast(context: ChannelHandlerContext, buffer: inout ByteBuffer, seenEOF: Bool) throws -> DecodingState {
        while try decode(context: context, buffer: &buffer) == .continue {}
        if buffer.readableBytes > 0 {
            let expected = buffer.getInteger(at: buffer.readerIndex, as: UInt32.self).map(Int.init)
            let received = buffer.readableBytes
            buffer.moveReaderIndex(forwardBy: received)
            throw WireError.truncatedFrame(expected: expected.map { $0 + Self.headerBytes }, received: received)
        }
        return .needMoreData
    }

    /// The frame logic without a channel, shared by the handler, the fuzzer and tests.
    /// Returns nil when more bytes are needed; consumes the frame when one is complete.
    public static func nextFrame(from buffer: inout ByteBuffer, maxFrameBytes: Int) throws -> ByteBuffer? {
        guard let length = buffer.getInteger(at: buffer.readerIndex, as: UInt32.self) else {
            return nil
        }
        guard UInt64(length) <= UInt64(maxFrameBytes) else {
            throw WireError.frameTooLarge(claimed: UInt64(length), limit: UInt64(maxFrameBytes))
        }
        guard buffer.readableBytes >= headerBytes + Int(length) else {
            return nil
        }
        buffer.moveReaderIndex(forwardBy: headerBytes)
        return buffer.readSlice(length: Int(length))
    }
}
