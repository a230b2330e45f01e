import Foundation
import Testing
@testable import Learning

@Suite struct ModelFileTests {
    static func trained() throws -> (GradientBoostedModel, Dataset) {
        let data = Fixtures.mixedData(rows: 1500)
        var p = BoostingParameters()
        p.numIterations = 10
        var model = try GBDTTrainer.train(data, valid: data, parameters: p)
        model.metrics = ["auc": 0.81, "logloss": 0.5]
        model.gitCommit = "0123abcd"
        return (model, data)
    }

    @Test func crc32KnownVector() {
        #expect(CRC32.checksum(Array("123456789".utf8)) == 0xCBF4_3926)
        #expect(CRC32.checksum([UInt8]()) == 0)
    }

    @Test func gradientBoostedRoundTripPredictsIdentically() throws {
        let (model, data) = try Self.trained()
        let url = Fixtures.temporaryDirectory().appendingPathComponent("m.tower")
        try ModelFile.save(.gradientBoosted(model), to: url)
        guard case let .gradientBoosted(loaded) = try ModelFile.load(from: url) else {
            Issue.record("wrong model kind"); return
        }
        #expect(try loaded.predictRaw(data) == (try model.predictRaw(data)))
        #expect(loaded.trees == model.trees)
        #expect(loaded.binnings == model.binnings)
        #expect(loaded.schema == model.schema)
        #expect(loaded.parameters == model.parameters)
        #expect(loaded.metrics == model.metrics)
        #expect(loaded.gitCommit == "0123abcd")
        #expect(loaded.curve == model.curve)
    }

    @Test func logisticRoundTripPredictsIdentically() throws {
        let data = Fixtures.mixedData(rows: 800)
        var model = try LogisticTrainer.train(data)
        model.gitCommit = "feed"
        let bytes = ModelFile.encode(.logistic(model))
        guard case let .logistic(loaded) = try ModelFile.decode(bytes) else { Issue.record("wrong kind"); return }
        #expect(try loaded.predictRaw(data) == (try model.predictRaw(data)))
        #expect(loaded.gitCommit == "feed")
    }

    @Test func truncatedFileIsRejectedAsTruncated() throws {
        let (model, _) = try Self.trained()
        let bytes = ModelFile.encode(.gradientBoosted(model))
        for cut in [6, 16, bytes.count / 2, bytes.count - 1] {
            #expect {
                try ModelFile.decode(bytes.prefix(cut), file: "m.tower")
            } throws: { error in
                if case .truncated(let file, _, let actual) = error as? ModelFileError { return file == "m.tower" && actual == cut }
                return false
            }
        }
    }

    @Test func corruptedByteIsRejectedByChecksum() throws {
        let (model, _) = try Self.trained()
        var bytes = [UInt8](ModelFile.encode(.gradientBoosted(model)))
        bytes[bytes.count / 2] ^= 0x40
        #expect {
            try ModelFile.decode(Data(bytes))
        } throws: { error in
            if case .checksumMismatch = error as? ModelFileError { return true }
            return false
        }
    }

    @Test func foreignFileIsRejected() throws {
        #expect(throws: ModelFileError.notATowerModel(file: "x")) { try ModelFile.decode(Data("tree\n0 1 2".utf8), file: "x") }
        #expect(throws: ModelFileError.notATowerModel(file: "x")) { try ModelFile.decode(Data(), file: "x") }
    }

    @Test func newerFormatVersionIsRejected() throws {
        let (model, _) = try Self.trained()
        var bytes = [UInt8](ModelFile.encode(.gradientBoosted(model)))
        bytes[4] = 9
        #expect(throws: ModelFileError.unsupportedVersion(file: "<memory>", found: 9, supported: 1)) {
            try ModelFile.decode(Data(bytes))
        }
    }

    @Test func trailingGarbageIsCorruption() throws {
        let (model, _) = try Self.trained()
        var bytes = ModelFile.encode(.gradientBoosted(model))
        bytes.append(0)
        #expect(throws: ModelFileError.self) { try ModelFile.decode(bytes) }
    }

    @Test func missingFileSaysUnreadable() {
        #expect {
            try ModelFile.load(from: URL(fileURLWithPath: "/nonexistent/m.tower"))
        } throws: { error in
            if case .unreadable = error as? ModelFileError { return true }
            return false
        }
    }
}
