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
/// /var, loopback and free ports instead of tower-1.internal:7443, a smaller search so the
/// walk takes a minute or two, and placeholders (JOB_ID, RUN, …) filled from what
/// earlier commands printed.
@Suite(.serialized, .timeLimit(.minutes(8))) struct ReadmeWalkTests {
    @Test func theReadmeCommandsWorkAsWritten() async throws {
        let walk = try ReadmeWalk()
        defer { walk.stop() }
        let commands = try ReadmeWalk.commands(in: try ReadmeWalk.readme())
        #expect(commands.count > 40, "\(commands.count) commands found; the extraction is broken")
        var walked = 0
        for command in commands {
            if let reason = ReadmeWalk.notWalked(command) {
                #expect(!reason.isEmpty)
                continue
            }
            try await walk.run(command)
            walked += 1
        }
        #expect(walked >= 30, "only \(walked) commands walked")
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
    let coordinatorPort: Int, apiPort: Int, metricsPort: Int
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
        // The sample config and search space, with this host's substitutions.
        let config = try String(contentsOf: Self.repository.appendingPathComponent("Deploy/tower.yaml"), encoding: .utf8)
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
         ("Deploy/tower.yaml", root.appendingPathComponent("tower.yaml").path),
         ("Deploy/search-space.yaml", root.appendingPathComponent("search-space.yaml").path)]
    }

    /// A search of a few short trials: the walk checks that searching works as written,
    /// not how good 20 trials of 200 iterations get.
    static let smallerSearch = [("max_trials: 20", "max_trials: 4"), ("max_concurrent: 4", "max_concurrent: 2"),
                                ("num_iterations: 200", "num_iterations: 40"), ("max_iterations: 200", "max_iterations: 40"),
                                ("min_iterations: 10", "min_iterations: 5")]

    func substitute(_ text: String) -> String {
        substitutions.reduce(text) { $0.replacingOccurrences(of: $1.0, with: $1.1) }
    }

    /// Why a README command is not run here, or nil when it is.
    static func notWalked(_ words: [String]) -> String? {
        let line = words.joined(separator: " ")
        if words.first == "make" { return "the quick start: `make test` is this suite, `make demo` is theDemoLoopRecoversFromDriftThroughTheRetrainingPipeline" }
        let loop = ["coordinator ingest", "coordinator training-set", "coordinator submit hpo --training-set", "coordinator submit score",
                    "coordinator recommendations", "coordinator submit drift", "coordinator drift", "coordinator pipelines"]
        if loop.contains(where: { line.hasPrefix($0) }) { return "the loop needs feature-store CSV files the README does not produce; LoopTests run it" }
        if line.hasPrefix("coordinator serve --config tower.yaml --photos-dir") || line.hasPrefix("coordinator submit render")
            || line.hasPrefix("coordinator shorts") { return "shorts need listing photos; RenderTests render them with ffmpeg" }
        if line.hasPrefix("coordinator certs issue gateway") || words.first == "gateway" || (words.first == "curl" && line.contains(":8080")) {
            return "the gateway serves users and listings of the feature store; GatewayTests run it"
        }
        return nil
    }

    // MARK: Running

    func run(_ readmeWords: [String]) async throws {
        var words = readmeWords.map(substitute)
        for (i, word) in words.enumerated() {
            for (name, value) in placeholders where word == name || word.hasPrefix(name + ".") { words[i] = value + word.dropFirst(name.count) }
        }
        if words.first == "coordinator", words.dropFirst().first == "submit", words.count > 2, words[2] == "KIND" { words[2] = "echo" }
        let line = words.joined(separator: " ")
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
        default:
            let cwd = words.first == "curl" ? root.appendingPathComponent("certs") : root
            let (status, output) = try await Self.execute(words, in: cwd, home: root.appendingPathComponent("home"))
            #expect(status == 0, "\(line)\n\(output)")
            if let shape = Self.documentedShape(words) { #expect(output.range(of: shape, options: .regularExpression) != nil, "\(line): expected /\(shape)/ in\n\(output)") }
            remember(words, output)
        }
    }

    /// What each command prints, as the README describes it (a regular expression).
    static func documentedShape(_ words: [String]) -> String? {
        let key = words.prefix(3).joined(separator: " ")
        let shapes: [(String, String)] = [
            ("coordinator certs init", "^cluster CA created: "),
            ("coordinator certs issue", "^issued (coordinator|worker|operator) certificate "),
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
        ]
        return shapes.filter { key.hasPrefix($0.0) || words.joined(separator: " ").hasPrefix($0.0) }.max { $0.0.count < $1.0.count }?.1
    }

    /// Keeps what later placeholders need: the last job, runs of the search.
    func remember(_ words: [String], _ output: String) {
        if let match = output.range(of: #"submitted ([^ :]+)"#, options: .regularExpression) {
            placeholders["JOB_ID"] = String(output[match].dropFirst("submitted ".count))
        }
        if words.starts(with: ["coordinator", "runs", "list"]), !words.contains("--compare") {
            let runs = output.split(separator: "\n").dropFirst().compactMap { $0.split(separator: " ").first.map(String.init) }
            if runs.count >= 2 { (placeholders["RUN_A"], placeholders["RUN_B"], placeholders["RUN"]) = (runs[0], runs[1], runs[0]) }
        }
    }

    static func execute(_ words: [String], in directory: URL, home: URL) async throws -> (Int32, String) {
        let run = try await ProcessCluster.runToEnd(executable(words[0]), Array(words.dropFirst()), in: directory,
                                                    environment: environment(home: home), within: .seconds(180))
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
