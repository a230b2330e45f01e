import ArgumentParser
import CoordinatorKit
import Foundation
import Learning
import NIOPosix
import Wire

/// Where the coordinator is and which operator certificate to present: flags, then
/// environment variables, then what `coordinator login` saved (see ``OperatorCredentials``).
struct ClientOptions: ParsableArguments {
    @Option(help: "Coordinator HOST:PORT (env TOWER_COORDINATOR; default: the address `coordinator login` saved, else 127.0.0.1:7443).") var coordinator: String?
    @Option(help: "Operator certificate (env TOWER_CERT; default: operator.pem in $TOWER_CERTS_DIR or ~/.config/tower).") var cert: String?
    @Option(help: "Operator private key (env TOWER_KEY; default: operator-key.pem in $TOWER_CERTS_DIR or ~/.config/tower).") var key: String?
    @Option(help: "Cluster CA certificate (env TOWER_CA; default: ca.pem in $TOWER_CERTS_DIR or ~/.config/tower).") var ca: String?

    var credentials: OperatorCredentials {
        OperatorCredentials.resolve(.init(coordinator: coordinator, certificate: cert, key: key, ca: ca))
    }

    func connect() async throws -> OperatorClient {
        _ = LogSetup.clientOnce
        let credentials = self.credentials
        let (host, port) = try CoordinatorSettings.parseHostPort(credentials.coordinator, key: "--coordinator")
        let identity = try credentials.identity()
        if let warning = identity.keyFileWarning { FileHandle.standardError.write(Data("warning: \(warning)\n".utf8)) }
        return try await OperatorClient.connect(host: host == "0.0.0.0" ? "127.0.0.1" : host, port: port, identity: identity, group: MultiThreadedEventLoopGroup.singleton)
    }
}

/// Runs an operator action against a connection, printing errors the way a person can act on them.
func withOperator<T>(_ options: ClientOptions, _ body: (OperatorClient) async throws -> T) async throws -> T {
    do {
        let client = try await options.connect()
        do {
            let result = try await body(client)
            await client.shutdown()
            return result
        } catch {
            await client.shutdown()
            throw error
        }
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
    print("job \(j.jobID)  \(j.kind) \"\(j.name)\"  \(j.state.label)")
    print("  tasks: \(j.done) done, \(j.failed) failed, \(j.running) running, \(j.queued) queued of \(j.total); \(j.retries) retries")
    if let took = j.tookSeconds { print(String(format: "  took %.2f s", took)) }
    if !j.error.isEmpty { print("  error: \(j.error)") }
    if !j.waiting.isEmpty { print("  waiting: \(j.waiting)") }
    // The kind's own words, from its descriptor on the coordinator: any kind prints here.
    for line in j.summaryLines { print("  \(line)") }
}

struct Submit: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Submit a job.",
        discussion: "Example:\n  coordinator submit echo --tasks 200 --follow\n\nAny job kind: `coordinator submit KIND --spec FILE` (YAML or JSON, the fields of the kind's spec message in tower.proto). `echo` and `hpo` also take convenience flags.",
        subcommands: [Echo.self, HPO.self, Score.self, Drift.self, Render.self, Generic.self], defaultSubcommand: Generic.self)

    /// Any kind the coordinator runs, from a spec file: the coordinator's planner for the
    /// kind reads it, so this command needs no change when a kind is added.
    struct Generic: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "kind", abstract: "Submit a job of any kind from a spec file: `coordinator submit KIND --spec FILE`.",
            discussion: "Example:\n  coordinator submit render --spec render.yaml --follow")
        @OptionGroup var client: ClientOptions
        @Argument(help: "The job kind (see `coordinator jobs`, or the coordinator's log at start).") var kind: String
        @Option(help: "The kind's spec, YAML or JSON.") var spec: String
        @Option(help: "The job's name in `coordinator jobs` (default: the kind).") var name: String?
        @Option(name: .customLong("max-attempts"), help: "Attempts per task before it fails for good (0 = the coordinator's max_attempts).") var maxAttempts = 0
        @Flag(help: "Show progress until the job ends.") var follow = false

        func run() async throws {
            var job = WireJobSpec()
            do {
                job.spec = try SpecFile.json(fromFile: spec)
                job.maxAttempts = try FlagValue.uint32(maxAttempts, flag: "--max-attempts", allowed: 0...1000)
            } catch let error as ValidationError { throw error } catch { throw fail(error) }
            job.kind = kind
            job.name = name ?? kind
            try await withOperator(client) { c in
                let accepted = try await c.submit(job)
                print("submitted \(accepted.jobID) (\(accepted.tasks) tasks)")
                if follow { try await followJob(c, accepted.jobID) }
            }
        }
    }

    struct HPO: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "hpo",
            abstract: "A hyperparameter search sharded across the workers; the winner is registered and put through the promotion policy.",
            discussion: "Example:\n  coordinator submit hpo --data market --space Deploy/search-space.yaml --follow")
        @OptionGroup var client: ClientOptions
        @Option(help: "Market data directory (users.csv, listings.csv, interactions.csv; see `coordinator demo-data`).") var data: String?
        @Option(name: .customLong("training-set"), help: "A training set already on the coordinator (its SHA-256, from `coordinator training-set build`), instead of --data.") var trainingSet: String?
        @Option(help: "Search space and limits, YAML or JSON (see Deploy/search-space.yaml).") var space: String?
        @Option(help: "The whole HPOSpec as YAML or JSON instead of the flags above.") var spec: String?
        @Option(help: "Experiment the runs are recorded under.") var experiment = "search"
        @Option(name: .customLong("model"), help: "Registered model the winner becomes a version of.") var modelName = "match"
        @Option(help: "Promotion policy overrides (YAML).") var promotion: String?
        @Option(help: "The job's name in `coordinator jobs`.") var name = "hpo"
        @Flag(help: "Show a progress bar until the search ends.") var follow = false

        func validate() throws {
            guard spec != nil || ((data != nil || trainingSet != nil) && space != nil) else {
                throw ValidationError("give --data (or --training-set) and --space, or the whole spec with --spec FILE")
            }
            guard data == nil || trainingSet == nil else { throw ValidationError("give --data or --training-set, not both") }
        }

        func run() async throws {
            var job = WireJobSpec()
            job.kind = JobKind.hpo
            job.name = name
            do {
                if let file = self.spec {
                    job.spec = try SpecFile.json(fromFile: file)
                } else if let space {
                    var spec = WireHPOSpec()
                    spec.experiment = experiment
                    spec.modelName = modelName
                    spec.space = try String(contentsOfFile: space, encoding: .utf8)
                    if let data { spec.dataset = try DatasetArchive.pack(directory: URL(fileURLWithPath: data)) }
                    if let trainingSet { spec.datasetSha256 = trainingSet }
                    if let promotion { spec.promotion = try String(contentsOfFile: promotion, encoding: .utf8) }
                    job.spec = try spec.serializedData()
                }
            } catch { throw fail(error) }
            try await withOperator(client) { c in
                let accepted = try await c.submit(job)
                print("submitted \(accepted.jobID) (first wave of \(accepted.tasks) trials; more follow as results arrive)")
                if follow { try await followJob(c, accepted.jobID) }
            }
        }
    }

    struct Echo: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "The diagnostic job: every task echoes a payload.",
            discussion: "Example:\n  coordinator submit echo --tasks 200 --payload-bytes 1024 --follow")
        @OptionGroup var client: ClientOptions
        @Option(help: "Tasks in the job.") var tasks = 200
        @Option(name: .customLong("payload-bytes"), help: "Bytes each task sends to its worker and gets back, verified.") var payloadBytes = 1024
        @Option(name: .customLong("sleep-ms"), help: "Sleep per task.") var sleepMs = 0
        @Option(name: .customLong("blob-bytes"), help: "Size of one blob all tasks read (0 = none).") var blobBytes = 0
        @Option(name: .customLong("fail-index"), help: "Diagnostic: this task index always fails.") var failIndex: Int?
        @Option(name: .customLong("max-attempts"), help: "Attempts per task before it fails for good (0 = the coordinator's max_attempts).") var maxAttempts = 0
        @Option(help: "The job's name in `coordinator jobs`.") var name = "echo"
        @Option(help: "The whole EchoSpec as YAML or JSON instead of the flags above.") var spec: String?
        @Flag(help: "Show a progress bar until the job ends.") var follow = false

        func run() async throws {
            var job = WireJobSpec()
            do {
                if let file = self.spec {
                    job.spec = try SpecFile.json(fromFile: file)
                } else {
                    job.spec = try FlagValue.echoSpec(tasks: tasks, payloadBytes: payloadBytes, sleepMs: sleepMs, blobBytes: blobBytes, failIndex: failIndex).serializedData()
                }
                job.maxAttempts = try FlagValue.uint32(maxAttempts, flag: "--max-attempts", allowed: 0...1000)
            } catch let error as WireError {
                throw fail(error)
            } catch {
                throw ValidationError("\(error)")
            }
            job.kind = JobKind.echo
            job.name = name
            try await withOperator(client) { c in
                let accepted = try await c.submit(job)
                print("submitted \(accepted.jobID) (\(accepted.tasks) tasks)")
                if follow { try await followJob(c, accepted.jobID) }
            }
        }
    }
}

struct Jobs: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "List recent jobs.",
            discussion: "Example:\n  coordinator jobs --limit 5")
    @OptionGroup var client: ClientOptions
    @Option(help: "Jobs to list, newest first (1 to 1000).") var limit = 20

    func validate() throws {
        do { _ = try FlagValue.uint32(limit, flag: "--limit", allowed: 1...HTTPSAPI.maxLimit) }
        catch { throw ValidationError("\(error)") }
    }

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
    static let configuration = CommandConfiguration(commandName: "job", abstract: "Show one job; --follow shows a progress bar until it ends.",
            discussion: "Example:\n  coordinator job JOB_ID --follow")
    @OptionGroup var client: ClientOptions
    @Argument(help: "The job's id (from `coordinator jobs`).") var id: String
    @Flag(help: "Show a progress bar until the job ends; exits non-zero unless it succeeded.") var follow = false

    func run() async throws {
        try await withOperator(client) { c in
            if follow { try await followJob(c, id) } else { printJob(try await c.job(id)) }
        }
    }
}

struct Workers: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "List connected workers.",
            discussion: "Example:\n  coordinator workers")
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
    static let configuration = CommandConfiguration(abstract: "Cancel a job: queued tasks are dropped, running ones stopped.",
            discussion: "Example:\n  coordinator cancel JOB_ID")
    @OptionGroup var client: ClientOptions
    @Argument(help: "The job's id (from `coordinator jobs`).") var id: String

    func run() async throws {
        try await withOperator(client) { c in printJob(try await c.cancel(id)) }
    }
}

struct Results: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Print a job's task results, one line per task.",
            discussion: "Example:\n  coordinator results JOB_ID")
    @OptionGroup var client: ClientOptions
    @Argument(help: "The job's id (from `coordinator jobs`).") var id: String

    func run() async throws {
        try await withOperator(client) { c in
            print("TASK\tSTATE\tWORKER\tATTEMPTS\tOUTPUT\tERROR")
            for r in try await c.results(id) {
                print("\(r.index)\t\(r.state)\t\(r.worker.isEmpty ? "-" : r.worker)\t\(r.attempts)\t\(r.output.count) bytes\t\(r.error.isEmpty ? "-" : r.error)")
            }
        }
    }
}

struct Runs: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Experiments and their runs (trials): list, compare, re-run.",
        discussion: """
            `coordinator runs EXPERIMENT` lists an experiment's runs; `submit hpo` records under the experiment \
            named by its --experiment (default "search"), a drift-started retraining under its pipeline's.

            Examples:
              coordinator runs experiments
              coordinator runs list search --sort valid_logloss
              coordinator runs rerun RUN --follow
            """,
        subcommands: [ListRuns.self, Experiments.self, Rerun.self], defaultSubcommand: ListRuns.self)

    struct Experiments: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List the experiments, with their runs and when the latest started.",
                                                        discussion: "Example:\n  coordinator runs experiments")
        @OptionGroup var client: ClientOptions
        func run() async throws {
            try await withOperator(client) { c in
                let experiments = try await c.experiments()
                if experiments.isEmpty { print("no experiments yet; `coordinator submit hpo …` records one") ; return }
                let width = max(12, experiments.map(\.name.count).max() ?? 0) + 2
                print("EXPERIMENT".padding(toLength: width, withPad: " ", startingAt: 0) + "RUNS  LATEST RUN")
                for e in experiments {
                    let latest = e.lastRunAtMs == 0 ? "-" : JSONTime.rfc3339(e.lastRunAtMs)
                    print(e.name.padding(toLength: width, withPad: " ", startingAt: 0) + "\(e.runs)".padding(toLength: 6, withPad: " ", startingAt: 0) + latest)
                }
                print("next: coordinator runs list EXPERIMENT --sort valid_auc")
            }
        }
    }

    struct Rerun: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Run a recorded trial again, exactly (same data set blob, parameters and seed), as a new run tagged rerun_of.",
                                                        discussion: "Example:\n  coordinator runs rerun search-JOB-3 --follow")
        @OptionGroup var client: ClientOptions
        @Argument(help: "The run to repeat (an id from `coordinator runs list EXPERIMENT`).") var run: String
        @Flag(help: "Show a progress bar until the re-run ends.") var follow = false
        func run() async throws {
            try await withOperator(client) { c in
                let accepted = try await c.rerun(run)
                print("submitted \(accepted.jobID): re-run of \(run)")
                if follow { try await followJob(c, accepted.jobID) }
            }
        }
    }
}

/// Which way runs are sorted: best first unless the operator says otherwise.
enum SortOrder: String, ExpressibleByArgument, CaseIterable {
    case asc, desc
}

struct ListRuns: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "list",
        abstract: "List an experiment's runs (trials), best first; --compare shows two side by side.",
        discussion: """
            Examples:
              coordinator runs list search --sort valid_auc
              coordinator runs list search --compare RUN_A RUN_B
            """)
    @OptionGroup var client: ClientOptions
    @Argument(help: "The experiment (`coordinator runs experiments` lists them).") var experiment: String
    @Option(help: "Metric to sort by; an unknown one is refused naming those the runs logged.") var sort = MetricName.valid(MetricName.auc)
    @Option(help: "asc or desc (default: best first — losses ascending, everything else descending).") var order: SortOrder?
    @Option(parsing: .upToNextOption, help: "Two run ids to compare.") var compare: [String] = []
    @Option(help: "Runs to show: the best when sorted (default 50; 0 shows all).") var limit = 50

    func validate() throws {
        if !compare.isEmpty && compare.count != 2 { throw ValidationError("--compare takes two run ids, got \(compare.count)") }
        if limit < 0 { throw ValidationError("--limit must be 0 (all) or more, got \(limit)") }
    }

    func run() async throws {
        let ascending = order.map { $0 == .asc } ?? MetricName.lowerIsBetter(sort)
        try await withOperator(client) { c in
            if !compare.isEmpty {
                try printComparison(try await c.runs(experiment: experiment, sortBy: sort, ascending: ascending, ids: compare))
                return
            }
            let page = try await c.runPage(experiment: experiment, sortBy: sort, ascending: ascending, limit: limit)
            let runs = page.runs
            let sortWidth = max(12, sort.count + 2)
            print("RUN".padding(toLength: 30, withPad: " ", startingAt: 0) + "STATUS    " + sort.padding(toLength: sortWidth, withPad: " ", startingAt: 0) + "STEPS  PARAMS")
            for r in runs {
                let value = r.metrics[sort].map { ReadableNumber.metric($0) } ?? "-"
                let params = r.params.sorted { $0.key < $1.key }.filter { $0.key != "seed" }.map { "\($0.key)=\(ReadableNumber.parameter($0.value))" }.joined(separator: " ")
                print(r.id.padding(toLength: 30, withPad: " ", startingAt: 0) + r.status.padding(toLength: 10, withPad: " ", startingAt: 0)
                      + value.padding(toLength: sortWidth, withPad: " ", startingAt: 0) + "\(r.curveSteps.last ?? 0)".padding(toLength: 7, withPad: " ", startingAt: 0) + params)
            }
            if page.total > UInt64(runs.count) {
                print("\(runs.count) of \(page.total) runs shown; --limit N shows more (0: all)")
            }
        }
    }

    func printComparison(_ runs: [WireRunInfo]) throws {
        let pair = compare.map { id in runs.first { $0.id == id } }
        guard let a = pair[0], let b = pair[1] else {
            throw ValidationError("no run \(compare.filter { id in !runs.contains { $0.id == id } }.joined(separator: ", ")) in \(experiment); `coordinator runs list \(experiment)` lists its runs")
        }
        func row(_ label: String, _ x: String, _ y: String) {
            print(label.padding(toLength: 24, withPad: " ", startingAt: 0) + x.padding(toLength: 28, withPad: " ", startingAt: 0) + y)
        }
        row("", a.id, b.id)
        for key in Set(a.params.keys).union(b.params.keys).sorted() {
            row("param " + key, a.params[key].map(ReadableNumber.parameter) ?? "-", b.params[key].map(ReadableNumber.parameter) ?? "-")
        }
        for key in Set(a.metrics.keys).union(b.metrics.keys).sorted() {
            row(key, a.metrics[key].map { ReadableNumber.metric($0) } ?? "-", b.metrics[key].map { ReadableNumber.metric($0) } ?? "-")
        }
        for key in ["status", "worker", "iterations", "stopped_early", "asha"] {
            row(key, key == "status" ? a.status : (a.tags[key] ?? "-"), key == "status" ? b.status : (b.tags[key] ?? "-"))
        }
    }
}

struct Models: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Registered models and their aliases.",
            discussion: "Example:\n  coordinator models show match", subcommands: [List.self, Show.self, Watch.self], defaultSubcommand: List.self)

    struct Watch: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Print where each alias points now, then every alias move (promotion, rollback) as it happens.",
                                                        discussion: "Example:\n  coordinator models watch match")
        @OptionGroup var client: ClientOptions
        @Argument(help: "Models to watch (default: all).") var names: [String] = []
        func run() async throws {
            try await withOperator(client) { c in
                // Subscribe before reading the aliases, so a move between the two is not lost.
                let moves = try await c.promotions(models: names)
                print("watching \(names.isEmpty ? "all models" : names.joined(separator: ", ")); Ctrl-C to stop")
                for model in try await c.models() where names.isEmpty || names.contains(model.name) {
                    let aliases = model.aliases.sorted { $0.key < $1.key }
                    if aliases.isEmpty { print("\(model.name): no alias yet (\(model.versions) versions)") }
                    for (alias, version) in aliases { print("\(model.name)@\(alias): v\(version) (now)") }
                }
                // Piped to a file or another program, stdout is block-buffered: flush so
                // each line is there when it happens.
                fflush(stdout)
                for await e in moves {
                    let when = ISO8601DateFormatter().string(from: Date(timeIntervalSince1970: Double(e.atMs) / 1000))
                    print("\(when)  \(e.model)@\(e.alias): v\(e.previousVersion) → v\(e.version) (\(e.action)) sha256 \(e.sha256.prefix(12))")
                    fflush(stdout)
                }
            }
        }
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "list", abstract: "All registered models.",
            discussion: "Example:\n  coordinator models list")
        @OptionGroup var client: ClientOptions
        func run() async throws {
            try await withOperator(client) { c in
                let models = try await c.models()
                if models.isEmpty { print("no registered models yet; `coordinator submit hpo …` registers the winner of a search") }
                for m in models {
                    let aliases = m.aliases.sorted { $0.key < $1.key }.map { "\($0.key)=v\($0.value)" }.joined(separator: " ")
                    print("\(m.name)  \(m.versions) versions  \(aliases)")
                }
            }
        }
    }

    struct Show: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Versions, aliases and every promotion decision of a model.",
            discussion: "Example:\n  coordinator models show match")
        @OptionGroup var client: ClientOptions
        @Argument(help: "The registered model (from `coordinator models`).") var name: String
        func run() async throws {
            try await withOperator(client) { c in
                let m = try await c.model(name)
                print("model \(m.name)  " + m.aliases.sorted { $0.key < $1.key }.map { "\($0.key)=v\($0.value)" }.joined(separator: " "))
                for v in m.versions {
                    print("  v\(v.version)  run \(v.runID)  sha256 \(v.sha256.prefix(12))")
                    let holdout = MetricLines.lines(v.metrics)
                    if holdout.isEmpty { print("      no holdout metrics recorded") }
                    for line in holdout { print("      holdout " + line) }
                }
                print("decisions:")
                for d in m.decisions {
                    let when = Date(timeIntervalSince1970: Double(d.atMs) / 1000)
                    print("  \(ISO8601DateFormatter().string(from: when))  v\(d.version) \(d.promoted ? "promoted" : "declined") (\(d.action), by \(d.actor))")
                    for r in d.reasons { print("      \(r)") }
                }
            }
        }
    }
}

struct Promote: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Make a version the champion by hand (recorded with the reason).",
            discussion: "Example:\n  coordinator promote match 2 --reason \"approved by the pricing team\"")
    @OptionGroup var client: ClientOptions
    @Argument(help: "The registered model.") var name: String
    @Argument(help: "The version to point the alias at (from `coordinator models show NAME`).") var version: Int

    func validate() throws {
        do { _ = try FlagValue.uint32(version, flag: "VERSION", allowed: 1...Int(UInt32.max)) }
        catch { throw ValidationError("\(error)") }
    }
    @Option(help: "Why, recorded with the decision (`models show` prints it).") var reason: String
    @Option(help: "Alias to move; any name, e.g. canary.") var alias = "champion"

    func run() async throws {
        try await withOperator(client) { c in
            let d = try await c.promote(name, version: version, reason: reason, alias: alias)
            print("\(name)@\(alias): v\(d.previousVersion) → v\(d.version) (recorded: \(d.reasons.joined(separator: "; ")))")
        }
    }
}

struct Rollback: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Move the champion back to the version before the current one (recorded).",
            discussion: "Example:\n  coordinator rollback match --reason \"click-through fell\"")
    @OptionGroup var client: ClientOptions
    @Argument(help: "The registered model.") var name: String
    @Option(help: "Why, recorded with the decision.") var reason = "operator rollback"
    @Option(help: "Alias to move back.") var alias = "champion"

    func run() async throws {
        try await withOperator(client) { c in
            let d = try await c.rollback(name, reason: reason, alias: alias)
            print("\(name)@\(alias): v\(d.previousVersion) → v\(d.version) (rollback recorded)")
        }
    }
}

struct Artifact: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Download a run's artifact (model.tower, learning-curve.svg, shap-summary.svg); its SHA-256 is verified.",
            discussion: "Example:\n  coordinator artifact search RUN model.tower --out model.tower")
    @OptionGroup var client: ClientOptions
    @Argument(help: "The run's experiment (`coordinator runs experiments`).") var experiment: String
    @Argument(help: "The run (`coordinator runs list EXPERIMENT`).") var run: String
    @Argument(help: "The artifact: model.tower, learning-curve.svg or shap-summary.svg.") var name: String
    @Option(help: "File to write it to.") var out: String

    func run() async throws {
        try await withOperator(client) { c in
            guard let info = try await c.runs(experiment: experiment, ids: [run]).first else {
                throw ValidationError("no run \(run) in \(experiment)")
            }
            guard let sha = info.artifacts[name] else {
                throw ValidationError("run \(run) has no artifact \(name); it has: \(info.artifacts.keys.sorted().joined(separator: ", "))")
            }
            let data = try await c.blob(sha)
            try data.write(to: URL(fileURLWithPath: out))
            print("wrote \(out) (\(data.count) bytes, sha256 \(sha))")
        }
    }
}
