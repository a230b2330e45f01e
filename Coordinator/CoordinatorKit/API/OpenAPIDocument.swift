import Foundation
import Wire

/// The JSON API described as OpenAPI 3.1, served at `/api/v1/openapi.json`. Its schemas
/// are the ``APIResources`` shapes the responses are rendered from, and each job kind
/// contributes the schema of its summary.
enum OpenAPIDocument {
    static func make(resources: APIResources) -> JSONValue {
        var schemas: [String: JSONValue] = [
            "Job": resources.job.schema,
            "JobList": APIResources.listSchema("jobs", of: "Job"),
            "Worker": APIResources.worker.schema,
            "WorkerList": APIResources.listSchema("workers", of: "Worker"),
            "Experiment": APIResources.experiment.schema,
            "ExperimentList": APIResources.listSchema("experiments", of: "Experiment"),
            "Run": APIResources.run.schema,
            "RunList": APIResources.runsPage.schema,
            "ModelSummary": APIResources.modelSummary.schema,
            "ModelList": APIResources.listSchema("models", of: "ModelSummary"),
            "ModelVersion": APIResources.modelVersion.schema,
            "Decision": APIResources.decision.schema,
            "Model": APIResources.modelDetail.schema,
            "Error": APIResources.errorSchema,
        ]
        for (name, kind) in resources.kinds {
            if let schema = kind.summarySchema { schemas[APIResources.summarySchemaName(name)] = schema }
        }
        return [
            "openapi": "3.1.0",
            "info": [
                "title": "Tower coordinator API",
                "version": "1",
                "description": """
                    Read-only, over HTTPS with a client certificate from the cluster CA (operator: everything; \
                    gateway: models only). Every field is always present; none means null. Times are RFC 3339 (UTC).
                    """,
            ],
            "paths": [
                "/api/v1/jobs": operation("Recent jobs, newest first.", response: "JobList", parameters: [
                    parameter("limit", in: "query", "Jobs to return, 1 to \(HTTPSAPI.maxLimit) (larger is clamped); default \(HTTPSAPI.defaultLimit).",
                              schema: ["type": "integer", "minimum": 1]),
                ], errors: [400, 403]),
                "/api/v1/jobs/{id}": operation("One job, with its kind's summary decoded.", response: "Job",
                                               parameters: [parameter("id", in: "path", "The job's id.")], errors: [403, 404]),
                "/api/v1/workers": operation("Connected workers.", response: "WorkerList", errors: [403]),
                "/api/v1/experiments": operation("Every experiment, by name, with its number of runs.", response: "ExperimentList", errors: [403]),
                "/api/v1/experiments/{name}/runs": operation("An experiment's runs, best first when sorted.", response: "RunList", parameters: [
                    parameter("name", in: "path", "The experiment."),
                    parameter("sort", in: "query", "A metric the runs logged (valid_auc, valid_logloss, …); the response carries each run's curve of it."),
                    parameter("order", in: "query", "asc or desc; default: best first (losses ascending, everything else descending).",
                              schema: ["type": "string", "enum": ["asc", "desc"]]),
                    parameter("limit", in: "query", "Runs to return, 1 to \(HTTPSAPI.maxLimit) (larger is clamped); default \(HTTPSAPI.defaultLimit): the best when sorted, else the most recent. `total` says how many there are.",
                              schema: ["type": "integer", "minimum": 1]),
                ], errors: [400, 403, 404]),
                "/api/v1/models": operation("Registered models and their aliases.", response: "ModelList", errors: [403]),
                "/api/v1/models/{name}": operation("A model's versions, aliases and every promotion decision.", response: "Model",
                                                   parameters: [parameter("name", in: "path", "The registered model.")], errors: [403, 404]),
                "/api/v1/openapi.json": ["get": [
                    "summary": "This document.",
                    "responses": ["200": ["description": "OK", "content": ["application/json": ["schema": ["type": "object"]]]]],
                ]],
            ],
            "components": ["schemas": .object(schemas)],
        ]
    }

    static func operation(_ summary: String, response: String, parameters: [JSONValue] = [], errors: [Int]) -> JSONValue {
        var responses: [String: JSONValue] = ["200": ["description": "OK", "content": ["application/json": ["schema": APIResources.ref(response)]]]]
        let meaning = [400: "A parameter is not valid; the message names it.", 403: "This certificate's role may not read it.",
                       404: "No such thing; the message says what exists."]
        for code in errors {
            responses["\(code)"] = ["description": .string(meaning[code] ?? "Error"), "content": ["application/json": ["schema": APIResources.ref("Error")]]]
        }
        return ["get": ["summary": .string(summary), "parameters": .array(parameters), "responses": .object(responses)]]
    }

    static func parameter(_ name: String, in place: String, _ description: String, schema: JSONValue = ["type": "string"]) -> JSONValue {
        ["name": .string(name), "in": .string(place), "required": .bool(place == "path"), "description": .string(description), "schema": schema]
    }
}
