import ArgumentParser
import CoordinatorKit
import Foundation
import NIOPosix
import Wire

/// Where the coordinator is and which operator certificate to present. Each option also
/// reads an environment variable so a shell can set them once.
struct ClientOptions: ParsableArguments {
    @Option(help: "Coordinator HOST:PORT (env TOWER_COORDINATOR).") var coordinator: String?
    @Option(help: "Operator certificate (env TOWER_CERT).") var cert: String?
    @Option(help: "Operator private key (env TOWER_KEY).") var key: String?
    @Option(help: "Cluster CA certificate (env TOWER_CA).") var ca: String?

    func connect() async throws -> OperatorClient {
        let env = ProcessInfo.processInfo.environment
        let address = coordinator ?? env["TOWER_COORDINATOR"] ?? "127.0.0.1:7443"
        let (host, port) = try CoordinatorSettings.parseHostPort(address, key: "--coordinator")
        let identity = try TLSIdentity(
            certificate: cert ?? env["TOWER_CERT"] ?? "./tower-certs/operator.pem",
            key: key ?? env["TOWER_KEY"] ?? "./tower-certs/operator-key.pem",
            ca: ca ?? env["TOWER_CA"] ?? "./tower-certs/ca.pem")
        return try await OperatorClient.connect(host: host == "0.0.0.0" ? "127.0.0.1" : host, port: port, identity: identity, group: MultiThreadedEventLoopGroup.singleton)
    }
}

/// Runs an operator action against a connection, printing errors the way a person can act on them.
func withOperator<T>(_ options: ClientOptions, _ body: (OperatorClient) async throws -> T) async throws -> T {
    do {
        let client = try await options.connect()
        defer { client.close() }
        return try await body(client)
    } catch let error as ExitCode {
        throw error
    } catch {
        throw fail(error)
    }
}

/// Follows a job with a live progress bar; exits non-zero unless it succeeded.
func followJob(_ client: OperatorClient, _ id: String) async throws {
    var line = ProgressLine()
    let tty = isatty(STDOUT_FILENO) == 1
    var lastPrint = Date.distantPast
    let end = try await client.follow(id) { summary in
        let text = line.render(summary)
        if tty {
            print("\r\u{1B}[2K\(text)", terminator: "")
            fflush(stdout)
        } else if Date().timeIntervalSince(lastPrint) > 2 || summary.state.isTerminal {
            print(text)
            lastPrint = Date()
        }
    }
    if tty { print("") }
    printJob(end)
    if end.state != .succeeded { throw ExitCode(3) }
}

func printJob(_ j: WireJobSummary) {
    let created = Date(timeIntervalSince1970: Double(j.createdAtMs) / 1000)
    let finished = j.finishedAtMs > 0 ? Date(timeIntervalSince1970: Double(j.finishedAtMs) / 1000) : nil
    print("job \(j.jobID)  \(j.kind) \"\(j.name)\"  \(j.state.label)")
    print("  tasks: \(j.done) done, \(j.failed) failed, \(j.running) running, \(j.queued) queued of \(j.total); \(j.retries) retries")
    if let finished { print(String(format: "  took %.2f s", finished.timeIntervalSince(created))) }
    if !j.error.isEmpty { print("  error: \(j.error)") }
    if j.kind == JobKind.echo, !j.summary.isEmpty, let s = try? WireEchoSummary(serializedBytes: j.summary) {
        let perWorker = s.tasksPerWorker.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: " ")
        print("  echo: \(s.tasks) payloads verified (\(s.payloadBytes) bytes); per worker: \(perWorker)")
    }
}

struct Submit: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Submit a job.", subcommands: [Echo.self])

    struct Echo: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "The diagnostic job: every task echoes a payload.")
        @OptionGroup var client: ClientOptions
        @Option var tasks = 200
        @Option(name: .customLong("payload-bytes")) var payloadBytes = 1024
        @Option(name: .customLong("sleep-ms"), help: "Sleep per task.") var sleepMs = 0
        @Option(name: .customLong("blob-bytes"), help: "Size of one blob all tasks read (0 = none).") var blobBytes = 0
        @Option(name: .customLong("fail-index"), help: "Diagnostic: this task index always fails.") var failIndex: Int?
        @Option(name: .customLong("max-attempts")) var maxAttempts = 0
        @Option var name = "echo"
        @Flag(help: "Show a progress bar until the job ends.") var follow = false

        func run() async throws {
            var spec = WireEchoSpec()
            spec.tasks = UInt32(clamping: tasks)
            spec.payloadBytes = UInt32(clamping: payloadBytes)
            spec.sleepMs = UInt32(clamping: sleepMs)
            spec.blobBytes = UInt32(clamping: blobBytes)
            spec.failIndexPlusOne = failIndex.map { UInt32(clamping: $0 + 1) } ?? 0
            var job = WireJobSpec()
            job.kind = JobKind.echo
            job.name = name
            job.spec = try spec.serializedData()
            job.maxAttempts = UInt32(clamping: maxAttempts)
            try await withOperator(client) { c in
                let accepted = try await c.submit(job)
                print("submitted \(accepted.jobID) (\(accepted.tasks) tasks)")
                if follow { try await followJob(c, accepted.jobID) }
            }
        }
    }
}

struct Jobs: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "List recent jobs.")
    @OptionGroup var client: ClientOptions
    @Option var limit = 20

    func run() async throws {
        try await withOperator(client) { c in
            let jobs = try await c.jobs(limit: limit)
            print("JOB".padding(toLength: 24, withPad: " ", startingAt: 0) + "KIND      STATE      DONE/TOTAL  FAILED  NAME")
            for j in jobs {
                print(j.jobID.padding(toLength: 24, withPad: " ", startingAt: 0)
                      + j.kind.padding(toLength: 10, withPad: " ", startingAt: 0)
                      + j.state.label.padding(toLength: 11, withPad: " ", startingAt: 0)
                      + "\(j.done)/\(j.total)".padding(toLength: 12, withPad: " ", startingAt: 0)
                      + "\(j.failed)".padding(toLength: 8, withPad: " ", startingAt: 0) + j.name)
            }
        }
    }
}

struct JobCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "job", abstract: "Show one job; --follow shows a progress bar until it ends.")
    @OptionGroup var client: ClientOptions
    @Argument var id: String
    @Flag var follow = false

    func run() async throws {
        try await withOperator(client) { c in
            if follow { try await followJob(c, id) } else { printJob(try await c.job(id)) }
        }
    }
}

struct Workers: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "List connected workers.")
    @OptionGroup var client: ClientOptions

    func run() async throws {
        try await withOperator(client) { c in
            let workers = try await c.workers()
            if workers.isEmpty { print("no workers connected; start one with `worker --coordinator HOST:PORT --cert … --key … --ca …`") }
            for w in workers {
                let caps = w.capabilities
                let labels = caps.labels.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: ",")
                print("\(w.sessionID)  \(w.address)  slots \(caps.slots)  cores \(caps.cores)  mem \(caps.memoryBytes >> 30) GiB  running \(w.running)  done \(w.tasksDone)\(w.draining ? "  draining" : "")  tools [\(caps.tools.joined(separator: ","))]\(labels.isEmpty ? "" : "  labels \(labels)")")
            }
        }
    }
}

struct Cancel: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Cancel a job: queued tasks are dropped, running ones stopped.")
    @OptionGroup var client: ClientOptions
    @Argument var id: String

    func run() async throws {
        try await withOperator(client) { c in printJob(try await c.cancel(id)) }
    }
}

struct Results: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Print a job's task results, one line per task.")
    @OptionGroup var client: ClientOptions
    @Argument var id: String

    func run() async throws {
        try await withOperator(client) { c in
            for r in try await c.results(id) {
                print("\(r.index)\t\(r.worker.isEmpty ? "-" : r.worker)\tattempts=\(r.attempts)\t\(r.output.count) bytes\(r.error.isEmpty ? "" : "\terror: \(r.error)")")
            }
        }
    }
}
