import Foundation
import Testing
import Wire
import WorkerKit
@testable import CoordinatorKit

extension SecurityTests {
/// The JSON API keeps the contract its own OpenAPI document states: each route's body is
/// checked against the schema the document gives for it, on a coordinator with a
/// finished job, runs, versions and a declined promotion.
@Suite(.serialized, .timeLimit(.minutes(2))) struct APIContractTests {
    func get(_ c: InProcessCoordinator, _ path: String) throws -> (status: Int, json: JSONValue) {
        let reply = try curlAPI(c, path, as: "operator")
        return (reply.status, try JSONValue.parse(reply.body))
    }

    /// A coordinator with one finished echo job, a queued one, an experiment of three runs
    /// and a model with a promoted and a declined version.
    func populated() async throws -> (InProcessCoordinator, finished: String, queued: String, Task<Void, Error>) {
        let c = try await InProcessCoordinator.start(extra: [("gw", .gateway)])
        let (agent, worker) = try HardeningTests.runWorker(c, "w1")
        let op = try await c.operatorClient()
        defer { op.close() }
        let finished = try await op.submit(try HardeningTests.echo(tasks: 3, sleepMs: 0)).jobID
        try await HardeningTests.waitUntil("the echo job to finish") { try await op.job(finished).state == .succeeded }
        // A draining worker takes no new task (and then leaves): the second job stays queued.
        agent.drain()
        try await HardeningTests.waitUntil("the worker to drain") { try await op.workers().allSatisfy(\.draining) }
        let queued = try await op.submit(try HardeningTests.echo(tasks: 2, sleepMs: 0)).jobID

        let tracking = c.service.core.tracking
        for (run, loss) in [("s-1", 0.52), ("s-2", 0.41), ("s-3", 0.47)] {
            try tracking.startRun(run, experiment: "search", params: ["learning_rate": "0.0912345678", "num_leaves": "31"], tags: ["seed": "7"])
            try tracking.logMetrics(run, [("valid_logloss", 10, loss + 0.1), ("valid_logloss", 20, loss), ("valid_auc", 20, 1 - loss)])
            try tracking.finishRun(run, status: "finished")
        }
        let models = c.service.core.models
        _ = try models.registerVersion(model: "match", runID: "s-2", sha256: "aa", metrics: ["holdout_auc": 0.81])
        _ = try models.decide(model: "match", alias: "champion", version: 1, expected: nil, promoted: true, action: "promote",
                              reasons: ["first champion"], numbers: ["auc": 0.81], actor: "policy")
        _ = try models.registerVersion(model: "match", runID: "s-3", sha256: "bb", metrics: ["holdout_auc": 0.8])
        _ = try models.decide(model: "match", alias: "champion", version: 2, expected: 1, promoted: false, action: "promote",
                              reasons: ["AUC gain below the margin"], numbers: [:], actor: "policy")
        return (c, finished, queued, worker)
    }

    @Test func everyRouteAnswersWhatTheDocumentPromises() async throws {
        let (c, finished, queued, _) = try await populated()
        defer { Task { await c.stop() } }
        let (status, document) = try get(c, "/api/v1/openapi.json")
        #expect(status == 200)
        #expect(document["openapi"] == "3.1.0")
        let check = JSONSchemaCheck(document: document)
        let routes = ["/api/v1/jobs", "/api/v1/jobs?limit=1", "/api/v1/jobs/\(finished)", "/api/v1/jobs/\(queued)", "/api/v1/workers",
                      "/api/v1/experiments", "/api/v1/experiments/search/runs", "/api/v1/experiments/search/runs?sort=valid_logloss",
                      "/api/v1/models", "/api/v1/models/match"]
        var documented = Set<String>()
        for route in routes {
            let (status, body) = try get(c, route)
            #expect(status == 200, "\(route): \(body.text())")
            let path = String(route.split(separator: "?")[0])
            let schema = try #require(check.responseSchema(path: path, status: 200), "\(path) is not in the document")
            #expect(check.violations(of: body, against: schema) == [], "\(route): \(body.text())")
            if case let .object(paths)? = document["paths"] {
                documented.formUnion(paths.keys.filter { template in
                    let t = template.split(separator: "/"), p = path.split(separator: "/")
                    return t.count == p.count && zip(t, p).allSatisfy { $0.hasPrefix("{") || $0 == $1 }
                })
            }
        }
        // Every documented route was exercised (the document itself aside).
        if case let .object(paths)? = document["paths"] {
            #expect(Set(paths.keys).subtracting(documented) == ["/api/v1/openapi.json"])
        }
        for (route, status) in [("/api/v1/experiments/nope/runs", 404), ("/api/v1/experiments/search/runs?sort=valid_nothing", 400),
                                ("/api/v1/experiments/search/runs?order=up", 400), ("/api/v1/jobs/j-none", 404), ("/api/v1/models/nope", 404)] {
            let (got, body) = try get(c, route)
            #expect(got == status, "\(route): \(body.text())")
            let schema = try #require(check.responseSchema(path: String(route.split(separator: "?")[0]), status: status), "\(route) \(status) undocumented")
            #expect(check.violations(of: body, against: schema) == [], "\(route): \(body.text())")
        }
    }

    /// What the document's types mean in practice: a decoded summary, states in words,
    /// RFC 3339 times, numbers as numbers, false and null present, losses best first.
    @Test func bodiesAreDecodedAndComplete() async throws {
        let (c, finished, queued, _) = try await populated()
        defer { Task { await c.stop() } }
        let job = try get(c, "/api/v1/jobs/\(finished)").json
        #expect(job["state"] == "succeeded")
        #expect(job["total"] == .integer(3))
        #expect(job["summary"]?["tasks"] == .integer(3))
        #expect(job["summary"]?["tasks_per_worker"] == ["w1": .integer(3)])
        #expect(job["error"] == .null)
        #expect(JSONSchemaCheck.isRFC3339(job["created_at"]?.stringValue ?? ""))
        let waiting = try get(c, "/api/v1/jobs/\(queued)").json
        #expect(waiting["state"] == "queued")
        #expect(waiting["finished_at"] == .null)
        #expect(waiting["summary"] == .null)

        let model = try get(c, "/api/v1/models/match").json
        let decisions = try #require(model["decisions"]?.arrayValue)
        #expect(decisions.map { $0["promoted"] } == [.bool(true), .bool(false)])
        #expect(decisions.map { $0["previous_version"] } == [.null, .integer(1)])
        #expect(model["aliases"] == ["champion": .integer(1)])

        let byLoss = try get(c, "/api/v1/experiments/search/runs?sort=valid_logloss").json
        #expect(byLoss["order"] == "asc")
        #expect(byLoss["runs"]?.arrayValue?.map { $0["id"] } == ["s-2", "s-3", "s-1"])
        #expect(byLoss["runs"]?.arrayValue?.first?["curve_steps"] == [.integer(10), .integer(20)])
        let worstFirst = try get(c, "/api/v1/experiments/search/runs?sort=valid_logloss&order=desc").json
        #expect(worstFirst["runs"]?.arrayValue?.map { $0["id"] } == ["s-1", "s-3", "s-2"])
        let byAUC = try get(c, "/api/v1/experiments/search/runs?sort=valid_auc").json
        #expect(byAUC["runs"]?.arrayValue?.map { $0["id"] } == ["s-2", "s-3", "s-1"])
        let experiments = try #require(try get(c, "/api/v1/experiments").json["experiments"]?.arrayValue)
        #expect(experiments.map { [$0["name"], $0["runs"]] } == [["search", .integer(3)]])
        #expect(JSONSchemaCheck.isRFC3339(experiments.first?["last_run_at"]?.stringValue ?? ""))

        #expect(try get(c, "/api/v1/experiments/nope/runs").json
                == ["error": "not found: no experiment named nope; experiments: search (`coordinator runs experiments` lists them with their runs)"])
        #expect(try get(c, "/api/v1/experiments/search/runs?sort=valid_nothing").json
                == ["error": "invalid argument: no run of search logged valid_nothing; sort by one of: valid_auc, valid_logloss"])
        #expect(try get(c, "/api/v1/experiments/search/runs?order=up").json
                == ["error": "invalid argument: order must be asc or desc, got \"up\"; leave it out for best first"])
    }

    /// The checker itself finds what it is there to find, with the field's place.
    @Test func theSchemaCheckNamesEachViolation() throws {
        let resources = APIResources(kinds: JobKind.builtIn)
        let check = JSONSchemaCheck(document: OpenAPIDocument.make(resources: resources))
        let schema: JSONValue = ["$ref": "#/components/schemas/Decision"]
        let decision: JSONValue = ["version": 2, "previous_version": .null, "promoted": false, "action": "promote", "reasons": [],
                                   "actor": "policy", "at": "2026-11-27T13:00:00.000Z", "numbers": [:]]
        #expect(check.violations(of: decision, against: schema) == [])
        guard case var .object(broken) = decision else { return }
        broken["promoted"] = nil
        broken["at"] = "1764248400000"
        broken["version"] = "2"
        broken["extra"] = 1
        #expect(check.violations(of: .object(broken), against: schema) == [
            "$: required field \"promoted\" is missing",
            "$.at: \"1764248400000\" is not an RFC 3339 date-time",
            "$: field \"extra\" is not in the schema",
            "$.version: a string where the schema allows integer",
        ])
        // A job's summary is exactly one kind's: an HPO summary with `promoted: false`.
        var hpo = WireHPOSummary()
        hpo.trials = 4
        hpo.reasons = ["AUC gain below the margin"]
        let rendered = try #require(HPOKind.summaryShape?.render(hpo))
        #expect(rendered["promoted"] == .bool(false))
        #expect(rendered["best_run"] == .null)
        #expect(check.violations(of: rendered, against: ["$ref": "#/components/schemas/HpoSummary"]) == [])
    }
}
}
