import Foundation
import NIOPosix
import NIOSSL
import Testing
import Wire
@testable import CoordinatorKit

/// Mutual TLS and per-message roles against a real coordinator on loopback.
@Suite(.serialized) struct SecurityTests {
    func echoJob(tasks: UInt32 = 1) throws -> WireJobSpec {
        var spec = WireJobSpec()
        spec.kind = JobKind.echo
        spec.spec = try WireEchoSpec.with { $0.tasks = tasks }.serializedData()
        return spec
    }

    func expectRemote(_ code: WireErrorCode, containing text: String? = nil, _ body: () async throws -> Void) async {
        do {
            try await body()
            Issue.record("expected \(code.label)")
        } catch let WireError.remote(got, message) {
            #expect(got == code, "\(message)")
            if let text { #expect(message.contains(text), "\(message)") }
        } catch {
            Issue.record("expected \(code.label), got \(error)")
        }
    }

    /// The TLS alert the server sent, as BoringSSL names it (e.g. SSLV3_ALERT_CERTIFICATE_EXPIRED),
    /// or nil when `error` is not a TLS failure.
    static func tlsAlert(_ error: Error) -> String? {
        guard case let .sslError(errors)? = error as? BoringSSLError, let first = errors.first else { return nil }
        let text = first.description
        guard let range = text.range(of: "OPENSSL_internal:") else { return nil }
        return String(text[range.upperBound...].prefix { $0.isUppercase || $0.isNumber || $0 == "_" })
    }

    @Test func aWorkerCertificateCannotSubmitJobs() async throws {
        let c = try await InProcessCoordinator.start()
        defer { Task { await c.stop() } }
        let worker = try await c.connect("w1", role: .worker)
        await expectRemote(.forbidden, containing: "SubmitJob") {
            _ = try await worker.request(.submitJob(.with { $0.spec = try! echoJob() }))
        }
        // Nothing changed, and the worker's connection still works.
        let op = try await c.operatorClient()
        #expect(try await op.jobs().isEmpty)
        _ = try await worker.request(.heartbeat(WireHeartbeat()))
        worker.close()
        op.close()
    }

    @Test func anOperatorCannotLeaseTasksOrPoseAsAWorker() async throws {
        let c = try await InProcessCoordinator.start()
        defer { Task { await c.stop() } }
        // An operator certificate claiming the worker role in Hello is refused…
        await expectRemote(.forbidden, containing: "operator") {
            _ = try await c.connect("operator", role: .worker)
        }
        // …and as an operator it may not send worker messages.
        let op = try await c.connect("operator", role: .operator)
        await expectRemote(.forbidden, containing: "ResultBatch") {
            _ = try await op.request(.results(WireResultBatch()))
        }
        await expectRemote(.forbidden) {
            _ = try await op.request(.drain(WireDrain()))
        }
        let workers = try await c.operatorClient()
        #expect(try await workers.workers().isEmpty)
        op.close()
        workers.close()
    }

    @Test func aCertificateFromAnotherCAIsRefused() async throws {
        let c = try await InProcessCoordinator.start()
        defer { Task { await c.stop() } }
        let foreign = try LocalCluster.temporary(prefix: "tower-foreign")
        try foreign.issueCertificates(workers: ["w1"])
        // Their worker cert, but our CA as trust root, so only the server side can object.
        let identity = try TLSIdentity(certificate: foreign.certificate("w1"), key: foreign.key("w1"), ca: c.cluster.ca)
        do {
            let client = try await WireClient.connect(host: "127.0.0.1", port: c.port, identity: identity, hello: c.hello(.worker), group: MultiThreadedEventLoopGroup.singleton)
            client.close()
            Issue.record("a foreign certificate was accepted")
        } catch {
            // Both CAs carry the same subject name, so the server finds "the issuer" by
            // name and its signature check fails: alert 51 decrypt_error, not 48 unknown_ca.
            #expect(Self.tlsAlert(error) == "TLSV1_ALERT_DECRYPT_ERROR", "\(error)")
        }
        let op = try await c.operatorClient()
        #expect(try await op.workers().isEmpty)
        op.close()
    }

    @Test func anExpiredCertificateIsRefused() async throws {
        let c = try await InProcessCoordinator.start()
        defer { Task { await c.stop() } }
        let issued = try c.ca.issue(name: "old", role: .worker, notValidAfter: Date().addingTimeInterval(-3600))
        let identity = try TLSIdentity(certificatePEM: issued.certificatePEM, privateKeyPEM: issued.privateKeyPEM,
                                       caPEM: try String(contentsOfFile: c.cluster.ca, encoding: .utf8))
        do {
            let client = try await WireClient.connect(host: "127.0.0.1", port: c.port, identity: identity, hello: c.hello(.worker), group: MultiThreadedEventLoopGroup.singleton)
            client.close()
            Issue.record("an expired certificate was accepted")
        } catch {
            #expect(Self.tlsAlert(error) == "SSLV3_ALERT_CERTIFICATE_EXPIRED", "\(error)")
        }
        let op = try await c.operatorClient()
        #expect(try await op.workers().isEmpty)
        op.close()
    }

    @Test func aRevokedCertificateIsRefusedWithoutRestart() async throws {
        let c = try await InProcessCoordinator.start(workers: ["w1", "w2"])
        defer { Task { await c.stop() } }
        let before = try await c.connect("w2", role: .worker)
        before.close()
        try ClusterCA.revoke("w2", in: c.cluster.certs)
        await expectRemote(.unauthenticated, containing: "revoked") {
            _ = try await c.connect("w2", role: .worker)
        }
        // Others are unaffected.
        let w1 = try await c.connect("w1", role: .worker)
        w1.close()
    }

    @Test func aClientWithoutCertificateIsRefused() async throws {
        let c = try await InProcessCoordinator.start()
        defer { Task { await c.stop() } }
        // The outside world's TLS client, with no certificate to present.
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["openssl", "s_client", "-connect", "127.0.0.1:\(c.port)", "-CAfile", c.cluster.ca]
        let input = Pipe(), output = Pipe()
        process.standardInput = input
        process.standardOutput = output
        process.standardError = output
        try process.run()
        try await Task.sleep(for: .milliseconds(800))  // let it read the server's alert
        try input.fileHandleForWriting.close()
        process.waitUntilExit()
        let text = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        #expect(text.contains("certificate required") || text.contains("alert number 116"), "\(text)")
        // The coordinator still serves authenticated clients.
        let op = try await c.operatorClient()
        _ = try await op.jobs()
        op.close()
    }

    @Test func aProtocolVersionMismatchNamesBothVersions() async throws {
        let c = try await InProcessCoordinator.start()
        defer { Task { await c.stop() } }
        await expectRemote(.versionMismatch, containing: "version \(WireProtocol.version)") {
            _ = try await c.connect("w1", role: .worker, version: 99)
        }
        await expectRemote(.versionMismatch, containing: "version 99") {
            _ = try await c.connect("w1", role: .worker, version: 99)
        }
    }

    @Test func anOversizedFrameClosesOnlyThatConnection() async throws {
        let c = try await InProcessCoordinator.start(maxFrameBytes: 1 << 20)
        defer { Task { await c.stop() } }
        let bystander = try await c.operatorClient()
        let raw = try await RawTLSClient.connect(port: c.port, identity: try c.cluster.identity("operator"))
        // Claims 1 GiB; sends only the header.
        try await raw.write([0x40, 0x00, 0x00, 0x00])
        let reply = try await raw.next()
        guard case let .error(frame)? = reply?.body else { Issue.record("expected an error frame, got \(String(describing: reply))"); return }
        #expect(frame.code == .frameTooLarge)
        #expect(frame.message.contains("1073741824"))
        #expect(await raw.waitUntilClosed())
        #expect(try await bystander.jobs().isEmpty)
        bystander.close()
    }

    @Test func garbageAndUnknownMessagesGetErrorsAndTheConnectionLives() async throws {
        let c = try await InProcessCoordinator.start()
        defer { Task { await c.stop() } }
        let raw = try await RawTLSClient.connect(port: c.port, identity: try c.cluster.identity("operator"))
        try await raw.write([0, 0, 0, 5, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF])
        guard case let .error(malformed)? = try await raw.next()?.body else { Issue.record("no error for garbage"); return }
        #expect(malformed.code == .malformedFrame)
        // Field 999: a message from a newer protocol.
        try await raw.write([0, 0, 0, 6, 0xBA, 0x3E, 3, 1, 2, 3])
        guard case let .error(unknown)? = try await raw.next()?.body else { Issue.record("no error for unknown type"); return }
        #expect(unknown.code == .unknownMessage)
        // Still usable: a proper Hello is welcomed.
        try await raw.write(WireEnvelope(requestID: 3, .hello(c.hello(.operator, name: "operator"))))
        let welcome = try await raw.next()
        #expect(welcome?.requestID == 3)
        if case .welcome? = welcome?.body {} else { Issue.record("expected Welcome, got \(String(describing: welcome))") }
    }

    @Test func messagesBeforeHelloAreRefused() async throws {
        let c = try await InProcessCoordinator.start()
        defer { Task { await c.stop() } }
        let raw = try await RawTLSClient.connect(port: c.port, identity: try c.cluster.identity("operator"))
        try await raw.write(WireEnvelope(requestID: 1, .listJobs(WireListJobs())))
        guard case let .error(e)? = try await raw.next()?.body else { Issue.record("no error"); return }
        #expect(e.code == .invalidArgument)
        #expect(e.message.contains("Hello"))
    }

    @Test func submittingABadSpecIsRefusedWithTheField() async throws {
        let c = try await InProcessCoordinator.start()
        defer { Task { await c.stop() } }
        let op = try await c.operatorClient()
        await expectRemote(.invalidArgument, containing: "echo.tasks") {
            _ = try await op.submit(try echoJob(tasks: 0))
        }
        await expectRemote(.invalidArgument, containing: "unknown job kind") {
            var spec = try echoJob()
            spec.kind = "nope"
            _ = try await op.submit(spec)
        }
        await expectRemote(.notFound) { _ = try await op.job("job-missing") }
        #expect(try await op.jobs().isEmpty)
        op.close()
    }
}
