import Foundation
import Testing
import Wire
@testable import CoordinatorKit

extension SecurityTests {
    func curl(_ c: InProcessCoordinator, _ path: String, as name: String?) throws -> (status: Int32, body: String) {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        var args = ["curl", "-s", "-w", "\n%{http_code}", "--cacert", c.cluster.ca]
        if let name { args += ["--cert", c.cluster.certificate(name), "--key", c.cluster.key(name)] }
        p.arguments = args + ["https://localhost:\(c.service.apiPort!)\(path)"]
        let out = Pipe()
        p.standardOutput = out
        p.standardError = FileHandle.nullDevice
        try p.run()
        p.waitUntilExit()
        let text = String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        let lines = text.split(separator: "\n", omittingEmptySubsequences: false)
        return (Int32(lines.last ?? "") ?? Int32(p.terminationStatus) * -1, lines.dropLast().joined(separator: "\n"))
    }

    /// The dashboard's JSON API: HTTPS, client certificates, read-only.
    @Test func jsonAPIServesJobsAndModelsToOperatorsOnly() async throws {
        let c = try await InProcessCoordinator.start()
        defer { Task { await c.stop() } }
        let op = try await c.operatorClient()
        var spec = WireJobSpec()
        spec.kind = JobKind.echo
        spec.name = "api-check"
        spec.spec = try WireEchoSpec.with { $0.tasks = 3 }.serializedData()
        let id = try await op.submit(spec).jobID
        op.close()
        _ = try c.service.core.tracking.registerVersion(model: "match", runID: nil, sha256: "abc", metrics: ["holdout_auc": 0.9])

        let jobs = try curl(c, "/api/v1/jobs", as: "operator")
        #expect(jobs.status == 200)
        let decoded = try WireJobList(jsonString: jobs.body)
        #expect(decoded.jobs.map(\.jobID) == [id])
        #expect(decoded.jobs.first?.name == "api-check")
        let model = try curl(c, "/api/v1/models/match", as: "operator")
        #expect(model.status == 200)
        #expect(try WireModelDetail(jsonString: model.body).versions.first?.metrics["holdout_auc"] == 0.9)
        #expect(try curl(c, "/api/v1/models/nope", as: "operator").status == 404)
        // A worker certificate may not read it; without a certificate TLS refuses.
        #expect(try curl(c, "/api/v1/jobs", as: "w1").status == 403)
        #expect(try curl(c, "/api/v1/jobs", as: nil).status <= 0)
    }
}
