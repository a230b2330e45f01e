import Foundation
import Yams

/// One step of a pipeline: a job of `kind` that runs once every step in `after` succeeded.
/// Stored with each run (it is Codable), so a run keeps the shape it started with even if
/// the config changes while it is in flight.
public struct PipelineStep: Sendable, Equatable, Codable {
    public var name: String
    /// What the step does: `training_set`, `hpo`, `score`, `drift`, or `job` (any job kind
    /// from `with.kind` and a protobuf-JSON `with.spec_json`).
    public var kind: String
    /// Attempts after the first; 0 means a failure ends the run.
    public var retries: Int
    /// The wait before the first retry; it doubles per attempt up to
    /// ``PipelineStep/maxBackoffSeconds``. 0 retries at once.
    public var retryBackoffSeconds: Int
    /// How long one attempt may run before it is abandoned and counted as failed.
    public var timeoutSeconds: Int
    /// Steps that must have succeeded first, by name.
    public var after: [String]
    /// Free-form options for the step's job (`with:` in the YAML).
    public var options: [String: String]

    /// The longest wait between two attempts, however many have failed.
    public static let maxBackoffSeconds = 3600

    public init(name: String, kind: String, retries: Int = 2, retryBackoffSeconds: Int = 30, timeoutSeconds: Int = 3600,
                after: [String] = [], options: [String: String] = [:]) {
        self.name = name
        self.kind = kind
        self.retries = retries
        self.retryBackoffSeconds = retryBackoffSeconds
        self.timeoutSeconds = timeoutSeconds
        self.after = after
        self.options = options
    }

    /// The wait after failed attempt number `attempt` (1-based): backoff × 2^(attempt−1),
    /// capped at an hour.
    public func backoff(afterAttempt attempt: Int) -> Int {
        let doubled = Double(retryBackoffSeconds) * pow(2, Double(max(attempt, 1) - 1))
        return Int(min(doubled, Double(Self.maxBackoffSeconds)))
    }
}

/// A named DAG of steps with an optional cron schedule: the `pipelines:` section of the
/// coordinator's config.
///
/// Guarantees: a value exists only if it passed validation — step names are unique and
/// non-empty, every `after` names a step of the same pipeline, the steps form no cycle,
/// every kind is one of the known kinds, and every number is in range. Errors are
/// ``ConfigError/invalid(_:)`` naming the file and the key (`config:
/// pipelines.retrain.steps[1].after: ...`).
public struct PipelineDefinition: Sendable, Equatable {
    public var name: String
    /// When scheduled runs start; nil means the pipeline runs only when triggered.
    public var schedule: CronSchedule?
    /// The zone the schedule is read in (`time_zone:`, default UTC).
    public var timeZone: TimeZone
    /// Whether every slot missed while the coordinator was down runs (true), or only the
    /// latest (false).
    public var catchUp: Bool
    public var maxActiveRuns: Int
    /// In the order written; ``PipelineRun`` launches ready steps in this order.
    public var steps: [PipelineStep]

    /// The step kinds accepted unless the caller passes its own list.
    public static let defaultStepKinds = ["training_set", "hpo", "score", "drift", "job"]

    static let pipelineKeys = ["schedule", "time_zone", "catch_up", "max_active_runs", "steps"]
    static let stepKeys = ["name", "kind", "retries", "retry_backoff_seconds", "timeout_seconds", "after", "with"]

    /// Validates and builds a definition. `path` names the config file in errors.
    public init(name: String, schedule: CronSchedule? = nil, timeZone: TimeZone? = nil, catchUp: Bool = false,
                maxActiveRuns: Int = 1, steps: [PipelineStep], kinds: [String] = defaultStepKinds, path: String = "config") throws {
        self.name = name
        self.schedule = schedule
        self.timeZone = timeZone ?? schedule?.timeZone ?? TimeZone(identifier: "UTC")!
        self.catchUp = catchUp
        self.maxActiveRuns = maxActiveRuns
        self.steps = steps
        try validate(kinds: kinds, path: path)
    }

    func validate(kinds: [String], path: String) throws {
        let key = "pipelines.\(name)"
        func fail(_ k: String, _ problem: String) -> ConfigError { ConfigError.invalid("\(path): \(k): \(problem)") }
        guard !name.isEmpty else { throw ConfigError.invalid("\(path): pipelines: a pipeline name is empty") }
        guard maxActiveRuns >= 1 else { throw fail("\(key).max_active_runs", "must be at least 1, got \(maxActiveRuns)") }
        guard !steps.isEmpty else { throw fail("\(key).steps", "a pipeline needs at least one step") }
        var index: [String: Int] = [:]
        for (i, step) in steps.enumerated() {
            let s = "\(key).steps[\(i)]"
            guard !step.name.isEmpty else { throw fail("\(s).name", "a step needs a name") }
            if let first = index[step.name] {
                throw fail("\(s).name", "duplicate step name \"\(step.name)\" (also steps[\(first)])")
            }
            index[step.name] = i
            guard kinds.contains(step.kind) else {
                throw fail("\(s).kind", "unknown step kind \"\(step.kind)\"; known kinds: \(kinds.joined(separator: ", "))")
            }
            guard step.retries >= 0 else { throw fail("\(s).retries", "must be at least 0, got \(step.retries)") }
            guard step.retryBackoffSeconds >= 0 else {
                throw fail("\(s).retry_backoff_seconds", "must be at least 0, got \(step.retryBackoffSeconds)")
            }
            guard step.timeoutSeconds >= 1 else { throw fail("\(s).timeout_seconds", "must be at least 1, got \(step.timeoutSeconds)") }
        }
        for (i, step) in steps.enumerated() {
            for dependency in step.after where index[dependency] == nil {
                throw fail("\(key).steps[\(i)].after", "no step named \"\(dependency)\" in pipeline \"\(name)\"")
            }
        }
        if let cycle = Self.cycle(in: steps, index: index) {
            let names = cycle.map { steps[$0].name } + [steps[cycle[0]].name]
            throw fail("\(key).steps[\(cycle[0])].after", "steps depend on each other in a cycle: \(names.joined(separator: " → "))")
        }
    }

    /// Indices of the steps on a dependency cycle, in dependency order starting from the
    /// earliest-listed step on it; nil when the steps form a DAG.
    static func cycle(in steps: [PipelineStep], index: [String: Int]) -> [Int]? {
        enum Mark { case unvisited, onPath, done }
        var marks = [Mark](repeating: .unvisited, count: steps.count)
        var path: [Int] = []
        func visit(_ i: Int) -> [Int]? {
            marks[i] = .onPath
            path.append(i)
            for dependency in steps[i].after {
                guard let j = index[dependency] else { continue }
                switch marks[j] {
                case .onPath:
                    let loop = Array(path[path.lastIndex(of: j)!...])
                    // Start from the earliest-listed step so the message does not depend on
                    // where the search happened to enter the loop.
                    let start = loop.firstIndex(of: loop.min()!)!
                    return Array(loop[start...] + loop[..<start])
                case .unvisited:
                    if let found = visit(j) { return found }
                case .done:
                    break
                }
            }
            path.removeLast()
            marks[i] = .done
            return nil
        }
        for i in steps.indices where marks[i] == .unvisited {
            if let found = visit(i) { return found }
        }
        return nil
    }

    // MARK: YAML

    /// Reads the value of a `pipelines:` key (a mapping of pipeline name to pipeline) in
    /// file order. `path` names the config file in errors; `kinds` lists the step kinds the
    /// coordinator can run.
    public static func parse(_ node: Node, path: String, kinds: [String] = defaultStepKinds) throws -> [PipelineDefinition] {
        func fail(_ key: String, _ problem: String) -> ConfigError { ConfigError.invalid("\(path): \(key): \(problem)") }
        if node.null != nil { return [] }
        guard let mapping = node.mapping else { throw fail("pipelines", "expected a mapping of pipeline names to pipelines") }
        var result: [PipelineDefinition] = []
        for (keyNode, value) in mapping {
            guard let name = keyNode.scalar?.string else { throw fail("pipelines", "a pipeline name must be a string") }
            result.append(try parsePipeline(name, value, path: path, kinds: kinds))
        }
        return result
    }

    static func parsePipeline(_ name: String, _ node: Node, path: String, kinds: [String]) throws -> PipelineDefinition {
        let key = "pipelines.\(name)"
        func fail(_ k: String, _ problem: String) -> ConfigError { ConfigError.invalid("\(path): \(k): \(problem)") }
        let fields = try mapping(node, key: key, known: pipelineKeys, path: path)
        var zone = TimeZone(identifier: "UTC")!
        if let v = fields["time_zone"] {
            let text = try string(v, key: "\(key).time_zone", path: path)
            do { zone = try CronSchedule.timeZone(named: text) } catch { throw fail("\(key).time_zone", "\(error)") }
        }
        var schedule: CronSchedule?
        if let v = fields["schedule"], v.null == nil {
            let text = try string(v, key: "\(key).schedule", path: path)
            do { schedule = try CronSchedule(text, timeZone: zone) } catch { throw fail("\(key).schedule", "\(error)") }
        }
        let catchUp = try fields["catch_up"].map { node -> Bool in
            guard let b = node.bool else { throw fail("\(key).catch_up", "expected true or false, got \(show(node))") }
            return b
        } ?? false
        let maxActive = try fields["max_active_runs"].map { try integer($0, key: "\(key).max_active_runs", path: path) } ?? 1
        guard let stepsNode = fields["steps"] else { throw fail("\(key).steps", "a pipeline needs at least one step") }
        guard let sequence = stepsNode.sequence else { throw fail("\(key).steps", "expected a list of steps") }
        var steps: [PipelineStep] = []
        for (i, item) in sequence.enumerated() {
            steps.append(try parseStep(item, key: "\(key).steps[\(i)]", previous: steps.last?.name, path: path))
        }
        return try PipelineDefinition(name: name, schedule: schedule, timeZone: zone, catchUp: catchUp, maxActiveRuns: maxActive,
                                      steps: steps, kinds: kinds, path: path)
    }

    static func parseStep(_ node: Node, key: String, previous: String?, path: String) throws -> PipelineStep {
        func fail(_ k: String, _ problem: String) -> ConfigError { ConfigError.invalid("\(path): \(k): \(problem)") }
        let fields = try mapping(node, key: key, known: stepKeys, path: path)
        guard let nameNode = fields["name"] else { throw fail("\(key).name", "a step needs a name") }
        guard let kindNode = fields["kind"] else { throw fail("\(key).kind", "a step needs a kind") }
        // Without `after:` steps form a chain in the order written, the common case.
        var step = PipelineStep(name: try string(nameNode, key: "\(key).name", path: path),
                                kind: try string(kindNode, key: "\(key).kind", path: path),
                                after: previous.map { [$0] } ?? [])
        if let v = fields["retries"] { step.retries = try integer(v, key: "\(key).retries", path: path) }
        if let v = fields["retry_backoff_seconds"] { step.retryBackoffSeconds = try integer(v, key: "\(key).retry_backoff_seconds", path: path) }
        if let v = fields["timeout_seconds"] { step.timeoutSeconds = try integer(v, key: "\(key).timeout_seconds", path: path) }
        if let v = fields["after"] {
            if v.null != nil {
                step.after = []
            } else {
                guard let list = v.sequence else { throw fail("\(key).after", "expected a list of step names, got \(show(v))") }
                step.after = try list.map { try string($0, key: "\(key).after", path: path) }
            }
        }
        if let v = fields["with"], v.null == nil {
            guard let options = v.mapping else { throw fail("\(key).with", "expected a mapping of option names to values") }
            for (k, value) in options {
                guard let name = k.scalar?.string else { throw fail("\(key).with", "option names must be strings") }
                step.options[name] = try string(value, key: "\(key).with.\(name)", path: path)
            }
        }
        return step
    }

    /// The keys of a mapping node, refusing unknown ones so a typo is not silently ignored.
    static func mapping(_ node: Node, key: String, known: [String], path: String) throws -> [String: Node] {
        guard let mapping = node.mapping else { throw ConfigError.invalid("\(path): \(key): expected a mapping, got \(show(node))") }
        var fields: [String: Node] = [:]
        for (k, value) in mapping {
            let name = k.scalar?.string ?? "\(k)"
            guard known.contains(name) else {
                throw ConfigError.invalid("\(path): \(key): unknown key \"\(name)\"; known keys: \(known.joined(separator: ", "))")
            }
            fields[name] = value
        }
        return fields
    }

    static func string(_ node: Node, key: String, path: String) throws -> String {
        guard let scalar = node.scalar, node.null == nil else {
            throw ConfigError.invalid("\(path): \(key): expected a string, got \(show(node))")
        }
        return scalar.string
    }

    static func integer(_ node: Node, key: String, path: String) throws -> Int {
        guard let n = node.int else { throw ConfigError.invalid("\(path): \(key): expected a whole number, got \(show(node))") }
        return n
    }

    static func show(_ node: Node) -> String {
        if let scalar = node.scalar { return "\"\(scalar.string)\"" }
        return node.mapping != nil ? "a mapping" : "a list"
    }
}
