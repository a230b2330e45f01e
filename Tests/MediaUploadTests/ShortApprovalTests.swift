import Foundation
import Logging
import NIOPosix
import Testing
import Wire
@testable import CoordinatorKit
@testable import MediaUpload

/// `coordinator shorts approve` end to end on the coordinator's side: an operator's
/// ApproveShort over mutual TLS makes the coordinator publish the stored video to the
/// fake YouTube and Instagram APIs (speaking their real exchanges) and record where it
/// went — or keep the short pending with the platform's reason.
@Suite(.timeLimit(.minutes(2))) struct ShortApprovalTests {
    static let shortID = "short-job-test-0"

    /// A coordinator whose `shorts:` config points at `server`, holding one rendered
    /// short of listing 7 (its video is pseudo-random bytes: the platforms do not decode
    /// it, and the hash shows every byte arrived).
    final class Setup {
        let cluster: LocalCluster
        let service: CoordinatorService
        let video: Data
        let sleeps = SleepRecorder()

        init(_ server: FakeSocialServer?, youTube: Bool = true, instagram: Bool = true) async throws {
            cluster = try LocalCluster.temporary(prefix: "tower-approve")
            _ = try cluster.issueCertificates(workers: [])
            var settings = cluster.coordinatorSettings()
            if let server, youTube {
                settings.shorts.youTube = .init(token: AccessToken(secretToken), baseURL: server.baseURL)
            }
            if let server, instagram {
                settings.shorts.instagram = .init(userID: server.userID, token: AccessToken(secretToken),
                                                  graphURL: server.graphBaseURL, uploadURL: server.baseURL)
            }
            var logger = Logger(label: "test.approve")
            logger.logLevel = .critical
            service = try CoordinatorService(settings: settings, group: MultiThreadedEventLoopGroup.singleton, logger: logger)
            try await service.start()
            service.core.publisher.retry = sleeps.backoff()
            service.core.publisher.poll = sleeps.backoff()
            video = try Data(contentsOf: try makeVideo(size: 700 * kiB, seed: 3))
            let sha = try service.core.blobs.put(video)
            let bytes = video.count
            try await service.core.store.pool.write { db in
                try ShortStore.save(ShortStore.Row(id: ShortApprovalTests.shortID, listing: 7, job: "job-test", sha256: sha, bytes: bytes,
                                                   duration: 21.5, state: ShortStore.pendingReview, language: "en",
                                                   script: ["A 3-room home in Mapo.", "Ask Tower Realty about listing 7."],
                                                   createdAt: 1_780_000_000, reason: ""), db)
            }
        }

        func approve(dryRun: Bool = false) async throws -> WireShortInfo {
            let op = try await OperatorClient.connect(host: "127.0.0.1", port: service.port!, identity: try cluster.identity("operator"),
                                                      group: MultiThreadedEventLoopGroup.singleton)
            defer { op.close() }
            return try await op.approveShort(ShortApprovalTests.shortID, dryRun: dryRun)
        }

        func stop() async { await service.shutdown() }
    }

    @Test func approvalPublishesToBothPlatformsAndRecordsWhere() async throws {
        let server = try FakeSocialServer(token: secretToken)
        defer { server.shutdown() }
        let c = try await Setup(server)

        let info = try await c.approve()
        await c.stop()

        #expect(info.state == "published" && info.reason.isEmpty, "\(info.reason)")
        #expect(info.youtubeVideoID == "vidsession1")
        #expect(info.instagramMediaID == "18000000000001")
        #expect(info.approvedBy == "operator" && info.publishedAtMs > 0)
        #expect(info.actions == [
            "YouTube: uploaded as private video vidsession1 (\(c.video.count) bytes, 0 retries)",
            "Instagram: published as Reel 18000000000001 (container 17900000000001, 1 status polls)",
        ])
        // Every byte of the stored video reached both platforms.
        let uploaded = server.withState { s in (s.sessions.values.first?.bytes ?? [], s.containers["17900000000001"]?.bytes ?? []) }
        #expect(sha256(uploaded.0) == sha256(c.video) && sha256(uploaded.1) == sha256(c.video))
        // The title comes from the short (no listing 7 in the feature store: its id), the
        // description is the script, and nothing goes public unreviewed.
        let snippet = server.withState { $0.sessions.values.first?.metadata }
        let title = (snippet?["snippet"] as? [String: Any])?["title"] as? String
        #expect(title == "Listing 7")
        #expect(((snippet?["status"] as? [String: Any])?["privacyStatus"] as? String) == "private")
        #expect(!server.requests.contains(where: leaksToken))
    }

    @Test func aPublishedShortIsNotSentAgain() async throws {
        let server = try FakeSocialServer(token: secretToken)
        defer { server.shutdown() }
        let c = try await Setup(server)
        defer { Task { await c.stop() } }
        _ = try await c.approve()
        let before = server.requests.count

        let error = await #expect(throws: WireError.self) { try await c.approve() }
        #expect(error?.description.hasSuffix("short short-job-test-0 is already published (YouTube video vidsession1, Instagram media 18000000000001); nothing to do") == true,
                "\(String(describing: error))")
        #expect(server.requests.count == before)
    }

    @Test func aSpentQuotaKeepsTheShortPendingAndTheNextApprovalSendsOnlyWhatIsMissing() async throws {
        let server = try FakeSocialServer(token: secretToken)
        defer { server.shutdown() }
        let message = "The request cannot be completed because you have exceeded your quota."
        server.withState { $0.youTube.startFailures = [(403, "quotaExceeded", message)] }
        let c = try await Setup(server)
        defer { Task { await c.stop() } }

        let first = try await c.approve()
        #expect(first.state == "pending_upload")
        #expect(first.reason == "YouTube: " + UploadError.quotaExceeded(message: message).pendingReason)
        #expect(first.youtubeVideoID.isEmpty && first.instagramMediaID == "18000000000001")
        #expect(first.publishedAtMs == 0)

        // The quota reset: only YouTube is sent the video; Instagram is not published twice.
        let second = try await c.approve()
        #expect(second.state == "published" && second.reason.isEmpty)
        #expect(second.youtubeVideoID == "vidsession1" && second.instagramMediaID == "18000000000001")
        #expect(second.actions.last == "Instagram: already published as media 18000000000001")
        #expect(server.requests.filter { $0.path.hasSuffix("/media_publish") }.count == 1)
    }

    @Test func aRefusedTokenKeepsTheShortPendingWithTheReason() async throws {
        let server = try FakeSocialServer(token: "another-token")
        defer { server.shutdown() }
        let c = try await Setup(server, instagram: false)
        defer { Task { await c.stop() } }

        let info = try await c.approve()
        #expect(info.state == "pending_upload")
        #expect(info.reason.hasPrefix("YouTube: YouTube refused the upload with HTTP 401"), "\(info.reason)")
        #expect(!info.reason.contains(secretToken))
    }

    @Test func aDryRunSaysWhatWouldHappenAndSendsNothing() async throws {
        let server = try FakeSocialServer(token: secretToken)
        defer { server.shutdown() }
        let c = try await Setup(server)
        defer { Task { await c.stop() } }

        let info = try await c.approve(dryRun: true)
        #expect(info.state == "pending_review")
        #expect(info.actions == [
            "dry run — YouTube: would upload 700 KiB to 127.0.0.1 as a private video titled \"Listing 7\"",
            "dry run — Instagram: would publish 700 KiB as a Reel of account \(server.userID) with a 99-character caption",
        ], "\(info.actions)")
        #expect(server.requests.isEmpty)
    }

    @Test func withoutAPlatformApprovalIsRefusedAndTheShortIsUntouched() async throws {
        let c = try await Setup(nil)
        defer { Task { await c.stop() } }

        let error = await #expect(throws: WireError.self) { try await c.approve() }
        #expect(error?.description == "invalid argument: no platform to publish to: add shorts.youtube and/or shorts.instagram (with access_token_file) to the coordinator's config and restart it; short short-job-test-0 stays as it is",
                "\(String(describing: error))")
        let dry = try await c.approve(dryRun: true)
        #expect(dry.state == "pending_review")
        #expect(dry.actions == ["dry run — nowhere: no shorts.youtube or shorts.instagram in the coordinator's config"])
    }
}
