import ArgumentParser
import CoordinatorKit
import Foundation
import Wire

/// Sets an operator up once per machine, so that every later command needs no
/// `--cert/--key/--ca/--coordinator` and works from any directory.
struct Login: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Save an operator certificate and the coordinator's address for every later operator command.",
        discussion: """
            Checks that the files belong together and that the coordinator accepts them, then copies \
            them to \(OperatorCredentials.defaultDirectoryDescription) (operator.pem, operator-key.pem \
            with mode 0600, ca.pem, coordinator). Flags and TOWER_* variables still win over the saved files.

            Example:
              coordinator login --cert alice.pem --key alice-key.pem --ca ca.pem --coordinator tower-1.internal:7443
            """)

    @Option(help: "Operator certificate from `coordinator certs issue NAME --role operator`.") var cert: String
    @Option(help: "Its private key.") var key: String
    @Option(help: "The cluster CA certificate.") var ca: String
    @Option(help: "Coordinator HOST:PORT.") var coordinator = OperatorCredentials.defaultCoordinator
    @Option(help: "Where to save them (default: \(OperatorCredentials.defaultDirectoryDescription)).") var dir: String?

    func run() async throws {
        let destination = dir.map { URL(fileURLWithPath: $0) } ?? OperatorCredentials.directory()
        let credentials = OperatorCredentials(coordinator: coordinator, certificate: cert, key: key, ca: ca)
        let options = try ClientOptions.parse(["--coordinator", coordinator, "--cert", cert, "--key", key, "--ca", ca])
        let workers = try await withOperator(options) { try await $0.workers() }
        do { try credentials.save(to: destination) } catch { throw fail(error) }
        let identity = try? credentials.identity()
        print("logged in as \(identity?.name ?? "?") (operator) to \(coordinator), which has \(workers.count) worker\(workers.count == 1 ? "" : "s") connected")
        print("saved to \(destination.path); operator commands now need no --cert/--key/--ca/--coordinator")
        print("next: coordinator jobs")
    }
}
