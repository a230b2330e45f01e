import Foundation
import Testing
@testable import MediaUpload

/// The YouTube resumable protocol against the fake server: chunking, resuming from the
/// server's Range, backoff, session restarts and the refusals that keep a short pending.
@Suite struct YouTubeUploaderTests {
    let metadata = ShortMetadata(title: "역세권 84㎡ 3룸 — 5.2억", description: "Gangnam, 4 min to the subway",
                                 tags: ["apartment", "seoul"], categoryID: "19", privacy: .unlisted)

    func uploader(_ server: FakeSocialServer, chunk: Int = miB, sleeps: SleepRecorder = SleepRecorder(),
                  restarts: Int = 2, logs: LogCapture = LogCapture()) throws -> YouTubeUploader {
        try YouTubeUploader(configuration: .init(token: AccessToken(secretToken), baseURL: server.baseURL,
                                                 chunkSize: chunk, retry: sleeps.backoff(), maxSessionRestarts: restarts,
                                                 requestTimeout: 10),
                            logger: logs.logger("test.youtube"))
    }

    /// Upload PUTs that carry bytes, in order.
    func chunkPuts(_ server: FakeSocialServer) -> [FakeSocialServer.Recorded] {
        server.requests.filter { $0.method == "PUT" && !($0.header("content-range") ?? "").contains("*") }
    }

    /// The chunk length a PUT announced in `Content-Range: bytes a-b/N`.
    func declaredLength(_ request: FakeSocialServer.Recorded) -> Int {
        let bounds = (request.header("Content-Range") ?? "").dropFirst("bytes ".count)
            .split(whereSeparator: { $0 == "-" || $0 == "/" }).compactMap { Int($0) }
        return bounds.count == 3 ? bounds[1] - bounds[0] + 1 : -1
    }

    func assertNoTokenLeak(_ server: FakeSocialServer, _ logs: LogCapture) {
        for request in server.requests {
            #expect(!leaksToken(request))
        }
        #expect(!logs.all.isEmpty)
        #expect(logs.all.allSatisfy { !$0.contains(secretToken) })
    }

    @Test(.timeLimit(.minutes(1)))
    func cleanUploadSendsAlignedChunksAndAssemblesTheFile() async throws {
        let server = try FakeSocialServer(token: secretToken)
        defer { server.shutdown() }
        let size = 3 * miB + 12_345
        let file = try makeVideo(size: size)
        defer { try? FileManager.default.removeItem(at: file) }
        let sleeps = SleepRecorder()
        let logs = LogCapture()

        let result = try await uploader(server, sleeps: sleeps, logs: logs).upload(file: file, metadata: metadata)

        #expect(result == YouTubeUploader.Result(videoID: "vidsession1", bytes: size, sessionRestarts: 0, retries: 0))
        let start = try #require(server.requests.first)
        #expect(start.method == "POST")
        #expect(start.uri == "/upload/youtube/v3/videos?uploadType=resumable&part=snippet,status")
        #expect(start.header("Authorization") == "Bearer \(secretToken)")
        #expect(start.header("Content-Type") == "application/json; charset=UTF-8")
        #expect(start.header("X-Upload-Content-Length") == "\(size)")
        #expect(start.header("X-Upload-Content-Type") == "video/mp4")
        let resource = try #require(try JSONSerialization.jsonObject(with: Data(start.body)) as? [String: Any])
        let snippet = try #require(resource["snippet"] as? [String: Any])
        let status = try #require(resource["status"] as? [String: Any])
        #expect(snippet["title"] as? String == metadata.title)
        #expect(snippet["description"] as? String == metadata.description)
        #expect(snippet["tags"] as? [String] == metadata.tags)
        #expect(snippet["categoryId"] as? String == "19")
        #expect(status["privacyStatus"] as? String == "unlisted")
        #expect(status["selfDeclaredMadeForKids"] as? Bool == false)

        let puts = chunkPuts(server)
        #expect(puts.map(\.body.count) == [miB, miB, miB, 12_345])
        #expect(puts.dropLast().allSatisfy { $0.body.count % (256 * kiB) == 0 })
        #expect(puts.map { $0.header("Content-Range") } == [
            "bytes 0-\(miB - 1)/\(size)", "bytes \(miB)-\(2 * miB - 1)/\(size)",
            "bytes \(2 * miB)-\(3 * miB - 1)/\(size)", "bytes \(3 * miB)-\(size - 1)/\(size)",
        ])
        #expect(puts.allSatisfy { $0.header("Authorization") == "Bearer \(secretToken)" })
        let held = try #require(server.withState { $0.sessions["session1"]?.bytes })
        #expect(try sha256(held) == sha256(file: file))
        #expect(sleeps.all.isEmpty)
        assertNoTokenLeak(server, logs)
    }

    @Test(.timeLimit(.minutes(1)))
    func interruptedUploadResumesExactlyFromTheServersRange() async throws {
        let server = try FakeSocialServer(token: secretToken)
        defer { server.shutdown() }
        // Chunk 1 is only partly kept (308 with a short Range); chunk 3 loses its
        // connection after 100 000 bytes, which the server keeps.
        server.withState {
            $0.youTube.chunkFaults = [1: .acceptPartially(bytes: 512 * kiB), 3: .dropConnection(afterBytes: 100_000)]
        }
        let size = 3 * miB + 12_345
        let file = try makeVideo(size: size, seed: 7)
        defer { try? FileManager.default.removeItem(at: file) }
        let sleeps = SleepRecorder()
        let logs = LogCapture()

        let result = try await uploader(server, sleeps: sleeps, logs: logs).upload(file: file, metadata: metadata)

        #expect(result.videoID == "vidsession1")
        #expect(result.retries == 1)
        let requests = server.requests.dropFirst()  // the session start
        let ranges = requests.map { $0.header("Content-Range") ?? "" }
        let c1 = 512 * kiB, c2 = c1 + miB, cut = c2 + 100_000
        #expect(ranges == [
            "bytes 0-\(miB - 1)/\(size)",              // 308: only 0-(512 KiB - 1) kept
            "bytes \(c1)-\(c2 - 1)/\(size)",           // continues from the Range, not from 1 MiB
            "bytes \(c2)-\(c2 + miB - 1)/\(size)",     // dropped after 100 000 bytes
            "bytes */\(size)",                         // status query: 308 Range bytes=0-(cut-1)
            "bytes \(cut)-\(cut + miB - 1)/\(size)",   // resumes exactly after the Range
            "bytes \(cut + miB)-\(size - 1)/\(size)",
        ])
        let dropped = requests.filter(\.dropped)
        #expect(dropped.count == 1)
        let query = requests[requests.startIndex + 3]
        #expect(query.body.isEmpty)
        #expect(query.header("Content-Length") == "0")
        // Every chunk the client declared, the dropped one included, is 256 KiB-aligned but the last.
        #expect(chunkPuts(server).dropLast().allSatisfy { declaredLength($0) % (256 * kiB) == 0 })
        let held = try #require(server.withState { $0.sessions["session1"]?.bytes })
        #expect(try sha256(held) == sha256(file: file))
        #expect(sleeps.all == [.milliseconds(100)])
        assertNoTokenLeak(server, logs)
    }

    @Test(.timeLimit(.minutes(1)))
    func serviceUnavailableTwiceBacksOffExponentiallyThenSucceeds() async throws {
        let server = try FakeSocialServer(token: secretToken)
        defer { server.shutdown() }
        server.withState { $0.youTube.chunkFaults = [2: .status(503), 3: .status(503)] }
        let size = 2 * miB + 1
        let file = try makeVideo(size: size, seed: 3)
        defer { try? FileManager.default.removeItem(at: file) }
        let sleeps = SleepRecorder()

        let result = try await uploader(server, sleeps: sleeps).upload(file: file, metadata: metadata)

        #expect(result.retries == 2)
        #expect(sleeps.all == [.milliseconds(100), .milliseconds(200)])
        let ranges = server.requests.dropFirst().map { $0.header("Content-Range") ?? "" }
        #expect(ranges == [
            "bytes 0-\(miB - 1)/\(size)",
            "bytes \(miB)-\(2 * miB - 1)/\(size)", "bytes */\(size)",   // 503, then ask
            "bytes \(miB)-\(2 * miB - 1)/\(size)", "bytes */\(size)",   // 503 again, ask again
            "bytes \(miB)-\(2 * miB - 1)/\(size)",
            "bytes \(2 * miB)-\(2 * miB)/\(size)",
        ])
        let held = try #require(server.withState { $0.sessions["session1"]?.bytes })
        #expect(try sha256(held) == sha256(file: file))
    }

    @Test(.timeLimit(.minutes(1)))
    func retriesAreBoundedAndEndInServerUnavailable() async throws {
        let server = try FakeSocialServer(token: secretToken)
        defer { server.shutdown() }
        server.withState { s in
            for n in 1...20 { s.youTube.chunkFaults[n] = .status(503) }
        }
        let file = try makeVideo(size: 300 * kiB)
        defer { try? FileManager.default.removeItem(at: file) }
        let sleeps = SleepRecorder()

        await #expect(throws: UploadError.serverUnavailable(platform: .youTube, attempts: 5, lastProblem: "HTTP 503")) {
            try await uploader(server, sleeps: sleeps).upload(file: file, metadata: metadata)
        }
        #expect(sleeps.all == [.milliseconds(100), .milliseconds(200), .milliseconds(400), .milliseconds(800)])
    }

    @Test(.timeLimit(.minutes(1)))
    func expiredSessionStartsANewOneFromByteZero() async throws {
        let server = try FakeSocialServer(token: secretToken)
        defer { server.shutdown() }
        server.withState { $0.youTube.chunkFaults = [2: .expireSession] }
        let size = 2 * miB + 100
        let file = try makeVideo(size: size, seed: 11)
        defer { try? FileManager.default.removeItem(at: file) }

        let result = try await uploader(server).upload(file: file, metadata: metadata)

        #expect(result.videoID == "vidsession2")
        #expect(result.sessionRestarts == 1)
        #expect(server.requests.filter { $0.method == "POST" }.count == 2)
        let secondSession = server.requests.filter { $0.uri.contains("upload_id=session2") }
        #expect(secondSession.first?.header("Content-Range") == "bytes 0-\(miB - 1)/\(size)")
        let held = try #require(server.withState { $0.sessions["session2"]?.bytes })
        #expect(try sha256(held) == sha256(file: file))
    }

    @Test(.timeLimit(.minutes(1)))
    func sessionRestartsAreBounded() async throws {
        let server = try FakeSocialServer(token: secretToken)
        defer { server.shutdown() }
        server.withState { s in
            for n in 1...10 { s.youTube.chunkFaults[n] = .expireSession }
        }
        let file = try makeVideo(size: 300 * kiB)
        defer { try? FileManager.default.removeItem(at: file) }

        await #expect(throws: UploadError.sessionExpired(restarts: 1)) {
            try await uploader(server, restarts: 1).upload(file: file, metadata: metadata)
        }
        #expect(server.requests.filter { $0.method == "POST" }.count == 2)
    }

    @Test(.timeLimit(.minutes(1)))
    func quotaExceededStopsWithTheTypedErrorAndSendsNoBytes() async throws {
        let server = try FakeSocialServer(token: secretToken)
        defer { server.shutdown() }
        let message = "The request cannot be completed because you have exceeded your quota."
        server.withState { $0.youTube.startFailures = [(403, "quotaExceeded", message)] }
        let file = try makeVideo(size: 300 * kiB)
        defer { try? FileManager.default.removeItem(at: file) }

        let error = await #expect(throws: UploadError.self) {
            try await uploader(server).upload(file: file, metadata: metadata)
        }
        #expect(error == .quotaExceeded(message: message))
        #expect(error?.retryLater == true)
        #expect(error?.pendingReason.contains("stays pending") == true)
        #expect(server.requests.count == 1)
    }

    @Test(.timeLimit(.minutes(1)))
    func uploadLimitExceededStopsWithTheTypedError() async throws {
        let server = try FakeSocialServer(token: secretToken)
        defer { server.shutdown() }
        let message = "The user has exceeded the number of videos they may upload."
        server.withState { $0.youTube.startFailures = [(400, "uploadLimitExceeded", message)] }
        let file = try makeVideo(size: 300 * kiB)
        defer { try? FileManager.default.removeItem(at: file) }

        await #expect(throws: UploadError.uploadLimitExceeded(message: message)) {
            try await uploader(server).upload(file: file, metadata: metadata)
        }
        #expect(server.requests.count == 1)
    }

    @Test(.timeLimit(.minutes(1)))
    func plain403MidUploadIsARefusal() async throws {
        let server = try FakeSocialServer(token: secretToken)
        defer { server.shutdown() }
        server.withState { $0.youTube.chunkFaults = [2: .status(403)] }
        let file = try makeVideo(size: 2 * miB)
        defer { try? FileManager.default.removeItem(at: file) }

        // A 403 without the quota reason is a plain refusal with the API's message.
        await #expect(throws: UploadError.rejected(platform: .youTube, status: 403, message: "Backend Error")) {
            try await uploader(server).upload(file: file, metadata: metadata)
        }
    }

    @Test(.timeLimit(.minutes(1)))
    func otherRefusalsCarryStatusAndMessageButNeverTheToken() async throws {
        let server = try FakeSocialServer(token: secretToken)
        defer { server.shutdown() }
        // The API echoes the credential in its message; the error must not repeat it.
        server.withState { $0.youTube.startFailures = [(400, "invalidTitle", "bad request from Bearer \(secretToken)")] }
        let file = try makeVideo(size: 300 * kiB)
        defer { try? FileManager.default.removeItem(at: file) }
        let logs = LogCapture()

        let error = try #require(await #expect(throws: UploadError.self) {
            try await uploader(server, logs: logs).upload(file: file, metadata: metadata)
        })
        #expect(error == .rejected(platform: .youTube, status: 400, message: "bad request from Bearer <redacted>"))
        #expect(!error.description.contains(secretToken))
        #expect(!String(reflecting: error).contains(secretToken))
        #expect(logs.all.allSatisfy { !$0.contains(secretToken) })
    }

    @Test(.timeLimit(.minutes(1)))
    func wrongTokenIsRefusedWith401() async throws {
        let server = try FakeSocialServer(token: "another-token")
        defer { server.shutdown() }
        let file = try makeVideo(size: 300 * kiB)
        defer { try? FileManager.default.removeItem(at: file) }

        await #expect(throws: UploadError.rejected(platform: .youTube, status: 401, message: "Invalid Credentials")) {
            try await uploader(server).upload(file: file, metadata: metadata)
        }
    }

    @Test(.timeLimit(.minutes(1)))
    func chunkSizeMustBeAMultipleOf256KiB() throws {
        #expect(throws: UploadError.self) {
            try YouTubeUploader(configuration: .init(token: AccessToken(secretToken), chunkSize: 300 * kiB))
        }
        #expect(throws: UploadError.self) {
            try YouTubeUploader(configuration: .init(token: AccessToken(secretToken), chunkSize: 0))
        }
        let uploader = try YouTubeUploader(configuration: .init(token: AccessToken(secretToken)))
        #expect(uploader.configuration.chunkSize == 8 * miB)
        #expect(uploader.configuration.baseURL.absoluteString == "https://www.googleapis.com")
    }

    @Test(.timeLimit(.minutes(1)))
    func tokenNeverPrints() {
        let token = AccessToken(secretToken)
        #expect(!"\(token)".contains(secretToken))
        #expect(!String(reflecting: token).contains(secretToken))
        var dumped = ""
        dump(token, to: &dumped)
        #expect(!dumped.contains(secretToken))
        #expect(!"\(YouTubeUploader.Configuration(token: token))".contains(secretToken))
    }

    /// The response classification alone, without sockets.
    @Test(.timeLimit(.minutes(1)))
    func classificationOfSessionAnswers() {
        let token = AccessToken(secretToken)
        func answer(_ status: Int, _ headers: [String: String] = [:], _ body: String = "") -> HTTPAnswer {
            HTTPAnswer(status: status, headers: headers, body: Data(body.utf8))
        }
        #expect(YouTubeSessionOutcome.classify(answer(308), token: token) == .incomplete(persisted: 0))
        #expect(YouTubeSessionOutcome.classify(answer(308, ["range": "bytes=0-262143"]), token: token) == .incomplete(persisted: 262_144))
        #expect(YouTubeSessionOutcome.classify(answer(201, [:], #"{"id":"abc"}"#), token: token) == .completed(videoID: "abc"))
        #expect(YouTubeSessionOutcome.classify(answer(404), token: token) == .sessionExpired)
        #expect(YouTubeSessionOutcome.classify(answer(502), token: token) == .retryable("HTTP 502"))
        if case .stop(.invalidResponse) = YouTubeSessionOutcome.classify(answer(308, ["range": "bytes=5-9"]), token: token) {} else {
            Issue.record("a Range not starting at 0 must be refused")
        }
    }
}
