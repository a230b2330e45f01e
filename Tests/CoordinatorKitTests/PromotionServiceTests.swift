import Foundation
import Learning
import Logging
import Testing
import Wire
@testable import CoordinatorKit

/// The one promotion path, with real models on a real holdout: what a crash at each point
/// leaves, and what the loser of a race for the alias records.
@Suite(.serialized) struct PromotionServiceTests {
    struct Fixture {
        let registry: ModelRegistry
        let blobs: BlobStore
        let service: PromotionService
        let holdout: Dataset
        let weak: Data
        let strong: Data
    }

    static func fixture() throws -> Fixture {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("tower-promote-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        let market = dir.appendingPathComponent("market")
        try DemoMarket(.init(users: 300, listings: 400, interactions: 9_000, seed: 4)).generate().write(to: market)
        let prepared = try LearningWorkflow.prepare(.market(directory: market))
        func model(_ parameters: String) throws -> Data {
            let outcome = try LearningWorkflow.train(prepared, parameters: try BoostingParameters(parsing: parameters), gitCommit: "t", progressEvery: 0) { _ in }
            return ModelFile.encode(outcome.model)
        }
        let store = try ClusterStore(path: dir.appendingPathComponent("t.sqlite").path)
        let registry = ModelRegistry(store)
        let blobs = try BlobStore(root: dir.appendingPathComponent("blobs"))
        var logger = Logger(label: "test")
        logger.logLevel = .critical
        return Fixture(registry: registry, blobs: blobs, service: PromotionService(registry: registry, blobs: blobs, logger: logger),
                       holdout: try #require(prepared.test),
                       weak: try model("num_iterations=2,num_leaves=2,learning_rate=0.05"),
                       strong: try model("num_iterations=60,num_leaves=15"))
    }

    static func candidate(_ file: Data, source: String) -> PromotionService.Candidate {
        .init(model: "match", modelFile: file, runID: nil, metrics: [:], source: source, description: "from \(source)")
    }

    /// Floors only, so the first candidate becomes champion whatever its numbers.
    static let lenient = try! PromotionPolicy(yaml: "floors: {auc: 0.5}\nmin_holdout_rows: 10")

    @Test func runningAgainAfterACrashRegistersNothingNewAndDecidesNothingTwice() throws {
        let f = try Self.fixture()
        let first = try f.service.consider(Self.candidate(f.weak, source: "job-1"), holdout: f.holdout, policy: Self.lenient)
        #expect(first.version == 1 && first.promoted)
        // The job's end was not recorded (a crash after the decision): it runs again.
        let again = try f.service.consider(Self.candidate(f.weak, source: "job-1"), holdout: f.holdout, policy: Self.lenient)
        #expect(again == first)
        #expect(try f.registry.versions(of: "match").count == 1)
        #expect(try f.registry.decisions(model: "match").count == 1)
        #expect(try f.registry.alias("match", "champion") == 1)
    }

    @Test func aCrashBetweenRegisteringAndDecidingDecidesOnceOnTheSameVersion() throws {
        let f = try Self.fixture()
        // Registered, then the coordinator died before the decision.
        let sha = try f.blobs.put(f.weak)
        let registered = try f.registry.registerVersion(model: "match", runID: nil, sha256: sha, metrics: [:], sourceJob: "job-1")
        let outcome = try f.service.consider(Self.candidate(f.weak, source: "job-1"), holdout: f.holdout, policy: Self.lenient)
        #expect(outcome.version == registered)
        #expect(try f.registry.versions(of: "match").count == 1)
        #expect(try f.registry.decisions(model: "match").map(\.version) == [registered])
    }

    @Test func theLoserOfARaceForTheAliasRecordsWhyAndKeepsItsVersion() throws {
        let f = try Self.fixture()
        _ = try f.service.consider(Self.candidate(f.weak, source: "job-1"), holdout: f.holdout, policy: Self.lenient)
        // While job-2's candidate is being evaluated, an operator moves the alias.
        let sha = try f.blobs.put(f.weak)
        let manual = try f.registry.registerVersion(model: "match", runID: nil, sha256: sha, metrics: [:])
        let tracking = f.registry
        var raced = false
        tracking.beforeDecision = {
            guard !raced else { return }
            raced = true
            _ = try? tracking.decide(model: "match", alias: "champion", version: manual, expected: 1, promoted: true, action: "manual",
                                     reasons: ["operator"], numbers: [:], actor: "alice")
        }
        defer { tracking.beforeDecision = nil }
        let outcome = try f.service.consider(Self.candidate(f.strong, source: "job-2"), holdout: f.holdout, policy: Self.lenient)
        #expect(!outcome.promoted)
        #expect(outcome.reasons.last == "not promoted: \(RegistryError.aliasMoved(model: "match", alias: "champion", expected: 1, actual: manual))")
        #expect(try f.registry.alias("match", "champion") == manual)
        let last = try #require(try f.registry.decisions(model: "match").last)
        #expect(last.version == outcome.version && !last.promoted && last.actor == "policy:job-2")
    }
}
