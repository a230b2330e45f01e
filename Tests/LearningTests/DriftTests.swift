import Foundation
import Testing
@testable import Learning

/// Column data for drift tests: `numeric` normal features (mean `shift[f]`, std 1, 2% NaN)
/// followed by `categorical` features with codes 0…4 drawn with skewed weights.
private func driftColumns(rows: Int, numeric: Int, categorical: Int = 0, shift: [Int: Double] = [:],
                          seed: UInt64) -> [[Float]] {
    var rng = Xoshiro256(seed: seed)
    var columns = [[Float]](repeating: [], count: numeric + categorical)
    for f in columns.indices { columns[f].reserveCapacity(rows) }
    for _ in 0..<rows {
        for f in 0..<numeric {
            let v = rng.normal() + (shift[f] ?? 0)
            columns[f].append(rng.bernoulli(0.02) ? .nan : Float(v))
        }
        for f in numeric..<(numeric + categorical) {
            let u = rng.uniform()
            columns[f].append(u < 0.4 ? 0 : u < 0.7 ? 1 : u < 0.85 ? 2 : u < 0.95 ? 3 : 4)
        }
    }
    return columns
}

private func specs(numeric: Int, categorical: Int = 0) -> [DriftFeatureSpec] {
    (0..<numeric).map { DriftFeatureSpec(name: "x\($0)", categorical: false) }
        + (0..<categorical).map { DriftFeatureSpec(name: "c\($0)", categorical: true) }
}

private func histograms(_ columns: [[Float]], _ binning: DriftBinning) -> DriftHistograms {
    DriftHistograms.count(columns: columns, rows: 0..<columns[0].count, binning: binning)
}

@Suite struct DriftBinningTests {
    @Test func numericCutPointsAreDeduplicatedInvertedCDFQuantiles() {
        // Finite values sorted: 1 2 2 3 4 5 (n = 6, K = 4): k = 0…4 → s[0], s[⌈6k/4⌉−1] =
        // s[0]=1, s[1]=2, s[2]=2 (dropped), s[4]=4, s[5]=5.
        let b = DriftBinning.fromReference(columns: [[5, 1, 3, .nan, 2, 4, 2, .infinity]],
                                           specs: [DriftFeatureSpec(name: "x", categorical: false)], fineBins: 4)
        #expect(b.cutPoints(feature: 0) == [1, 2, 4, 5])
        #expect(b.binCount(feature: 0) == 6)
        let values: [Float] = [-7, 1, 1.5, 2, 3, 4, 4.5, 5, 6, .nan, .infinity, -.infinity]
        #expect(values.map { b.bin(feature: 0, value: $0) } == [0, 0, 1, 1, 2, 2, 3, 3, 4, 5, 5, 5])
    }

    @Test func categoriesAreSortedDistinctWithOtherAndMissing() {
        let b = DriftBinning.fromReference(columns: [[3, 1, 3, .nan, 7]],
                                           specs: [DriftFeatureSpec(name: "c", categorical: true)])
        #expect(b.categories(feature: 0) == [1, 3, 7])
        #expect(b.binCount(feature: 0) == 5)
        #expect([1, 3, 7, 2, 100, .nan].map { b.bin(feature: 0, value: $0) } == [0, 1, 2, 3, 3, 4])
    }

    @Test func radixSortMatchesComparisonSort() {
        var rng = Xoshiro256(seed: 9)
        var column: [Float] = (0..<5000).map { _ in Float(rng.normal() * 1e3) }
        column += [0, -0.0, .nan, -.infinity, .leastNonzeroMagnitude, -.leastNonzeroMagnitude, .greatestFiniteMagnitude]
        let sorted = DriftBinning.sortedFinite(column)
        #expect(sorted.elementsEqual(column.filter(\.isFinite).sorted()))
    }

    @Test func countingFindsTheSameBinsAsBinarySearch() {
        // Heavy tails, ties, negative zero and values outside the reference range, with
        // few and many cut points: the slot table must never change a bin.
        var rng = Xoshiro256(seed: 8)
        let reference: [Float] = (0..<20_000).map { i in
            i % 7 == 0 ? Float(Int(rng.normal() * 3)) : Float(exp(rng.normal() * 4)) * (i % 2 == 0 ? 1 : -1)
        } + [-0.0, 0, .greatestFiniteMagnitude, -.greatestFiniteMagnitude]
        let probe: [Float] = reference + (0..<5000).map { _ in Float(exp(rng.normal() * 5)) * (rng.bernoulli(0.5) ? 1 : -1) }
            + [.infinity, .nan, -.infinity, .leastNonzeroMagnitude, 1e-40]
        for fine in [1, 2, 10, 1000, 5000] {
            let b = DriftBinning.fromReference(columns: [reference], specs: [DriftFeatureSpec(name: "x", categorical: false)],
                                               fineBins: fine)
            var expected = [UInt64](repeating: 0, count: b.binCount(feature: 0))
            for v in probe { expected[b.bin(feature: 0, value: v)] += 1 }
            let counted = DriftHistograms.count(columns: [probe], rows: 0..<probe.count, binning: b).counts(feature: 0)
            let differing = zip(counted, expected).filter { $0 != $1 }.count
            #expect(counted.count == expected.count && differing == 0, "fineBins \(fine)")
        }
    }

    @Test func fineBinsAreQuantileBinsOfTheReference() {
        let columns = driftColumns(rows: 20_000, numeric: 1, seed: 4)
        let b = DriftBinning.fromReference(columns: columns, specs: specs(numeric: 1))
        #expect(b.valueBinCount(feature: 0) == 1001)
        let h = histograms(columns, b)
        let finite = h.nonMissing(feature: 0)
        // Each fine bin holds about 1/1000 of the finite values (they are all distinct).
        let counts = h.counts(feature: 0)
        #expect(counts[1..<1001].allSatisfy { abs(Double($0) - Double(finite) / 1000) <= 1 })
        #expect(counts[1001] == 0)  // nothing of the reference above its own maximum
    }

    @Test func binningRoundTripsAndRejectsDamage() throws {
        let columns = driftColumns(rows: 3000, numeric: 2, categorical: 1, seed: 5)
        let b = DriftBinning.fromReference(columns: columns, specs: specs(numeric: 2, categorical: 1), fineBins: 50)
        let data = b.encoded()
        #expect(try DriftBinning(decoding: data) == b)
        #expect(throws: DriftDataError.truncated(what: "drift binning", expectedBytes: data.count, actualBytes: data.count - 3)) {
            try DriftBinning(decoding: data.prefix(data.count - 3))
        }
        var corrupt = data
        corrupt[20] ^= 0x40
        #expect {
            try DriftBinning(decoding: corrupt)
        } throws: { error in
            if case .checksumMismatch(what: "drift binning", _, _) = error as? DriftDataError { return true }
            return false
        }
        #expect(throws: DriftDataError.notDriftData(what: "drift binning")) {
            try DriftBinning(decoding: Data("TDHG0000000000000000".utf8))
        }
    }
}

@Suite struct DriftHistogramTests {
    @Test func histogramsRoundTripAndRejectTruncation() throws {
        let columns = driftColumns(rows: 4000, numeric: 3, categorical: 2, seed: 6)
        let b = DriftBinning.fromReference(columns: columns, specs: specs(numeric: 3, categorical: 2))
        let h = histograms(columns, b)
        let data = h.encoded()
        #expect(try DriftHistograms(decoding: data) == h)
        #expect(try DriftHistograms(decoding: DriftHistograms(binning: b).encoded()) == DriftHistograms(binning: b))
        #expect(throws: DriftDataError.truncated(what: "drift histograms", expectedBytes: data.count, actualBytes: data.count - 1)) {
            try DriftHistograms(decoding: data.dropLast())
        }
        #expect(throws: DriftDataError.truncated(what: "drift histograms", expectedBytes: 18, actualBytes: 7)) {
            try DriftHistograms(decoding: data.prefix(7))
        }
    }

    @Test func mergingMismatchedShapesThrowsTheExactError() throws {
        let numeric = [DriftFeatureSpec(name: "a", categorical: false), DriftFeatureSpec(name: "b", categorical: true)]
        let a = DriftBinning.fromReference(columns: [[1, 2, 3], [1, 2, 2]], specs: numeric)
        let wider = DriftBinning.fromReference(columns: [[1, 2, 3], [1, 2, 3]], specs: numeric)
        let kinds = DriftBinning.fromReference(columns: [[1, 2, 3], [1, 2, 2]],
                                               specs: [numeric[0], DriftFeatureSpec(name: "b", categorical: false)])
        let moved = DriftBinning.fromReference(columns: [[1, 2, 4], [1, 2, 2]], specs: numeric)
        let one = DriftBinning.fromReference(columns: [[1, 2, 3]], specs: [numeric[0]])
        var h = DriftHistograms.count(columns: [[1, 2, 3], [1, 2, 2]], rows: 0..<3, binning: a)
        let before = h
        #expect(throws: DriftDataError.binCountMismatch(feature: 1, expected: 4, found: 5)) {
            try h.merge(DriftHistograms.count(columns: [[1, 2, 3], [1, 2, 3]], rows: 0..<3, binning: wider))
        }
        #expect(throws: DriftDataError.featureCountMismatch(expected: 2, found: 1)) {
            try h.merge(DriftHistograms.count(columns: [[1]], rows: 0..<1, binning: one))
        }
        #expect(throws: DriftDataError.featureKindMismatch(feature: 1)) {
            try h.merge(DriftHistograms(binning: kinds))
        }
        #expect(throws: DriftDataError.binningMismatch(expected: a.fingerprint, found: moved.fingerprint)) {
            try h.merge(DriftHistograms(binning: moved))
        }
        #expect(h == before)
        try h.merge(h)
        #expect(h.rowCount == 6 && h.counts(feature: 1) == [2, 4, 0, 0])
    }

    @Test func exactSumsDoNotDependOnTheOrderOfAddition() throws {
        // Values whose Double sum rounds differently by order: 1e8 + 1 + 1 … - 1e8.
        let column: [Float] = [1e8, 0.5, 0.25, -1e8, 3, 1e-30, 7.125, -0.5]
        let b = DriftBinning.fromReference(columns: [column], specs: [DriftFeatureSpec(name: "x", categorical: false)])
        let whole = DriftHistograms.count(columns: [column], rows: 0..<8, binning: b)
        var parts = DriftHistograms.count(columns: [column], rows: 5..<8, binning: b)
        try parts.merge(DriftHistograms.count(columns: [column], rows: 0..<2, binning: b))
        try parts.merge(DriftHistograms.count(columns: [column], rows: 2..<5, binning: b))
        #expect(parts == whole)
        #expect(whole.sum(feature: 0) == 10.375 + 1e-30)
        #expect(whole.minimum(feature: 0) == -1e8 && whole.maximum(feature: 0) == 1e8)
    }
}

@Suite struct DriftStatisticsTests {
    @Test func ksPValueMatchesKolmogorovDistribution() {
        // scipy.special.kolmogorov at these λ (both branches of the series).
        let reference: [(Double, Double)] = [(0.3, 0.9999906941986655), (0.5, 0.9639452436648751), (0.8, 0.5441424115741981),
                                             (1.0, 0.26999967167735456), (1.17, 0.12939004218561884), (1.19, 0.11774229287977166),
                                             (1.36, 0.049485876755377876), (2.0, 0.0006709252557796953)]
        for (lambda, q) in reference {
            #expect(abs(DriftStatistics.kolmogorovQ(lambda) - q) < 1e-10, "Q_KS(\(lambda))")
        }
        // kolmogorov((eₙ + 0.12 + 0.11/eₙ)·0.07) with eₙ = √(1000·800/1800).
        #expect(abs(DriftStatistics.ksPValue(statistic: 0.07, n: 1000, m: 800) - 0.02437238969225213) < 1e-10)
    }

    @Test func chiSquaredPValueMatchesKnownValues() {
        // scipy.stats.chi2.sf(x, df).
        let reference: [(Double, Int, Double)] = [(3.84, 1, 0.05004352124870519), (10, 4, 0.04042768199451279),
                                                  (0.5, 3, 0.9188914116546758), (100, 50, 3.454931382984871e-05),
                                                  (1, 7, 0.9948285365165155), (30, 2, 3.0590232050182594e-07)]
        for (x, df, p) in reference {
            let got = DriftStatistics.chiSquaredSurvival(x, degreesOfFreedom: df)
            #expect(abs(got - p) < 1e-4 && abs(got / p - 1) < 1e-9, "chi2.sf(\(x), \(df))")
        }
        // scipy.stats.chisquare([40, 35, 25], [50, 30, 20]) = (4.0833…, 0.12981217685543797)
        let chi = DriftStatistics.chiSquared(reference: [50, 30, 20, 0, 0], current: [40, 35, 25, 0, 0])
        #expect(abs(chi.statistic - 4.083333333333334) < 1e-12)
        #expect(abs(chi.pValue - 0.12981217685543797) < 1e-10)
    }

    @Test func unseenCategoriesGetAnEpsilonExpectation() {
        // One current row in "other": expected 100·ε/(1+ε), so the statistic explodes.
        let chi = DriftStatistics.chiSquared(reference: [50, 50, 0, 0], current: [50, 49, 1, 0])
        let e = 100 * 0.0001 / 1.0001, big = 100 * 0.5 / 1.0001
        let expected = (50 - big) * (50 - big) / big + (49 - big) * (49 - big) / big + (1 - e) * (1 - e) / e
        #expect(abs(chi.statistic - expected) < 1e-9)
        #expect(chi.pValue < 1e-10)
    }

    @Test func jensenShannonMatchesScipy() {
        // scipy.spatial.distance.jensenshannon([.5,.3,.2,0,0], [.3,.3,.2,.15,.05])
        let js = DriftStatistics.jensenShannon(reference: [50, 30, 20, 0, 0], current: [30, 30, 20, 15, 5])
        #expect(abs(js - 0.2862661262126202) < 1e-12)
        #expect(DriftStatistics.jensenShannon(reference: [5, 5, 0, 0], current: [1, 1, 0, 0]) == 0)
        #expect(abs(DriftStatistics.jensenShannon(reference: [1, 0, 0, 0], current: [0, 1, 0, 0]) - log(2).squareRoot()) < 1e-12)
    }

    @Test func categoricalPSIByHand() {
        let b = DriftBinning.fromReference(columns: [[1, 1, 1, 1, 2, 2, 2, 3, 3, .nan]],
                                           specs: [DriftFeatureSpec(name: "c", categorical: true)])
        let r = histograms([[1, 1, 1, 1, 2, 2, 2, 3, 3, .nan]], b)
        let c = histograms([[1, 1, 2, 2, 2, 2, 3, 5, .nan, .nan]], b)
        #expect(r.counts(feature: 0) == [4, 3, 2, 0, 1])
        #expect(c.counts(feature: 0) == [2, 4, 1, 1, 2])
        // Proportions r = .4 .3 .2 0→ε .1 and c = .2 .4 .1 .1 .2.
        let terms = [(0.2, 0.4), (0.4, 0.3), (0.1, 0.2), (0.1, 0.0001), (0.2, 0.1)].map { (q, p) in (q - p) * log(q / p) }
        let report = DriftReport.compute(reference: r, current: c, binning: b)
        #expect(abs(report.features[0].psi - terms.reduce(0, +)) < 1e-12)
        #expect(abs(report.features[0].psi - 0.9961118318394717) < 1e-12)
        #expect(report.features[0].psiBand == "major")
    }

    @Test func numericPSIKSAndWassersteinByHand() {
        // Reference 0…99 (fine bins = one per value), current 50…149.
        let ref: [Float] = (0..<100).map(Float.init), cur: [Float] = (50..<150).map(Float.init)
        let spec = [DriftFeatureSpec(name: "x", categorical: false)]
        let b = DriftBinning.fromReference(columns: [ref], specs: spec, fineBins: 100)
        #expect(b.cutPoints(feature: 0) == ref)
        let r = histograms([ref], b), c = histograms([cur], b)
        // Deciles end at fine bins 9, 19, …, 89; the last coarse bin takes 90…99 and the overflow.
        #expect(DriftStatistics.psiBinEnds(reference: r.counts(feature: 0), bins: 10) == [9, 19, 29, 39, 49, 59, 69, 79, 89, 100])
        // Coarse shares: reference 0.1 each; current 0 ×5, 0.1 ×4, 0.6.
        let psi = 5 * (0.0001 - 0.1) * log(0.0001 / 0.1) + (0.6 - 0.1) * log(6)
        let f = DriftReport.compute(reference: r, current: c, binning: b).features[0]
        #expect(abs(f.psi - psi) < 1e-12)
        #expect(f.ks == 0.5)
        // ∫|ΔF|: Σ_{j=1…49} (2j+1)/200 + 0.5 + 49·0.5 + the overflow triangle 0.5·50/2 = 49.995.
        let std = ((100.0 * 100 - 1) / 12).squareRoot()
        #expect(abs(f.wassersteinNormed! - 49.995 / std) < 1e-9)
        #expect(f.method == "ks" && f.drifted)
    }

    @Test func binnedKSAndWassersteinTrackTheExactSampleValues() {
        let ref = driftColumns(rows: 5000, numeric: 1, seed: 21)[0].filter(\.isFinite)
        let cur = driftColumns(rows: 4000, numeric: 1, shift: [0: 0.15], seed: 22)[0].filter(\.isFinite)
        let b = DriftBinning.fromReference(columns: [ref], specs: specs(numeric: 1))
        let f = DriftReport.compute(reference: histograms([ref], b), current: histograms([cur], b), binning: b).features[0]
        // Exact two-sample KS and W-1 from the merged sorted samples.
        let a = ref.sorted().map(Double.init), c = cur.sorted().map(Double.init)
        var i = 0, j = 0, d = 0.0, w = 0.0, last = min(a[0], c[0])
        while i < a.count || j < c.count {
            let x = min(i < a.count ? a[i] : .infinity, j < c.count ? c[j] : .infinity)
            w += abs(Double(i) / Double(a.count) - Double(j) / Double(c.count)) * (x - last)
            while i < a.count && a[i] == x { i += 1 }
            while j < c.count && c[j] == x { j += 1 }
            d = max(d, abs(Double(i) / Double(a.count) - Double(j) / Double(c.count)))
            last = x
        }
        let mean = a.reduce(0, +) / Double(a.count)
        let std = (a.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / Double(a.count)).squareRoot()
        #expect(f.ks! <= d + 1e-12)
        #expect(d - f.ks! <= 0.004)
        #expect(abs(f.wassersteinNormed! - w / std) <= 0.01 * w / std)
    }
}

@Suite struct DriftReportTests {
    @Test func shardedHistogramsGiveExactlyTheSingleProcessReport() throws {
        let reference = driftColumns(rows: 30_000, numeric: 4, categorical: 2, seed: 31)
        let current = driftColumns(rows: 25_000, numeric: 4, categorical: 2, shift: [1: 0.3], seed: 32)
        let b = DriftBinning.fromReference(columns: reference, specs: specs(numeric: 4, categorical: 2))
        let single = DriftReport.compute(reference: histograms(reference, b), current: histograms(current, b), binning: b)

        func sharded(_ columns: [[Float]], _ cuts: [Int]) throws -> DriftHistograms {
            var merged = DriftHistograms(binning: b)
            // Merge in reverse, through the wire format, to be sure order and encoding do not matter.
            for k in stride(from: cuts.count - 2, through: 0, by: -1) {
                let shard = DriftHistograms.count(columns: columns, rows: cuts[k]..<cuts[k + 1], binning: b, threads: 1)
                try merged.merge(DriftHistograms(decoding: shard.encoded()))
            }
            return merged
        }
        let r = try sharded(reference, [0, 7001, 19_000, 30_000]), c = try sharded(current, [0, 1, 24_000, 25_000])
        #expect(r == histograms(reference, b))
        #expect(c == histograms(current, b))
        let merged = DriftReport.compute(reference: r, current: c, binning: b)
        #expect(merged == single)
        #expect(merged.features.map(\.drifted) == [false, true, false, false, false, false])
    }

    @Test func sameDistributionHasNoDriftAndShiftedFeaturesAreFlagged() {
        let shifted: [Int: Double] = [2: 0.5, 5: -0.4, 9: 0.25, 13: 1, 17: -0.2]
        let reference = driftColumns(rows: 50_000, numeric: 20, seed: 41)
        let same = driftColumns(rows: 50_000, numeric: 20, seed: 42)
        let moved = driftColumns(rows: 50_000, numeric: 20, shift: shifted, seed: 43)
        let b = DriftBinning.fromReference(columns: reference, specs: specs(numeric: 20))
        let r = histograms(reference, b)

        let calm = DriftReport.compute(reference: r, current: histograms(same, b), binning: b)
        #expect(calm.features.allSatisfy { !$0.drifted && $0.method == "wasserstein_normed" && $0.psiBand == "none" })
        #expect(calm.features.allSatisfy { $0.wassersteinNormed! < 0.03 })
        #expect(calm.driftedShare == 0 && !calm.datasetDrift)

        let report = DriftReport.compute(reference: r, current: histograms(moved, b), binning: b)
        #expect(Set(report.features.indices.filter { report.features[$0].drifted }) == Set(shifted.keys))
        for (f, s) in shifted {
            // A shift of a unit normal by s moves it by |s| in W-1, i.e. |s| standard deviations.
            #expect(abs(report.features[f].wassersteinNormed! - abs(s)) < 0.03, "feature \(f)")
        }
        #expect(report.driftedShare == 0.25 && !report.datasetDrift)
        #expect(report.features[13].psiBand == "major")
        let majority = DriftReport.compute(reference: r, current: histograms(moved, b), binning: b,
                                           thresholds: DriftThresholds(datasetDriftShare: 0.25))
        #expect(majority.datasetDrift)
    }

    @Test func smallReferenceSamplesAreTestedLargeOnesMeasured() {
        let all = driftColumns(rows: 1000, numeric: 1, categorical: 1, seed: 51)
        let current = driftColumns(rows: 800, numeric: 1, categorical: 1, seed: 52)
        for (rows, numeric, categorical) in [(999, "ks", "chi_squared"), (1000, "wasserstein_normed", "jensen_shannon")] {
            let reference = all.map { Array($0.prefix(rows)) }
            let b = DriftBinning.fromReference(columns: reference, specs: specs(numeric: 1, categorical: 1))
            let report = DriftReport.compute(reference: histograms(reference, b), current: histograms(current, b), binning: b)
            #expect(report.features.map(\.method) == [numeric, categorical], "\(rows) reference rows")
            let f = report.features[0]
            #expect(f.score == (rows < 1000 ? f.ksPValue! : f.wassersteinNormed!))
            #expect(f.threshold == (rows < 1000 ? 0.05 : 0.1))
            #expect(report.features[1].score == (rows < 1000 ? report.features[1].chiSquaredPValue! : report.features[1].jensenShannon!))
        }
    }

    @Test func summaryLinesAndPlotDescribeTheVerdict() throws {
        let reference = driftColumns(rows: 5000, numeric: 1, categorical: 1, seed: 61)
        var current = driftColumns(rows: 5000, numeric: 1, categorical: 1, shift: [0: 1], seed: 62)
        current[1][0] = 9  // an unseen category
        let b = DriftBinning.fromReference(columns: reference,
                                           specs: [DriftFeatureSpec(name: "price", categorical: false),
                                                   DriftFeatureSpec(name: "zone <a&b>", categorical: true)])
        let r = histograms(reference, b), c = histograms(current, b)
        let report = DriftReport.compute(reference: r, current: c, binning: b)
        let price = report.features[0]
        #expect(report.summaryLines[0] == "dataset: drifted (1 of 2 features drifted, share 0.5 >= 0.5)")
        #expect(report.summaryLines[1] == "price: drifted (wasserstein_normed \(String(format: "%.3g", price.score)) >= 0.1), PSI \(String(format: "%.3g", price.psi)) major")
        #expect(report.summaryLines[2].hasPrefix("zone <a&b>: no drift (jensen_shannon "))

        let numeric = parseSVG(report.svg(feature: 0, reference: r, current: c, binning: b))
        #expect(numeric.ok)
        // Background, 2 legend swatches, and a pair of bars per coarse bin plus missing.
        #expect(numeric.collector.elements.filter { $0 == "rect" }.count == 1 + 2 + 2 * 11)
        #expect(numeric.collector.texts.contains { $0.hasPrefix("price: drifted (wasserstein_normed") })
        let categorical = parseSVG(report.svg(feature: 1, reference: r, current: c, binning: b))
        #expect(categorical.ok)
        #expect(categorical.collector.elements.filter { $0 == "rect" }.count == 1 + 2 + 2 * 6)  // 5 codes + other
        #expect(categorical.collector.texts.contains("other"))
        #expect(categorical.collector.texts.contains { $0.hasPrefix("zone <a&b>: no drift") })
    }

    @Test func thresholdsDecodeWithDefaultsForMissingKeys() throws {
        let t = try JSONDecoder().decode(DriftThresholds.self, from: Data(#"{"pValue": 0.01, "psiBins": 20}"#.utf8))
        #expect(t == DriftThresholds(pValue: 0.01, psiBins: 20))
        #expect(try JSONDecoder().decode(DriftThresholds.self, from: JSONEncoder().encode(t)) == t)
        #expect([0.05, 0.1, 0.15, 0.2, 0.5].map(t.psiBand) == ["none", "moderate", "moderate", "major", "major"])
    }
}
