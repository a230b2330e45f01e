import Foundation
import Testing
@testable import CoordinatorKit

@Suite struct PipelineDefinitionTests {
    static let sample = """
        pipelines:
          retrain:
            schedule: "0 0 * * *"
            time_zone: Asia/Seoul
            catch_up: true
            max_active_runs: 2
            steps:
              - name: training_set
                kind: training_set
              - name: hpo
                kind: hpo
                retries: 4
                retry_backoff_seconds: 10
                timeout_seconds: 7200
                with: {space: search.yaml, trials: 64}
              - name: score
                kind: score
                after: [hpo]
              - name: drift
                kind: drift
                after: []
          adhoc:
            steps:
              - {name: drift, kind: drift}
        """

    @Test func theSectionIsReadWithItsDefaults() throws {
        let pipelines = try CoordinatorSettings.load(yaml: Self.sample).pipelines
        #expect(pipelines.map(\.name) == ["retrain", "adhoc"])
        let retrain = pipelines[0]
        #expect(retrain.schedule?.expression == "0 0 * * *")
        #expect(retrain.schedule?.timeZone.identifier == "Asia/Seoul")
        #expect(retrain.timeZone.identifier == "Asia/Seoul")
        #expect(retrain.catchUp == true)
        #expect(retrain.maxActiveRuns == 2)
        #expect(retrain.steps == [
            PipelineStep(name: "training_set", kind: "training_set", retries: 2, retryBackoffSeconds: 30, timeoutSeconds: 3600, after: []),
            PipelineStep(name: "hpo", kind: "hpo", retries: 4, retryBackoffSeconds: 10, timeoutSeconds: 7200, after: ["training_set"],
                         options: ["space": "search.yaml", "trials": "64"]),
            PipelineStep(name: "score", kind: "score", after: ["hpo"]),
            PipelineStep(name: "drift", kind: "drift", after: []),
        ])
        let adhoc = pipelines[1]
        #expect(adhoc.schedule == nil)
        #expect(adhoc.timeZone == TimeZone(identifier: "UTC")!)
        #expect(adhoc.timeZone.secondsFromGMT(for: instant("2024-07-01T00:00:00Z")) == 0)
        #expect(adhoc.catchUp == false)
        #expect(adhoc.maxActiveRuns == 1)
        #expect(adhoc.steps == [PipelineStep(name: "drift", kind: "drift", retries: 2, retryBackoffSeconds: 30, timeoutSeconds: 3600, after: [])])
        #expect(try CoordinatorSettings.load(yaml: "listen: 127.0.0.1:1").pipelines == [])
    }

    static func refusal(_ pipeline: String) -> String {
        do {
            _ = try CoordinatorSettings.load(yaml: "pipelines:\n  retrain:\n" + pipeline, path: "tower.yaml")
            return "accepted"
        } catch {
            return "\(error)"
        }
    }

    @Test(arguments: [
        ("""
             schedule: "61 0 * * *"
             steps: [{name: a, kind: hpo}]
         """, "tower.yaml: pipelines.retrain.schedule: minute field \"61\": value out of range 0–59"),
        ("""
             time_zone: Mars/Base
             steps: [{name: a, kind: hpo}]
         """, "tower.yaml: pipelines.retrain.time_zone: unknown time zone \"Mars/Base\""),
        ("""
             steps: [{name: a, kind: hpo}, {name: b, kind: score}, {name: b, kind: drift}]
         """, "tower.yaml: pipelines.retrain.steps[2].name: duplicate step name \"b\" (also steps[1])"),
        ("""
             steps: [{name: a, kind: hpo}, {name: b, kind: score, after: [a, c]}]
         """, "tower.yaml: pipelines.retrain.steps[1].after: no step named \"c\" in pipeline \"retrain\""),
        ("""
             steps: [{name: a, kind: hpo, after: [c]}, {name: b, kind: score}, {name: c, kind: drift}]
         """, "tower.yaml: pipelines.retrain.steps[0].after: steps depend on each other in a cycle: a → c → b → a"),
        ("""
             steps: [{name: a, kind: hpo, after: [a]}]
         """, "tower.yaml: pipelines.retrain.steps[0].after: steps depend on each other in a cycle: a → a"),
        ("""
             steps: [{name: a, kind: render}]
         """, "tower.yaml: pipelines.retrain.steps[0].kind: unknown step kind \"render\"; known kinds: training_set, hpo, score, drift, job"),
        ("""
             steps: [{name: a, kind: hpo, retries: -1}]
         """, "tower.yaml: pipelines.retrain.steps[0].retries: must be at least 0, got -1"),
        ("""
             steps: [{name: a, kind: hpo, timeout_seconds: 0}]
         """, "tower.yaml: pipelines.retrain.steps[0].timeout_seconds: must be at least 1, got 0"),
        ("""
             steps: [{name: a, kind: hpo, retry_backoff_seconds: 1.5}]
         """, "tower.yaml: pipelines.retrain.steps[0].retry_backoff_seconds: expected a whole number, got \"1.5\""),
        ("""
             max_active_runs: 0
             steps: [{name: a, kind: hpo}]
         """, "tower.yaml: pipelines.retrain.max_active_runs: must be at least 1, got 0"),
        ("""
             catch_up: sometimes
             steps: [{name: a, kind: hpo}]
         """, "tower.yaml: pipelines.retrain.catch_up: expected true or false, got \"sometimes\""),
        ("""
             schedule: "@daily"
         """, "tower.yaml: pipelines.retrain.steps: a pipeline needs at least one step"),
        ("""
             schedul: "@daily"
             steps: [{name: a, kind: hpo}]
         """, "tower.yaml: pipelines.retrain: unknown key \"schedul\"; known keys: schedule, time_zone, catch_up, max_active_runs, steps"),
        ("""
             steps: [{name: a, kind: hpo, timeout: 5}]
         """, "tower.yaml: pipelines.retrain.steps[0]: unknown key \"timeout\"; known keys: name, kind, retries, retry_backoff_seconds, timeout_seconds, after, with"),
        ("""
             steps: [{name: a, kind: hpo, after: a}]
         """, "tower.yaml: pipelines.retrain.steps[0].after: expected a list of step names, got \"a\""),
        ("""
             steps: [{kind: hpo}]
         """, "tower.yaml: pipelines.retrain.steps[0].name: a step needs a name"),
    ])
    func badDefinitionsAreRefusedNamingTheKey(pipeline: String, message: String) {
        #expect(Self.refusal(pipeline) == "configuration error: " + message)
    }

    @Test func theErrorIsATypedConfigError() {
        #expect(throws: ConfigError.invalid("config: pipelines.retrain.time_zone: unknown time zone \"Mars/Base\"")) {
            try CoordinatorSettings.load(yaml: "pipelines: {retrain: {time_zone: Mars/Base, steps: [{name: a, kind: hpo}]}}")
        }
        #expect(throws: ConfigError.invalid("config: pipelines: expected a mapping of pipeline names to pipelines")) {
            try CoordinatorSettings.load(yaml: "pipelines: [retrain]")
        }
    }

    @Test func theCallerChoosesTheKnownKinds() throws {
        let steps = [PipelineStep(name: "short", kind: "render")]
        #expect(throws: ConfigError.invalid("config: pipelines.shorts.steps[0].kind: unknown step kind \"render\"; known kinds: training_set, hpo, score, drift, job")) {
            try PipelineDefinition(name: "shorts", steps: steps)
        }
        let shorts = try PipelineDefinition(name: "shorts", steps: steps, kinds: ["render"])
        #expect(shorts.steps.map(\.kind) == ["render"])
    }
}
