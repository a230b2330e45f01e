import Foundation
import Testing
import Wire
@testable import CoordinatorKit

extension ProcessClusterSuites {
/// Setting a cluster up as the README does, with the real executables: certificates that
/// a name stands for once, an operator who logs in once, a worker told which address the
/// coordinator's certificate is missing.
@Suite(.serialized, .timeLimit(.minutes(2))) struct OperatorSetupCLITests {
    /// Runs an executable of this build with `HOME` (and so the operator's credentials
    /// directory) inside `home`.
    func run(_ arguments: [String], home: URL, environment: [String: String] = [:]) async throws -> ProcessCluster.Finished {
        var env = ProcessInfo.processInfo.environment.filter { !$0.key.hasPrefix("TOWER_") && $0.key != "XDG_CONFIG_HOME" }
        env["HOME"] = home.path
        env.merge(environment) { $1 }
        return try await ProcessCluster.runToEnd(ProcessCluster.binDirectory.appendingPathComponent("coordinator"), arguments,
                                                 environment: env, separateStderr: true)
    }

    func home() throws -> URL {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("tower-home-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        return dir
    }

    @Test func aNameStandsForOneCertificate() async throws {
        let home = try home()
        let certs = home.appendingPathComponent("certs").path
        #expect(try await run(["certs", "init", "--dir", certs], home: home).status == 0)
        let first = try await run(["certs", "issue", "w1", "--role", "worker", "--dir", certs], home: home)
        #expect(first.status == 0)
        let serial = try #require(ClusterCA.readIndex(in: URL(fileURLWithPath: certs)).first?.serial)
        let again = try await run(["certs", "issue", "w1", "--role", "worker", "--dir", certs], home: home)
        #expect(again.status == 1)
        #expect(again.stderr == "error: \(IdentityError.nameTaken(name: "w1", serial: serial))\n")
        let replaced = try await run(["certs", "issue", "w1", "--role", "worker", "--dir", certs, "--replace"], home: home)
        #expect(replaced.output.contains("  replaced: serial \(serial) is revoked\n"), "\(replaced.output)")
        let current = try #require(ClusterCA.readIndex(in: URL(fileURLWithPath: certs)).last?.serial)
        let revoked = try await run(["certs", "revoke", "w1", "--dir", certs], home: home)
        #expect(revoked.output == "revoked w1 (worker), serial \(current)\n")
    }

    /// The README's path: issue `alice`, log in once, then operator commands need no
    /// flags; before logging in, the error names every way to point at the files.
    @Test func anOperatorLogsInOnceAndThenNeedsNoFlags() async throws {
        let (c, op) = try await ProcessCluster.running(workers: ["w1"])
        defer { op.close(); c.stopAll() }
        let home = try home()
        let ca = try ClusterCA.load(from: c.cluster.certs)
        let (_, cert, key) = try ca.issueAndWrite(name: "alice", role: .operator)
        let before = try await run(["jobs"], home: home)
        let missing = home.appendingPathComponent(".config/tower/operator.pem").path
        #expect(before.status == 1)
        #expect(before.stderr == "error: \(OperatorCredentialsError.missing(.certificate, path: missing))\n")

        let login = try await run(["login", "--cert", cert.path, "--key", key.path, "--ca", c.cluster.ca, "--coordinator", "127.0.0.1:\(c.port)"], home: home)
        #expect(login.status == 0, "\(login)")
        #expect(login.output.hasPrefix("logged in as alice (operator) to 127.0.0.1:\(c.port), which has 1 worker connected\n"), "\(login.output)")
        let workers = try await run(["workers"], home: home)
        #expect(workers.status == 0, "\(workers)")
        #expect(workers.output.contains(" slots 4 "), "\(workers.output)")
        // A worker's certificate is not an operator's, whichever way it is given.
        let asWorker = try await run(["jobs"], home: home, environment: ["TOWER_CERT": c.cluster.certificate("w1"), "TOWER_KEY": c.cluster.key("w1")])
        #expect(asWorker.stderr == "error: \(OperatorCredentialsError.notAnOperator(path: c.cluster.certificate("w1"), role: "worker"))\n")
    }

    /// A worker dialling an address the coordinator's certificate does not name is told
    /// which, and how to re-issue; its world-readable key is warned about.
    @Test func aWorkerNamesTheAddressMissingFromTheCoordinatorsCertificate() async throws {
        let c = try ProcessCluster(workers: ["w1"])
        defer { c.stopAll() }
        let ca = try ClusterCA.load(from: c.cluster.certs)
        try ca.issueAndWrite(name: "coordinator", role: .coordinator, hosts: ["localhost"], replace: true)
        try c.startCoordinator()
        try FileManager.default.setAttributes([.posixPermissions: 0o644], ofItemAtPath: c.cluster.key("w1"))
        try c.startWorker("w1")
        let expected = "\(WireError.hostNotInCertificate(host: "127.0.0.1"))"
        try await c.waitUntil("the worker to explain the refusal") { c.log("w1").contains(expected) }
        #expect(c.log("w1").contains("the private key \(c.cluster.key("w1")) is readable by other users (mode 644); run `chmod 600 \(c.cluster.key("w1"))`"))
        #expect(!c.log("w1").contains("failedToValidateHostname"))
    }
}
}
