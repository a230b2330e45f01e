import ArgumentParser
import Foundation
import Wire

struct Certs: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Manage the cluster CA and the certificates of coordinators, workers, operators and gateways.",
        subcommands: [Init.self, Issue.self, Revoke.self, List.self])

    struct Init: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Create the cluster CA.")
        @Option(help: "Certificate directory.") var dir = "./tower-certs"
        @Option(name: .customLong("valid-days")) var validDays = 3650

        func run() throws {
            do {
                let ca = try ClusterCA.initialize(in: URL(fileURLWithPath: dir), validityDays: validDays)
                print("cluster CA created: \(ca.directory.appendingPathComponent(ClusterCA.caFile).path)")
                print("keep \(ca.directory.appendingPathComponent(ClusterCA.caKeyFile).path) on the coordinator host only (mode 0600).")
                print("next: coordinator certs issue coordinator --role coordinator --host $(hostname) --dir \(dir)")
            } catch { throw fail(error) }
        }
    }

    struct Issue: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Issue a certificate for NAME with a role.")
        @Argument(help: "Name of the host or person (letters, digits, '-', '_', '.').") var name: String
        @Option(help: "coordinator, worker, operator or gateway.") var role: String
        @Option(help: "Certificate directory holding the CA.") var dir = "./tower-certs"
        @Option(name: .customLong("host"), help: "DNS name or IP the certificate is valid for (repeatable; coordinators need the names workers dial). Default for a coordinator: localhost, 127.0.0.1, ::1 and this host's name.") var hosts: [String] = []
        @Option(help: "Where to write NAME.pem and NAME-key.pem (default: the CA directory).") var out: String?
        @Option(name: .customLong("valid-days")) var validDays = 825

        func run() throws {
            do {
                guard let role = ClusterRole(rawValue: role) else {
                    throw ValidationError("unknown role \(role); use one of: \(ClusterRole.allCases.map(\.rawValue).joined(separator: ", "))")
                }
                var hosts = self.hosts
                if hosts.isEmpty && role == .coordinator {
                    hosts = ["localhost", "127.0.0.1", "::1", ProcessInfo.processInfo.hostName]
                }
                let ca = try ClusterCA.load(from: URL(fileURLWithPath: dir))
                let (identity, cert, key) = try ca.issueAndWrite(name: name, role: role, hosts: hosts, validityDays: validDays,
                                                                 outputDirectory: out.map { URL(fileURLWithPath: $0) })
                print("issued \(role.rawValue) certificate \(name), serial \(identity.serial)")
                print("  certificate: \(cert.path)")
                print("  private key: \(key.path) (mode 0600)")
                if !hosts.isEmpty { print("  valid for: \(hosts.joined(separator: ", "))") }
            } catch let error as ValidationError {
                throw error
            } catch { throw fail(error) }
        }
    }

    struct Revoke: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Deny a certificate by serial or name; a running coordinator refuses it from its next connection.")
        @Argument(help: "Serial (hex, from `certs list`) or name.") var serialOrName: String
        @Option(help: "Certificate directory holding the index.") var dir = "./tower-certs"

        func run() throws {
            do {
                for record in try ClusterCA.revoke(serialOrName, in: URL(fileURLWithPath: dir)) {
                    print("revoked \(record.name) (\(record.role.rawValue)), serial \(record.serial)")
                }
            } catch { throw fail(error) }
        }
    }

    struct List: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List issued certificates.")
        @Option(help: "Certificate directory holding the index.") var dir = "./tower-certs"

        func run() throws {
            do {
                let records = try ClusterCA.readIndex(in: URL(fileURLWithPath: dir))
                let formatter = ISO8601DateFormatter()
                print("NAME".padding(toLength: 20, withPad: " ", startingAt: 0) + "ROLE        STATUS    EXPIRES               SERIAL")
                for r in records {
                    let status = r.revoked ? "revoked" : (r.notValidAfter < Date() ? "expired" : "valid")
                    print(r.name.padding(toLength: 20, withPad: " ", startingAt: 0)
                          + r.role.rawValue.padding(toLength: 12, withPad: " ", startingAt: 0)
                          + status.padding(toLength: 10, withPad: " ", startingAt: 0)
                          + formatter.string(from: r.notValidAfter).padding(toLength: 22, withPad: " ", startingAt: 0)
                          + r.serial)
                }
            } catch { throw fail(error) }
        }
    }
}
