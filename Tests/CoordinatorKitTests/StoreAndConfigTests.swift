import Foundation
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
        JobRow(id: id, kind: "echo", name: "n", spec: Data(), state: "queued", total: total, maxAttempts: 3,
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
        #expect(try s.job("j1")?.state == "running")
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
            try s.apply([.finished(job: "j2", state: "succeeded", error: nil, summarize: nil)])
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
