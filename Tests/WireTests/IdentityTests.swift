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

    /// A name stands for one live certificate: a second issue is refused unless it
    /// replaces (and revokes) the first, so revoking the name later cannot deny the new one.
    @Test func aNameIsIssuedOnceUnlessReplaced() throws {
        let dir = tempDir()
        let ca = try ClusterCA.initialize(in: dir)
        let (first, _, _) = try ca.issueAndWrite(name: "w1", role: .worker)
        #expect(throws: IdentityError.nameTaken(name: "w1", serial: first.serial)) { try ca.issueAndWrite(name: "w1", role: .worker) }
        #expect(IdentityError.nameTaken(name: "w1", serial: "0a").description
                == "a valid certificate named w1 exists already (serial 0a); add --replace to issue a new one and revoke that serial, or choose another name")
        let (second, _, _) = try ca.issueAndWrite(name: "w1", role: .worker, replace: true)
        #expect(try ClusterCA.readIndex(in: dir).map { [$0.serial: $0.revoked] } == [[first.serial: true], [second.serial: false]])
        // Revoking the name now denies the one live certificate it stands for.
        let revoked = try ClusterCA.revoke("w1", in: dir)
        #expect(revoked.map(\.serial) == [second.serial])
        #expect(try ClusterCA.readIndex(in: dir).allSatisfy(\.revoked))
        // Once revoked, the name may be issued again without --replace.
        let (third, _, _) = try ca.issueAndWrite(name: "w1", role: .worker)
        #expect(try ClusterCA.readIndex(in: dir).filter(\.isLive).map(\.serial) == [third.serial])
    }

    /// An index written before names were unique may hold two live certificates with one
    /// name: revoking by that name is refused rather than denying both.
    @Test func revokingAnAmbiguousNameAsksForTheSerial() throws {
        let dir = tempDir()
        let ca = try ClusterCA.initialize(in: dir)
        let (a, _, _) = try ca.issueAndWrite(name: "w1", role: .worker)
        let b = try ca.issue(name: "w1", role: .worker)
        var index = try ClusterCA.readIndex(in: dir)
        index.append(CertificateRecord(serial: b.serial, name: "w1", role: .worker, notValidAfter: b.notValidAfter, revoked: false, revokedAt: nil))
        try ClusterCA.writeIndex(index, in: dir)
        #expect(throws: IdentityError.ambiguousName(name: "w1", serials: [a.serial, b.serial])) { try ClusterCA.revoke("w1", in: dir) }
        #expect(IdentityError.ambiguousName(name: "w1", serials: ["0a", "0b"]).description
                == "2 valid certificates are named w1 (serials 0a, 0b); revoke one by its serial: `coordinator certs revoke SERIAL`")
        #expect(try ClusterCA.revoke(b.serial, in: dir).map(\.serial) == [b.serial])
        #expect(try ClusterCA.readIndex(in: dir).filter(\.isLive).map(\.serial) == [a.serial])
    }

    @Test func aKeyOthersCanReadIsWarnedAbout() throws {
        let dir = tempDir()
        let ca = try ClusterCA.initialize(in: dir)
        let (_, cert, key) = try ca.issueAndWrite(name: "w1", role: .worker)
        let caPath = dir.appendingPathComponent(ClusterCA.caFile).path
        #expect(try TLSIdentity(certificate: cert.path, key: key.path, ca: caPath).keyFileWarning == nil)
        try FileManager.default.setAttributes([.posixPermissions: 0o644], ofItemAtPath: key.path)
        #expect(try TLSIdentity(certificate: cert.path, key: key.path, ca: caPath).keyFileWarning
                == "the private key \(key.path) is readable by other users (mode 644); run `chmod 600 \(key.path)`")
    }
}
