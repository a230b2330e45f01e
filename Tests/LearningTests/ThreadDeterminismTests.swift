import Foundation
import Testing
@testable import Learning

/// The same seed must give the same model, bit for bit, whatever the thread count: the
/// learner shares nodes out by features or by row ranges depending on threads and node
/// size, and none of that may show in the model. The learner's parallel thresholds are
/// lowered so that this small data takes every path (feature groups, row ranges with
/// summed per-thread histograms, chunked parallel partition); the radix AUC's two-half
/// path is checked on its own below.
@Suite struct ThreadDeterminismTests {
    /// The model file's bytes with the thread setting (recorded in the parameters)
    /// cleared, so only what was learned is compared.
    static func serialized(_ m: GradientBoostedModel) -> Data {
        var p = m.parameters
        p.threads = 0
        let normalized = GradientBoostedModel(schema: m.schema, binnings: m.binnings, trees: m.trees,
                                              initialScore: m.initialScore, parameters: p, curve: m.curve)
        return ModelFile.encode(.gradientBoosted(normalized))
    }

    static func train(_ data: Dataset, valid: Dataset, _ parameters: String, threads: Int,
                      packedHistograms: Bool = true) throws -> GradientBoostedModel {
        var p = try BoostingParameters(parsing: parameters)
        p.threads = threads
        let tuning = GBDTTrainer.ParallelTuning(minParallelWork: 0, minRowsPerThread: 16, partitionChunk: 97,
                                                packedHistogramMaxRows: packedHistograms ? PackedHistogramBin.maxRows : 0)
        return try GBDTTrainer.train(data, valid: valid, parameters: p, objective: BinaryLogLoss(), recordCurve: true,
                                     callback: nil, parallelTuning: tuning)
    }

    /// 16-byte entries (count packed with the hessian sum) hold exactly the sums of the
    /// 24-byte ones, so both give the same model, at one thread and on every parallel path.
    @Test func packedAndWideHistogramsGiveTheSameModel() throws {
        let data = Fixtures.mixedData(rows: 4000, features: 12, seed: 24)
        let valid = Fixtures.mixedData(rows: 1000, features: 12, seed: 25)
        let parameters = "num_iterations=10,num_leaves=15,min_data_in_leaf=10,seed=5"
        for threads in [1, 2] {
            let packed = try Self.train(data, valid: valid, parameters, threads: threads)
            let wide = try Self.train(data, valid: valid, parameters, threads: threads, packedHistograms: false)
            #expect(packed.trees.allSatisfy { $0.leafCount > 2 })
            #expect(Self.serialized(packed) == Self.serialized(wide), "\(threads) threads")
        }
        // The packing itself: sums and differences of rows keep hessian and count apart,
        // negative hessian sums included.
        var a = PackedHistogramBin.zero, b = PackedHistogramBin.zero
        for (g, h) in [(5, 1 << 30), (-3, -(1 << 30)), (7, -12345), (1, 0)] as [(Int64, Int64)] {
            a.add(gradient: g, rowTerm: PackedHistogramBin.rowTerm(hessian: h))
        }
        #expect(a.g == 10 && a.h == -12345 && a.c == 4)
        b.add(gradient: 7, rowTerm: PackedHistogramBin.rowTerm(hessian: -12345))
        a.subtract(b)
        #expect(a.g == 3 && a.h == 0 && a.c == 3)
    }

    @Test(arguments: [5, 12])
    func sameModelAtOneTwoAndFourThreads(features: Int) throws {
        let data = Fixtures.mixedData(rows: 4000, features: features, seed: 21)
        let valid = Fixtures.mixedData(rows: 1000, features: features, seed: 22)
        let parameters = "num_iterations=12,num_leaves=15,min_data_in_leaf=10,seed=7"
        let one = try Self.train(data, valid: valid, parameters, threads: 1)
        #expect(one.trees.count == 12)
        #expect(one.trees.allSatisfy { $0.leafCount > 2 })
        let reference = Self.serialized(one)
        for threads in [2, 4] {
            let model = try Self.train(data, valid: valid, parameters, threads: threads)
            #expect(Self.serialized(model) == reference, "\(threads) threads, \(features) features")
            #expect(model.curve == one.curve)
        }
    }

    @Test func sameModelWithBaggingAndFeatureSampling() throws {
        let data = Fixtures.mixedData(rows: 3000, features: 9, seed: 23)
        let parameters = "num_iterations=8,num_leaves=12,feature_fraction=0.6,bagging_fraction=0.7,bagging_freq=1,seed=3"
        let reference = Self.serialized(try Self.train(data, valid: data, parameters, threads: 1))
        for threads in [2, 4] {
            #expect(Self.serialized(try Self.train(data, valid: data, parameters, threads: threads)) == reference)
        }
    }

    /// Parallel regions started from several threads at once (one gets the worker pool,
    /// the others fall back) and regions nested inside regions all run every index once.
    @Test func parallelRegionsFromManyCallersRunEveryIndexOnce() {
        let callers = 6, count = 1_000
        let totals = UnsafeMutablePointer<Int>.allocate(capacity: callers)
        totals.initialize(repeating: 0, count: callers)
        defer { totals.deallocate() }
        let out = UncheckedSendable(totals)
        DispatchQueue.concurrentPerform(iterations: callers) { c in
            for _ in 0..<50 {
                let hits = UnsafeMutablePointer<Int>.allocate(capacity: count)
                hits.initialize(repeating: 0, count: count)
                parallelFor(count, threads: 3) { i in
                    hits[i] += 1
                    if i == 0 { parallelFor(4, threads: 2) { _ in } }
                }
                var sum = 0
                for i in 0..<count { sum += hits[i] }
                out.value[c] += sum
                hits.deallocate()
            }
        }
        for c in 0..<callers { #expect(totals[c] == 50 * count) }
    }

    /// The caller claims a region's items from the front and workers from the back, so
    /// the items the caller ran are a prefix and the rest a suffix (what keeps a
    /// feature's histograms on one core from node to node), and each runs once.
    @Test func theCallerTakesItemsFromTheFrontAndWorkersFromTheBack() {
        #if os(Linux)
        let pool = WorkerPool()  // its own: the shared pool may be busy with other tests
        let count = 200
        let byCaller = UnsafeMutablePointer<Bool>.allocate(capacity: count)
        let runs = UnsafeMutablePointer<Int>.allocate(capacity: count)
        byCaller.initialize(repeating: false, count: count)
        runs.initialize(repeating: 0, count: count)
        defer { byCaller.deallocate(); runs.deallocate() }
        let sink = UnsafeMutablePointer<UInt64>.allocate(capacity: count)
        defer { sink.deallocate() }
        let out = UncheckedSendable((byCaller, runs, pthread_self(), sink))
        for _ in 0..<20 {
            runs.update(repeating: 0, count: count)
            let ran = pool.run(count: count, workers: 2) { i in
                out.value.0[i] = pthread_equal(pthread_self(), out.value.2) != 0
                out.value.1[i] += 1
                var x = UInt64(i)
                for _ in 0..<2_000 { x = x &* 6364136223846793005 &+ 1 }  // some work, so the worker joins
                out.value.3[i] = x
            }
            #expect(ran)
            #expect((0..<count).allSatisfy { runs[$0] == 1 })
            let callerItems = (0..<count).filter { byCaller[$0] }
            #expect(callerItems == Array(0..<callerItems.count))
        }
        #endif
    }

    /// The fixed-point histograms' rounding: integers round half to even, exactly.
    @Test func binningRadixSortMatchesComparisonSort() {
        #expect(sortedIgnoringNaN([3, .nan, -1, 0, -0.0, 2.5, -7]) == [-7, -1, 0, 0, 2.5, 3])
        var rng = Xoshiro256(seed: 4)
        let many = (0..<5_000).map { _ in Float(rng.normal() * 1e3) }
        #expect(sortedIgnoringNaN(many) == many.sorted())
    }

    @Test func quantizerRoundsHalfToEven() {
        #expect(GradientQuantizer.round(2.5) == 2)
        #expect(GradientQuantizer.round(3.5) == 4)
        #expect(GradientQuantizer.round(-2.5) == -2)
        #expect(GradientQuantizer.round(-0.4) == 0)
        #expect(GradientQuantizer.round(1_073_741_823.7) == 1_073_741_824)
        #expect(GradientQuantizer.scale(for: 1) == Double(1 << 30))
        #expect(GradientQuantizer.scale(for: 0.3) == Double(1 << 31))
    }

    /// The radix-sorted AUC against the definition (pairs of positive and negative
    /// scores, ties counting one half), with ties and both signs of zero.
    @Test func radixAUCMatchesPairCounting() {
        var rng = Xoshiro256(seed: 9)
        let n = 20_000
        var scores: [Double] = [], labels: [Float] = []
        for i in 0..<n {
            let s = i % 7 == 0 ? 0.0 : (i % 11 == 0 ? -0.0 : (rng.uniform() * 8 - 4).rounded(toPlaces: 2))
            scores.append(s)
            labels.append(rng.bernoulli(0.3 + 0.1 * s) ? 1 : 0)
        }
        // Pair counting over score buckets (exact, O(n log n) via sorting distinct scores).
        var byScore: [Double: (pos: Double, neg: Double)] = [:]
        for (s, y) in zip(scores, labels) {
            let key = s == 0 ? 0.0 : s
            var e = byScore[key] ?? (0, 0)
            if y > 0.5 { e.pos += 1 } else { e.neg += 1 }
            byScore[key] = e
        }
        var negativesBelow = 0.0, favourable = 0.0
        for key in byScore.keys.sorted() {
            let e = byScore[key]!
            favourable += e.pos * (negativesBelow + e.neg / 2)
            negativesBelow += e.neg
        }
        let positives = Double(labels.filter { $0 > 0.5 }.count)
        let expected = favourable / (positives * (Double(n) - positives))
        let one = scores.withUnsafeBufferPointer { s in labels.withUnsafeBufferPointer { Metrics.auc(scores: s.baseAddress, labels: $0.baseAddress, count: n, threads: 1) } }
        let two = scores.withUnsafeBufferPointer { s in labels.withUnsafeBufferPointer { Metrics.auc(scores: s.baseAddress, labels: $0.baseAddress, count: n, threads: 2) } }
        #expect(abs(one - expected) < 1e-12)
        #expect(one == two)
    }
}

private extension Double {
    func rounded(toPlaces places: Int) -> Double {
        let f = pow(10, Double(places))
        return (self * f).rounded() / f
    }
}
