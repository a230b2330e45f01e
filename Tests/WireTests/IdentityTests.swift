import Foundation
import Testing
import X509
@testable import Wire

@Suite struct IdentityTests {
    func tempDir() -> URL {
        FileManager.default.temporaryDirectory.appendingPathComponent("tower-id-\(UUID().uuidString.prefix(8))")
    }

    @Test func issuedCertificatesCarryTheirRoleAndName() throws {
        let dir = tempDir()
        let ca = try ClusterCA.initialize(in: dir)
        for role in ClusterRole.allCases {
            let issued = try ca.issue(name: "n-\(role.rawValue)", role: role)
            let cert = try Certificate(pemEncoded: issued.certificatePEM)
            #expect(cert.towerRole == role)
            #expect(cert.towerName == "n-\(role.rawValue)")
            #expect(cert.issuer == ca.certificate.subject)
            #expect(cert.serialNumber.hexString == issued.serial)
        }
    }

    @Test func privateKeysAreWrittenOwnerOnly() throws {
        let dir = tempDir()
        let ca = try ClusterCA.initialize(in: dir)
        let (_, certURL, keyURL) = try ca.issueAndWrite(name: "w1", role: .worker)
        func mode(_ url: URL) throws -> Int {
            (try FileManager.default.attributesOfItem(atPath: url.path)[.posixPermissions] as! NSNumber).intValue
        }
        #expect(try mode(keyURL) == 0o600)
        #expect(try mode(dir.appendingPathComponent(ClusterCA.caKeyFile)) == 0o600)
        #expect(try mode(certURL) == 0o644)
        let identity = try TLSIdentity(certificate: certURL.path, key: keyURL.path, ca: dir.appendingPathComponent("ca.pem").path)
        #expect(identity.role == .worker)
    }

    @Test func aKeyThatIsNotTheCertificatesNamesBothFiles() throws {
        let dir = tempDir()
        let ca = try ClusterCA.initialize(in: dir)
        let (_, certURL, _) = try ca.issueAndWrite(name: "w1", role: .worker)
        let (_, _, otherKey) = try ca.issueAndWrite(name: "w2", role: .worker)
        let caPath = dir.appendingPathComponent("ca.pem").path
        #expect(throws: IdentityError.keyMismatch(certificate: certURL.path, key: otherKey.path)) {
            try TLSIdentity(certificate: certURL.path, key: otherKey.path, ca: caPath)
        }
        #expect(IdentityError.keyMismatch(certificate: "/c/w1.pem", key: "/c/w2-key.pem").description
                == "the private key /c/w2-key.pem does not belong to the certificate /c/w1.pem; pass the key file issued with that certificate (NAME-key.pem beside NAME.pem)")
    }

    @Test func aBrokenPEMNamesItsOwnFile() throws {
        let dir = tempDir()
        let ca = try ClusterCA.initialize(in: dir)
        let (_, certURL, keyURL) = try ca.issueAndWrite(name: "w1", role: .worker)
        try Data("-----BEGIN PRIVATE KEY-----\nnope\n-----END PRIVATE KEY-----\n".utf8).write(to: keyURL)
        do {
            _ = try TLSIdentity(certificate: certURL.path, key: keyURL.path, ca: dir.appendingPathComponent("ca.pem").path)
            Issue.record("a broken key was accepted")
        } catch let IdentityError.unreadable(path, reason) {
            #expect(path == keyURL.path)
            #expect(reason.hasPrefix("not a valid PEM private key: "), "\(reason)")
        }
    }

    @Test func initRefusesToOverwriteACA() throws {
        let dir = tempDir()
        _ = try ClusterCA.initialize(in: dir)
        #expect(throws: IdentityError.caExists(dir.path)) { _ = try ClusterCA.initialize(in: dir) }
    }

    @Test func revocationIsRecordedByNameOrSerial() throws {
        let dir = tempDir()
        let ca = try ClusterCA.initialize(in: dir)
        let (w1, _, _) = try ca.issueAndWrite(name: "w1", role: .worker)
        try ca.issueAndWrite(name: "w2", role: .worker)
        let changed = try ClusterCA.revoke(w1.serial, in: dir)
        #expect(changed.map(\.name) == ["w1"])
        let index = try ClusterCA.readIndex(in: dir)
        #expect(index.first { $0.name == "w1" }?.revoked == true)
        #expect(index.first { $0.name == "w2" }?.revoked == false)
        #expect(throws: IdentityError.unknownCertificate("nobody")) { try ClusterCA.revoke("nobody", in: dir) }
    }

    @Test func badNamesAndMissingFilesAreExplained() throws {
        let dir = tempDir()
        let ca = try ClusterCA.initialize(in: dir)
        #expect(throws: IdentityError.invalidName("../evil")) { _ = try ca.issue(name: "../evil", role: .worker) }
        #expect(throws: IdentityError.caMissing(dir.appendingPathComponent("none").path)) {
            _ = try ClusterCA.load(from: dir.appendingPathComponent("none"))
        }
        do {
            _ = try TLSIdentity(certificate: "/nonexistent.pem", key: "/k.pem", ca: "/ca.pem")
            Issue.record("expected an error")
        } catch let error as IdentityError {
            #expect(error.description.contains("/nonexistent.pem"))
        }
    }
}
