import Foundation
import Testing
@testable import Learning

/// A search's data binned once (on the coordinator) must train the very models the raw
/// rows train, and a damaged blob must be refused with a reason, never trained on.
@Suite struct BinnedTrainingSetTests {
    static let parameters = "num_iterations=12,num_leaves=15,min_data_in_leaf=10,feature_fraction=0.7,bagging_fraction=0.8,bagging_freq=1,lambda_l2=0.5,seed=7"

    static func trainAndValid() -> (Dataset, Dataset) {
        (Fixtures.mixedData(rows: 3000, features: 6, seed: 31), Fixtures.mixedData(rows: 800, features: 6, seed: 32))
    }

    @Test func aModelTrainedFromTheDecodedBlobIsTheModelTrainedFromTheRows() throws {
        let (train, valid) = Self.trainAndValid()
        var p = try BoostingParameters(parsing: Self.parameters)
        p.threads = 1
        let set = try BinnedTrainingSet(train: train, valid: valid, maxBin: p.maxBin, seed: p.seed)
        let decoded = try BinnedTrainingSet.decode(set.encode())
        #expect(decoded.binsApply(to: p))
        let fromBlob = try GBDTTrainer.train(decoded, parameters: p) { _, _, _ in true }
        let fromRows = try GBDTTrainer.train(train, valid: valid, parameters: p) { _, _, _ in true }
        #expect(fromBlob.trees.count == 12)
        #expect(ModelFile.encode(.gradientBoosted(fromBlob)) == ModelFile.encode(.gradientBoosted(fromRows)))
        #expect(fromBlob.curve == fromRows.curve)
    }

    @Test func aTrialWithAnotherMaxBinIsBinnedAfreshAndStillMatches() throws {
        let (train, valid) = Self.trainAndValid()
        var p = try BoostingParameters(parsing: Self.parameters + ",max_bin=31")
        p.threads = 1
        let set = try BinnedTrainingSet.decode(try BinnedTrainingSet(train: train, valid: valid).encode())
        #expect(!set.binsApply(to: p))
        #expect(BinnedTrainingSet.binningKey(rows: train.rowCount, parameters: p) == "max_bin=31,min_data_in_bin=3")
        #expect(set.binningKey == "max_bin=255,min_data_in_bin=3")
        let fromBlob = try GBDTTrainer.train(set, parameters: p)
        let fromRows = try GBDTTrainer.train(train, valid: valid, parameters: p)
        #expect(fromBlob.binnings.allSatisfy { $0.valueBinCount <= 31 })
        #expect(ModelFile.encode(.gradientBoosted(fromBlob)) == ModelFile.encode(.gradientBoosted(fromRows)))
    }

    @Test func theBlobKeepsEveryRowAndItsBins() throws {
        let (train, valid) = Self.trainAndValid()
        let set = try BinnedTrainingSet(train: train, valid: valid, maxBin: 63, minDataInBin: 5, seed: 3)
        let decoded = try BinnedTrainingSet.decode(set.encode())
        #expect(decoded.maxBin == 63 && decoded.minDataInBin == 5 && decoded.binningSeed == 3)
        // Bit for bit (the columns hold NaNs, which == would call unequal).
        #expect(zip(decoded.train.columns, train.columns).allSatisfy { a, b in a.map(\.bitPattern) == b.map(\.bitPattern) })
        #expect(decoded.train.labels == train.labels && decoded.train.groups == train.groups && decoded.train.days == nil)
        #expect(decoded.valid?.rowCount == valid.rowCount && decoded.valid?.groups == valid.groups)
        #expect(decoded.binnings == set.binnings)
        let cells = train.rowCount * train.featureCount
        #expect(Array(UnsafeBufferPointer(start: decoded.matrix.bins, count: cells)) == Array(UnsafeBufferPointer(start: set.matrix.bins, count: cells)))
        // Without validation rows too.
        let alone = try BinnedTrainingSet.decode(try BinnedTrainingSet(train: train, valid: nil).encode())
        #expect(alone.valid == nil && alone.validMatrix == nil)
    }

    @Test func aTruncatedBlobIsRefusedWithWhereItEnded() throws {
        let (train, valid) = Self.trainAndValid()
        let blob = try BinnedTrainingSet(train: train, valid: valid).encode()
        // magic (4), version (2), max_bin (2), min_data_in_bin (2): the seed is missing.
        #expect(throws: BinnedTrainingSetError.truncated(at: 10, reading: "the seed")) { try BinnedTrainingSet.decode(blob.prefix(10)) }
        do {
            _ = try BinnedTrainingSet.decode(blob.prefix(10))
            Issue.record("a truncated blob decoded")
        } catch {
            #expect("\(error)" == "binned training set truncated at byte 10 while reading the seed; the coordinator prepares this blob from the search's data set; submit the search again")
        }
        // Cut inside the validation bin codes: the last field read.
        let cut = blob.count - 10
        #expect(throws: BinnedTrainingSetError.truncated(at: cut - (valid.rowCount * valid.featureCount - 10), reading: "the validation bin codes")) {
            try BinnedTrainingSet.decode(blob.prefix(cut))
        }
        #expect(throws: BinnedTrainingSetError.notBinned) { try BinnedTrainingSet.decode(Data("TWTS....".utf8)) }
        #expect("\(BinnedTrainingSetError.notBinned)" == "not a binned training set (no TWBN header)")
    }

    /// `min_data_in_bin` is part of what makes bins apply: a trial asking for another
    /// value is binned afresh and trains the model it would train from the rows; a
    /// version 1 blob (before the field) was binned one value per bin and says so.
    @Test func minDataInBinDecidesWhetherTheBinsApply() throws {
        let (train, valid) = Self.trainAndValid()
        let blob = try BinnedTrainingSet(train: train, valid: valid).encode()
        let set = try BinnedTrainingSet.decode(blob)
        var p = try BoostingParameters(parsing: Self.parameters + ",min_data_in_bin=1")
        p.threads = 1
        #expect(set.minDataInBin == 3 && !set.binsApply(to: p))
        let fromBlob = try GBDTTrainer.train(set, parameters: p)
        let fromRows = try GBDTTrainer.train(train, valid: valid, parameters: p)
        #expect(ModelFile.encode(.gradientBoosted(fromBlob)) == ModelFile.encode(.gradientBoosted(fromRows)))
        // The same blob as version 1 wrote it: no min_data_in_bin field.
        var v1 = Data(blob.prefix(4))
        v1.append(contentsOf: [1, 0])
        v1.append(blob[6..<8])
        v1.append(blob[10...])
        let old = try BinnedTrainingSet.decode(v1)
        #expect(old.minDataInBin == 1 && old.binsApply(to: p) && old.binnings == set.binnings)
        var future = blob
        future[4] = 3
        #expect(throws: BinnedTrainingSetError.unsupportedVersion(3, supported: 2)) { try BinnedTrainingSet.decode(future) }
    }

    @Test func aBinCodeBeyondItsFeaturesBinsIsRefused() throws {
        let (train, valid) = Self.trainAndValid()
        let set = try BinnedTrainingSet(train: train, valid: valid, maxBin: 15)
        var blob = set.encode()
        // The last byte is the last validation row's code of the last feature.
        blob[blob.count - 1] = 254
        let feature = train.featureCount - 1
        let bins = set.binnings[feature].totalBinCount
        #expect(bins < 254)
        do {
            _ = try BinnedTrainingSet.decode(blob)
            Issue.record("a blob with a bin code out of range decoded")
        } catch {
            #expect("\(error)" == "binned training set malformed: a validation bin code of feature \(feature) is 254, beyond its \(bins) bins; the coordinator prepares this blob from the search's data set; submit the search again")
        }
        // Trailing bytes are refused too.
        #expect(throws: BinnedTrainingSetError.malformed("1 bytes after the last bin code")) { try BinnedTrainingSet.decode(set.encode() + Data([0])) }
    }
}
