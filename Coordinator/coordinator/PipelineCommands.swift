import ArgumentParser
import CoordinatorKit
import Foundation
import Learning
import Wire

struct Pipelines: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Pipelines configured on the coordinator (`pipelines:` in its config): list, runs, trigger.",
            discussion: "Example:\n  coordinator pipelines runs retrain",
        subcommands: [List.self, RunsCommand.self, Trigger.self], defaultSubcommand: List.self)

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "list", abstract: "Every pipeline with its schedule, next run and last run.",
            discussion: "Example:\n  coordinator pipelines list")
        @OptionGroup var client: ClientOptions

        func run() async throws {
            try await withOperator(client) { c in
                let pipelines = try await c.pipelines()
                guard !pipelines.isEmpty else {
                    print("no pipelines configured; add `pipelines:` to the coordinator's config (see Deploy/tower.yaml)")
                    return
                }
                print(pad("PIPELINE", 14) + pad("SCHEDULE", 22) + pad("NEXT RUN", 22) + pad("LAST RUN", 34) + "STEPS")
                for p in pipelines {
                    let schedule = p.schedule.isEmpty ? "(trigger only)" : "\(p.schedule) \(p.timeZone)"
                    let next = p.nextRunMs > 0 ? Timestamp.format(Double(p.nextRunMs) / 1000) : "-"
                    let last = p.lastRunID.isEmpty ? "-" : "\(p.lastRunID) \(p.lastState)"
                    print(pad(p.name, 14) + pad(schedule, 22) + pad(next, 22) + pad(last, 34) + p.steps.joined(separator: " → "))
                }
                print("next: coordinator pipelines runs \(pipelines[0].name)   |   coordinator pipelines trigger \(pipelines[0].name) --follow")
            }
        }
    }

    struct RunsCommand: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "runs", abstract: "A pipeline's runs, newest first, with their steps.",
            discussion: "Example:\n  coordinator pipelines runs retrain --limit 3")
        @OptionGroup var client: ClientOptions
        @Argument(help: "Pipeline name.") var name: String
        @Option(help: "Runs to show, newest first.") var limit = 10

        func validate() throws {
            do { _ = try FlagValue.uint32(limit, flag: "--limit", allowed: 1...1000) } catch { throw ValidationError("\(error)") }
        }

        func run() async throws {
            try await withOperator(client) { c in
                let runs = try await c.pipelineRuns(name, limit: limit)
                guard !runs.isEmpty else {
                    print("pipeline \(name) has not run yet")
                    print("next: coordinator pipelines trigger \(name) --follow")
                    return
                }
                for run in runs { printRun(run) }
                if let failed = runs.first(where: { $0.state == "failed" }),
                   let job = failed.steps.last(where: { $0.state == "failed" && !$0.jobID.isEmpty })?.jobID {
                    print("next: coordinator job \(job)   (the failed step's job)")
                } else {
                    print("next: coordinator pipelines trigger \(name) --follow")
                }
            }
        }
    }

    struct Trigger: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Start a run now; --follow prints each step's changes until it ends.",
            discussion: "Example:\n  coordinator pipelines trigger retrain --follow")
        @OptionGroup var client: ClientOptions
        @Argument(help: "Pipeline name.") var name: String
        @Option(help: "Why (recorded with the run).") var reason = ""
        @Flag(help: "Wait for the run to end, printing each step's state changes.") var follow = false

        func run() async throws {
            try await withOperator(client) { c in
                let run = try await c.trigger(pipeline: name, reason: reason)
                print("started run \(run.runID) of \(name): \(run.steps.map(\.name).joined(separator: " → "))")
                guard follow else {
                    print("next: coordinator pipelines runs \(name)")
                    return
                }
                let end = try await followRun(c, run)
                printRun(end)
                if end.state != "succeeded" {
                    if let job = end.steps.last(where: { $0.state == "failed" && !$0.jobID.isEmpty })?.jobID {
                        print("next: coordinator job \(job)   (the failed step's job)")
                    }
                    throw ExitCode(3)
                }
                print("next: coordinator models   (see what the run promoted)")
            }
        }
    }
}

/// Polls a run until it ends, printing each step whose state, attempt or job changed.
/// A run has no deadline of its own (its steps do), so neither has this.
func followRun(_ c: OperatorClient, _ start: WirePipelineRunInfo) async throws -> WirePipelineRunInfo {
    var seen: [String: String] = [:]
    var run = start
    while true {
        for step in run.steps {
            let line = "\(step.state) attempt \(step.attempts)\(step.jobID.isEmpty ? "" : " job \(step.jobID)")"
            if seen[step.name] != line {
                seen[step.name] = line
                let error = step.error.isEmpty ? "" : " — \(step.error)"
                print("\(Timestamp.format(Date().timeIntervalSince1970))  \(pad(step.name, 16)) \(line)\(error)")
            }
        }
        if run.state != "running" { return run }
        try await Task.sleep(for: .seconds(1))
        guard let next = try await c.pipelineRuns(run.pipeline, limit: 50).first(where: { $0.runID == run.runID }) else {
            throw WireError.notFound(what: "pipeline run \(run.runID) (it is no longer among the pipeline's 50 latest runs)")
        }
        run = next
    }
}

func printRun(_ r: WirePipelineRunInfo) {
    let started = Timestamp.format(Double(r.startedAtMs) / 1000)
    let took = r.finishedAtMs > 0 ? String(format: ", took %.1f s", Double(r.finishedAtMs - r.startedAtMs) / 1000) : ""
    print("run \(r.runID)  \(r.state)  (\(r.trigger), started \(started)\(took))")
    if !r.error.isEmpty { print("  error: \(r.error)") }
    for s in r.steps {
        let job = s.jobID.isEmpty ? "" : " job \(s.jobID)"
        let error = s.error.isEmpty ? "" : " — \(s.error)"
        print("  " + pad(s.name, 16) + pad(s.state, 18) + "attempts \(s.attempts)\(job)\(error)")
    }
}

private func pad(_ text: String, _ width: Int) -> String {
    text.count >= width ? text + " " : text.padding(toLength: width, withPad: " ", startingAt: 0)
}
