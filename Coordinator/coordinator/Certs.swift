import ArgumentParser
import CoordinatorKit
import Foundation
import Wire

struct Certs: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Manage the cluster CA and the certificates of coordinators, workers, operators and gateways.",
            discussion: "Example:\n  coordinator certs issue w1 --role worker --dir /etc/tower/certs",
        subcommands: [Init.self, Issue.self, Revoke.self, List.self])

    struct Init: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Create the cluster CA.",
            discussion: "Example:\n  coordinator certs init --dir /etc/tower/certs")
        @Option(help: "Certificate directory.") var dir = "./tower-certs"
        @Option(name: .customLong("valid-days"), help: "Days the CA stays valid.") var validDays = 3650

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
        static let configuration = CommandConfiguration(abstract: "Issue a certificate for NAME with a role.",
            discussion: "Example:\n  coordinator certs issue coordinator --role coordinator --host tower-1.internal --dir /etc/tower/certs")
        @Argument(help: "Name of the host or person (letters, digits, '-', '_', '.').") var name: String
        @Option(help: "coordinator, worker, operator or gateway.") var role: String
        @Option(help: "Certificate directory holding the CA.") var dir = "./tower-certs"
        @Option(name: .customLong("host"), help: "DNS name or IP the certificate is valid for (repeatable; coordinators need the names workers dial). Default for a coordinator: localhost, 127.0.0.1, ::1 and this host's name.") var hosts: [String] = []
        @Option(help: "Where to write NAME.pem and NAME-key.pem (default: the CA directory).") var out: String?
        @Option(name: .customLong("valid-days"), help: "Days the certificate stays valid.") var validDays = 825
        @Flag(help: "Issue even though a valid certificate has this name, and revoke that one (a re-issued worker, or a coordinator certificate that needs another --host).") var replace = false

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
                let replaced = try ClusterCA.readIndex(in: ca.directory).filter { $0.name == name && $0.isLive }
                let (identity, cert, key) = try ca.issueAndWrite(name: name, role: role, hosts: hosts, validityDays: validDays,
                                                                 outputDirectory: out.map { URL(fileURLWithPath: $0) }, replace: replace)
                print("issued \(role.rawValue) certificate \(name), serial \(identity.serial)")
                print("  certificate: \(cert.path)")
                print("  private key: \(key.path) (mode 0600)")
                if !hosts.isEmpty { print("  valid for: \(hosts.joined(separator: ", "))") }
                for old in replaced { print("  replaced: serial \(old.serial) is revoked") }
                let caPath = ca.directory.appendingPathComponent(ClusterCA.caFile).path
                switch role {
                case .operator:
                    print("next, as the operator (once per machine; the files are copied to \(OperatorCredentials.defaultDirectoryDescription)):")
                    print("  coordinator login --cert \(cert.path) --key \(key.path) --ca \(caPath) --coordinator HOST:7443")
                case .worker:
                    print("next, on the worker host (copy the three files there):")
                    print("  worker --coordinator HOST:7443 --cert \(cert.lastPathComponent) --key \(key.lastPathComponent) --ca \(ClusterCA.caFile)")
                case .gateway:
                    print("next: gateway --coordinator HOST:7443 --cert \(cert.path) --key \(key.path) --ca \(caPath)")
                case .coordinator:
                    print("next: coordinator serve --certs-dir \(ca.directory.path)\(out == nil ? "" : " --cert \(cert.path) --key \(key.path)")")
                }
            } catch let error as ValidationError {
                throw error
            } catch { throw fail(error) }
        }
    }

    struct Revoke: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Deny a certificate by serial or name; a running coordinator refuses it from its next connection.",
            discussion: "Example:\n  coordinator certs revoke w1 --dir /etc/tower/certs")
        @Argument(help: "Serial (hex, from `certs list`), or the name of the one valid certificate that has it.") var serialOrName: String
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
        static let configuration = CommandConfiguration(abstract: "List issued certificates.",
            discussion: "Example:\n  coordinator certs list --dir /etc/tower/certs")
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
