import Foundation
import Testing
import Wire

extension ProcessClusterSuites {
/// `--help` is where a newcomer looks first: every option and argument of both
/// executables says what it is, every command shows an example, and `serve` states the
/// default of every setting (its flags default to the config file's values).
@Suite(.serialized, .timeLimit(.minutes(1))) struct HelpTextTests {
    /// The command tree ArgumentParser describes with `--experimental-dump-help`.
    func tree(_ executable: String) async throws -> JSONValue {
        let run = try await ProcessCluster.runToEnd(ProcessCluster.binDirectory.appendingPathComponent(executable), ["--experimental-dump-help"],
                                                    separateStderr: true)
        return try #require(try JSONValue.parse(run.output)["command"])
    }

    /// "command path: problem" for every command under `command`.
    func problems(_ command: JSONValue, path: [String] = []) -> [String] {
        let name = path + [command["commandName"]?.stringValue ?? "?"]
        guard name.last != "help" else { return [] }
        var found: [String] = []
        if !(command["discussion"]?.stringValue ?? "").contains("Example") {
            found.append("\(name.joined(separator: " ")): no example")
        }
        for argument in command["arguments"]?.arrayValue ?? [] where argument["shouldDisplay"] != .bool(false) {
            let flag = argument["preferredName"]?["name"]?.stringValue ?? argument["valueName"]?.stringValue ?? "?"
            guard flag != "help", flag != "version" else { continue }
            if (argument["abstract"]?.stringValue ?? "").trimmingCharacters(in: .whitespaces).isEmpty {
                found.append("\(name.joined(separator: " ")): \(flag) has no description")
            }
        }
        for sub in command["subcommands"]?.arrayValue ?? [] { found += problems(sub, path: name) }
        return found
    }

    @Test func everyCommandHasAnExampleAndEveryOptionADescription() async throws {
        #expect(problems(try await tree("coordinator")) == [])
        #expect(problems(try await tree("worker")) == [])
    }

    @Test func serveStatesEveryDefault() async throws {
        let serve = try #require(try await tree("coordinator")["subcommands"]?.arrayValue?.first { $0["commandName"] == "serve" })
        let silent = (serve["arguments"]?.arrayValue ?? []).compactMap { argument -> String? in
            guard argument["kind"] == "option", argument["defaultValue"] == nil else { return nil }
            let flag = argument["preferredName"]?["name"]?.stringValue ?? "?"
            let help = argument["abstract"]?.stringValue ?? ""
            return help.contains("default") || flag == "config" ? nil : flag
        }
        #expect(silent == [])
    }
}
}
