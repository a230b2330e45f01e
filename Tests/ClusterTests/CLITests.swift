import Foundation
import Learning
import Testing
import Wire
@testable import CoordinatorKit

extension ProcessClusterSuites {
/// The `coordinator` executable refuses bad input with messages that name the value, the
/// key or the file, and writes nothing when it fails.
@Suite(.serialized, .timeLimit(.minutes(2))) struct CLIErrorTests {
    struct Run {
        var status: Int32
        var stdout: String
        var stderr: String
        var firstErrorLine: String { String(stderr.split(separator: "\n").first ?? "") }
    }

    func coordinator(_ arguments: [String]) throws -> Run {
        let process = Process()
        process.executableURL = ProcessCluster.binDirectory.appendingPathComponent("coordinator")
        process.arguments = arguments
        let out = Pipe(), err = Pipe()
        process.standardOutput = out
        process.standardError = err
        try process.run()
        let stdout = out.fileHandleForReading.readDataToEndOfFile()
        let stderr = err.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return Run(status: process.terminationStatus, stdout: String(decoding: stdout, as: UTF8.self), stderr: String(decoding: stderr, as: UTF8.self))
    }

    func temporaryDirectory() throws -> URL {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("tower-cli-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        return dir
    }

    @Test func echoFlagsAreRefusedWithTheValueGiven() throws {
        // Refused before any connection is tried (nothing listens on port 1).
        let tasks = try coordinator(["submit", "echo", "--tasks=-1", "--coordinator", "127.0.0.1:1"])
        #expect(tasks.status == 64)
        #expect(tasks.firstErrorLine == "Error: --tasks must be from 1 to 5000000, got -1")
        let payload = try coordinator(["submit", "echo", "--payload-bytes", "999999999999", "--coordinator", "127.0.0.1:1"])
        #expect(payload.status == 64)
        #expect(payload.firstErrorLine == "Error: --payload-bytes must be from 0 to 16777216, got 999999999999")
        let version = try coordinator(["promote", "match", "--reason", "x", "--coordinator", "127.0.0.1:1", "--", "-5"])
        #expect(version.status == 64)
        #expect(version.firstErrorLine == "Error: VERSION must be from 1 to 4294967295, got -5")
        let demo = try coordinator(["demo", "--tasks=-3"])
        #expect(demo.firstErrorLine == "Error: --tasks must be from 1 to 5000000, got -3")
        let jobs = try coordinator(["jobs", "--limit=0", "--coordinator", "127.0.0.1:1"])
        #expect(jobs.firstErrorLine == "Error: --limit must be from 1 to 1000, got 0")
    }

    @Test func trainingSetAndDemoDataRefuseAWindowTheyCannotUse() throws {
        let none = try coordinator(["training-set", "build", "--coordinator", "127.0.0.1:1"])
        #expect(none.status == 64)
        #expect(none.firstErrorLine == "Error: name the window: --days N (the last N days) or --from TIME [--to TIME]")
        let both = try coordinator(["training-set", "build", "--days", "30", "--from", "2026-06-01", "--coordinator", "127.0.0.1:1"])
        #expect(both.firstErrorLine == "Error: give --days or --from/--to, not both")
        let to = try coordinator(["training-set", "build", "--days", "30", "--to", "2026-06-01", "--coordinator", "127.0.0.1:1"])
        #expect(to.firstErrorLine == "Error: --to goes with --from; --days always ends now")
        let zero = try coordinator(["training-set", "build", "--days", "0", "--coordinator", "127.0.0.1:1"])
        #expect(zero.firstErrorLine == "Error: --days must be from 1 to 3650, got 0")
        let held = try coordinator(["demo-data", "--feature-store", "--out", try temporaryDirectory().path, "--listings", "10", "--new-listings", "10"])
        #expect(held.firstErrorLine == "Error: --new-listings must be from 0 to 9 (fewer than --listings), got 10")
        let drift = try coordinator(["demo-data", "--feature-store", "--out", try temporaryDirectory().path, "--days", "30", "--drift-after-day", "30"])
        #expect(drift.firstErrorLine == "Error: --drift-after-day must be within 0–29.")
    }

    /// `demo-data --feature-store` writes files `ingest` parses whole, their events inside
    /// the --days days that end when it ran, the new listings in no event.
    @Test func demoDataWritesTheFeatureStoreFilesIngestReads() throws {
        let dir = try temporaryDirectory().appendingPathComponent("store")
        let before = Date().timeIntervalSince1970.rounded(.down)
        let run = try coordinator(["demo-data", "--feature-store", "--out", dir.path, "--users", "50", "--listings", "40", "--interactions", "900",
                                   "--days", "10", "--new-listings", "4", "--seed", "3"])
        let after = Date().timeIntervalSince1970
        #expect(run.status == 0, "\(run.stderr)")
        let users = try FeatureStoreFiles.users(CSVTable(contentsOf: dir.appendingPathComponent("users.csv")))
        let listings = try FeatureStoreFiles.listings(CSVTable(contentsOf: dir.appendingPathComponent("listings.csv")))
        let new = try FeatureStoreFiles.listings(CSVTable(contentsOf: dir.appendingPathComponent("new-listings.csv")))
        let events = try FeatureStoreFiles.events(CSVTable(contentsOf: dir.appendingPathComponent("events.csv")))
        #expect(users.count == 50)
        #expect(listings.map(\.value.listing.id) == Array(1...36))
        #expect(new.map(\.value.listing.id) == Array(37...40))
        #expect(new.allSatisfy { $0.eventTime == nil && $0.writtenAt == nil })
        #expect(events.allSatisfy { $0.value.listingID <= 36 })
        let times = events.map(\.value.eventTime)
        #expect(times.min()! >= before - 10 * 86_400 && times.max()! < after)
        let impressions = events.filter { $0.value.type == .impression }.count
        let clicks = events.filter { $0.value.type == .click }.count
        let contracts = events.filter { $0.value.type == .contract }.count
        let lines = run.stdout.split(separator: "\n").map(String.init)
        #expect(lines.count == 2)
        #expect(lines[0].hasPrefix("wrote \(dir.path): 50 users, 36 listings, \(events.count) events (\(impressions) impressions, \(clicks) clicks, \(contracts) contracts) from "))
        #expect(lines[0].hasSuffix("; 4 new listings in new-listings.csv"))
        #expect(lines[1] == "next: coordinator ingest users \(dir.path)/users.csv, then listings \(dir.path)/listings.csv and events \(dir.path)/events.csv")
    }

    @Test func serveRefusesBadTimeoutsAndMalformedConfigNamingThem() throws {
        let dir = try temporaryDirectory()
        let lease = try coordinator(["serve", "--lease-timeout=-5", "--data-dir", dir.path])
        #expect(lease.status == 1)
        #expect(lease.firstErrorLine == "error: configuration error: --lease-timeout is -5.0; expected a number of seconds from 0.2 to 86400.0")
        let nan = try coordinator(["serve", "--heartbeat-interval=nan", "--data-dir", dir.path])
        #expect(nan.firstErrorLine == "error: configuration error: --heartbeat-interval is nan; expected a number of seconds from 0.05 to 43200.0")
        let config = dir.appendingPathComponent("tower.yaml")
        try Data("listen: 127.0.0.1:7443\ndata_dir: [oops\n".utf8).write(to: config)
        let yaml = try coordinator(["serve", "--config", config.path])
        #expect(yaml.status == 1)
        #expect(yaml.firstErrorLine == "error: configuration error: \(config.path), line 3 is not valid YAML: while parsing a flow sequence: did not find expected ',' or ']'; fix the syntax there (see Deploy/tower.yaml for a sample)")
        let durability = try coordinator(["serve", "--durability", "paranoid", "--data-dir", dir.path])
        #expect(durability.firstErrorLine == "error: configuration error: --durability is paranoid; expected normal or strict")
        #expect(!FileManager.default.fileExists(atPath: dir.appendingPathComponent("tower.sqlite").path))
    }

    /// Learning commands let ArgumentParser print their errors ("Error: …", capitalised).
    @Test func aCSVThatFailsWritesNothing() throws {
        let dir = try temporaryDirectory()
        let csv = dir.appendingPathComponent("one-line.csv")
        try Data(repeating: 0x78, count: 3 << 20).write(to: csv)  // 3 MiB, no newline
        let out = dir.appendingPathComponent("out")
        let model = out.appendingPathComponent("model.tower")
        let plots = out.appendingPathComponent("plots")
        let run = try coordinator(["train", "--csv", csv.path, "--out", model.path, "--plots", plots.path])
        #expect(run.status == 1)
        #expect(run.firstErrorLine == "Error: \(csv.path):1: the line is longer than 1048576 bytes; this is not a CSV file with one record per line (check the file and its line endings).")
        #expect(!FileManager.default.fileExists(atPath: out.path), "\(String(describing: try? FileManager.default.contentsOfDirectory(atPath: out.path)))")
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir.path) == ["one-line.csv"])

        // A CSV that fails later (a bad value on line 3) writes nothing either.
        let bad = dir.appendingPathComponent("bad.csv")
        try Data("a,label\n1,0\nx,1\n".utf8).write(to: bad)
        let late = try coordinator(["train", "--csv", bad.path, "--out", model.path, "--plots", plots.path])
        #expect(late.status == 1)
        #expect(late.firstErrorLine == "Error: \(bad.path):3: column 1 ('a') has non-numeric value 'x'. Fix the value, leave it empty or write NA for missing, or declare the column categorical (--categorical a).")
        #expect(!FileManager.default.fileExists(atPath: out.path))
    }

    @Test func followStopsWhenTheCoordinatorIsGone() async throws {
        let (c, op) = try await ProcessCluster.running(workers: ["w1"], slots: 1)
        defer { op.close(); c.stopAll() }
        let job = try await c.submitEcho(op, tasks: 20, sleepMs: 500)
        c.kill9(c.coordinator)
        // What one poll now fails with (the connection is gone), to build the exact error.
        let lastError: Error
        do { _ = try await op.job(job); Issue.record("a dead coordinator answered"); return } catch { lastError = error }
        do {
            _ = try await op.follow(job, every: .milliseconds(20), maxFailedPolls: 3) { _ in }
            Issue.record("follow returned without a coordinator")
        } catch {
            #expect(error as? WireError == JobFollower.unreachable(job: job, polls: 3, lastError: lastError), "\(error)")
        }
    }

    @Test func workerFlagsAreRefusedNamingTheFlag() throws {
        let process = Process()
        process.executableURL = ProcessCluster.binDirectory.appendingPathComponent("worker")
        process.arguments = ["--coordinator", "127.0.0.1:1", "--cert", "c.pem", "--key", "k.pem", "--ca", "ca.pem", "--slots", "0"]
        let err = Pipe()
        process.standardError = err
        process.standardOutput = FileHandle.nullDevice
        try process.run()
        let text = String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        #expect(process.terminationStatus == 64)
        #expect(text.split(separator: "\n").first == "Error: --slots must be from 1 to 4096, got 0")
    }
}
}
