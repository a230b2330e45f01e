import Foundation
import NIOPosix
import Wire

/// Brings up a whole cluster on this host — certificates, coordinator, worker processes —
/// for `coordinator demo`, the cluster tests and the benchmarks. Everything is real: the
/// CA and certificates are issued as an operator would, workers are separate processes
/// that dial the coordinator over TLS on loopback.
public struct LocalCluster {
    public let directory: URL
    public var certs: URL { directory.appendingPathComponent("certs") }
    public var data: URL { directory.appendingPathComponent("data") }

    public init(directory: URL) {
        self.directory = directory
    }

    /// A fresh temporary directory for a cluster.
    public static func temporary(prefix: String = "tower") throws -> LocalCluster {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("\(prefix)-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        return LocalCluster(directory: dir)
    }

    /// Creates the CA and certificates for a coordinator (valid for loopback), the named
    /// workers and an operator.
    @discardableResult
    public func issueCertificates(workers: [String], extra: [(String, ClusterRole)] = []) throws -> ClusterCA {
        let ca = try ClusterCA.initialize(in: certs)
        try ca.issueAndWrite(name: "coordinator", role: .coordinator, hosts: ["localhost", "127.0.0.1", "::1"])
        try ca.issueAndWrite(name: "operator", role: .operator)
        for name in workers { try ca.issueAndWrite(name: name, role: .worker) }
        for (name, role) in extra { try ca.issueAndWrite(name: name, role: role) }
        return ca
    }

    /// A TCP port free on loopback right now (bound and released), for a child process.
    public static func freePort() throws -> Int {
        let channel = try ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton).bind(host: "127.0.0.1", port: 0).wait()
        let port = channel.localAddress!.port!
        try channel.close().wait()
        return port
    }

    public func certificate(_ name: String) -> String { certs.appendingPathComponent("\(name).pem").path }
    public func key(_ name: String) -> String { certs.appendingPathComponent("\(name)-key.pem").path }
    public var ca: String { certs.appendingPathComponent(ClusterCA.caFile).path }

    public func identity(_ name: String) throws -> TLSIdentity {
        try TLSIdentity(certificate: certificate(name), key: key(name), ca: ca)
    }

    /// Settings for a coordinator on loopback using this cluster's files.
    public func coordinatorSettings(port: Int = 0, metrics: Bool = false) -> CoordinatorSettings {
        var s = CoordinatorSettings()
        s.listenHost = "127.0.0.1"
        s.listenPort = port
        s.dataDirectory = data.path
        s.certificate = certificate("coordinator")
        s.privateKey = key("coordinator")
        s.ca = ca
        s.metricsListen = metrics ? "127.0.0.1:0" : ""
        s.apiListen = "127.0.0.1:0"
        return s
    }

    /// The command line of `worker` for the named certificate.
    public func workerArguments(_ name: String, port: Int, slots: Int? = nil, extra: [String] = []) -> [String] {
        var args = ["--coordinator", "127.0.0.1:\(port)", "--cert", certificate(name), "--key", key(name), "--ca", ca,
                    "--name", name, "--cache-dir", directory.appendingPathComponent("cache-\(name)").path]
        if let slots { args += ["--slots", "\(slots)"] }
        return args + extra
    }

    /// Starts a process, its output appended to `log` (or discarded).
    public static func spawn(_ executable: URL, _ arguments: [String], log: URL? = nil, environment: [String: String] = [:]) throws -> Process {
        let process = Process()
        process.executableURL = executable
        process.arguments = arguments
        var env = ProcessInfo.processInfo.environment
        env.merge(environment) { $1 }
        process.environment = env
        if let log {
            FileManager.default.createFile(atPath: log.path, contents: nil)
            let handle = try FileHandle(forWritingTo: log)
            handle.seekToEndOfFile()
            process.standardOutput = handle
            process.standardError = handle
        } else {
            process.standardOutput = FileHandle.nullDevice
            process.standardError = FileHandle.nullDevice
        }
        try process.run()
        return process
    }

    /// The directory holding this process's executable: the `worker` binary sits beside
    /// `coordinator` in a build or an install.
    public static var binaryDirectory: URL {
        URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath().deletingLastPathComponent()
    }
}
