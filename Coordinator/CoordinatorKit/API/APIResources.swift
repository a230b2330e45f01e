import Foundation
import Wire

/// What the JSON API serves, declared once per resource: each ``JSONShape`` renders the
/// wire message a route answers and gives its schema to ``OpenAPIDocument``, so a field
/// cannot be served without being documented, or documented without being served.
///
/// Guarantees: every field of a resource is present in every response (`null` where the
/// protocol has "none": an unfinished job's `finished_at`, a run without error); times
/// are RFC 3339 in UTC; counts and versions are JSON integers; states are the words the
/// CLI prints; a job's `summary` is its kind's decoded summary.
struct APIResources {
    /// Job kinds by name: their summaries and summary schemas.
    let kinds: [String: AnyJobKind]

    init(kinds: [AnyJobKind]) {
        self.kinds = Dictionary(kinds.map { ($0.name, $0) }) { first, _ in first }
    }

    static let jobStates = ["queued", "running", "succeeded", "failed", "cancelled"]

    /// `#/components/schemas/NAME` as a JSON Schema reference.
    static func ref(_ name: String) -> JSONValue { ["$ref": .string("#/components/schemas/\(name)")] }

    /// The name a kind's summary schema has in the document.
    static func summarySchemaName(_ kind: String) -> String { kind.prefix(1).uppercased() + kind.dropFirst() + "Summary" }

    var job: JSONShape<WireJobSummary> {
        let kinds = self.kinds
        let summaries = kinds.keys.sorted().filter { kinds[$0]?.summarySchema != nil }
        return JSONShape([
            .string("id", \.jobID, "The job's id."),
            .string("kind", \.kind, "Its kind (echo, hpo, score, drift, render, …)."),
            .string("name", \.name, "The name given at submission."),
            JSONField("state", schema: ["type": "string", "enum": .array(Self.jobStates.map(JSONValue.string))],
                      description: "queued, running, succeeded, failed or cancelled.") { .string($0.state.label) },
            .integer("total", \.total, "Tasks created so far."),
            .integer("planned", \.planned, "Tasks a growing job (a search) plans in all while it runs; 0 otherwise."),
            .integer("done", \.done, "Tasks that succeeded."),
            .integer("failed", \.failed, "Tasks that failed for good."),
            .integer("running", \.running, "Tasks leased to workers now."),
            .integer("queued", \.queued, "Tasks waiting for a worker."),
            .integer("retries", \.retries, "Attempts beyond each task's first."),
            .time("created_at", \.createdAtMs, "When it was submitted."),
            .time("finished_at", \.finishedAtMs, optional: true, "When it ended; null while it runs."),
            .optionalString("error", \.error, "Why it failed, or a coordinator-wide problem it waits on; null when none."),
            .optionalString("waiting", \.waiting, "Why queued tasks wait (no worker can run them); null when none."),
            .strings("summary_lines", \.summaryLines, "The kind's summary in words, as `coordinator job` prints it."),
            JSONField("summary", schema: ["oneOf": .array(summaries.map { Self.ref(Self.summarySchemaName($0)) } + [["type": "null"]])],
                      description: "The kind's summary, decoded (its schema is KindSummary); null until the job ends or for a kind without one.") { job in
                kinds[job.kind]?.summaryJSON(job.summary) ?? .null
            },
        ])
    }

    static var worker: JSONShape<WireWorkerInfo> {
        JSONShape([
            .string("session_id", \.sessionID, "This connection's session."),
            .string("name", \.name, "The worker's name (its certificate's)."),
            .string("address", \.address, "Where it connected from."),
            .integer("slots", \.capabilities.slots, "Tasks it runs at once."),
            .integer("cores", \.capabilities.cores, "Its CPU cores."),
            .integer("memory_bytes", \.capabilities.memoryBytes, "Its memory."),
            .strings("job_kinds", \.capabilities.jobKinds, "Kinds it has runners for."),
            .strings("tools", \.capabilities.tools, "External tools found on its PATH."),
            .stringMap("tool_versions", \.capabilities.toolVersions, "The first line of each tool's version output."),
            .stringMap("labels", \.capabilities.labels, "Labels given with --label."),
            .integer("running", \.running, "Tasks it runs now."),
            .boolean("draining", \.draining, "Whether it is draining (finishing, accepting none)."),
            .time("connected_at", \.connectedAtMs, "When this connection was made."),
            .integer("tasks_done", \.tasksDone, "Tasks it finished on this connection."),
        ])
    }

    static var run: JSONShape<WireRunInfo> {
        JSONShape([
            .string("id", \.id, "The run's id."),
            .string("experiment", \.experiment, "Its experiment."),
            .string("status", \.status, "running, finished, stopped or failed."),
            .stringMap("params", \.params, "Its parameters, as given to the learner."),
            .numberMap("metrics", \.metrics, "The last value logged of each metric."),
            .stringMap("tags", \.tags, "Tags: git commit, data set hash, seed, worker, duration, …"),
            .stringMap("artifacts", \.artifacts, "SHA-256 of each artifact by name (model.tower, learning-curve.svg, …)."),
            .optionalString("error", \.error, "Why it failed; null when it did not."),
            .time("started_at", \.startedAtMs, optional: true, "When it started."),
            .time("finished_at", \.finishedAtMs, optional: true, "When it ended; null while it runs."),
            JSONField("curve_steps", schema: ["type": "array", "items": ["type": "integer"]],
                      description: "Iterations at which the sort metric was logged (empty without `sort`).") { .array($0.curveSteps.map { .integer(Int64($0)) }) },
            JSONField("curve_values", schema: ["type": "array", "items": ["type": "number"]],
                      description: "The sort metric at each of those iterations.") { .array($0.curveValues.map(JSONValue.number)) },
        ])
    }

    /// One page of runs with the order it was sorted in.
    struct RunsPage {
        var experiment: String
        var sort: String
        var ascending: Bool
        var total: UInt64
        var runs: [WireRunInfo]
    }

    static var runsPage: JSONShape<RunsPage> {
        JSONShape([
            .string("experiment", \.experiment, "The experiment."),
            .optionalString("sort", \.sort, "The metric the runs are sorted by; null when unsorted (oldest first)."),
            JSONField("order", schema: ["type": "string", "enum": ["asc", "desc"]],
                      description: "asc or desc; by default the best run comes first (losses ascending, everything else descending).") {
                .string($0.ascending ? "asc" : "desc")
            },
            .integer("total", \.total, "Runs the experiment has; `runs` holds at most `limit` of them."),
            JSONField("runs", schema: ["type": "array", "items": ref("Run")], description: "The runs.") { .array($0.runs.map(run.render)) },
        ])
    }

    static var experiment: JSONShape<WireExperimentInfo> {
        JSONShape([
            .string("name", \.name, "The experiment's name (`submit hpo --experiment`)."),
            .integer("runs", \.runs, "Runs recorded."),
            .time("last_run_at", \.lastRunAtMs, optional: true, "When its latest run started; null without runs."),
        ])
    }

    static var modelSummary: JSONShape<WireModelSummary> {
        JSONShape([
            .string("name", \.name, "The registered model."),
            .integer("versions", \.versions, "Versions registered."),
            .integerMap("aliases", \.aliases, "Version each alias (champion, canary, …) points at."),
        ])
    }

    static var modelVersion: JSONShape<WireModelVersionInfo> {
        JSONShape([
            .integer("version", \.version, "The version number."),
            .optionalString("run_id", \.runID, "The run that trained it; null for an imported model."),
            .string("sha256", \.sha256, "SHA-256 of its model file."),
            .numberMap("metrics", \.metrics, "Its metrics, holdout_* on the coordinator's holdout."),
            .time("created_at", \.createdAtMs, "When it was registered."),
        ])
    }

    static var decision: JSONShape<WireDecisionInfo> {
        JSONShape([
            .integer("version", \.version, "The version decided on."),
            JSONField("previous_version", schema: ["type": ["integer", "null"]], description: "The alias's version before; null when it had none.") {
                $0.previousVersion == 0 ? .null : .integer(Int64($0.previousVersion))
            },
            .boolean("promoted", \.promoted, "Whether the alias moved to it."),
            .string("action", \.action, "promote, manual, rollback, …"),
            .strings("reasons", \.reasons, "Why, in words."),
            .string("actor", \.actor, "Who decided: the policy or an operator's certificate name."),
            .time("at", \.atMs, "When."),
            .numberMap("numbers", \.numbers, "The numbers the decision compared."),
        ])
    }

    static var modelDetail: JSONShape<WireModelDetail> {
        JSONShape([
            .string("name", \.name, "The registered model."),
            .integerMap("aliases", \.aliases, "Version each alias points at."),
            JSONField("versions", schema: ["type": "array", "items": ref("ModelVersion")], description: "Every version, oldest first.") {
                .array($0.versions.map(modelVersion.render))
            },
            JSONField("decisions", schema: ["type": "array", "items": ref("Decision")], description: "Every promotion decision, promoted or not, oldest first.") {
                .array($0.decisions.map(decision.render))
            },
        ])
    }

    /// `{"KEY": [items]}`, the envelope of each list route.
    static func listSchema(_ key: String, of item: String) -> JSONValue {
        ["type": "object", "additionalProperties": false, "required": [.string(key)],
         "properties": [key: ["type": "array", "items": ref(item)]]]
    }

    static let errorSchema: JSONValue = [
        "type": "object", "additionalProperties": false, "required": ["error"],
        "properties": ["error": ["type": "string", "description": "What went wrong and what to do next."]],
    ]
}
