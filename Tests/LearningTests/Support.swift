import Foundation
@testable import Learning

/// Small synthetic data sets whose right answers are known.
enum Fixtures {
    /// label = 1 exactly when x0 > 0.3; x1 and x2 are noise. x0 takes 200 grid values, so
    /// each gets its own bin and the perfect split is reachable.
    static func stepData(rows: Int = 2000, seed: UInt64 = 1) -> Dataset {
        var rng = Xoshiro256(seed: seed)
        var x0: [Float] = [], x1: [Float] = [], x2: [Float] = [], y: [Float] = []
        for _ in 0..<rows {
            let a = Float(rng.index(below: 200)) / 200
            x0.append(a); x1.append(Float(rng.uniform())); x2.append(Float(rng.normal()))
            y.append(a > 0.3 ? 1 : 0)
        }
        return Dataset(schema: FeatureSchema([Feature(name: "x0"), Feature(name: "x1"), Feature(name: "x2")]),
                       columns: [x0, x1, x2], labels: y)
    }

    /// A small non-linear data set with missing values, for SHAP and determinism checks.
    static func mixedData(rows: Int = 3000, features: Int = 5, seed: UInt64 = 2) -> Dataset {
        var rng = Xoshiro256(seed: seed)
        var cols = [[Float]](repeating: [], count: features)
        var y: [Float] = []
        for _ in 0..<rows {
            var x = [Double]()
            for f in 0..<features {
                let v = rng.normal()
                x.append(v)
                cols[f].append(rng.bernoulli(0.05) ? .nan : Float(v))
            }
            let logit = 1.5 * x[0] * x[1] - (x[2] > 0.5 ? 1.2 : -0.4) + 0.8 * sin(2 * x[3 % features])
            y.append(rng.bernoulli(logistic(logit)) ? 1 : 0)
        }
        let schema = FeatureSchema((0..<features).map { Feature(name: "f\($0)") })
        return Dataset(schema: schema, columns: cols, labels: y, groups: (0..<rows).map { $0 / 10 })
    }

    static func temporaryDirectory() -> URL {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("tower-learning-tests-\(UUID().uuidString)")
        try? FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        return url
    }

    static func write(_ text: String, name: String = "data.csv") -> URL {
        let url = temporaryDirectory().appendingPathComponent(name)
        try! text.write(to: url, atomically: true, encoding: .utf8)
        return url
    }

    static var smallMarket: Market {
        DemoMarket(.init(users: 300, listings: 600, interactions: 12_000, seed: 11)).generate()
    }
}
