import NIOExtras
import NIOCore
import SwiftProtobuf

/// Lets swift-protobuf read from and serialize into a `ByteBuffer` directly, so a frame is
/// decoded where NIO received it and encoded where NIO will send it, without a copy.
struct ByteBufferBytes: SwiftProtobufContiguousBytes {
    var buffer: ByteBuffer

    init(_ buffer: ByteBuffer) { self.buffer = buffer }

    init(repeating: UInt8, count: Int) {
        buffer = ByteBufferAllocator().buffer(capacity: count)
        buffer.writeRepeatingByte(repeating, count: count)
    }

    init<S: Sequence>(_ sequence: S) where S.Element == UInt8 {
        buffer = ByteBufferAllocator().buffer(capacity: sequence.underestimatedCount)
        buffer.writeBytes(sequence)
    }

    var count: Int { buffer.readableBytes }

    func withUnsafeBytes<R>(_ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R {
        try buffer.withUnsafeReadableBytes(body)
    }

    mutating func withUnsafeMutableBytes<R>(_ body: (UnsafeMutableRawBufferPointer) throws -> R) rethrows -> R {
        try buffer.withUnsafeMutableReadableBytes(body)
    }
}

extension WireEnvelope {
    /// Decodes one envelope from a frame payload. Throws ``WireError/malformedFrame(reason:)``
    /// for bytes that are not a valid envelope and ``WireError/unknownMessage`` for a valid
    /// envelope whose body this build does not know.
    public init(frame: ByteBuffer) throws {
        do {
            self = try WireEnvelope(serializedBytes: ByteBufferBytes(frame))
        } catch {
            throw WireError.malformedFrame(reason: "\(frame.readableBytes)-byte payload is not a Tower envelope (\(error))")
        }
        if body == nil {
            throw WireError.unknownMessage
        }
    }

    /// The payload of one frame (without its length prefix).
    public func framePayload() throws -> ByteBuffer {
        let bytes: ByteBufferBytes = try serializedBytes()
        return bytes.buffer
    }

    public init(requestID: UInt64 = 0, _ body: Body) {
        self.init()
        self.requestID = requestID
        self.body = body
    }

    public typealias Body = OneOf_Body
}

/// A frame that was framed correctly but cannot be served, with the request id it
/// carried so the error frame can answer that request.
public struct WireFrameError: Error, CustomStringConvertible {
    public var requestID: UInt64
    public var error: WireError
    public var description: String { "\(error) (request \(requestID))" }
}

/// Turns frame payloads into ``WireEnvelope``s and back.
///
/// A payload that is not a valid envelope does not close the connection — framing is still
/// intact — it is reported with `fireErrorCaught(WireError)` so the session can answer with
/// an error frame and go on reading.
public final class EnvelopeCodec: ChannelDuplexHandler {
    public typealias InboundIn = ByteBuffer
    public typealias InboundOut = WireEnvelope
    public typealias OutboundIn = WireEnvelope
    public typealias OutboundOut = ByteBuffer

    public init() {}

    public func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let frame = unwrapInboundIn(data)
        do {
            context.fireChannelRead(wrapInboundOut(try WireEnvelope(frame: frame)))
        } catch WireError.unknownMessage {
            // The envelope itself decoded, so its request id is known: the answer carries it.
            let id = (try? WireEnvelope(serializedBytes: ByteBufferBytes(frame)))?.requestID ?? 0
            context.fireErrorCaught(WireFrameError(requestID: id, error: .unknownMessage))
        } catch {
            context.fireErrorCaught(error)
        }
    }

    public func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        do {
            context.write(wrapOutboundOut(try unwrapOutboundIn(data).framePayload()), promise: promise)
        } catch {
            promise?.fail(error)
        }
    }
}

/// Installs Tower's framing on a channel whose TLS handler is already in place:
/// bounded length-prefixed frames (inbound), NIOExtras' length prepender (outbound), and
/// the envelope codec. The caller adds its session handler after these.
public enum WireFraming {
    public static let defaultMaxFrameBytes = 64 * 1024 * 1024

    public static func handlers(maxFrameBytes: Int) -> [ChannelHandler] {
        [
            BoundedFrameDecoder(maxFrameBytes: maxFrameBytes),
            LengthFieldPrepender(lengthFieldLength: .four, lengthFieldEndianness: .big),
            EnvelopeCodec(),
        ]
    }
}
