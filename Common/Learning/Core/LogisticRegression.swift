import Foundation

/// Settings of the logistic-regression baseline.
public struct LogisticParameters: Sendable, Equatable {
    /// L2 penalty on the standardized coefficients (not on the intercept), scaled by the
    /// number of rows so its strength does not depend on data size.
    public var lambdaL2 = 1e-4
    public var maxIterations = 50
    /// Stop when the largest Newton step on a standardized coefficient is below this.
    public var tolerance = 1e-8
    public var threads = 0
    public init() {}

    // One setter per canonical name of `LearningParameter.all` for .logistic.
    static let setters: [String: @Sendable (inout LogisticParameters, String, String) throws -> Void] = [
        // scikit-learn's C is the inverse regularization strength; this trainer takes a
        // per-row L2 penalty, so C maps to lambda_l2 = 1 / C.
        "c": { p, k, v in
            guard let c = Double(v), c > 0, c.isFinite else {
                throw ParameterError.invalidValue(key: k, value: v, expected: "a positive number (C is the inverse regularization strength)")
            }
            p.lambdaL2 = 1 / c
        },
        "lambda_l2": { p, k, v in p.lambdaL2 = try ParameterValueCheck.double(k, v, atLeast: 0) },
        // Newton's method has nothing random; a seed is accepted so that a search can pass
        // its seed to every family alike.
        "seed": { _, k, v in _ = try ParameterValueCheck.seed(k, v) },
        "num_threads": { p, k, v in p.threads = try ParameterValueCheck.int(k, v, min: 0) },
    ]

    /// Parses "key=value,key=value" with the names of `LearningParameter.all` (e.g.
    /// `C=4` or `lambda_l2=0.25`).
    public init(parsing text: String) throws {
        self.init()
        for (key, value) in try parameterPairs(text) { try set(key, value) }
    }

    /// Sets one parameter by its canonical name or any alias in `LearningParameter.all`.
    public mutating func set(_ key: String, _ value: String) throws {
        guard let parameter = LearningParameter.named(key, for: .logistic), let apply = Self.setters[parameter.name] else {
            throw ParameterError.unknownKey(key, known: ModelFamily.logistic.knownParameters(searchableOnly: false))
        }
        try apply(&self, key, value)
    }
}

/// Why the logistic solver gave up.
public enum LogisticError: Error, Equatable, CustomStringConvertible, Sendable {
    case singularSystem
    public var description: String {
        "the Newton system is singular (perfectly collinear features with no L2 penalty); set a positive lambda_l2."
    }
}

/// A logistic-regression classifier: the linear baseline the trees must beat.
///
/// Guarantees: features are standardized with training means and standard deviations
/// (NaN is imputed with the mean, i.e. contributes 0 to the margin; a constant feature
/// gets coefficient 0); categorical codes are used as numbers, which is what makes
/// this a baseline rather than a competitor. The fit is by Newton's method with
/// step halving, which converges to the unique optimum of the penalized log-loss.
public struct LogisticModel: Classifier {
    public let schema: FeatureSchema
    public let means: [Double]
    public let scales: [Double]
    /// Coefficients on standardized features.
    public let coefficients: [Double]
    public let intercept: Double
    public var iterations: Int
    public var converged: Bool
    public var metrics: [String: Double]
    public var gitCommit: String

    public init(schema: FeatureSchema, means: [Double], scales: [Double], coefficients: [Double], intercept: Double,
                iterations: Int = 0, converged: Bool = true, metrics: [String: Double] = [:], gitCommit: String = "") {
        self.schema = schema
        self.means = means
        self.scales = scales
        self.coefficients = coefficients
        self.intercept = intercept
        self.iterations = iterations
        self.converged = converged
        self.metrics = metrics
        self.gitCommit = gitCommit
    }

    public func predictRaw(row: [Float]) -> Double {
        var s = intercept
        for j in 0..<coefficients.count {
            let v = Double(row[j])
            if !v.isNaN { s += coefficients[j] * ((v - means[j]) / scales[j]) }
        }
        return s
    }

    public func predictRaw(_ data: Dataset) throws -> [Double] {
        let d = try data.aligned(to: schema)
        var out = [Double](repeating: intercept, count: d.rowCount)
        // Same expression and summation order as the single-row path, so both agree bit for bit.
        for j in 0..<coefficients.count {
            let w = coefficients[j], m = means[j], sd = scales[j]
            let col = d.columns[j]
            for i in 0..<d.rowCount where !col[i].isNaN { out[i] += w * ((Double(col[i]) - m) / sd) }
        }
        return out
    }
}

/// Fits `LogisticModel`s: the baseline every tree model is compared against.
public enum LogisticTrainer {
    public static func train(_ data: Dataset, parameters p: LogisticParameters = .init()) throws -> LogisticModel {
        guard data.hasLabels else { throw TrainingError.noLabels }
        let rate = data.positiveRate
        if rate == 0 || rate == 1 { throw TrainingError.singleClass(positiveRate: rate) }
        let n = data.rowCount, d = data.featureCount
        var means = [Double](repeating: 0, count: d), scales = [Double](repeating: 1, count: d)
        // Standardized design matrix, row-major with a leading 1 for the intercept.
        let width = d + 1
        var x = [Double](repeating: 0, count: n * width)
        for j in 0..<d {
            let col = data.columns[j]
            var s = 0.0, c = 0.0
            for v in col where !v.isNaN { s += Double(v); c += 1 }
            let m = c > 0 ? s / c : 0
            var ss = 0.0
            for v in col where !v.isNaN { ss += (Double(v) - m) * (Double(v) - m) }
            let sd = c > 1 ? (ss / c).squareRoot() : 0
            means[j] = m
            scales[j] = sd > 1e-12 ? sd : 1
            let constant = sd <= 1e-12
            for i in 0..<n {
                let v = col[i]
                x[i * width + j + 1] = (v.isNaN || constant) ? 0 : (Double(v) - m) / scales[j]
            }
        }
        for i in 0..<n { x[i * width] = 1 }
        let y = data.labels.map(Double.init)
        let lambda = p.lambdaL2 * Double(n)
        var beta = [Double](repeating: 0, count: width)
        beta[0] = log(rate / (1 - rate))
        let threads = p.threads > 0 ? p.threads : availableCores

        func objective(_ b: [Double]) -> Double {
            var s = 0.0
            for i in 0..<n {
                var z = 0.0
                for j in 0..<width { z += x[i * width + j] * b[j] }
                s += (z > 0 ? z + log1p(exp(-z)) : log1p(exp(z))) - y[i] * z
            }
            for j in 1..<width { s += 0.5 * lambda * b[j] * b[j] }
            return s
        }

        var iterations = 0
        var converged = false
        var current = objective(beta)
        while iterations < p.maxIterations {
            iterations += 1
            // Gradient and Hessian of the penalized negative log-likelihood, accumulated in
            // row chunks (one partial sum per chunk, reduced in chunk order).
            let chunks = max(1, min(threads * 4, n / 2048))
            let size = (n + chunks - 1) / chunks
            var partialG = [[Double]](repeating: [], count: chunks)
            var partialH = [[Double]](repeating: [], count: chunks)
            x.withUnsafeBufferPointer { xb in
                partialG.withUnsafeMutableBufferPointer { pg in
                    partialH.withUnsafeMutableBufferPointer { ph in
                        let pgp = pg.baseAddress!, php = ph.baseAddress!
                        parallelFor(chunks, threads: threads) { c in
                            var g = [Double](repeating: 0, count: width)
                            var h = [Double](repeating: 0, count: width * width)
                            let lo = c * size, hi = min(n, lo + size)
                            if lo < hi {
                                for i in lo..<hi {
                                    let row = xb.baseAddress! + i * width
                                    var z = 0.0
                                    for j in 0..<width { z += row[j] * beta[j] }
                                    let pr = logistic(z)
                                    let r = pr - y[i], w = max(pr * (1 - pr), 1e-12)
                                    for j in 0..<width {
                                        g[j] += r * row[j]
                                        let wj = w * row[j]
                                        if wj != 0 { for k in j..<width { h[j * width + k] += wj * row[k] } }
                                    }
                                }
                            }
                            (pgp + c).pointee = g
                            (php + c).pointee = h
                        }
                    }
                }
            }
            var g = [Double](repeating: 0, count: width)
            var h = [Double](repeating: 0, count: width * width)
            for c in 0..<chunks {
                for j in 0..<width { g[j] += partialG[c][j] }
                for k in 0..<(width * width) { h[k] += partialH[c][k] }
            }
            for j in 0..<width { for k in 0..<j { h[j * width + k] = h[k * width + j] } }
            for j in 1..<width { g[j] += lambda * beta[j]; h[j * width + j] += lambda }
            // Tiny ridge on the diagonal keeps Cholesky stable for constant columns.
            for j in 0..<width { h[j * width + j] += 1e-10 }
            guard let step = choleskySolve(h, g, width) else { throw LogisticError.singularSystem }
            var t = 1.0
            var candidate = beta
            var next = current
            for _ in 0..<30 {
                for j in 0..<width { candidate[j] = beta[j] - t * step[j] }
                next = objective(candidate)
                if next <= current + 1e-12 * abs(current) { break }
                t *= 0.5
            }
            let maxStep = step.map { abs($0) * t }.max() ?? 0
            beta = candidate
            current = next
            if maxStep < p.tolerance { converged = true; break }
        }
        return LogisticModel(schema: data.schema, means: means, scales: scales, coefficients: Array(beta[1...]),
                             intercept: beta[0],
                             iterations: iterations, converged: converged)
    }

    /// Solves A x = b for symmetric positive-definite A (row-major n×n).
    static func choleskySolve(_ a: [Double], _ b: [Double], _ n: Int) -> [Double]? {
        var l = [Double](repeating: 0, count: n * n)
        for i in 0..<n {
            for j in 0...i {
                var s = a[i * n + j]
                for k in 0..<j { s -= l[i * n + k] * l[j * n + k] }
                if i == j {
                    if s <= 0 { return nil }
                    l[i * n + i] = s.squareRoot()
                } else {
                    l[i * n + j] = s / l[j * n + j]
                }
            }
        }
        var z = [Double](repeating: 0, count: n)
        for i in 0..<n {
            var s = b[i]
            for k in 0..<i { s -= l[i * n + k] * z[k] }
            z[i] = s / l[i * n + i]
        }
        var x = [Double](repeating: 0, count: n)
        for i in stride(from: n - 1, through: 0, by: -1) {
            var s = z[i]
            for k in (i + 1)..<n { s -= l[k * n + i] * x[k] }
            x[i] = s / l[i * n + i]
        }
        return x
    }
}
