import Foundation
import NIOCore
import NIOEmbedded
import Testing
@testable import Wire

/// A channel with Tower's framing and codec, fed bytes by hand.
func framedChannel(maxFrameBytes: Int = 1024) throws -> EmbeddedChannel {
    let channel = EmbeddedChannel()
    try channel.pipeline.syncOperations.addHandlers(WireFraming.handlers(maxFrameBytes: maxFrameBytes))
    return channel
}

func frame(_ payload: [UInt8]) -> ByteBuffer {
    var buffer = ByteBuffer()
    buffer.writeInteger(UInt32(payload.count))
    buffer.writeBytes(payload)
    return buffer
}

@Suite struct FramingTests {
    @Test func envelopeRoundTripsThroughTheCodec() throws {
        let channel = try framedChannel(maxFrameBytes: 1 << 20)
        var batch = WireTaskBatch()
        for i in 0..<3 {
            var task = WireTaskAssignment()
            task.taskID = UInt64(i + 10)
            task.kind = JobKind.echo
            task.input = Data(repeating: UInt8(i), count: 100)
            batch.tasks.append(task)
        }
        let sent = WireEnvelope(requestID: 7, .tasks(batch))
        try channel.writeOutbound(sent)
        // The outbound side emits length prefix and payload; feed them back in.
        var wire = ByteBuffer()
        while var part = try channel.readOutbound(as: ByteBuffer.self) { wire.writeBuffer(&part) }
        #expect(wire.getInteger(at: 0, as: UInt32.self) == UInt32(wire.readableBytes - 4))
        try channel.writeInbound(wire)
        let received = try #require(try channel.readInbound(as: WireEnvelope.self))
        #expect(received == sent)
        _ = try channel.finish()
    }

    @Test func framesSplitAcrossReadsAreReassembled() throws {
        let channel = try framedChannel()
        let payload = try WireEnvelope(requestID: 1, .ack(WireAck())).framePayload()
        let whole = frame(Array(payload.readableBytesView))
        // Two frames delivered one byte at a time.
        for _ in 0..<2 {
            for byte in whole.readableBytesView {
                try channel.writeInbound(ByteBuffer(bytes: [byte]))
            }
        }
        #expect(try channel.readInbound(as: WireEnvelope.self)?.requestID == 1)
        #expect(try channel.readInbound(as: WireEnvelope.self)?.requestID == 1)
        #expect(try channel.readInbound(as: WireEnvelope.self) == nil)
    }

    @Test func oversizedLengthIsRefusedFromTheHeaderAlone() throws {
        var buffer = ByteBuffer()
        buffer.writeInteger(UInt32(1 << 30))  // claims 1 GiB; no payload follows
        var assembler = FrameAssembler(maxFrameBytes: 1024)
        #expect(throws: WireError.frameTooLarge(claimed: 1 << 30, limit: 1024)) {
            try assembler.feed(&buffer) { _ in Issue.record("no frame expected") }
        }
        // Through a channel: the error surfaces at once, without waiting for (or
        // buffering) the claimed gigabyte.
        let channel = try framedChannel()
        var header = ByteBuffer()
        header.writeInteger(UInt32.max)
        #expect(throws: WireError.frameTooLarge(claimed: UInt64(UInt32.max), limit: 1024)) {
            try channel.writeInbound(header)
        }
    }

    @Test func frameAtExactlyTheLimitIsAccepted() throws {
        var buffer = frame([UInt8](repeating: 1, count: 1024))
        var assembler = FrameAssembler(maxFrameBytes: 1024)
        var sizes: [Int] = []
        try assembler.feed(&buffer) { sizes.append($0.readableBytes) }
        #expect(sizes == [1024])
        var over = frame([UInt8](repeating: 1, count: 1025))
        #expect(throws: WireError.frameTooLarge(claimed: 1025, limit: 1024)) {
            try assembler.feed(&over) { _ in Issue.record("no frame expected") }
        }
    }

    /// A frame arriving in pieces (as TLS records do) is copied once into a buffer of
    /// exactly its announced size; one arriving whole is passed on without a copy.
    @Test func aFrameInPiecesGetsOneBufferOfItsAnnouncedSize() throws {
        let payload = (0..<100_000).map { UInt8(truncatingIfNeeded: $0 &* 31) }
        var stream = frame(payload)
        var small = frame([9, 8, 7]), empty = frame([])
        stream.writeBuffer(&small)
        stream.writeBuffer(&empty)
        var assembler = FrameAssembler(maxFrameBytes: 1 << 20)
        var frames: [ByteBuffer] = []
        // 16 KiB reads, with the first header split 2 + 2 bytes across the first two.
        var reads = [stream.readSlice(length: 2)!]
        while stream.readableBytes > 0 { reads.append(stream.readSlice(length: min(16_384, stream.readableBytes))!) }
        for var read in reads {
            try assembler.feed(&read) { frames.append($0) }
            #expect(read.readableBytes == 0, "every byte of a read is consumed")
        }
        #expect(frames.map(\.readableBytes) == [100_000, 3, 0])
        #expect(Array(frames[0].readableBytesView) == payload)
        // NIO rounds a capacity up to a power of two; a buffer grown read by read would
        // have been reallocated past it.
        #expect(frames[0].capacity == ByteBufferAllocator().buffer(capacity: 100_000).capacity, "one buffer of the announced size")
        #expect(Array(frames[1].readableBytesView) == [9, 8, 7])
        #expect(assembler.isAtFrameBoundary)
        #expect(assembler.truncation == nil)
    }

    @Test func nothingIsReadAfterARefusal() throws {
        var assembler = FrameAssembler(maxFrameBytes: 8)
        var bad = frame([UInt8](repeating: 0, count: 9))
        #expect(throws: WireError.frameTooLarge(claimed: 9, limit: 8)) { try assembler.feed(&bad) { _ in } }
        var good = frame([1])
        try assembler.feed(&good) { _ in Issue.record("a refused stream emits nothing more") }
        #expect(good.readableBytes == 0)
    }

    @Test func aSplitHeaderIsATruncationWithoutAnExpectedLength() throws {
        var assembler = FrameAssembler(maxFrameBytes: 1024)
        var two = ByteBuffer(bytes: [0, 0])
        try assembler.feed(&two) { _ in }
        #expect(assembler.truncation == .truncatedFrame(expected: nil, received: 2))
    }

    @Test func truncatedFrameIsReportedWhenTheStreamEnds() throws {
        let channel = try framedChannel()
        var partial = ByteBuffer()
        partial.writeInteger(UInt32(100))
        partial.writeBytes([UInt8](repeating: 0, count: 40))
        try channel.writeInbound(partial)
        #expect(try channel.readInbound(as: WireEnvelope.self) == nil)
        #expect(throws: WireError.truncatedFrame(expected: 104, received: 44)) {
            _ = try channel.finish()
        }
    }

    @Test func garbagePayloadIsAMalformedFrameAndTheStreamGoesOn() throws {
        let channel = try framedChannel()
        let errors = ErrorCollector()
        try channel.pipeline.syncOperations.addHandler(errors)
        // 0xFF... is not a valid protobuf tag sequence.
        try channel.writeInbound(frame([0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x01]))
        let good = try WireEnvelope(requestID: 42, .ack(WireAck())).framePayload()
        try channel.writeInbound(frame(Array(good.readableBytesView)))
        #expect(errors.errors.count == 1)
        if case .malformedFrame = errors.errors.first as? WireError {} else { Issue.record("expected malformedFrame, got \(errors.errors)") }
        #expect(errors.envelopes.map(\.requestID) == [42])
    }

    @Test func unknownMessageTypeIsNamedAsSuch() throws {
        // Field 999, wire type 2 (length-delimited), 3 bytes: a body from a newer protocol.
        let tag = UInt64(999 << 3 | 2)
        var bytes: [UInt8] = [0x08, 0x05]  // request_id = 5
        var v = tag
        while v >= 0x80 { bytes.append(UInt8(v & 0x7F) | 0x80); v >>= 7 }
        bytes.append(UInt8(v))
        bytes += [3, 1, 2, 3]
        #expect(throws: WireError.unknownMessage) {
            _ = try WireEnvelope(frame: ByteBuffer(bytes: bytes))
        }
    }

    @Test func errorFramesCarryCodeAndActionableMessage() {
        let error = WireError.versionMismatch(ours: 1, theirs: 2)
        #expect(error.errorFrame.code == .versionMismatch)
        #expect(error.errorFrame.message.contains("version 1"))
        #expect(error.errorFrame.message.contains("version 2"))
        #expect(WireError.frameTooLarge(claimed: 10, limit: 5).description.contains("max_frame_bytes"))
    }
}

/// Collects what reaches the end of the pipeline.
final class ErrorCollector: ChannelInboundHandler {
    typealias InboundIn = WireEnvelope
    var errors: [Error] = []
    var envelopes: [WireEnvelope] = []
    func channelRead(context: ChannelHandlerContext, data: NIOAny) { envelopes.append(unwrapInboundIn(data)) }
    func errorCaught(context: ChannelHandlerContext, error: Error) { errors.append(error) }
}
