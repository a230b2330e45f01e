import Foundation

/// A finished trial as the samplers see it.
public struct CompletedTrial: Sendable, Equatable, Codable {
    public enum Outcome: String, Sendable, Codable {
        /// Trained to the end; `value` is its final validation metric.
        case completed
        /// Stopped early by ASHA; `value` is the metric at the last rung it reached.
        case stopped
        /// Training threw; there is no value.
        case failed
    }
    public var number: Int
    public var parameters: TrialParameters
    public var value: Double?
    public var outcome: Outcome

    public init(number: Int, parameters: TrialParameters, value: Double?, outcome: Outcome = .completed) {
        self.number = number
        self.parameters = parameters
        self.value = value
        self.outcome = outcome
    }
}

/// Proposes the parameters of the next trial from the trials finished so far and those
/// still running (`pending`, by trial number).
///
/// Contract: for the same space, seed, number of earlier suggestions, history and pending
/// trials, a sampler proposes the same parameters (searches are reproducible from their
/// seed), and every proposal lies inside the space's domains, with fixed parameters
/// omitted (`SearchSpace.parameters(for:)` adds them).
public protocol Sampler: Sendable {
    mutating func suggest(history: [CompletedTrial], pending: [Int: TrialParameters]) -> TrialParameters
}

extension Sampler {
    /// A suggestion with no trial running.
    public mutating func suggest(history: [CompletedTrial]) -> TrialParameters {
        suggest(history: history, pending: [:])
    }
}

/// Makes the sampler a space asks for.
public func makeSampler(for space: SearchSpace) -> any Sampler {
    switch space.sampler {
    case .random: return RandomSampler(space: space)
    case .tpe: return TPESampler(space: space)
    }
}

/// One searched dimension in the sampler's working space: log-scaled dimensions are
/// handled as their logarithm, integers as reals on [low − ½, high + ½] so each integer
/// owns an equal slice before rounding.
struct SearchDimension: Sendable {
    enum Kind: Sendable { case real, integer, categorical([ParameterValue]) }
    let name: String
    let kind: Kind
    let log: Bool
    /// Bounds in the working space (unused for categoricals).
    let low: Double
    let high: Double
    let boundLow: Double
    let boundHigh: Double

    init?(name: String, domain: ParameterDomain) {
        self.name = name
        switch domain {
        case .fixed: return nil
        case let .real(lo, hi, lg):
            kind = .real; log = lg; boundLow = lo; boundHigh = hi
            low = lg ? Foundation.log(lo) : lo
            high = lg ? Foundation.log(hi) : hi
        case let .integer(lo, hi, lg):
            kind = .integer; log = lg; boundLow = Double(lo); boundHigh = Double(hi)
            // With log, low ≥ 1 so low − ½ stays positive.
            low = lg ? Foundation.log(Double(lo) - 0.5) : Double(lo) - 0.5
            high = lg ? Foundation.log(Double(hi) + 0.5) : Double(hi) + 0.5
        case let .categorical(choices):
            kind = .categorical(choices); log = false; low = 0; high = 0; boundLow = 0; boundHigh = 0
        }
    }

    /// Working-space position → parameter value, clamped into the declared bounds.
    func value(at x: Double) -> ParameterValue {
        let raw = log ? exp(x) : x
        switch kind {
        case .real: return .double(min(max(raw, boundLow), boundHigh))
        case .integer: return .int(Int(min(max(raw.rounded(), boundLow), boundHigh)))
        case let .categorical(choices): return choices[Int(x)]
        }
    }

    /// Parameter value → working-space position; nil when the value is not in this
    /// dimension (a history written for another space).
    func position(of value: ParameterValue) -> Double? {
        switch kind {
        case let .categorical(choices):
            return choices.firstIndex(of: value).map(Double.init)
        case .real, .integer:
            guard let v = value.number, v >= boundLow, v <= boundHigh else { return nil }
            if log { return v > 0 ? Foundation.log(v) : nil }
            return v
        }
    }

    /// Uniform draw over the whole domain.
    func randomPosition(_ rng: inout TuningRandom) -> Double {
        switch kind {
        case let .categorical(choices): return Double(rng.below(choices.count))
        case .real, .integer: return low + (high - low) * rng.unit()
        }
    }
}

/// Draws every searched parameter independently and uniformly (in log space where the
/// space says log).
///
/// Guarantees: the n-th suggestion depends only on the space's seed and n, never on the
/// history, so a search can be re-run trial by trial.
public struct RandomSampler: Sampler {
    let dimensions: [SearchDimension]
    let seed: UInt64
    /// Suggestions made so far; the stream of the next one.
    public private(set) var suggestionsMade = 0

    public init(space: SearchSpace, seed: UInt64? = nil) {
        dimensions = space.searchedParameters.compactMap { SearchDimension(name: $0, domain: space.params[$0]!) }
        self.seed = seed ?? space.seed
    }

    public mutating func suggest(history: [CompletedTrial], pending: [Int: TrialParameters]) -> TrialParameters {
        var rng = TuningRandom(seed: seed, stream: UInt64(suggestionsMade))
        suggestionsMade += 1
        var out = TrialParameters()
        for d in dimensions { out[d.name] = d.value(at: d.randomPosition(&rng)) }
        return out
    }
}

/// Tree-structured Parzen estimator (Bergstra, Bardenet, Bengio & Kégl, 2011), with
/// each dimension modelled independently.
///
/// How it proposes: the first `startupTrials` suggestions (counting finished trials with a
/// value) are random. After that, the trials with a value are split at the `gamma`
/// quantile of the objective into a good group (best ⌈gamma·n⌉, at least one, at most 25)
/// and a bad group. Per dimension, each group becomes a Parzen estimator: for numbers a
/// mixture of Gaussians truncated to the domain, one per observation in the working
/// (log where log) space, with bandwidth the larger distance to its sorted neighbours
/// (the domain bounds count as neighbours), clipped to [range / min(100, n + 1), range],
/// plus one prior component over the whole range; for categoricals smoothed frequencies
/// (count + 1). Per dimension, `candidates` draws from the good estimator l(x) are scored
/// by log l(x) − log g(x) and the highest wins; since the dimensions are modelled as
/// independent, this also maximizes the joint ratio l/g.
///
/// Trials stopped by ASHA count with the value they were stopped at (so they mostly land
/// in the bad group); failed trials carry no information about the objective and are
/// ignored.
///
/// Running trials count as a "constant liar" (Ginsbourger et al.; Optuna's
/// `constant_liar`): each is taken as finished with the worst value observed so far, so it
/// lands in the bad group and the next suggestion moves away from it. Without this, two
/// workers asking at the same moment get two draws from the same good region, and a
/// 2-worker search explores half as much as its trial count says.
///
/// Guarantees: deterministic for (seed, number of earlier suggestions, history, pending).
public struct TPESampler: Sampler {
    let dimensions: [SearchDimension]
    let metric: ObjectiveMetric
    let settings: TPESettings
    let seed: UInt64
    public private(set) var suggestionsMade = 0

    public init(space: SearchSpace, seed: UInt64? = nil, settings: TPESettings? = nil) {
        dimensions = space.searchedParameters.compactMap { SearchDimension(name: $0, domain: space.params[$0]!) }
        metric = space.metric
        self.settings = settings ?? space.tpe
        self.seed = seed ?? space.seed
    }

    public mutating func suggest(history: [CompletedTrial], pending: [Int: TrialParameters]) -> TrialParameters {
        var rng = TuningRandom(seed: seed, stream: UInt64(suggestionsMade))
        suggestionsMade += 1
        let observed = history
            .filter { $0.outcome != .failed && ($0.value.map { $0.isFinite } ?? false) }
            // Sorting by number first makes the split independent of the order in which
            // results arrived, so equal histories give equal proposals.
            .sorted { $0.number < $1.number }
        var out = TrialParameters()
        guard observed.count >= settings.startupTrials, observed.count >= 2 else {
            for d in dimensions { out[d.name] = d.value(at: d.randomPosition(&rng)) }
            return out
        }
        let worst = observed.map { $0.value! }.reduce(observed[0].value!) { metric.isBetter($0, than: $1) ? $1 : $0 }
        let observedNumbers = Set(observed.map(\.number))
        let lies = pending.sorted { $0.key < $1.key }.filter { !observedNumbers.contains($0.key) }
            .map { CompletedTrial(number: $0.key, parameters: $0.value, value: worst) }
        let observedAndLies = observed + lies
        // Best first; stable on trial number for equal values (lies come after real trials
        // of the same value).
        let ranked = observedAndLies.enumerated().sorted { a, b in
            let va = a.element.value!, vb = b.element.value!
            if va != vb { return metric.isBetter(va, than: vb) }
            return a.offset < b.offset
        }.map(\.element)
        let nGood = min(max(1, Int((settings.gamma * Double(ranked.count)).rounded(.up))), 25, ranked.count - 1)
        let good = Array(ranked[..<nGood])
        let bad = Array(ranked[nGood...])

        for d in dimensions {
            let goodPoints = good.compactMap { $0.parameters[d.name].flatMap(d.position(of:)) }
            let badPoints = bad.compactMap { $0.parameters[d.name].flatMap(d.position(of:)) }
            let l = ParzenEstimator(dimension: d, points: goodPoints)
            let g = ParzenEstimator(dimension: d, points: badPoints)
            var best = 0.0
            var bestScore = -Double.infinity
            for _ in 0..<settings.candidates {
                var x = l.sample(&rng)
                // Score integers at the value they will actually take.
                if case .integer = d.kind, let snapped = d.position(of: d.value(at: x)) { x = snapped }
                let score = l.logDensity(x) - g.logDensity(x)
                if score > bestScore { bestScore = score; best = x }
            }
            out[d.name] = d.value(at: best)
        }
        return out
    }
}

/// A one-dimensional Parzen estimator over a `SearchDimension` (see `TPESampler`).
struct ParzenEstimator {
    let dimension: SearchDimension
    let means: [Double]
    let sigmas: [Double]
    /// Mass of each truncated component inside [low, high], to renormalize.
    let masses: [Double]
    /// Categorical probabilities (empty for numbers).
    let probabilities: [Double]

    init(dimension d: SearchDimension, points: [Double]) {
        dimension = d
        if case let .categorical(choices) = d.kind {
            var counts = [Double](repeating: 1, count: choices.count)
            for p in points { counts[Int(p)] += 1 }
            let total = counts.reduce(0, +)
            probabilities = counts.map { $0 / total }
            means = []; sigmas = []; masses = []
            return
        }
        probabilities = []
        let range = d.high - d.low
        let sorted = points.sorted()
        var mu: [Double] = []
        var sg: [Double] = []
        let minSigma = range / min(100, Double(sorted.count) + 1)
        for (i, x) in sorted.enumerated() {
            let left = i == 0 ? x - d.low : x - sorted[i - 1]
            let right = i == sorted.count - 1 ? d.high - x : sorted[i + 1] - x
            mu.append(x)
            sg.append(min(max(max(left, right), minSigma), range))
        }
        // The prior keeps every region reachable however concentrated the observations are.
        mu.append((d.low + d.high) / 2)
        sg.append(range)
        means = mu
        sigmas = sg
        masses = zip(mu, sg).map { m, s in
            max(Self.phi((d.high - m) / s) - Self.phi((d.low - m) / s), 1e-12)
        }
    }

    static func phi(_ z: Double) -> Double { 0.5 * (1 + erf(z / 2.0.squareRoot())) }

    func sample(_ rng: inout TuningRandom) -> Double {
        if !probabilities.isEmpty {
            var u = rng.unit()
            for (i, p) in probabilities.enumerated() {
                if u < p { return Double(i) }
                u -= p
            }
            return Double(probabilities.count - 1)
        }
        let k = rng.below(means.count)
        // Rejection keeps the draw exactly truncated-Gaussian; every component has at
        // least ~1/3 of its mass inside (its centre is inside and σ ≤ range), so 64 tries
        // practically never run out — the uniform fallback is only a guard.
        for _ in 0..<64 {
            let x = means[k] + sigmas[k] * rng.gaussian()
            if x >= dimension.low && x <= dimension.high { return x }
        }
        return dimension.low + (dimension.high - dimension.low) * rng.unit()
    }

    func logDensity(_ x: Double) -> Double {
        if !probabilities.isEmpty { return Foundation.log(probabilities[Int(x)]) }
        var total = 0.0
        let norm = 1 / (2 * Double.pi).squareRoot()
        for i in 0..<means.count {
            let z = (x - means[i]) / sigmas[i]
            total += norm * exp(-0.5 * z * z) / (sigmas[i] * masses[i])
        }
        return Foundation.log(max(total / Double(means.count), 1e-300))
    }
}
