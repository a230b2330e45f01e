import Foundation
import Testing
import Wire
@testable import CoordinatorKit

/// One GET with curl. `status` is the HTTP status, or 0 when no HTTP response came
/// (curl prints 000); `exit` and `stderr` say why.
func curlAPI(_ c: InProcessCoordinator, _ path: String, as name: String?) throws -> (status: Int, body: String, exit: Int32, stderr: String) {
    let p = Process()
    p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
    var args = ["curl", "-sS", "--max-time", "20", "-w", "\n%{http_code}", "--cacert", c.cluster.ca]
    if let name { args += ["--cert", c.cluster.certificate(name), "--key", c.cluster.key(name)] }
    p.arguments = args + ["https://localhost:\(c.service.apiPort!)\(path)"]
    let out = Pipe(), err = Pipe()
    p.standardOutput = out
    p.standardError = err
    try p.run()
    let text = String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
    let errors = String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
    p.waitUntilExit()
    let lines = text.split(separator: "\n", omittingEmptySubsequences: false)
    return (Int(lines.last ?? "") ?? -1, lines.dropLast().joined(separator: "\n"), p.terminationStatus, errors)
}

extension SecurityTests {
    func curl(_ c: InProcessCoordinator, _ path: String, as name: String?) throws -> (status: Int, body: String, exit: Int32, stderr: String) {
        try curlAPI(c, path, as: name)
    }

    /// The dashboard's JSON API: HTTPS, client certificates, read-only.
    @Test func jsonAPIServesJobsAndModelsToOperatorsOnly() async throws {
        let c = try await InProcessCoordinator.start(extra: [("gw", .gateway)])
        defer { Task { await c.stop() } }
        let op = try await c.operatorClient()
        var spec = WireJobSpec()
        spec.kind = JobKind.echo
        spec.name = "api-check"
        spec.spec = try WireEchoSpec.with { $0.tasks = 3 }.serializedData()
        let id = try await op.submit(spec).jobID
        op.close()
        _ = try c.service.core.models.registerVersion(model: "match", runID: nil, sha256: "abc", metrics: ["holdout_auc": 0.9])

        let jobs = try curl(c, "/api/v1/jobs", as: "operator")
        #expect(jobs.status == 200)
        let decoded = try JSONValue.parse(jobs.body)
        #expect(decoded["jobs"]?.arrayValue?.map { $0["id"] } == [.string(id)])
        #expect(decoded["jobs"]?.arrayValue?.first?["name"] == "api-check")
        let model = try curl(c, "/api/v1/models/match", as: "operator")
        #expect(model.status == 200)
        #expect(try JSONValue.parse(model.body)["versions"]?.arrayValue?.first?["metrics"]?["holdout_auc"] == .number(0.9))
        #expect(try curl(c, "/api/v1/models/nope", as: "operator").status == 404)
        // A worker certificate may not read it; without a certificate TLS refuses.
        let worker = try curl(c, "/api/v1/jobs", as: "w1")
        #expect(worker.status == 403)
        #expect(worker.body == APIHandler.errorJSON("forbidden for role worker: a worker certificate may not send ListJobs, which /api/v1/jobs answers"))
        let anonymous = try curl(c, "/api/v1/jobs", as: nil)
        #expect(anonymous.status == 0, "\(anonymous)")
        #expect(anonymous.exit != 0 && anonymous.stderr.contains("certificate required"), "\(anonymous)")
    }

    /// The API grants exactly what the wire protocol's ``Permissions`` table grants: a
    /// gateway reads models and nothing else.
    @Test func theAPIAndTheWireShareOnePermissionTable() async throws {
        let c = try await InProcessCoordinator.start(extra: [("gw", .gateway)])
        defer { Task { await c.stop() } }
        let expectations: [(path: String, request: String, status: Int)] = [
            ("/api/v1/jobs", "ListJobs", 403),
            ("/api/v1/jobs/j1", "GetJob", 403),
            ("/api/v1/workers", "ListWorkers", 403),
            ("/api/v1/experiments/e/runs", "ListRuns", 403),
            ("/api/v1/experiments", "ListExperiments", 403),
            ("/api/v1/models", "ListModels", 200),
            ("/api/v1/models/nope", "GetModel", 404),
        ]
        for (path, request, status) in expectations {
            let reply = try curl(c, path, as: "gw")
            #expect(reply.status == status, "\(path): \(reply)")
            if status == 403 {
                #expect(reply.body == APIHandler.errorJSON("forbidden for role gateway: a gateway certificate may not send \(request), which \(path) answers"))
            }
        }
        #expect(try JSONValue.parse(try curl(c, "/api/v1/models", as: "gw").body) == ["models": []])
    }

    @Test func theJobsLimitIsCheckedAndClamped() throws {
        #expect(try HTTPSAPI.limit(nil) == 50)
        #expect(try HTTPSAPI.limit("7") == 7)
        #expect(try HTTPSAPI.limit("99999999") == HTTPSAPI.maxLimit)
        #expect(throws: WireError.invalidArgument("limit must be a whole number from 1 to 1000, got \"-5\"")) { try HTTPSAPI.limit("-5") }
        #expect(throws: WireError.invalidArgument("limit must be a whole number from 1 to 1000, got \"many\"")) { try HTTPSAPI.limit("many") }
        guard case let .listJobs(list) = try HTTPSAPI.request(for: "/api/v1/jobs", query: ["limit": "5000"]) else {
            Issue.record("/api/v1/jobs should mirror ListJobs")
            return
        }
        #expect(list.limit == 1000)
    }

    /// An authenticated API client whose request stops arriving is not held forever.
    @Test(.timeLimit(.minutes(1))) func anAPIRequestThatStopsArrivingIsClosed() async throws {
        let c = try await InProcessCoordinator.start(frameStallSeconds: 0.5)
        defer { Task { await c.stop() } }
        let raw = try await RawTLSClient.connect(port: try #require(c.service.apiPort), identity: try c.cluster.identity("operator"))
        try await raw.write(Array("GET /api/v1/jobs HTTP/1.1\r\nHost: tower\r\n".utf8))
        #expect(await raw.waitUntilClosed(timeout: .seconds(20)))
    }
}
