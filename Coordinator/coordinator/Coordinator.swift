import ArgumentParser
import CoordinatorKit
import Foundation
import Logging
import Wire

@main
struct CoordinatorCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "coordinator",
        abstract: "Tower's control plane and the operator's client.",
        discussion: """
            Start with `coordinator demo`. On real hosts: `coordinator certs init`, \
            `coordinator certs issue NAME --role worker|operator|gateway|coordinator`, \
            `coordinator serve --config tower.yaml`, then `coordinator submit echo --tasks 200 --follow`.

            Example:
              coordinator demo --keep
            """,
        subcommands: [
            Serve.self, Demo.self, Certs.self, Login.self,
            Submit.self, Jobs.self, JobCommand.self, Workers.self, Cancel.self, Results.self,
            Runs.self, Models.self, Promote.self, Rollback.self, Artifact.self,
            Ingest.self, Recommendations.self, TrainingSet.self, Drift.self, Pipelines.self, Shorts.self,
        ] + learningCommands
    )
}

/// Sets up swift-log once: human-readable lines with key=value metadata on stderr.
enum LogSetup {
    static let help = ArgumentHelp(stringLiteral: LogLevelSetting.help)

    static func level(_ flag: String?) throws -> Logger.Level {
        do { return try LogLevelSetting.parse(flag) } catch { throw ValidationError("\(error)") }
    }

    /// Called after `validate()` has refused a bad level.
    static func bootstrap(level: String?) {
        LogLevelSetting.bootstrap((try? LogLevelSetting.parse(level)) ?? .info)
    }

    /// Operator commands print their answer on stdout; the cluster client's progress
    /// notes (a blob being fetched) would only clutter it, so they log warnings and up
    /// unless TOWER_LOG_LEVEL asks for more.
    static let clientOnce: Void = {
        let asked = ProcessInfo.processInfo.environment["TOWER_LOG_LEVEL"]
        LogLevelSetting.bootstrap(asked.flatMap { try? LogLevelSetting.parse($0) } ?? .warning)
    }()
}

/// Prints an error the way a person can act on it, and exits non-zero.
func fail(_ error: Error) -> ExitCode {
    let message: String
    message = String(describing: error)
    FileHandle.standardError.write(Data("error: \(message)\n".utf8))
    return ExitCode(1)
}

/// The data scientist's commands (train, evaluate, demo-data) from the Learning library.
let learningCommands: [any ParsableCommand.Type] = [DemoData.self, Train.self, Evaluate.self]
