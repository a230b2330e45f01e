import Foundation
import Testing
@testable import MediaUpload

/// The Reels flow against the fake Graph API and rupload host: container → upload →
/// poll → publishing limit → publish, and each way it stops.
@Suite struct InstagramReelsPublisherTests {
    let caption = "역세권 84㎡ 3룸 — 5.2억 & a park view #seoul"

    func publisher(_ server: FakeSocialServer, sleeps: SleepRecorder = SleepRecorder(),
                   polls: SleepRecorder = SleepRecorder(), maxPolls: Int = 10,
                   logs: LogCapture = LogCapture()) throws -> InstagramReelsPublisher {
        try InstagramReelsPublisher(
            configuration: .init(userID: server.userID, token: AccessToken(secretToken),
                                 graphBaseURL: server.graphBaseURL, uploadBaseURL: server.baseURL,
                                 retry: sleeps.backoff(), poll: polls.backoff(initial: .seconds(2)),
                                 maxPolls: maxPolls, requestTimeout: 10),
            logger: logs.logger("test.instagram"))
    }

    func containerBytes(_ server: FakeSocialServer, _ id: String) -> [UInt8] {
        server.withState { $0.containers[id]?.bytes ?? [] }
    }

    @Test(.timeLimit(.minutes(1)))
    func happyPathPollsUntilFinishedThenPublishes() async throws {
        let server = try FakeSocialServer(token: secretToken)
        defer { server.shutdown() }
        server.withState { $0.instagram.statuses = ["IN_PROGRESS", "IN_PROGRESS", "FINISHED"] }
        let size = miB + 777
        let file = try makeVideo(size: size, seed: 5)
        defer { try? FileManager.default.removeItem(at: file) }
        let polls = SleepRecorder()
        let logs = LogCapture()

        let result = try await publisher(server, polls: polls, logs: logs).publish(file: file, caption: caption)

        #expect(result == InstagramReelsPublisher.Result(mediaID: "18000000000001", containerID: "17900000000001",
                                                         polls: 3, uploadAttempts: 1))
        #expect(polls.all == [.seconds(2), .seconds(4)])
        let requests = server.requests
        #expect(requests.map { "\($0.method) \($0.path)" } == [
            "POST /v21.0/\(server.userID)/media",
            "POST /ig-api-upload/v21.0/17900000000001",
            "GET /v21.0/17900000000001", "GET /v21.0/17900000000001", "GET /v21.0/17900000000001",
            "GET /v21.0/\(server.userID)/content_publishing_limit",
            "POST /v21.0/\(server.userID)/media_publish",
        ])
        let create = FakeSocialServer.form(String(decoding: requests[0].body, as: UTF8.self))
        #expect(create == ["media_type": "REELS", "upload_type": "resumable", "caption": caption, "access_token": secretToken])
        #expect(server.withState { $0.containers["17900000000001"]?.caption } == caption)
        let upload = requests[1]
        #expect(upload.header("Authorization") == "OAuth \(secretToken)")
        #expect(upload.header("offset") == "0")
        #expect(upload.header("file_size") == "\(size)")
        #expect(try sha256(containerBytes(server, "17900000000001")) == sha256(file: file))
        #expect(FakeSocialServer.query(requests[2].uri)["fields"] == "status_code,status")
        #expect(FakeSocialServer.query(requests[5].uri)["fields"] == "config,quota_usage")
        let publish = FakeSocialServer.form(String(decoding: requests[6].body, as: UTF8.self))
        #expect(publish == ["creation_id": "17900000000001", "access_token": secretToken])
        for request in requests {
            #expect(!leaksToken(request))
        }
        #expect(logs.all.allSatisfy { !$0.contains(secretToken) })
    }

    @Test(.timeLimit(.minutes(1)))
    func interruptedUploadResumesFromTheHostsOffset() async throws {
        let server = try FakeSocialServer(token: secretToken)
        defer { server.shutdown() }
        server.withState { $0.instagram.dropUploadAfter = 600_000 }
        let size = 2 * miB + 3
        let file = try makeVideo(size: size, seed: 9)
        defer { try? FileManager.default.removeItem(at: file) }
        let sleeps = SleepRecorder()

        let result = try await publisher(server, sleeps: sleeps).publish(file: file, caption: caption)

        #expect(result.uploadAttempts == 2)
        #expect(sleeps.all == [.milliseconds(100)])
        let uploads = server.requests.filter { $0.path.hasPrefix("/ig-api-upload/") }
        #expect(uploads.map(\.method) == ["POST", "GET", "POST"])
        #expect(uploads[0].dropped)
        #expect(uploads[2].header("offset") == "600000")
        #expect(uploads[2].body.count == size - 600_000)
        #expect(try sha256(containerBytes(server, result.containerID)) == sha256(file: file))
    }

    @Test(.timeLimit(.minutes(1)))
    func interruptedUploadWithoutAnOffsetStartsOver() async throws {
        let server = try FakeSocialServer(token: secretToken)
        defer { server.shutdown() }
        server.withState {
            $0.instagram.dropUploadAfter = 600_000
            $0.instagram.reportsOffset = false
        }
        let size = 2 * miB
        let file = try makeVideo(size: size, seed: 10)
        defer { try? FileManager.default.removeItem(at: file) }

        let result = try await publisher(server).publish(file: file, caption: caption)

        let posts = server.requests.filter { $0.path.hasPrefix("/ig-api-upload/") && $0.method == "POST" }
        #expect(posts.map { $0.header("offset") } == ["0", "0"])
        #expect(posts[1].body.count == size)
        #expect(try sha256(containerBytes(server, result.containerID)) == sha256(file: file))
    }

    @Test(.timeLimit(.minutes(1)))
    func errorStatusStopsWithThePlatformsText() async throws {
        let server = try FakeSocialServer(token: secretToken)
        defer { server.shutdown() }
        server.withState { $0.instagram.statuses = ["IN_PROGRESS", "ERROR"] }
        let file = try makeVideo(size: 300 * kiB)
        defer { try? FileManager.default.removeItem(at: file) }

        await #expect(throws: UploadError.containerFailed(containerID: "17900000000001",
                                                          status: "Error: Media upload has failed with error code 2207026.")) {
            try await publisher(server).publish(file: file, caption: caption)
        }
        #expect(server.withState { $0.publishedMedia.isEmpty })
    }

    @Test(.timeLimit(.minutes(1)))
    func expiredContainerStopsWithTheTypedError() async throws {
        let server = try FakeSocialServer(token: secretToken)
        defer { server.shutdown() }
        server.withState { $0.instagram.statuses = ["EXPIRED"] }
        let file = try makeVideo(size: 300 * kiB)
        defer { try? FileManager.default.removeItem(at: file) }

        await #expect(throws: UploadError.containerExpired(containerID: "17900000000001")) {
            try await publisher(server).publish(file: file, caption: caption)
        }
    }

    @Test(.timeLimit(.minutes(1)))
    func publishingLimitReachedPublishesNothing() async throws {
        let server = try FakeSocialServer(token: secretToken)
        defer { server.shutdown() }
        server.withState {
            $0.instagram.quotaUsage = 50
            $0.instagram.quotaTotal = 50
        }
        let file = try makeVideo(size: 300 * kiB)
        defer { try? FileManager.default.removeItem(at: file) }

        let error = await #expect(throws: UploadError.self) {
            try await publisher(server).publish(file: file, caption: caption)
        }
        #expect(error == .publishingLimitReached(quotaUsage: 50, quotaTotal: 50))
        #expect(error?.pendingReason.contains("stays pending") == true)
        #expect(!server.requests.contains { $0.path.hasSuffix("/media_publish") })
    }

    @Test(.timeLimit(.minutes(1)))
    func pollingGivesUpAfterTheLimit() async throws {
        let server = try FakeSocialServer(token: secretToken)
        defer { server.shutdown() }
        server.withState { $0.instagram.statuses = ["IN_PROGRESS"] }
        let file = try makeVideo(size: 300 * kiB)
        defer { try? FileManager.default.removeItem(at: file) }
        let polls = SleepRecorder()

        await #expect(throws: UploadError.processingTimedOut(containerID: "17900000000001", polls: 4)) {
            try await publisher(server, polls: polls, maxPolls: 4).publish(file: file, caption: caption)
        }
        #expect(polls.all.count == 3)
    }

    @Test(.timeLimit(.minutes(1)))
    func refusalsNeverCarryTheToken() async throws {
        let server = try FakeSocialServer(token: "a-different-token")
        defer { server.shutdown() }
        let file = try makeVideo(size: 300 * kiB)
        defer { try? FileManager.default.removeItem(at: file) }
        let logs = LogCapture()

        let error = try #require(await #expect(throws: UploadError.self) {
            try await publisher(server, logs: logs).publish(file: file, caption: caption)
        })
        #expect(error == .rejected(platform: .instagram, status: 400, message: "Invalid OAuth access token."))
        #expect(!error.description.contains(secretToken))
        #expect(!String(reflecting: error).contains(secretToken))
        #expect(logs.all.allSatisfy { !$0.contains(secretToken) })
    }

    @Test(.timeLimit(.minutes(1)))
    func captionFromMetadata() {
        let metadata = ShortMetadata(title: "Sunny 3-room", description: "Near Gangnam station", tags: ["seoul", "real estate"])
        #expect(metadata.instagramCaption == "Sunny 3-room\n\nNear Gangnam station\n\n#seoul #realestate")
    }
}
