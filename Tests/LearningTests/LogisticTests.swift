import Foundation
import Testing
@testable import Learning

@Suite struct LogisticTests {
    @Test func recoversCoefficientsOfALinearModel() throws {
        var rng = Xoshiro256(seed: 4)
        var a: [Float] = [], b: [Float] = [], c: [Float] = [], y: [Float] = []
        for _ in 0..<20_000 {
            let x1 = rng.normal(), x2 = rng.normal(mean: 5, sd: 2)
            a.append(Float(x1)); b.append(Float(x2)); c.append(3)  // c is constant
            y.append(rng.bernoulli(logistic(-1 + 2 * x1 - 0.5 * (x2 - 5))) ? 1 : 0)
        }
        let data = Dataset(schema: FeatureSchema([Feature(name: "a"), Feature(name: "b"), Feature(name: "c")]),
                           columns: [a, b, c], labels: y)
        var p = LogisticParameters()
        p.lambdaL2 = 0
        let model = try LogisticTrainer.train(data, parameters: p)
        #expect(model.converged)
        // Coefficients are on standardized features: scale back to raw units.
        #expect(abs(model.coefficients[0] / model.scales[0] - 2) < 0.15)
        #expect(abs(model.coefficients[1] / model.scales[1] + 0.5) < 0.05)
        #expect(model.coefficients[2] == 0)
        #expect(abs(model.predictRaw(row: [0, 5, 3]) + 1) < 0.1)
        #expect(try model.predictRaw(data.subset([0, 1, 2])) == [0, 1, 2].map { model.predictRaw(row: data.row($0)) })
    }

    @Test func missingValuesContributeNothing() throws {
        let data = Fixtures.mixedData(rows: 2000)
        let model = try LogisticTrainer.train(data)
        let row: [Float] = [.nan, .nan, .nan, .nan, .nan]
        #expect(model.predictRaw(row: row) == model.intercept)
    }

    @Test func choleskySolvesKnownSystem() throws {
        let x = try #require(LogisticTrainer.choleskySolve([4, 2, 2, 3], [2, 1], 2))
        #expect(abs(x[0] - 0.5) < 1e-12 && abs(x[1]) < 1e-12)
        #expect(LogisticTrainer.choleskySolve([1, 2, 2, 1], [1, 1], 2) == nil)
    }
}
