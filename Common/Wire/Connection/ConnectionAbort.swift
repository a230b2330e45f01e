import NIOCore

/// Closes a connection at once, without the graceful TLS close.
///
/// A TLS handler answers `close` by sending close_notify and waiting for the peer's, up to
/// its shutdown timeout (5 s by default). That is right for a peer that is there, and
/// wrong for one that is gone: a frozen worker or a coordinator behind a cut link never
/// answers. This handler sits at the head of the pipeline, below TLS, so a close it
/// issues goes straight to the socket.
///
/// Add ``handler()`` first, before the TLS handler; then ``abort(_:)`` works from any
/// thread. Without it in the pipeline, ``abort(_:)`` falls back to an ordinary close.
public final class ConnectionAbort: ChannelOutboundHandler, RemovableChannelHandler {
    public typealias OutboundIn = Any

    private var context: ChannelHandlerContext?

    public static func handler() -> ConnectionAbort { ConnectionAbort() }

    public func handlerAdded(context: ChannelHandlerContext) { self.context = context }
    public func handlerRemoved(context: ChannelHandlerContext) { self.context = nil }

    /// Closes `channel`'s socket now; pending writes are dropped.
    public static func abort(_ channel: Channel) {
        channel.eventLoop.execute {
            if let handler = try? channel.pipeline.syncOperations.handler(type: ConnectionAbort.self), let context = handler.context {
                context.close(mode: .all, promise: nil)
            } else {
                channel.close(promise: nil)
            }
        }
    }
}
