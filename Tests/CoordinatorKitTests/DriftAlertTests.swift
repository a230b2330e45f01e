import Foundation
import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOHTTP1
import NIOPosix
import Testing
@testable import CoordinatorKit

/// A webhook receiver on loopback that refuses the first `failures` POSTs with 503.
final class WebhookReceiver: ChannelInboundHandler, @unchecked Sendable {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    struct Received: Sendable { var contentType: String; var body: String }
    static let log = NIOLockedValueBox<[Received]>([])
    static let failures = NIOLockedValueBox(0)

    private var head: HTTPRequestHead?
    private var body = ""

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case let .head(h): head = h; body = ""
        case var .body(buffer): body += buffer.readString(length: buffer.readableBytes) ?? ""
        case .end:
            let refuse = Self.failures.withLockedValue { n -> Bool in n -= 1; return n >= 0 }
            Self.log.withLockedValue { $0.append(Received(contentType: head?.headers["Content-Type"].first ?? "", body: body)) }
            var headers = HTTPHeaders()
            headers.add(name: "Content-Length", value: "0")
            context.write(wrapOutboundOut(.head(HTTPResponseHead(version: .http1_1, status: refuse ? .serviceUnavailable : .ok, headers: headers))), promise: nil)
            context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
        }
    }
}

@Suite(.serialized, .timeLimit(.minutes(1))) struct DriftAlertTests {
    @Test func aReportIsPostedAsJSONAndRetriedAfterARefusal() async throws {
        WebhookReceiver.log.withLockedValue { $0 = [] }
        WebhookReceiver.failures.withLockedValue { $0 = 1 }
        let channel = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .childChannelInitializer { channel in
                channel.pipeline.configureHTTPServerPipeline().flatMap { channel.pipeline.addHandler(WebhookReceiver()) }
            }
            .bind(host: "127.0.0.1", port: 0).get()
        defer { channel.close(promise: nil) }
        let url = URL(string: "http://127.0.0.1:\(channel.localAddress!.port!)/tower-drift")!
        let json = #"{"dataset_drift":true,"report_id":"drift-x"}"#
        DriftAlert.post(json: json, to: url, attempts: 3, logger: Logger(label: "test"))
        // Bounded wait for the second delivery (the first is refused, the retry comes after 1 s).
        for _ in 0..<100 where WebhookReceiver.log.withLockedValue({ $0.count }) < 2 {
            try await Task.sleep(for: .milliseconds(100))
        }
        let received = WebhookReceiver.log.withLockedValue { $0 }
        #expect(received.count == 2)
        #expect(received.map(\.body) == [json, json])
        #expect(received.allSatisfy { $0.contentType == "application/json" })
        // Delivered: no third attempt follows.
        try await Task.sleep(for: .milliseconds(2500))
        #expect(WebhookReceiver.log.withLockedValue { $0.count } == 2)
    }

    @Test func aWebhookThatIsNotAnHTTPURLIsRefusedByTheConfig() throws {
        #expect(throws: ConfigError.invalidValue(key: "drift.webhook", value: "ftp://x", expected: "an http:// or https:// URL")) {
            try CoordinatorSettings.load(yaml: "drift:\n  webhook: ftp://x\n")
        }
        #expect(throws: ConfigError.invalid("drift.thresholds.wasserstein_normed must be a number ≥ 0, got -1.0")) {
            try CoordinatorSettings.load(yaml: "drift:\n  thresholds: {wasserstein_normed: -1}\n")
        }
        let s = try CoordinatorSettings.load(yaml: "drift:\n  thresholds: {dataset_drift_share: 0.3}\n")
        #expect(s.drift.thresholds.datasetDriftShare == 0.3)
        #expect(s.drift.thresholds.wassersteinNormed == 0.1)
    }
}
