import ArgumentParser
import CoordinatorKit
import Foundation
import Learning
import Logging
import NIOPosix
import Wire
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif

struct Demo: AsyncParsableCommand {
    /// The demo's search: small enough to finish in seconds on two cores.
    static let space = """
        model: gbdt
        metric: auc
        sampler: tpe
        seed: 11
        max_trials: 8
        max_concurrent: 2
        asha: {min_iterations: 5, max_iterations: 60, reduction_factor: 3}
        params:
          num_iterations: 60
          num_leaves: {int: [4, 48], log: true}
          learning_rate: {loguniform: [0.03, 0.3]}
          min_data_in_leaf: {int: [5, 60]}
          feature_fraction: {uniform: [0.6, 1.0]}
        """

    static let configuration = CommandConfiguration(
        abstract: "Run the whole loop on this machine: certificates, a coordinator, worker processes, a diagnostic job.",
            discussion: "Example:\n  coordinator demo --keep")

    @Option(help: "Worker processes to start.") var workers = 2
    @Option(help: "Tasks in the diagnostic job.") var tasks = 200
    @Option(help: "Keep the cluster's files here instead of a temporary directory.") var dir: String?
    @Option(name: .customLong("log-level"), help: "Log level of the in-process coordinator: trace, debug, info, notice, warning, error or critical.") var logLevel = "warning"
    @Flag(name: [.customLong("keep"), .customLong("keep-running")],
          help: "Keep the coordinator, workers and gateway running after the demo, print the environment to paste into another shell, stop on Ctrl-C.")
    var keep = false

    func validate() throws {
        do {
            _ = try FlagValue.uint32(workers, flag: "--workers", allowed: 1...64)
            _ = try FlagValue.uint32(tasks, flag: "--tasks", allowed: 1...EchoPlanner.maxTasks)
            _ = try LogLevelSetting.parse(logLevel)
        } catch {
            throw ValidationError("\(error)")
        }
    }

    func run() async throws {
        LogSetup.bootstrap(level: logLevel)
        TowerMetrics.bootstrap()
        do { try await demo() } catch let error as ExitCode { throw error } catch { throw fail(error) }
    }

    func demo() async throws {
        let started = Date()
        let cluster = try dir.map { d -> LocalCluster in
            try FileManager.default.createDirectory(atPath: d, withIntermediateDirectories: true)
            return LocalCluster(directory: URL(fileURLWithPath: d))
        } ?? LocalCluster.temporary(prefix: "tower-demo")
        let workerNames = (1...max(1, workers)).map { "worker-\($0)" }
        print("▶ Tower demo in \(cluster.directory.path)")

        print("1. certificates: cluster CA, coordinator, \(workerNames.count) workers, operator (P-256, TLS 1.3, mutual)")
        try cluster.issueCertificates(workers: workerNames, extra: [("gateway", .gateway)])

        print("2. coordinator on 127.0.0.1 (SQLite store and blobs under \(cluster.data.path))")
        var settings = cluster.coordinatorSettings(metrics: true)
        let spaceFile = cluster.directory.appendingPathComponent("search-space.yaml")
        try Demo.space.write(to: spaceFile, atomically: true, encoding: .utf8)
        settings.pipelines = try LoopStory.pipelines(space: spaceFile)
        settings.photosDirectory = cluster.directory.appendingPathComponent(LoopStory.filesDirectory).path
        let service = try CoordinatorService(settings: settings)
        try await service.start()
        guard let port = service.port else { throw ConfigError.invalid("coordinator did not bind") }
        print("   listening on 127.0.0.1:\(port), metrics at http://127.0.0.1:\(service.metricsPort ?? 0)/metrics")

        let workerBinary = LocalCluster.binaryDirectory.appendingPathComponent("worker")
        guard FileManager.default.isExecutableFile(atPath: workerBinary.path) else {
            throw ConfigError.invalid("no worker executable at \(workerBinary.path); build it with `swift build` (or `make build`)")
        }
        print("3. \(workerNames.count) worker processes dial in over mutual TLS")
        var processes: [Process] = []
        for name in workerNames {
            processes.append(try LocalCluster.spawn(workerBinary, cluster.workerArguments(name, port: port, slots: 4),
                                                    log: cluster.directory.appendingPathComponent("\(name).log")))
        }
        defer { for p in processes where p.isRunning { p.terminate() } }
        let client = try await OperatorClient.connect(host: "127.0.0.1", port: port, identity: try cluster.identity("operator"), group: MultiThreadedEventLoopGroup.singleton)
        var connected: [WireWorkerInfo] = []
        for _ in 0..<100 where connected.count < workerNames.count {
            connected = try await client.workers()
            if connected.count < workerNames.count { try await Task.sleep(for: .milliseconds(100)) }
        }
        for w in connected { print("   \(w.sessionID) from \(w.address): \(w.capabilities.cores) cores, slots \(w.capabilities.slots), tools [\(w.capabilities.tools.joined(separator: ","))]") }

        print("4. diagnostic echo job: \(tasks) tasks, 1 KiB payload each, one shared 4 MiB blob fetched once per worker by SHA-256")
        var spec = WireEchoSpec()
        spec.tasks = UInt32(tasks)
        spec.payloadBytes = 1024
        spec.sleepMs = 5
        spec.blobBytes = 4 << 20
        var job = WireJobSpec()
        job.kind = JobKind.echo
        job.name = "demo-echo"
        job.spec = try spec.serializedData()
        let accepted = try await client.submit(job)
        print("   submitted \(accepted.jobID)")
        try await followJob(client, accepted.jobID)

        let gatewayPort = try LocalCluster.freePort()
        let gatewayBinary = LocalCluster.binaryDirectory.appendingPathComponent("gateway")
        var gateway: Process?
        if FileManager.default.isExecutableFile(atPath: gatewayBinary.path) {
            gateway = try LocalCluster.spawn(gatewayBinary, ["--coordinator", "127.0.0.1:\(port)", "--cert", cluster.certificate("gateway"),
                                                             "--key", cluster.key("gateway"), "--ca", cluster.ca, "--listen", "127.0.0.1:\(gatewayPort)",
                                                             "--queue-dir", cluster.directory.appendingPathComponent("gateway-queue").path,
                                                             "--refresh-seconds", "1"],
                                             log: cluster.directory.appendingPathComponent("gateway.log"))
            print("   inference gateway: http://127.0.0.1:\(gatewayPort)/ (user app), serving the champion once there is one")
        } else {
            print("   (no gateway executable at \(gatewayBinary.path); `swift build` builds it)")
        }
        defer { if let gateway, gateway.isRunning { gateway.terminate() } }

        let story = try await LoopStory(client: client, directory: cluster.directory, space: Demo.space).run()

        if gateway != nil {
            print("8b. the gateway serves the new champion: GET /v1/recommendations")
            let url = URL(string: "http://127.0.0.1:\(gatewayPort)/v1/recommendations?user_id=1&k=3")!
            var body = ""
            for _ in 0..<50 {
                if let (data, response) = try? await URLSession.shared.data(from: url), (response as? HTTPURLResponse)?.statusCode == 200 {
                    body = String(decoding: data, as: UTF8.self)
                    if body.contains("\"model_version\":\(story.servedVersion)") { break }
                }
                try await Task.sleep(for: .milliseconds(200))
            }
            print("   curl 'http://127.0.0.1:\(gatewayPort)/v1/recommendations?user_id=1&k=3'")
            if let object = try? JSONSerialization.jsonObject(with: Data(body.utf8)) as? [String: Any] {
                print("   → \(object["model"] ?? "?") v\(object["model_version"] ?? "?"), \(object["source"] ?? "?")")
                for item in object["items"] as? [[String: Any]] ?? [] {
                    let reasons = (item["reasons"] as? [String] ?? []).joined(separator: "; ")
                    print("     \(item["rank"] ?? "?"). listing \(item["listing_id"] ?? "?")  score \(String(format: "%.3f", item["score"] as? Double ?? 0))  — \(reasons)")
                }
            } else {
                print("   (no answer from the gateway; see \(cluster.directory.path)/gateway.log)")
            }
        }
        let short = story.completed
            ? try await ShortStory(client: client, files: cluster.directory.appendingPathComponent(LoopStory.filesDirectory),
                                   output: cluster.directory, market: LoopStory.market).run()
            : "no short (the loop did not complete)"
        let suggestions = try await Self.suggestions(client)
        if keep {
            print("")
            print("▶ the cluster stays up until Ctrl-C. In another shell, paste:")
            print("  export TOWER_COORDINATOR=127.0.0.1:\(port) TOWER_CERTS_DIR=\(cluster.certs.path)")
            for line in suggestions { print("  \(line)") }
            if let api = service.apiPort {
                print("  curl --cacert \(cluster.ca) --cert \(cluster.certificate("operator")) --key \(cluster.key("operator")) https://localhost:\(api)/api/v1/models/match")
            }
            if gateway != nil { print("  user app: http://127.0.0.1:\(gatewayPort)/") }
            fflush(stdout)
            await Self.waitForInterrupt()
        }

        print("10. stopping workers (SIGTERM: each drains, then exits)")
        for p in processes { p.terminate() }
        for p in processes { p.waitUntilExit() }
        let summary = try await client.job(accepted.jobID)
        await client.shutdown()
        await service.shutdown()

        print("")
        print(String(format: "✔ demo finished in %.1f s: echo job %@, %d/%d tasks; the loop: %@; shorts: %@", Date().timeIntervalSince(started), summary.state.label, summary.done, summary.total, story.line, short))
        print("  files: \(cluster.directory.path) (certs/, data/tower.sqlite, data/blobs/, worker logs)")
        print("  on real hosts: coordinator certs init; coordinator certs issue w1 --role worker; coordinator serve --config Deploy/tower.yaml;")
        print("                 worker --coordinator HOST:7443 --cert w1.pem --key w1-key.pem --ca ca.pem; coordinator submit echo --tasks 200 --follow")
        if !keep {
            print("  with `coordinator demo --keep` the cluster stays up and these work against it:")
            for line in suggestions { print("    \(line)") }
        }
        if summary.state != .succeeded || !story.completed { throw ExitCode(3) }
    }

    /// Operator commands worth trying on the demo's cluster, with its real names filled in.
    static func suggestions(_ client: OperatorClient) async throws -> [String] {
        let best = try await client.runs(experiment: "demo-search", sortBy: MetricName.valid(MetricName.auc), limit: 1).first?.id ?? "RUN"
        return ["coordinator jobs", "coordinator models show match", "coordinator runs list demo-search", "coordinator shorts",
                "coordinator artifact demo-search \(best) model.tower --out model.tower"]
    }

    /// Returns on the first SIGINT or SIGTERM; either stops the cluster in order.
    static func waitForInterrupt() async {
        let interrupts = AsyncStream<Void> { continuation in
            let sources = [SIGINT, SIGTERM].map { number -> DispatchSourceSignal in
                signal(number, SIG_IGN)
                let source = DispatchSource.makeSignalSource(signal: number)
                source.setEventHandler { continuation.yield() }
                source.resume()
                return source
            }
            continuation.onTermination = { _ in sources.forEach { $0.cancel() } }
        }
        for await _ in interrupts { break }
        print("\nstopping the cluster")
    }
}
