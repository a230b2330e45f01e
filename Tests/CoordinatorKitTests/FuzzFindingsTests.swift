import Foundation
import GRDB
import NIOCore
import NIOPosix
import Testing
import Wire
@testable import CoordinatorKit

/// Defects the coordinator fuzzers found, each pinned to its exact behaviour. Part of the
/// serialized SecurityTests, like every test here that runs an in-process coordinator.
extension SecurityTests {
    static func fuzzFrame(_ envelope: WireEnvelope) throws -> [UInt8] {
        let payload = try envelope.framePayload()
        return withUnsafeBytes(of: UInt32(payload.readableBytes).bigEndian) { Array($0) } + payload.readableBytesView
    }

    /// A worker's messages that arrive after its Hello but before its session is
    /// registered were dropped: a Drain sent with the Hello was never answered.
    @Test(.timeLimit(.minutes(2))) func messagesRightAfterAWorkersHelloAreAnsweredInOrder() async throws {
        // The raw worker sends no heartbeats: a long lease keeps it listed on a busy machine.
        let c = try await HardeningTests.start { $0.leaseTimeoutMs = 120_000 }
        defer { Task { await c.stop() } }
        let raw = try await RawTLSClient.connect(port: c.port, identity: try c.cluster.identity("w1"))
        // One write, so both frames are read before the session exists.
        try await raw.write(try Self.fuzzFrame(WireEnvelope(requestID: 1, .hello(c.hello(.worker, name: "w1"))))
                            + Self.fuzzFrame(WireEnvelope(requestID: 2, .drain(WireDrain())))
                            + Self.fuzzFrame(WireEnvelope(requestID: 3, .heartbeat(WireHeartbeat()))))
        var answers: [UInt64: String] = [:]
        for _ in 0..<3 {
            guard let e = try await raw.next() else { break }
            answers[e.requestID] = Permissions.name(of: e.body!)
        }
        #expect(answers == [1: "Welcome", 2: "Ack", 3: "Ack"])
        let op = try await c.operatorClient()
        defer { op.close() }
        #expect(try await op.workers().map(\.draining) == [true])
    }

    /// A task duration near UInt64.max from a worker trapped the coordinator (Int64
    /// conversion, then × 1000 for the timer); it is clamped and stored.
    @Test(.timeLimit(.minutes(2))) func aHugeTaskDurationFromAWorkerIsClampedNotACrash() async throws {
        let c = try await HardeningTests.start { $0.leaseTimeoutMs = 120_000 }
        defer { Task { await c.stop() } }
        let (w1, assigned) = try await HardeningTests.rawWorker(c, "w1")
        defer { w1.close() }
        let op = try await c.operatorClient()
        defer { op.close() }
        let job = try await op.submit(try HardeningTests.echo(tasks: 1, sleepMs: 0)).jobID
        try await HardeningTests.waitUntil("the task to reach w1") { assigned.tasks.count == 1 }
        let task = assigned.tasks[0]
        var outcome = WireTaskOutcome()
        outcome.taskID = task.taskID
        outcome.attempt = task.attempt
        outcome.durationUs = .max
        outcome.output = try WireEchoOutput.with { $0.payload = WireEchoSpec.payload(index: 0, bytes: 64); $0.worker = "w1" }.serializedData()
        w1.send(.results(.with { $0.outcomes = [outcome] }))
        let end = try await op.follow(job, every: .milliseconds(50)) { _ in }
        #expect(end.state == .succeeded)
        c.service.core.flushStore()
        let stored = try await c.service.core.store.pool.read { db in
            try Int64.fetchOne(db, sql: "SELECT duration_us FROM task WHERE job_id = ?", arguments: [job])
        }
        #expect(stored == Int64.max / 1000)
    }

    /// Found at scale by `tower-bench fuzz-messages`: a job with max_attempts near
    /// UInt32.max whose tasks a worker failed as not retryable stores each with that many
    /// attempts, and listing jobs trapped converting their sum to the wire's UInt32.
    @Test(.timeLimit(.minutes(2))) func retriesPastTheWireRangeAreClampedWhenJobsAreListed() async throws {
        let c = try await HardeningTests.start { $0.leaseTimeoutMs = 120_000 }
        defer { Task { await c.stop() } }
        let (w1, assigned) = try await HardeningTests.rawWorker(c, "w1")
        defer { w1.close() }
        let op = try await c.operatorClient()
        defer { op.close() }
        var spec = try HardeningTests.echo(tasks: 2, sleepMs: 0)
        spec.maxAttempts = .max
        let job = try await op.submit(spec).jobID
        try await HardeningTests.waitUntil("both tasks to reach w1") { assigned.tasks.count == 2 }
        w1.send(.results(.with { $0.outcomes = assigned.tasks.map { task in
            .with { $0.taskID = task.taskID; $0.attempt = task.attempt; $0.failure = .with { $0.message = "bad input"; $0.retryable = false } }
        } }))
        let end = try await op.follow(job, every: .milliseconds(50)) { _ in }
        #expect(end.state == .failed)
        #expect(end.failed == 2)
        // Read back from the store (the job is no longer live), where the sum is formed.
        let listed = try await op.jobs(limit: 10).first { $0.jobID == job }
        #expect(listed?.failed == 2)
        #expect(listed?.retries == UInt32.max)
    }

    /// Each of tasks and payload_bytes within its limit, their product in the terabytes:
    /// planning it would allocate every payload before anything was stored.
    @Test(.timeLimit(.minutes(2))) func anEchoJobWhosePayloadsTogetherExceedTheCapIsRefused() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("fuzz-blobs-\(UUID().uuidString.prefix(8))")
        let blobs = try BlobStore(root: dir.appendingPathComponent("blobs"))
        let store = try ClusterStore(path: dir.appendingPathComponent("tower.sqlite").path)
        let context = JobContext(store: store, blobs: blobs, tracking: TrackingStore(store), registry: ModelRegistry(store), dataDirectory: dir)
        let spec = try WireEchoSpec.with { $0.tasks = 65; $0.payloadBytes = UInt32(EchoPlanner.maxPayloadBytes) }.serializedData()
        #expect(throws: WireError.invalidArgument("echo.tasks × echo.payload_bytes must be at most 1073741824 bytes (the payloads are held in memory), got 65 × 16777216 = 1090519040")) {
            try EchoPlanner().plan(spec: spec, context: context)
        }
        let worst = try WireEchoSpec.with { $0.tasks = UInt32(EchoPlanner.maxTasks); $0.payloadBytes = UInt32(EchoPlanner.maxPayloadBytes) }.serializedData()
        #expect(throws: WireError.self) { try EchoPlanner().plan(spec: worst, context: context) }
    }

    /// Error bodies carried control characters from the path unescaped, which is not JSON.
    @Test(.timeLimit(.minutes(2))) func errorBodiesAreJSONWhateverThePathHolds() throws {
        let message = "not found: x\"\\\n\r\t\u{0}\u{1b}é"
        let json = APIHandler.errorJSON(message)
        #expect(json == "{\"error\": \"not found: x\\\"\\\\\\n\\r\\t\\u0000\\u001bé\"}")
        let decoded = try JSONSerialization.jsonObject(with: Data(json.utf8)) as? [String: String]
        #expect(decoded == ["error": message])
    }

    /// `//api//v1//models` was read as host `api`; `%2F` was decoded twice and split a
    /// segment. The target is split by hand and each segment decoded once.
    @Test(.timeLimit(.minutes(2))) func requestTargetsAreSplitAsPathsAndDecodedOnce() throws {
        #expect(APIHandler.target("//api//v1//models").path == "//api//v1//models")
        #expect(APIHandler.target("/api/v1/jobs?limit=5&x=%31").query == ["limit": "5", "x": "1"])
        #expect(APIHandler.target("https://localhost/api/v1/models?limit=2") == ("/api/v1/models", ["limit": "2"]))
        guard case .listModels = try HTTPSAPI.request(for: APIHandler.target("//api//v1//models").path, query: [:]) else {
            Issue.record("//api//v1//models should mirror ListModels")
            return
        }
        guard case let .getModel(get) = try HTTPSAPI.request(for: APIHandler.target("/api/v1/models/a%2Fb").path, query: [:]),
              case let .getModel(twice) = try HTTPSAPI.request(for: APIHandler.target("/api/v1/models/a%252Fb").path, query: [:]) else {
            Issue.record("a model path should mirror GetModel")
            return
        }
        #expect(get.name == "a/b")
        #expect(twice.name == "a%2Fb")
    }

    /// The same over HTTPS: a percent-encoded newline in a model name is a 404 whose body
    /// parses, and a doubled slash still reaches the route.
    @Test(.timeLimit(.minutes(2))) func theAPIAnswersOddTargetsWithJSON() async throws {
        let c = try await InProcessCoordinator.start()
        defer { Task { await c.stop() } }
        let identity = try c.cluster.identity("operator")
        guard case let .status(status, _, body) = try await APIFuzzer.get("/api/v1/models/x%0Ay", host: "127.0.0.1", port: c.service.apiPort!, identity: identity),
              case let .status(models, _, _) = try await APIFuzzer.get("//api//v1//models", host: "127.0.0.1", port: c.service.apiPort!, identity: identity) else {
            Issue.record("no HTTP status")
            return
        }
        #expect(status == 404)
        let error = try JSONSerialization.jsonObject(with: Data(body)) as? [String: String]
        #expect(error?["error"]?.contains("x\ny") == true, "\(String(decoding: body, as: UTF8.self))")
        #expect(models == 200)
    }
}
