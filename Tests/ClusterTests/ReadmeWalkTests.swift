import Foundation
import Testing
import Wire
@testable import CoordinatorKit

extension ProcessClusterSuites {
/// Walks the README's command blocks as a newcomer would on one host, with the real
/// executables: the commands are read from README.md itself, so the README and this walk
/// cannot drift apart. Every command the README shows is either run — and must exit 0
/// and print what the README says it does — or named below with the reason it is not.
///
/// What changes between the README and this host is declared once, in
/// ``ReadmeWalk/substitutions``: paths under a temporary directory instead of /etc and
/// /var, loopback and free ports instead of tower-1.internal:7443, a smaller search and
/// feature store so the walk takes about three minutes, and placeholders (JOB_ID, RUN,
/// SHA256, short-JOB-0, …) filled from what earlier commands printed; the few changes to
/// the sample config itself are in ``ReadmeWalk/configChanges``.
@Suite(.serialized, .timeLimit(.minutes(8))) struct ReadmeWalkTests {
    @Test func theReadmeCommandsWorkAsWritten() async throws {
        let walk = try ReadmeWalk()
        defer { walk.stop() }
        let commands = try ReadmeWalk.commands(in: try ReadmeWalk.readme())
        #expect(commands.count > 40, "\(commands.count) commands found; the extraction is broken")
        var walked = 0, skipped: [String] = []
        for command in commands {
            if let reason = ReadmeWalk.notWalked(command) {
                #expect(!reason.isEmpty)
                skipped.append(command.joined(separator: " "))
                continue
            }
            try await walk.run(command)
            walked += 1
        }
        // Only the quick start's two `make` lines are not walked.
        #expect(skipped == ["make demo", "make test"])
        #expect(walked == commands.count - 2 && walked >= 58, "only \(walked) of \(commands.count) commands walked")
    }

    /// The extraction itself: continuation lines join, comments go, quotes hold.
    @Test func commandsAreReadAsAShellReadsThem() throws {
        let text = """
            prose
            ```sh
            coordinator promote match 2 --reason "approved by the team"  # a comment
            worker --coordinator h:1 \\
                   --slots 8
            ```
            ```
            not a shell block
            ```
            """
        #expect(try ReadmeWalk.commands(in: text) == [
            ["coordinator", "promote", "match", "2", "--reason", "approved by the team"],
            ["worker", "--coordinator", "h:1", "--slots", "8"],
        ])
    }
}
}

/// One walk of the README on this host.
final class ReadmeWalk: @unchecked Sendable {
    let root: URL
    let coordinatorPort: Int, apiPort: Int, metricsPort: Int, gatewayPort: Int, workerMetricsPort: Int
    /// Processes the README leaves running (serve, worker, models watch).
    private var background: [Process] = []
    /// Values earlier commands printed, for the README's placeholders.
    private var placeholders: [String: String] = [:]

    static var repository: URL {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    }

    static func readme() throws -> String { try String(contentsOf: repository.appendingPathComponent("README.md"), encoding: .utf8) }

    init() throws {
        root = FileManager.default.temporaryDirectory.appendingPathComponent("tower-readme-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: root.appendingPathComponent("home"), withIntermediateDirectories: true)
        coordinatorPort = try LocalCluster.freePort()
        apiPort = try LocalCluster.freePort()
        metricsPort = try LocalCluster.freePort()
        gatewayPort = try LocalCluster.freePort()
        workerMetricsPort = try LocalCluster.freePort()
        // The sample config and search space, with this host's substitutions.
        var config = try String(contentsOf: Self.repository.appendingPathComponent("Deploy/tower.yaml"), encoding: .utf8)
        for (from, to) in configChanges {
            #expect(config.contains(from), "Deploy/tower.yaml no longer says \(from)")
            config = config.replacingOccurrences(of: from, with: to)
        }
        try Data(substitute(config).utf8).write(to: root.appendingPathComponent("tower.yaml"))
        var space = try String(contentsOf: Self.repository.appendingPathComponent("Deploy/search-space.yaml"), encoding: .utf8)
        for (from, to) in Self.smallerSearch { space = space.replacingOccurrences(of: from, with: to) }
        try Data(space.utf8).write(to: root.appendingPathComponent("search-space.yaml"))
        try Data("tasks: 10\npayload_bytes: 64\n".utf8).write(to: root.appendingPathComponent("spec.yaml"))
    }

    /// The README's host-specific text → this host's, applied to every command and to the
    /// sample config.
    var substitutions: [(String, String)] {
        [("/etc/tower/certs", root.appendingPathComponent("certs").path),
         ("/var/lib/tower", root.appendingPathComponent("data").path),
         ("tower-1.internal:7443", "localhost:\(coordinatorPort)"),
         ("tower-1.internal:7444", "localhost:\(apiPort)"),
         ("tower-1.internal", "localhost"),
         ("10.0.0.5", "127.0.0.1"),
         ("0.0.0.0:7443", "127.0.0.1:\(coordinatorPort)"),
         ("0.0.0.0:7444", "127.0.0.1:\(apiPort)"),
         ("127.0.0.1:9464", "127.0.0.1:\(metricsPort)"),
         ("127.0.0.1:9465", "127.0.0.1:\(workerMetricsPort)"),
         ("0.0.0.0:8080", "127.0.0.1:\(gatewayPort)"),
         ("localhost:8080", "localhost:\(gatewayPort)"),
         ("Deploy/tower.yaml", root.appendingPathComponent("tower.yaml").path),
         ("Deploy/search-space.yaml", root.appendingPathComponent("search-space.yaml").path)]
    }

    /// A search of a few short trials: the walk checks that searching works as written,
    /// not how good 20 trials of 200 iterations get.
    static let smallerSearch = [("max_trials: 20", "max_trials: 4"), ("max_concurrent: 4", "max_concurrent: 2"),
                                ("num_iterations: 200", "num_iterations: 40"), ("max_iterations: 200", "max_iterations: 40"),
                                ("min_iterations: 10", "min_iterations: 5")]

    /// The walk's changes to the sample config itself (each must still be in it): no
    /// scheduled run may start in the middle of the walk, the retraining pipeline searches
    /// the walk's smaller space, and ingest queues a render for the top listing (0.5%)
    /// rather than the top 5% (the walk checks that ingest queues them, not how many it renders).
    var configChanges: [(String, String)] {
        [("schedule: \"0 0 * * *\"", "schedule: null"),
         ("kind: hpo, timeout_seconds: 7200, with: {model: match}}",
          "kind: hpo, timeout_seconds: 7200, with: {model: match, space: \(root.appendingPathComponent("search-space.yaml").path)}}"),
         ("trigger_top_percent: 5", "trigger_top_percent: 0.5")]
    }

    /// A small feature store: the walk checks that the loop runs as written, not how well
    /// it learns from 40,000 impressions.
    static let smallerFeatureStore = ["--users": "150", "--listings": "120", "--interactions": "5000"]

    func substitute(_ text: String) -> String {
        substitutions.reduce(text) { $0.replacingOccurrences(of: $1.0, with: $1.1) }
    }

    /// Why a README command is not run here, or nil when it is.
    static func notWalked(_ words: [String]) -> String? {
        if words.first == "make" { return "the quick start: `make test` is this suite, `make demo` is theDemoLoopRecoversFromDriftThroughTheRetrainingPipeline" }
        return nil
    }

    // MARK: Running

    func run(_ readmeWords: [String]) async throws {
        var words = readmeWords.map(substitute)
        for (i, word) in words.enumerated() {
            for (name, value) in placeholders where word == name || word.hasPrefix(name + ".") { words[i] = value + word.dropFirst(name.count) }
        }
        if words.first == "coordinator", words.dropFirst().first == "submit", words.count > 2, words[2] == "KIND" { words[2] = "echo" }
        if words.starts(with: ["coordinator", "demo-data", "--feature-store"]) {
            for i in words.indices.dropLast() { if let smaller = Self.smallerFeatureStore[words[i]] { words[i + 1] = smaller } }
        }
        let line = words.joined(separator: " ")
        if words.starts(with: ["coordinator", "pipelines", "trigger"]) {
            // The drift above starts a retraining run when the data set drifted, and the
            // pipeline allows one run at a time (max_active_runs: 1): as the README says,
            // trigger after that run ends.
            try await waitForNoActiveRun(words[3], within: .seconds(240))
        }
        switch (words.first ?? "", words.dropFirst().first ?? "") {
        case ("coordinator", "serve"):
            try startBackground(words, name: "coordinator")
            try await waitFor("the coordinator to listen") { self.log("coordinator").contains("coordinator listening") }
        case ("worker", _):
            try startBackground(words, name: "worker", in: root.appendingPathComponent("certs"))
            try await waitFor("the worker to connect") { self.log("worker").contains("connected to the coordinator") }
        case ("coordinator", "models") where words.dropFirst(2).first == "watch":
            try startBackground(words, name: "watch")
            try await waitFor("models watch to say where champion points") { self.log("watch").contains("match@champion: v") }
        case ("gateway", _):
            try startBackground(words, name: "gateway", in: root.appendingPathComponent("certs"))
            try await waitFor("the gateway to serve the champion") { self.log("gateway").contains("serving") }
        default:
            let cwd = words.first == "curl" ? root.appendingPathComponent("certs") : root
            let (status, output) = try await Self.execute(words, in: cwd, home: root.appendingPathComponent("home"))
            let expected = Self.documentedRefusal(words)
            #expect(status == expected?.status ?? 0, "\(line)\n\(output)")
            if let shape = expected?.message ?? Self.documentedShape(words) {
                #expect(output.range(of: shape, options: .regularExpression) != nil, "\(line): expected /\(shape)/ in\n\(output)")
            }
            if words.first == "curl", line.contains("localhost:\(gatewayPort)") { try Self.checkGatewayAnswer(words, output) }
            remember(words, output)
        }
    }

    /// Commands the README says are refused, with the exit status and message it gives.
    static func documentedRefusal(_ words: [String]) -> (status: Int32, message: String)? {
        if words.starts(with: ["coordinator", "shorts", "approve"]), !words.contains("--dry-run") {
            return (1, "^error: .*no platform to publish to: add shorts.youtube and/or shorts.instagram \\(with access_token_file\\) to the coordinator's config and restart it; short short-[^ ]+-0 stays as it is\\n$")
        }
        return nil
    }

    /// The gateway's JSON answers have the shapes the README gives: the GET and POST
    /// recommendations name the model and list k items with listing, score, rank and
    /// reasons; the events answer counts what it accepted.
    static func checkGatewayAnswer(_ words: [String], _ output: String) throws {
        let object = try #require(try? JSONSerialization.jsonObject(with: Data(output.utf8)) as? [String: Any], "not a JSON object: \(output)")
        if words.contains(where: { $0.hasSuffix("/v1/events") }) {
            #expect(output == #"{"accepted":1,"delivered":true,"duplicates":0,"queued":0}"#)
            return
        }
        #expect(object["model"] as? String == "match", "\(output)")
        #expect((object["model_version"] as? Int ?? 0) >= 1, "\(output)")
        let items = try #require(object["items"] as? [[String: Any]], "\(output)")
        #expect(items.compactMap { $0["rank"] as? Int } == Array(1...10), "\(output)")
        for item in items {
            #expect(item["listing_id"] as? Int != nil && item["score"] as? Double != nil && item["reasons"] as? [String] != nil, "\(item)")
        }
        if words.contains("POST") {
            #expect(object["source"] as? String == "live" && object["user_id"] == nil, "\(output)")
        } else {
            #expect(["precomputed", "live"].contains(object["source"] as? String) && object["user_id"] as? Int == 42, "\(output)")
        }
    }

    /// Waits until the pipeline's latest run, if any, has ended.
    func waitForNoActiveRun(_ pipeline: String, within limit: Duration) async throws {
        let deadline = ContinuousClock.now + limit
        while true {
            let (_, output) = try await Self.execute(["coordinator", "pipelines", "runs", pipeline, "--limit", "1"], in: root,
                                                     home: root.appendingPathComponent("home"))
            if !(output.split(separator: "\n").first ?? "").contains("  running  ") { return }
            guard ContinuousClock.now < deadline else { throw WireError.timedOut(what: "pipeline \(pipeline)'s run to end:\n\(output)") }
            try await Task.sleep(for: .milliseconds(500))
        }
    }

    /// What each command prints, as the README describes it (a regular expression).
    static func documentedShape(_ words: [String]) -> String? {
        let key = words.prefix(3).joined(separator: " ")
        let shapes: [(String, String)] = [
            ("coordinator certs init", "^cluster CA created: "),
            ("coordinator certs issue", "^issued (coordinator|worker|operator|gateway) certificate "),
            ("coordinator certs list", "^NAME +ROLE +STATUS"),
            ("coordinator certs revoke", "^revoked w1 \\(worker\\), serial [0-9a-f]+\\n$"),
            ("coordinator login --cert", "^logged in as alice \\(operator\\)"),
            ("coordinator submit echo", "(?s)^submitted [^ ]+ \\(200 tasks\\)\\n.*200/200 100%.*tasks/s  took"),
            ("coordinator submit echo --spec", "^submitted "),
            ("coordinator submit hpo", "(?m)^  registered match version [0-9]+: "),
            ("coordinator jobs", "^JOB +KIND +STATE"),
            ("coordinator job", "(?m)^job [^ ]+  echo"),
            ("coordinator workers", "slots 8 .*labels zone=a"),
            ("coordinator results", "^TASK\\tSTATE\\tWORKER"),
            ("coordinator cancel", "^job [^ ]+  "),
            ("coordinator demo-data --out", "^wrote .*market: 2000 users, 5000 listings, 100000 interactions\\n"),
            ("coordinator train --data", "model"),
            ("coordinator evaluate --model", "data      the market's test window"),
            ("coordinator runs experiments", "^EXPERIMENT +RUNS +LATEST RUN\\nsearch "),
            ("coordinator runs list", "^(RUN|  )"),
            ("coordinator runs rerun", "^submitted [^ ]+: re-run of "),
            ("coordinator artifact search", "^wrote model.tower \\("),
            ("coordinator models show", "^model match  champion=v"),
            ("coordinator promote match", "^match@champion: v[0-9]+ → v2 "),
            ("coordinator rollback match", "^match@champion: v2 → v1 \\(rollback recorded\\)"),
            ("curl --cacert ca.pem", "\"name\":\"match\""),
            // The loop.
            ("coordinator demo-data --feature-store", "^wrote .*/store: 150 users, 110 listings, [0-9]+ events \\([0-9]+ impressions, [0-9]+ clicks, [0-9]+ contracts\\) from [-0-9T:Z]+ to [-0-9T:Z]+; 10 new listings in new-listings.csv\\nnext: coordinator ingest users store/users.csv, then listings store/listings.csv and events store/events.csv\\n$"),
            ("coordinator ingest users", "^users.csv: 150 rows into users: 150 new, 0 updated, 0 unchanged\\n$"),
            ("coordinator ingest listings store/listings.csv", "^listings.csv: 110 rows into listings: 110 new, 0 updated, 0 unchanged\\nshorts: "),
            ("coordinator ingest events", "^events.csv: ([0-9]+) rows into events: \\1 new, 0 updated, 0 unchanged\\n$"),
            ("coordinator training-set build", "^training set [0-9a-f]{64}\\n  [0-9]+ examples, [0-9]+ positive; impressions [-0-9T:Z]+ to [-0-9T:Z]+, as of [-0-9T:Z]+\\nnext: coordinator submit hpo --training-set [0-9a-f]{64} --space "),
            ("coordinator submit score", "(?s)^submitted [^ ]+ \\([0-9]+ tasks\\)\\n.*\\nnext: coordinator recommendations USER_ID\\n$"),
            ("coordinator recommendations", "^user 42: 10 recommendations from [^ ]+ \\(match v[0-9]+, scored [-0-9T:Z]+\\)\\n  1\\. listing [0-9]+ +score 0\\.[0-9]{4}"),
            ("coordinator submit drift", "(?s)^submitted [^ ]+ \\([0-9]+ tasks\\)\\n.*\\nnext: coordinator drift report --svg-dir ./drift\\n$"),
            ("coordinator drift report", "^report [^ ]+ from job [^ ]+, [-0-9T:Z]+\\n"),
            ("coordinator pipelines", "^PIPELINE +SCHEDULE +NEXT RUN +LAST RUN +STEPS\\nretrain +\\(trigger only\\) .* data → search → score\\n"),
            ("coordinator pipelines runs", "^(run [^ ]+  (succeeded|failed|running) |pipeline retrain has not run yet\\n)"),
            ("coordinator pipelines trigger", "(?s)^started run [^ ]+ of retrain: data → search → score\\n.*\\nrun [^ ]+  succeeded  \\(manual, .*\\nnext: coordinator models"),
            // Shorts.
            ("coordinator ingest listings store/new-listings.csv", "^new-listings.csv: 10 rows into listings: 10 new, 0 updated, 0 unchanged\\nshorts: "),
            ("coordinator submit render", "(?s)^submitted [^ ]+ \\(2 tasks\\)\\n.*\\nnext: coordinator shorts\\n$"),
            ("coordinator shorts", "^ID +LISTING +STATE +DURATION +SIZE\\n"),
            ("coordinator shorts get", "(?s)^short-[^ ]+-0: listing 17, job [^ ]+, pending_review, en, .*\\nwrote short.mp4 \\("),
            ("coordinator shorts approve", "(?s)nothing was published; run without --dry-run to publish\\n$"),
            // Worker metrics.
            ("curl -s http://127.0.0.1:", "(?m)^# HELP tower_worker_connected 1 while connected to the coordinator, 0 while reconnecting\\.\\n# TYPE tower_worker_connected gauge\\ntower_worker_connected 1\\.0$"),
        ]
        return shapes.filter { key.hasPrefix($0.0) || words.joined(separator: " ").hasPrefix($0.0) }.max { $0.0.count < $1.0.count }?.1
    }

    /// Keeps what later placeholders need: the last job, runs of the search.
    func remember(_ words: [String], _ output: String) {
        if let match = output.range(of: #"submitted ([^ :]+)"#, options: .regularExpression) {
            placeholders["JOB_ID"] = String(output[match].dropFirst("submitted ".count))
        }
        if let match = output.range(of: #"^training set [0-9a-f]{64}"#, options: .regularExpression) {
            placeholders["SHA256"] = String(output[match].suffix(64))
        }
        if words.starts(with: ["coordinator", "submit", "render"]), let job = placeholders["JOB_ID"] {
            placeholders["short-JOB-0"] = "short-\(job)-0"
        }
        if words.starts(with: ["coordinator", "runs", "list"]), !words.contains("--compare") {
            let runs = output.split(separator: "\n").dropFirst().compactMap { $0.split(separator: " ").first.map(String.init) }
            if runs.count >= 2 { (placeholders["RUN_A"], placeholders["RUN_B"], placeholders["RUN"]) = (runs[0], runs[1], runs[0]) }
        }
    }

    static func execute(_ words: [String], in directory: URL, home: URL) async throws -> (Int32, String) {
        // curl's progress meter goes to stderr when its output is not a terminal; a reader
        // at a terminal sees only the body, so the walk reads curl's stdout alone.
        let run = try await ProcessCluster.runToEnd(executable(words[0]), Array(words.dropFirst()), in: directory,
                                                    environment: environment(home: home), separateStderr: words[0] == "curl",
                                                    within: .seconds(180))
        return (run.status, run.output)
    }

    /// This process's environment without the operator's own settings, `HOME` in the walk.
    static func environment(home: URL) -> [String: String] {
        var env = ProcessInfo.processInfo.environment.filter { !$0.key.hasPrefix("TOWER_") && $0.key != "XDG_CONFIG_HOME" }
        env["HOME"] = home.path
        return env
    }

    static func executable(_ name: String) -> URL {
        name == "curl" ? URL(fileURLWithPath: "/usr/bin/curl") : ProcessCluster.binDirectory.appendingPathComponent(name)
    }

    func startBackground(_ words: [String], name: String, in directory: URL? = nil) throws {
        let process = Process()
        process.executableURL = Self.executable(words[0])
        process.arguments = Array(words.dropFirst())
        process.currentDirectoryURL = directory ?? root
        process.environment = Self.environment(home: root.appendingPathComponent("home"))
        let log = root.appendingPathComponent("\(name).log")
        FileManager.default.createFile(atPath: log.path, contents: nil)
        let handle = try FileHandle(forWritingTo: log)
        process.standardOutput = handle
        process.standardError = handle
        try process.run()
        background.append(process)
    }

    func log(_ name: String) -> String {
        (try? String(contentsOf: root.appendingPathComponent("\(name).log"), encoding: .utf8)) ?? ""
    }

    func waitFor(_ what: String, _ condition: () -> Bool) async throws {
        let deadline = ContinuousClock.now + .seconds(60)
        while !condition() {
            guard ContinuousClock.now < deadline else { throw WireError.timedOut(what: what) }
            try await Task.sleep(for: .milliseconds(50))
        }
    }

    func stop() {
        for process in background.reversed() where process.isRunning {
            kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
        }
    }

    // MARK: Reading the README

    /// The commands of every ```sh block, split into words as a shell would: `\`
    /// continues a line, `#` starts a comment outside quotes, quotes group words.
    static func commands(in markdown: String) throws -> [[String]] {
        var commands: [[String]] = []
        var inShell = false
        var pending = ""
        for line in markdown.split(separator: "\n", omittingEmptySubsequences: false) {
            let trimmed = line.trimmingCharacters(in: .whitespaces)
            if trimmed.hasPrefix("```") {
                inShell = !inShell && trimmed == "```sh"
                continue
            }
            guard inShell else { continue }
            if trimmed.hasSuffix("\\") {
                pending += trimmed.dropLast() + " "
                continue
            }
            let words = words(of: pending + trimmed)
            pending = ""
            if !words.isEmpty { commands.append(words) }
        }
        return commands
    }

    static func words(of line: String) -> [String] {
        var words: [String] = []
        var current = ""
        var quote: Character?
        var inWord = false
        for c in line {
            if let q = quote {
                if c == q { quote = nil } else { current.append(c) }
            } else if c == "\"" || c == "'" {
                quote = c
                inWord = true
            } else if c == " " || c == "\t" {
                if inWord { words.append(current); current = ""; inWord = false }
            } else if c == "#" && !inWord {
                break
            } else {
                current.append(c)
                inWord = true
            }
        }
        if inWord { words.append(current) }
        return words
    }
}
