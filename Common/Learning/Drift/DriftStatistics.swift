import Foundation

/// The drift measures, computed from bin counts only (never from raw rows), so a report
/// is a function of merged histograms and identical however the rows were sharded.
///
/// Count arrays follow `DriftBinning`'s layout: value bins `0..<V`, overflow `V`,
/// missing `V + 1`.
public enum DriftStatistics {
    /// Proportions below this are raised to it in PSI, as Evidently does, so an empty bin
    /// gives a large finite term instead of an infinity.
    public static let psiEpsilon = 0.0001

    /// Expected proportion given, in chi-squared, to a category the reference never saw
    /// (the overflow bin, or missing values absent from the reference), before the
    /// expected counts are renormalised to the current total.
    public static let chiSquaredEpsilon = 0.0001

    /// Normed Wasserstein divides by `max(reference std, this)` (Evidently's floor), so a
    /// constant reference still gives a finite, large distance when the current moves.
    public static let minimumNorm = 0.001

    // MARK: Numeric

    /// Two-sample Kolmogorov–Smirnov statistic on the fine bins: the largest
    /// `|F_ref(c) − F_cur(c)|` over the cut points `c`, with empirical CDFs of the finite
    /// values. It is exact at those points, so it is a lower bound of the exact two-sample
    /// statistic, short of it by at most the mass of one fine bin (≈ 1/fineBins of the
    /// reference plus the current mass in that bin). 0 when either side has no finite values.
    public static func ks(reference r: [UInt64], current c: [UInt64]) -> Double {
        precondition(r.count == c.count && r.count >= 2, "same binning")
        let v = r.count - 2
        let nr = r[0...v].reduce(0, &+), nc = c[0...v].reduce(0, &+)
        guard nr > 0, nc > 0 else { return 0 }
        var cr: UInt64 = 0, cc: UInt64 = 0, d = 0.0
        for j in 0..<v {
            cr &+= r[j]
            cc &+= c[j]
            d = max(d, abs(Double(cr) / Double(nr) - Double(cc) / Double(nc)))
        }
        return d
    }

    /// Asymptotic p-value of a two-sample KS statistic `d` from samples of `n` and `m`
    /// values: `Q_KS(λ)` with `λ = (eₙ + 0.12 + 0.11/eₙ)·d` (Stephens' correction) and
    /// `eₙ = √(n·m/(n+m))`. 1 when either sample is empty.
    public static func ksPValue(statistic d: Double, n: UInt64, m: UInt64) -> Double {
        guard n > 0, m > 0 else { return 1 }
        let en = (Double(n) * Double(m) / (Double(n) + Double(m))).squareRoot()
        return kolmogorovQ((en + 0.12 + 0.11 / en) * d)
    }

    /// The Kolmogorov survival function `Q_KS(λ) = 2 Σ_{k≥1} (−1)^{k−1} e^{−2k²λ²}`.
    /// That alternating series converges slowly for small λ, so below λ = 1.18 the
    /// equivalent theta-function form `1 − (√(2π)/λ) Σ_{k≥1} e^{−(2k−1)²π²/(8λ²)}` is
    /// summed instead; both are accurate to ~1e-15 with the terms kept.
    public static func kolmogorovQ(_ lambda: Double) -> Double {
        guard lambda > 0 else { return 1 }
        if lambda < 1.18 {
            let a = -Double.pi * Double.pi / (8 * lambda * lambda)
            var s = 0.0
            for k in 1...6 {
                let odd = Double(2 * k - 1)
                s += exp(a * odd * odd)
            }
            return min(1, max(0, 1 - (2 * Double.pi).squareRoot() / lambda * s))
        }
        var s = 0.0
        for k in 1...8 {
            let kk = Double(k * k)
            s += (k % 2 == 1 ? 1 : -1) * exp(-2 * kk * lambda * lambda)
        }
        return min(1, max(0, 2 * s))
    }

    /// Wasserstein-1 distance `∫|F_ref − F_cur| dx` on the fine bins, each CDF taken as
    /// piecewise linear between its values at the cut points. The outer edges are the
    /// smaller of the two minima (where both CDFs are 0) and the larger of the two maxima
    /// (both 1): the mass of bin 0 spreads from the lower edge to the first cut (the
    /// reference minimum), the overflow bin's from the last cut (the reference maximum)
    /// to the upper edge. Within a segment the difference of two linear functions is
    /// integrated exactly (including a sign change). 0 when either side has no finite
    /// values.
    public static func wasserstein(reference r: [UInt64], current c: [UInt64], cuts: [Float],
                                   lower: Double, upper: Double) -> Double {
        precondition(r.count == c.count && r.count == cuts.count + 2, "same binning")
        let v = cuts.count
        let nr = r[0...v].reduce(0, &+), nc = c[0...v].reduce(0, &+)
        guard nr > 0, nc > 0, v > 0 else { return 0 }
        var x0 = min(lower, Double(cuts[0]))
        var d0 = 0.0
        var cr: UInt64 = 0, cc: UInt64 = 0
        var total = 0.0
        for j in 0...v {
            cr &+= r[j]
            cc &+= c[j]
            let x1 = j < v ? Double(cuts[j]) : max(upper, Double(cuts[v - 1]))
            let d1 = Double(cr) / Double(nr) - Double(cc) / Double(nc)
            total += segmentIntegral(d0, d1, width: x1 - x0)
            x0 = x1
            d0 = d1
        }
        return total
    }

    /// `∫|d|` over a segment where `d` runs linearly from `a` to `b`.
    @inline(__always)
    static func segmentIntegral(_ a: Double, _ b: Double, width: Double) -> Double {
        guard width > 0 else { return 0 }
        if (a >= 0) == (b >= 0) || a == 0 || b == 0 { return (abs(a) + abs(b)) / 2 * width }
        return (a * a + b * b) / (2 * (abs(a) + abs(b))) * width
    }

    /// Coarse PSI bins of a numeric feature, as the last fine bin of each: coarse bin `d`
    /// (`d = 1…bins−1`) ends at the first fine bin whose cumulative reference count
    /// reaches `d/bins` of the finite reference values, duplicates dropped, and the last
    /// coarse bin runs through the overflow bin (an end on the last value bin is dropped
    /// so the overflow bin never stands alone). When `fineBins` is a multiple of `bins`
    /// the ends are exactly the reference deciles (for 10 bins) — the smallest reference
    /// value `x` with `F_ref(x) ≥ d/bins` — because those values are cut points.
    public static func psiBinEnds(reference r: [UInt64], bins: Int) -> [Int] {
        let v = r.count - 2
        let bins = max(1, bins)
        let n = r[0...v].reduce(0, &+)
        var ends: [Int] = []
        if n > 0 && bins > 1 {
            var cumulative: UInt64 = 0
            var d = 1
            for j in 0..<v where d < bins {
                cumulative &+= r[j]
                // cumulative·bins ≥ d·n, compared without overflow.
                while d < bins && !lessThan(cumulative.multipliedFullWidth(by: UInt64(bins)),
                                             n.multipliedFullWidth(by: UInt64(d))) {
                    if ends.last != j { ends.append(j) }
                    d += 1
                }
            }
        }
        // A decile ending on the last value bin would leave the overflow bin alone in the
        // last coarse bin; it joins the last value bin instead.
        if v > 0, ends.last == v - 1 { ends.removeLast() }
        ends.append(v)
        return ends
    }

    private static func lessThan(_ a: (high: UInt64, low: UInt64), _ b: (high: UInt64, low: UInt64)) -> Bool {
        a.high < b.high || (a.high == b.high && a.low < b.low)
    }

    /// Sums counts into groups ending at `ends` (inclusive, ascending, the last one the
    /// overflow bin), with the missing count appended as its own group.
    public static func group(_ counts: [UInt64], ends: [Int]) -> [UInt64] {
        var out: [UInt64] = []
        var start = 0
        for e in ends {
            out.append(counts[start...e].reduce(0, &+))
            start = e + 1
        }
        out.append(counts[counts.count - 1])
        return out
    }

    // MARK: Distributions

    /// Population stability index `Σ (c − r)·ln(c / r)` over bins, with `r` and `c` the
    /// reference and current proportions of all rows, each raised to at least
    /// `psiEpsilon`. The last bin of both arrays is the missing bin; it takes part only
    /// when either side has missing values (otherwise it would contribute 0 anyway).
    public static func psi(reference r: [UInt64], current c: [UInt64]) -> Double {
        precondition(r.count == c.count && !r.isEmpty, "same bins")
        let nr = r.reduce(0, &+), nc = c.reduce(0, &+)
        guard nr > 0, nc > 0 else { return 0 }
        let last = r[r.count - 1] > 0 || c[c.count - 1] > 0 ? r.count : r.count - 1
        var total = 0.0
        for i in 0..<last {
            let p = max(Double(r[i]) / Double(nr), psiEpsilon)
            let q = max(Double(c[i]) / Double(nc), psiEpsilon)
            total += (q - p) * log(q / p)
        }
        return total
    }

    /// Jensen–Shannon distance (natural log, as `scipy.spatial.distance.jensenshannon`):
    /// `√(½ KL(p‖m) + ½ KL(q‖m))` with `m = (p + q)/2`, between the proportions of all
    /// bins including overflow and missing. In [0, √ln 2]; 0 when either side is empty.
    public static func jensenShannon(reference r: [UInt64], current c: [UInt64]) -> Double {
        precondition(r.count == c.count, "same bins")
        let nr = r.reduce(0, &+), nc = c.reduce(0, &+)
        guard nr > 0, nc > 0 else { return 0 }
        var divergence = 0.0
        for i in r.indices {
            let p = Double(r[i]) / Double(nr), q = Double(c[i]) / Double(nc)
            let m = (p + q) / 2
            if p > 0 { divergence += p * log(p / m) }
            if q > 0 { divergence += q * log(q / m) }
        }
        return max(0, divergence / 2).squareRoot()
    }

    /// Pearson's chi-squared test of the current counts against the reference
    /// proportions, over every bin (categories, other, missing) that either side has rows
    /// in. A bin with reference rows expects proportion `r_i/n_ref`; a bin with none
    /// expects `chiSquaredEpsilon`; the expected counts are these proportions renormalised
    /// to sum to the current total. With `k` bins the statistic has `k − 1` degrees of
    /// freedom and the p-value is `Q((k−1)/2, x/2)`. The p-value is 1 when `k < 2` or either
    /// side is empty.
    public static func chiSquared(reference r: [UInt64], current c: [UInt64]) -> (statistic: Double, pValue: Double) {
        precondition(r.count == c.count, "same bins")
        let nr = r.reduce(0, &+), nc = c.reduce(0, &+)
        guard nr > 0, nc > 0 else { return (0, 1) }
        var used: [Int] = []
        var weights: [Double] = []
        for i in r.indices where r[i] > 0 || c[i] > 0 {
            used.append(i)
            weights.append(r[i] > 0 ? Double(r[i]) / Double(nr) : chiSquaredEpsilon)
        }
        guard used.count >= 2 else { return (0, 1) }
        let scale = Double(nc) / weights.reduce(0, +)
        var x = 0.0
        for (k, i) in used.enumerated() {
            let expected = weights[k] * scale
            let diff = Double(c[i]) - expected
            x += diff * diff / expected
        }
        return (x, chiSquaredSurvival(x, degreesOfFreedom: used.count - 1))
    }

    /// `P(X ≥ x)` for X chi-squared with `df` degrees of freedom: `Q(df/2, x/2)`.
    public static func chiSquaredSurvival(_ x: Double, degreesOfFreedom df: Int) -> Double {
        guard df > 0 else { return 1 }
        return regularizedGammaQ(Double(df) / 2, max(0, x) / 2)
    }

    /// The regularized upper incomplete gamma function `Q(a, x) = Γ(a, x)/Γ(a)` for
    /// `a > 0`, `x ≥ 0`: below `x = a + 1` from the power series of the lower function
    /// `P = e^{−x} x^a Σ_{n≥0} x^n / Γ(a+n+1)` (Q = 1 − P), above it from the continued
    /// fraction of Q (evaluated with the modified Lentz method), where each converges fast.
    public static func regularizedGammaQ(_ a: Double, _ x: Double) -> Double {
        precondition(a > 0, "shape must be positive")
        if x <= 0 { return 1 }
        if !x.isFinite { return 0 }
        let logPrefix = a * log(x) - x - lgamma(a)
        if x < a + 1 {
            var term = 1 / a, sum = term, ap = a
            for _ in 0..<10_000 {
                ap += 1
                term *= x / ap
                sum += term
                if abs(term) < abs(sum) * 1e-16 { break }
            }
            return min(1, max(0, 1 - sum * exp(logPrefix)))
        }
        // Q = e^{−x} x^a / Γ(a) · 1/(x+1−a− 1·(1−a)/(x+3−a− 2·(2−a)/(x+5−a− …)))
        let tiny = 1e-300
        var b = x + 1 - a
        var c = 1 / tiny
        var d = 1 / b
        var h = d
        for i in 1..<10_000 {
            let an = -Double(i) * (Double(i) - a)
            b += 2
            d = an * d + b
            if abs(d) < tiny { d = tiny }
            c = b + an / c
            if abs(c) < tiny { c = tiny }
            d = 1 / d
            let delta = d * c
            h *= delta
            if abs(delta - 1) < 1e-16 { break }
        }
        return min(1, max(0, exp(logPrefix) * h))
    }
}
