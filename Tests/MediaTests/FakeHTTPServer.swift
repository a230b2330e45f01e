import Foundation
import NIOCore
import NIOPosix
import NIOHTTP1

/// A loopback HTTP/1.1 server for the endpoint fallbacks: each request is answered by
/// `reply`, which can also choose never to answer (a hung endpoint).
final class FakeHTTPServer {
    struct Request { var method: String; var uri: String; var headers: [(String, String)]; var body: Data
        func header(_ name: String) -> String? { headers.first { $0.0.lowercased() == name.lowercased() }?.1 }
    }
    enum Reply {
        case json(status: Int, body: String)
        case bytes(status: Int, body: Data, contentType: String)
        case hang
    }

    private let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
    private var channel: Channel?
    private let lock = NSLock()
    private var received: [Request] = []
    var port: Int { channel?.localAddress?.port ?? 0 }
    var baseURL: URL { URL(string: "http://127.0.0.1:\(port)")! }
    var requests: [Request] { lock.lock(); defer { lock.unlock() }; return received }

    init(reply: @escaping (Request) -> Reply) throws {
        let record: (Request) -> Void = { [weak self] r in self?.lock.lock(); self?.received.append(r); self?.lock.unlock() }
        channel = try ServerBootstrap(group: group)
            .serverChannelOption(ChannelOptions.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { ch in
                ch.pipeline.configureHTTPServerPipeline().flatMap { ch.pipeline.addHandler(Handler(reply: reply, record: record)) }
            }
            .bind(host: "127.0.0.1", port: 0).wait()
    }

    func shutdown() {
        try? channel?.close().wait()
        try? group.syncShutdownGracefully()
    }

    private final class Handler: ChannelInboundHandler {
        typealias InboundIn = HTTPServerRequestPart
        typealias OutboundOut = HTTPServerResponsePart
        let reply: (Request) -> Reply
        let record: (Request) -> Void
        var head: HTTPRequestHead?
        var body = Data()
        init(reply: @escaping (Request) -> Reply, record: @escaping (Request) -> Void) { self.reply = reply; self.record = record }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            switch unwrapInboundIn(data) {
            case .head(let h): head = h; body = Data()
            case .body(var buf): body.append(contentsOf: buf.readBytes(length: buf.readableBytes) ?? [])
            case .end:
                guard let head else { return }
                let request = Request(method: head.method.rawValue, uri: head.uri, headers: head.headers.map { ($0.name, $0.value) }, body: body)
                record(request)
                let status: Int, payload: Data, contentType: String
                switch reply(request) {
                case .hang: return
                case let .json(s, text): (status, payload, contentType) = (s, Data(text.utf8), "application/json")
                case let .bytes(s, data, type): (status, payload, contentType) = (s, data, type)
                }
                var headers = HTTPHeaders()
                headers.add(name: "Content-Type", value: contentType)
                headers.add(name: "Content-Length", value: String(payload.count))
                context.write(wrapOutboundOut(.head(HTTPResponseHead(version: head.version, status: HTTPResponseStatus(statusCode: status),
                                                                      headers: headers))), promise: nil)
                var buf = context.channel.allocator.buffer(capacity: payload.count)
                buf.writeBytes(payload)
                context.write(wrapOutboundOut(.body(.byteBuffer(buf))), promise: nil)
                context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
            }
        }
    }
}

/// A TCP port on loopback with nothing listening: connecting is refused at once.
func refusedURL() throws -> URL {
    let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
    defer { try? group.syncShutdownGracefully() }
    let ch = try ServerBootstrap(group: group).bind(host: "127.0.0.1", port: 0).wait()
    let port = ch.localAddress?.port ?? 9
    try ch.close().wait()
    return URL(string: "http://127.0.0.1:\(port)")!
}
