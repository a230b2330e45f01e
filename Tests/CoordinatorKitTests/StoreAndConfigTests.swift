import Foundation
import NIOPosix
import Testing
import Wire
@testable import CoordinatorKit

@Suite struct StoreTests {
    func store() throws -> ClusterStore {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("tower-store-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        return try ClusterStore(path: dir.appendingPathComponent("t.sqlite").path)
    }

    func job(_ id: String, total: Int) -> JobRow {
        JobRow(id: id, kind: "echo", name: "n", spec: Data(), state: .queued, total: total, maxAttempts: 3,
               createdAt: Date(), finishedAt: nil, error: nil, summary: nil, submittedBy: "op")
    }

    @Test func resultsAreRecordedOnceEvenIfAppliedTwice() throws {
        let s = try store()
        let ids = try s.insertJob(job("j1", total: 3), tasks: (0..<3).map { PlannedTask(input: Data([UInt8($0)])) })
        #expect(ids.count == 3)
        let done = ClusterStore.Change.done(task: ids[0], attempts: 1, output: Data("a".utf8), worker: "w1", durationUs: 5)
        try s.apply([.started(job: "j1"), done])
        try s.apply([.done(task: ids[0], attempts: 2, output: Data("b".utf8), worker: "w2", durationUs: 5)])
        let rows = try s.results(job: "j1")
        #expect(rows[0].resultCount == 1)
        #expect(rows[0].output == Data("a".utf8))
        #expect(rows[0].worker == "w1")
        #expect(try s.pendingTasks(job: "j1").map(\.index) == [1, 2])
        #expect(try s.job("j1")?.state == .running)
    }

    @Test func unfinishedJobsAndAttemptsSurviveReopening() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("tower-store-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        let path = dir.appendingPathComponent("t.sqlite").path
        do {
            let s = try ClusterStore(path: path)
            let ids = try s.insertJob(job("j1", total: 2), tasks: [PlannedTask(input: Data()), PlannedTask(input: Data())])
            try s.apply([.attemptFailed(task: ids[1], attempts: 2, error: "lost")])
            _ = try s.insertJob(job("j2", total: 1), tasks: [PlannedTask(input: Data())])
            try s.apply([.finished(job: "j2", state: .succeeded, error: nil, summary: nil)])
        }
        let reopened = try ClusterStore(path: path)
        #expect(try reopened.unfinishedJobs().map(\.id) == ["j1"])
        #expect(try reopened.pendingTasks(job: "j1").map(\.attempts) == [0, 2])
        #expect(try reopened.auditLog().count == 2)
    }
}

@Suite struct ConfigTests {
    @Test func yamlConfigIsReadAndValidated() throws {
        let s = try CoordinatorSettings.load(yaml: """
            listen: 127.0.0.1:9000
            data_dir: /tmp/x
            lease_timeout_seconds: 10
            heartbeat_interval_seconds: 2
            max_attempts: 5
            """)
        #expect(s.listenHost == "127.0.0.1" && s.listenPort == 9000)
        #expect(s.leaseTimeoutMs == 10_000 && s.heartbeatIntervalMs == 2_000 && s.maxAttempts == 5)
    }

    @Test func sampleConfigInDeployIsValid() throws {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let text = try String(contentsOf: root.appendingPathComponent("Deploy/tower.yaml"), encoding: .utf8)
        let s = try CoordinatorSettings.load(yaml: text)
        #expect(s.listenPort == 7443)
    }

    @Test func unknownKeysAndBadValuesNameTheKey() {
        #expect { try CoordinatorSettings.load(yaml: "lease_timeot_seconds: 3") } throws: { error in
            "\(error)".contains("lease_timeot_seconds")
        }
        #expect { try CoordinatorSettings.load(yaml: "max_attempts: 0") } throws: { error in
            "\(error)".contains("max_attempts")
        }
        #expect { try CoordinatorSettings.load(yaml: "listen: nowhere") } throws: { error in
            "\(error)".contains("listen")
        }
    }
}

@Suite struct PromotionConfigTests {
    @Test func thePromotionPolicyIsReadFromTheCoordinatorConfig() throws {
        let s = try CoordinatorSettings.load(yaml: """
            promotion:
              margin: 0.01
              min_holdout_rows: 50
            """)
        #expect(s.promotion.margin == 0.01)
        #expect(s.promotion.minHoldoutRows == 50)
        #expect { try CoordinatorSettings.load(yaml: "promotion: {margn: 0.01}") } throws: { "\($0)".contains("margn") }
    }
}

@Suite struct DurabilityAndStoreErrorTests {
    func directory() throws -> URL {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("tower-durability-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        return dir
    }

    func synchronous(_ store: ClusterStore) throws -> Int {
        try store.pool.read { db in try Int.fetchOne(db, sql: "PRAGMA synchronous") ?? -1 }
    }

    @Test func durabilitySetsTheSynchronousPragmaOnEveryConnection() throws {
        let dir = try directory()
        // SQLite reports synchronous as 1 for NORMAL and 2 for FULL.
        let normal = try ClusterStore(path: dir.appendingPathComponent("n.sqlite").path)
        #expect(normal.durability == .normal)
        #expect(try synchronous(normal) == 1)
        #expect(try normal.pool.write { db in try Int.fetchOne(db, sql: "PRAGMA synchronous") } == 1)
        let strict = try ClusterStore(path: dir.appendingPathComponent("s.sqlite").path, durability: .strict)
        #expect(try synchronous(strict) == 2)
        #expect(try strict.pool.write { db in try Int.fetchOne(db, sql: "PRAGMA synchronous") } == 2)
        #expect(try strict.pool.read { db in try String.fetchOne(db, sql: "PRAGMA journal_mode") } == "wal")
    }

    @Test func durabilityIsReadFromTheConfigAndValidated() throws {
        #expect(try CoordinatorSettings.load(yaml: "listen: 127.0.0.1:1").durability == .normal)
        #expect(try CoordinatorSettings.load(yaml: "durability: strict").durability == .strict)
        #expect(throws: ConfigError.invalidValue(key: "tower.yaml: durability", value: "paranoid", expected: "normal or strict")) {
            try CoordinatorSettings.load(yaml: "durability: paranoid", path: "tower.yaml")
        }
    }

    @Test func aCorruptStoreNamesTheFile() throws {
        let path = try directory().appendingPathComponent("tower.sqlite").path
        try Data(repeating: 0x41, count: 8192).write(to: URL(fileURLWithPath: path))
        #expect(throws: StoreOpenError.cannotOpen(path: path, reason: "file is not a database — the file is not a Tower store or is damaged; restore it from a backup or point data_dir elsewhere")) {
            try ClusterStore(path: path)
        }
    }

    @Test func aStoreInAMissingDirectoryNamesTheFile() throws {
        let path = try directory().appendingPathComponent("gone/tower.sqlite").path
        #expect(throws: StoreOpenError.cannotOpen(path: path, reason: "unable to open database file — the coordinator needs to read and write the file, its -wal and -shm files and their directory; check permissions, ownership and that the disk is mounted read-write")) {
            try ClusterStore(path: path)
        }
    }
}

@Suite struct ConnectionLimitConfigTests {
    @Test func limitsAreReadFromTheConfigAndBadOnesRefusedNamingTheKey() throws {
        let s = try CoordinatorSettings.load(yaml: "connection_limits: {handshake_timeout_seconds: 2.5, max_unauthenticated_per_address: 8}")
        #expect(s.connectionLimits.handshake_timeout_seconds == 2.5)
        #expect(s.connectionLimits.max_unauthenticated_per_address == 8)
        #expect(s.connectionLimits.max_unauthenticated == 256)
        #expect(throws: ConfigError.self) { try CoordinatorSettings.load(yaml: "connection_limits: {handshake_timeout_seconds: -1}") }
        do {
            _ = try CoordinatorSettings.load(yaml: "connection_limits: {handshake_timeout_seconds: -1}")
        } catch {
            #expect("\(error)".contains("connection_limits.handshake_timeout_seconds must be between 0.1 and 3600 seconds, got -1.0"), "\(error)")
        }
        do {
            _ = try CoordinatorSettings.load(yaml: "connection_limits: {handshake_timeout: 5}")
            Issue.record("an unknown key was accepted")
        } catch {
            #expect("\(error)".contains("connection_limits: unknown key \"handshake_timeout\"; known keys: handshake_timeout_seconds, frame_stall_timeout_seconds, max_unauthenticated, max_unauthenticated_per_address"), "\(error)")
        }
    }
}

@Suite struct ConfigErrorTests {
    @Test func malformedYAMLNamesTheFileAndLine() throws {
        do {
            _ = try CoordinatorSettings.load(yaml: "listen: 127.0.0.1:7443\ndata_dir: [unclosed\n", path: "/etc/tower/tower.yaml")
            Issue.record("malformed YAML was accepted")
        } catch let ConfigError.malformedYAML(path, line, _) {
            #expect(path == "/etc/tower/tower.yaml")
            #expect(line == 3)
        }
        let error = ConfigError.malformedYAML(path: "/etc/tower/tower.yaml", line: 3, reason: "did not find expected ',' or ']'")
        #expect(error.description == "configuration error: /etc/tower/tower.yaml, line 3 is not valid YAML: did not find expected ',' or ']'; fix the syntax there (see Deploy/tower.yaml for a sample)")
    }

    @Test(arguments: [
        ("lease_timeout_seconds: -5", "lease_timeout_seconds", "-5.0", "a number of seconds from 0.2 to 86400.0"),
        ("lease_timeout_seconds: .nan", "lease_timeout_seconds", "nan", "a number of seconds from 0.2 to 86400.0"),
        ("lease_timeout_seconds: 1e300", "lease_timeout_seconds", "1e+300", "a number of seconds from 0.2 to 86400.0"),
        ("heartbeat_interval_seconds: -1", "heartbeat_interval_seconds", "-1.0", "a number of seconds from 0.05 to 43200.0"),
        ("heartbeat_interval_seconds: .inf", "heartbeat_interval_seconds", "inf", "a number of seconds from 0.05 to 43200.0"),
    ])
    func badTimeoutsAreRefusedNamingTheKey(yaml: String, key: String, value: String, expected: String) throws {
        #expect(throws: ConfigError.invalidValue(key: "tower.yaml: \(key)", value: value, expected: expected)) {
            try CoordinatorSettings.load(yaml: yaml, path: "tower.yaml")
        }
    }

    @Test func flagTimeoutsAreCheckedTheSameWay() throws {
        #expect(throws: ConfigError.invalidValue(key: "--lease-timeout", value: "-3.0", expected: "a number of seconds from 0.2 to 86400.0")) {
            try CoordinatorSettings.milliseconds(-3, key: "--lease-timeout", from: 0.2, to: CoordinatorSettings.maxLeaseTimeoutSeconds)
        }
        #expect(try CoordinatorSettings.milliseconds(1.5, key: "--lease-timeout", from: 0.2, to: 10) == 1500)
        var s = CoordinatorSettings()
        s.leaseTimeoutMs = UInt64.max
        #expect(throws: ConfigError.invalid("lease_timeout_seconds must be from 0.2 to 86400.0")) { try s.validate() }
    }

    @Test func aMetricsPortInUseNamesTheAddress() async throws {
        let holder = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton).bind(host: "127.0.0.1", port: 0).get()
        defer { holder.close(promise: nil) }
        let taken = "127.0.0.1:\(holder.localAddress!.port!)"
        let cluster = try LocalCluster.temporary(prefix: "tower-port")
        try cluster.issueCertificates(workers: [])
        var settings = cluster.coordinatorSettings(metrics: true)
        settings.metricsListen = taken
        let service = try CoordinatorService(settings: settings, group: MultiThreadedEventLoopGroup.singleton)
        defer { Task { await service.shutdown() } }
        do {
            try await service.start()
            Issue.record("the metrics endpoint bound an address already in use")
        } catch let ConfigError.cannotListen(service, address, reason, flag) {
            #expect(service == "metrics" && address == taken && flag == "--metrics-listen")
            #expect(reason.contains("Address already in use"), "\(reason)")
        }
        // The API's port too.
        var api = cluster.coordinatorSettings()
        api.apiListen = taken
        api.dataDirectory = cluster.directory.appendingPathComponent("data-api").path
        let second = try CoordinatorService(settings: api, group: MultiThreadedEventLoopGroup.singleton)
        defer { Task { await second.shutdown() } }
        do {
            try await second.start()
            Issue.record("the API bound an address already in use")
        } catch let ConfigError.cannotListen(service, address, reason, flag) {
            #expect(service == "the API" && address == taken && flag == "--api-listen")
            #expect(reason.contains("Address already in use"), "\(reason)")
        }
        let error = ConfigError.cannotListen(service: "metrics", address: taken, reason: "bind: Address already in use (errno: 98)", flag: "--metrics-listen")
        #expect(error.description == "configuration error: cannot serve metrics on \(taken): bind: Address already in use (errno: 98) — is another coordinator or program using that address? choose another with --metrics-listen, or \"\" to disable it")
    }
}

/// A store file that cannot be written, even by root: `chattr +i` (ext4 and most Linux
/// file systems), undone afterwards.
@Suite struct ReadOnlyStoreTests {
    static func chattr(_ flag: String, _ path: String) -> Bool {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        p.arguments = ["chattr", flag, path]
        p.standardOutput = FileHandle.nullDevice
        p.standardError = FileHandle.nullDevice
        guard (try? p.run()) != nil else { return false }
        p.waitUntilExit()
        return p.terminationStatus == 0
    }

    static let canMakeImmutable: Bool = {
        let probe = FileManager.default.temporaryDirectory.appendingPathComponent("tower-chattr-\(UUID().uuidString.prefix(8))")
        FileManager.default.createFile(atPath: probe.path, contents: nil)
        defer { _ = chattr("-i", probe.path); try? FileManager.default.removeItem(at: probe) }
        return chattr("+i", probe.path)
    }()

    @Test(.enabled(if: canMakeImmutable, "needs chattr +i (root on ext4/xfs)"))
    func aReadOnlyStoreNamesTheFile() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("tower-ro-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        let path = dir.appendingPathComponent("tower.sqlite").path
        do { _ = try ClusterStore(path: path) }
        for file in [path, path + "-wal", path + "-shm", dir.path] where FileManager.default.fileExists(atPath: file) {
            #expect(Self.chattr("+i", file))
        }
        defer { for file in [dir.path, path, path + "-wal", path + "-shm"] { _ = Self.chattr("-i", file) } }
        do {
            _ = try ClusterStore(path: path)
            Issue.record("a read-only store opened")
        } catch let StoreOpenError.cannotOpen(failedPath, reason) {
            #expect(failedPath == path)
            #expect(reason == "unable to open database file — the coordinator needs to read and write the file, its -wal and -shm files and their directory; check permissions, ownership and that the disk is mounted read-write")
        }
    }
}
