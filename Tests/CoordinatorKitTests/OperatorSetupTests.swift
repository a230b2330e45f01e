import Foundation
import Testing
import Wire
@testable import CoordinatorKit

/// How an operator's client and a coordinator find their certificates and directories,
/// and what they say when a file is not where they looked.
@Suite struct OperatorSetupTests {
    func temporaryDirectory() throws -> URL {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("tower-setup-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        return dir
    }

    @Test func flagsThenVariablesThenTheCredentialsDirectory() throws {
        let dir = try temporaryDirectory()
        try Data("tower-1.internal:7443\n".utf8).write(to: dir.appendingPathComponent(OperatorCredentials.coordinatorFile))
        let saved = OperatorCredentials.resolve(.init(), environment: ["TOWER_CERTS_DIR": dir.path])
        #expect(saved == OperatorCredentials(coordinator: "tower-1.internal:7443", certificate: dir.appendingPathComponent("operator.pem").path,
                                             key: dir.appendingPathComponent("operator-key.pem").path, ca: dir.appendingPathComponent("ca.pem").path))
        let env = ["TOWER_CERTS_DIR": dir.path, "TOWER_COORDINATOR": "10.0.0.5:7443", "TOWER_CERT": "/v/alice.pem", "TOWER_KEY": "/v/alice-key.pem", "TOWER_CA": "/v/ca.pem"]
        #expect(OperatorCredentials.resolve(.init(), environment: env)
                == OperatorCredentials(coordinator: "10.0.0.5:7443", certificate: "/v/alice.pem", key: "/v/alice-key.pem", ca: "/v/ca.pem"))
        #expect(OperatorCredentials.resolve(.init(coordinator: "h:1", certificate: "/f/c.pem", key: "/f/k.pem", ca: "/f/ca.pem"), environment: env)
                == OperatorCredentials(coordinator: "h:1", certificate: "/f/c.pem", key: "/f/k.pem", ca: "/f/ca.pem"))
        // Nothing saved, nothing set: the per-user directory and loopback.
        let bare = OperatorCredentials.resolve(.init(), environment: ["HOME": "/home/alice"])
        #expect(bare == OperatorCredentials(coordinator: "127.0.0.1:7443", certificate: "/home/alice/.config/tower/operator.pem",
                                            key: "/home/alice/.config/tower/operator-key.pem", ca: "/home/alice/.config/tower/ca.pem"))
        #expect(OperatorCredentials.directory(environment: ["HOME": "/home/alice", "XDG_CONFIG_HOME": "/cfg"]).path == "/cfg/tower")
    }

    @Test func aMissingOperatorFileSaysEveryWayToPointAtIt() throws {
        let dir = try temporaryDirectory()
        let credentials = OperatorCredentials.resolve(.init(), environment: ["TOWER_CERTS_DIR": dir.path])
        let path = dir.appendingPathComponent("operator.pem").path
        #expect(throws: OperatorCredentialsError.missing(.certificate, path: path)) { try credentials.identity() }
        #expect(OperatorCredentialsError.missing(.certificate, path: path).description == """
            no operator certificate at \(path): pass --cert FILE or set TOWER_CERT, or set TOWER_CERTS_DIR to a directory holding \
            operator.pem, operator-key.pem and ca.pem, or run once `coordinator login --cert NAME.pem --key NAME-key.pem --ca ca.pem \
            --coordinator HOST:7443` with the files from `coordinator certs issue NAME --role operator`
            """)
    }

    /// `login` saves what it was given under the names the client looks for, the key
    /// owner-only; a worker's certificate is refused as an operator's.
    @Test func savedCredentialsAreWhatTheClientFindsNext() throws {
        let cluster = try LocalCluster.temporary(prefix: "tower-login")
        try cluster.issueCertificates(workers: ["w1"], extra: [("alice", .operator)])
        let home = cluster.directory.appendingPathComponent("home")
        let given = OperatorCredentials(coordinator: "127.0.0.1:7000", certificate: cluster.certificate("alice"), key: cluster.key("alice"), ca: cluster.ca)
        try given.save(to: home)
        let found = OperatorCredentials.resolve(.init(), environment: ["TOWER_CERTS_DIR": home.path])
        #expect(found.coordinator == "127.0.0.1:7000")
        #expect(try found.identity().name == "alice")
        let mode = try FileManager.default.attributesOfItem(atPath: found.key)[.posixPermissions] as? NSNumber
        #expect(mode?.intValue == 0o600)
        let worker = OperatorCredentials(coordinator: "h:1", certificate: cluster.certificate("w1"), key: cluster.key("w1"), ca: cluster.ca)
        #expect(throws: OperatorCredentialsError.notAnOperator(path: cluster.certificate("w1"), role: "worker")) { try worker.save(to: home) }
    }

    /// `certs_dir` alone is a complete certificate configuration; a file that is not there
    /// names the key that chose its path.
    @Test func theCoordinatorReadsItsFilesFromTheCertificateDirectory() throws {
        let cluster = try LocalCluster.temporary(prefix: "tower-certsdir")
        try cluster.issueCertificates(workers: [])
        let settings = try CoordinatorSettings.load(yaml: "certs_dir: \(cluster.certs.path)\n", path: "tower.yaml")
        #expect(settings.certificatePath == cluster.certificate("coordinator"))
        #expect(settings.caPath == cluster.ca)
        #expect(settings.revocationDirectory == cluster.certs.path)
        #expect(try settings.identity().role == .coordinator)

        let elsewhere = try CoordinatorSettings.load(yaml: "certs_dir: /etc/tower/certs\nca: \(cluster.ca)\n", path: "tower.yaml")
        #expect(throws: ConfigError.missingFile(path: "/etc/tower/certs/coordinator.pem", chosenBy: "certs_dir: / --certs-dir (its coordinator.pem)")) {
            try elsewhere.identity()
        }
        var explicit = CoordinatorSettings()
        explicit.certificate = "/nowhere/c.pem"
        #expect(throws: ConfigError.missingFile(path: "/nowhere/c.pem", chosenBy: "certificate: in the config or --cert")) { try explicit.identity() }
        #expect(ConfigError.missingFile(path: "/nowhere/c.pem", chosenBy: "certificate: in the config or --cert").description
                == "configuration error: cannot read /nowhere/c.pem (chosen by certificate: in the config or --cert); point it at the directory `coordinator certs init/issue --dir DIR` wrote, e.g. --certs-dir DIR")
    }

    @Test func aDataDirectoryThatCannotBeWrittenIsRefusedAtStart() throws {
        let dir = try temporaryDirectory()
        let file = dir.appendingPathComponent("not-a-directory")
        try Data("x".utf8).write(to: file)
        var settings = CoordinatorSettings()
        settings.dataDirectory = file.appendingPathComponent("data").path
        let expected = ConfigError.dataDirectoryNotWritable(path: settings.dataDirectory, reason: "\(file.path) is a file, not a directory")
        #expect(throws: expected) { try settings.writableDataDirectory() }
        #expect(expected.description == """
            configuration error: the data directory \(settings.dataDirectory) is not writable (\(file.path) is a file, not a directory); \
            create it for the user running the coordinator (e.g. `sudo install -d -o $USER \(settings.dataDirectory)`) or choose another with data_dir: / --data-dir
            """)
        settings.dataDirectory = dir.appendingPathComponent("fresh/data").path
        #expect(try settings.writableDataDirectory().path == settings.dataDirectory)
        #expect(try FileManager.default.contentsOfDirectory(atPath: settings.dataDirectory).isEmpty)
    }

    /// Every key the sample config's header maps to a flag is a key the loader knows, and
    /// every flag is one `serve` takes: the mapping cannot go stale silently.
    @Test func theSampleConfigListsEachKeyWithItsFlag() throws {
        let url = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("Deploy/tower.yaml")
        let text = try String(contentsOf: url, encoding: .utf8)
        let header = text.components(separatedBy: "\n\n")[0]
        let pairs = header.split(separator: "\n").filter { $0.hasPrefix("#   ") }
            .flatMap { $0.dropFirst(4).split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) } }
            .filter { !$0.isEmpty }
            .map { $0.trimmingCharacters(in: CharacterSet(charactersIn: ".")).split(separator: " ").map(String.init) }
        #expect(pairs.count == 14, "\(pairs)")
        for pair in pairs {
            #expect(pair.count == 2 && pair[1].hasPrefix("--"), "\(pair)")
            #expect(CoordinatorSettings.yamlKeys.contains(pair[0]), "\(pair[0]) is not a key the loader reads")
        }
    }
}
