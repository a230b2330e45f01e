import Foundation
import Testing
import Wire
@testable import CoordinatorKit

/// Hosts simulated with network namespaces: the coordinator and each worker in a namespace
/// of its own, joined by veth pairs to a bridge, so a test can cut one host's link the way
/// a switch port or a cable fails. Needs root (CI runs as root); skipped otherwise, or
/// when `TOWER_NETNS_TESTS=0`.
struct NetworkNamespaces {
    let prefix: String
    let hosts: [String]
    let bridge: String
    let subnet = "10.77.0"

    static var available: Bool {
        guard geteuid() == 0, ProcessInfo.processInfo.environment["TOWER_NETNS_TESTS"] != "0" else { return false }
        return (try? run(["ip", "netns", "list"])) != nil
    }

    @discardableResult
    static func run(_ arguments: [String]) throws -> String {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = arguments
        let out = Pipe()
        process.standardOutput = out
        process.standardError = out
        try process.run()
        let text = String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        guard process.terminationStatus == 0 else { throw WireError.invalidArgument("\(arguments.joined(separator: " ")) failed: \(text)") }
        return text
    }

    /// Namespaces `PREFIX-HOST`, host i at SUBNET.(i+1); the bridge (in the test's own
    /// namespace) at SUBNET.254 so the test process can reach every host.
    init(hosts: [String]) throws {
        prefix = "tw\(getpid() % 100_000)"
        self.hosts = hosts
        bridge = "\(prefix)br"
        try Self.run(["ip", "link", "add", bridge, "type", "bridge"])
        try Self.run(["ip", "addr", "add", "\(subnet).254/24", "dev", bridge])
        try Self.run(["ip", "link", "set", bridge, "up"])
        for (i, host) in hosts.enumerated() {
            let ns = namespace(host), outside = link(host), inside = "\(outside)i"
            try Self.run(["ip", "netns", "add", ns])
            try Self.run(["ip", "link", "add", outside, "type", "veth", "peer", "name", inside])
            try Self.run(["ip", "link", "set", inside, "netns", ns])
            try Self.run(["ip", "link", "set", outside, "master", bridge])
            try Self.run(["ip", "link", "set", outside, "up"])
            try Self.run(["ip", "-n", ns, "addr", "add", "\(subnet).\(i + 1)/24", "dev", inside])
            try Self.run(["ip", "-n", ns, "link", "set", inside, "up"])
            try Self.run(["ip", "-n", ns, "link", "set", "lo", "up"])
        }
    }

    func namespace(_ host: String) -> String { "\(prefix)-\(host)" }
    /// The host's end of the link on the bridge side: setting it down cuts the host off.
    func link(_ host: String) -> String { "\(prefix)\(host)" }
    func address(_ host: String) -> String { "\(subnet).\(hosts.firstIndex(of: host)! + 1)" }

    func cut(_ host: String) throws { try Self.run(["ip", "link", "set", link(host), "down"]) }

    static var hasNftables: Bool { (try? run(["nft", "--version"])) != nil }

    /// Inside `host`, drops every packet arriving from `peer`: `host` can still send, but
    /// hears nothing back — a half-open link.
    func dropIncoming(at host: String, from peer: String) throws {
        let ns = namespace(host)
        try Self.run(["ip", "netns", "exec", ns, "nft", "add", "table", "inet", "towertest"])
        try Self.run(["ip", "netns", "exec", ns, "nft", "add", "chain", "inet", "towertest", "input", "{ type filter hook input priority 0 ; }"])
        try Self.run(["ip", "netns", "exec", ns, "nft", "add", "rule", "inet", "towertest", "input", "ip", "saddr", address(peer), "drop"])
    }

    func restoreIncoming(at host: String) throws {
        try Self.run(["ip", "netns", "exec", namespace(host), "nft", "delete", "table", "inet", "towertest"])
    }
    func heal(_ host: String) throws { try Self.run(["ip", "link", "set", link(host), "up"]) }

    func teardown() {
        for host in hosts {
            _ = try? Self.run(["ip", "netns", "delete", namespace(host)])
            _ = try? Self.run(["ip", "link", "delete", link(host)])
        }
        _ = try? Self.run(["ip", "link", "delete", bridge])
    }
}

extension ProcessClusterSuites {
@Suite(.serialized, .timeLimit(.minutes(3)), .enabled(if: NetworkNamespaces.available, "needs root and ip netns"))
struct MultiHostTests {
    @Test func aWorkerCutOffMidJobLosesNothingAndRejoinsAfterTheLinkHeals() async throws {
        try await withCluster { net, c, op in
            let job = try await c.submitEcho(op, tasks: 120, sleepMs: 40)
            try await c.waitUntil("a sixth of the job") { try await op.job(job).done >= 20 }
            try net.cut("w1")
            try await c.waitUntil("the coordinator to drop the cut-off worker") { c.log("coordinator").contains("silent for a lease period") }
            let end = try await op.follow(job, every: .milliseconds(200)) { _ in }
            #expect(end.state == .succeeded)
            #expect(end.done == 120)
            #expect(end.retries > 0)
            let rows = try c.storedResults(job)
            #expect(rows.count == 120 && rows.allSatisfy { $0.state == .done && $0.resultCount == 1 })

            try net.heal("w1")
            try await c.waitUntil("w1 to rejoin after the heal") { try await op.workers().contains { $0.name == "w1" } }
            let again = try await c.submitEcho(op, tasks: 20, sleepMs: 0)
            #expect(try await op.follow(again, every: .milliseconds(100)) { _ in }.state == .succeeded)
        }
    }

    /// w1 still sends but hears nothing: it gives up at its heartbeat deadline, cuts the
    /// connection itself (the coordinator sees it go), and the job finishes on w2.
    @Test(.enabled(if: NetworkNamespaces.hasNftables, "needs nftables"))
    func aHalfOpenLinkIsDetectedByTheWorkerAndLosesNothing() async throws {
        try await withCluster { net, c, op in
            let job = try await c.submitEcho(op, tasks: 120, sleepMs: 40)
            try await c.waitUntil("a sixth of the job") { try await op.job(job).done >= 20 }
            try net.dropIncoming(at: "w1", from: "c")
            try await c.waitUntil("w1 to give up on the coordinator") { c.log("w1").contains("heartbeat unanswered") }
            let end = try await op.follow(job, every: .milliseconds(200)) { _ in }
            #expect(end.state == .succeeded)
            let rows = try c.storedResults(job)
            #expect(rows.count == 120 && rows.allSatisfy { $0.state == .done && $0.resultCount == 1 })
            try net.restoreIncoming(at: "w1")
            try await c.waitUntil("w1 to rejoin") { try await op.workers().contains { $0.name == "w1" } }
        }
    }

    /// A coordinator and two workers, each in its own namespace, and an operator dialing
    /// in over the bridge.
    func withCluster(_ body: (NetworkNamespaces, ProcessCluster, OperatorClient) async throws -> Void) async throws {
        let net = try NetworkNamespaces(hosts: ["c", "w1", "w2"])
        defer { net.teardown() }
        let c = try ProcessCluster(workers: ["w1", "w2"])
        defer { c.stopAll() }
        // The coordinator's certificate names the address the workers dial.
        let ca = try ClusterCA.load(from: c.cluster.certs)
        try ca.issueAndWrite(name: "coordinator", role: .coordinator, hosts: [net.address("c"), "127.0.0.1"], replace: true)
        let bin = ProcessCluster.binDirectory
        let coordinator = try LocalCluster.spawn(URL(fileURLWithPath: "/usr/sbin/ip"), [
            "netns", "exec", net.namespace("c"), bin.appendingPathComponent("coordinator").path,
            "serve", "--listen", "\(net.address("c")):\(c.port)", "--data-dir", c.cluster.data.path,
            "--cert", c.cluster.certificate("coordinator"), "--key", c.cluster.key("coordinator"), "--ca", c.cluster.ca,
            "--metrics-listen", "", "--api-listen", "", "--lease-timeout", "3", "--heartbeat-interval", "0.5",
        ], log: c.cluster.directory.appendingPathComponent("coordinator.log"))
        defer { c.kill9(coordinator) }
        var workers: [Process] = []
        defer { workers.forEach { c.kill9($0) } }
        for name in ["w1", "w2"] {
            var args = c.cluster.workerArguments(name, port: c.port, slots: 2)
            args[1] = "\(net.address("c")):\(c.port)"
            workers.append(try LocalCluster.spawn(URL(fileURLWithPath: "/usr/sbin/ip"),
                                                  ["netns", "exec", net.namespace(name), bin.appendingPathComponent("worker").path] + args,
                                                  log: c.cluster.directory.appendingPathComponent("\(name).log")))
        }
        // The operator dials in over the bridge, as from another host.
        var op: OperatorClient?
        for _ in 0..<100 where op == nil {
            op = try? await OperatorClient.connect(host: net.address("c"), port: c.port, identity: try c.cluster.identity("operator"), group: .singletonMultiThreadedEventLoopGroup)
            if op == nil { try await Task.sleep(for: .milliseconds(100)) }
        }
        guard let op else { Issue.record("cannot reach the coordinator's namespace"); return }
        defer { op.close() }
        try await c.waitForWorkers(2, op)
        try await body(net, c, op)
    }
}
}
