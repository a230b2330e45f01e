// learning-bench: Tower's GBDT on the demo market, for side-by-side comparison with
// LightGBM (Benchmarks/learning/lightgbm_peer.py reads the CSVs written here).
//
// usage: learning-bench [--interactions N] [--out DIR] [--threads 1,2] [--trees 200] [--seed S]
//                       [--predict-rows N] [--curve] [--shap] [--bins]
// Prints one `RESULT key=value ...` line per thread count; run.sh parses them.
import Foundation
import Learning

func argument(_ name: String, _ fallback: String) -> String {
    let args = CommandLine.arguments
    if let i = args.firstIndex(of: name), i + 1 < args.count { return args[i + 1] }
    return fallback
}

func peakRSSMegabytes() -> Double {
    guard let status = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8) else { return .nan }
    for line in status.split(separator: "\n") where line.hasPrefix("VmHWM:") {
        let kb = line.split(separator: " ").compactMap { Double($0) }.first ?? .nan
        return kb / 1024
    }
    return .nan
}

/// User + system CPU seconds of this process so far.
func cpuSeconds() -> Double {
    var usage = rusage()
    #if os(Linux)
    getrusage(RUSAGE_SELF.rawValue, &usage)
    #else
    getrusage(RUSAGE_SELF, &usage)
    #endif
    return Double(usage.ru_utime.tv_sec + usage.ru_stime.tv_sec) + Double(usage.ru_utime.tv_usec + usage.ru_stime.tv_usec) / 1e6
}

func seconds(_ body: () throws -> Void) rethrows -> Double {
    let start = DispatchTime.now().uptimeNanoseconds
    try body()
    return Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
}

let interactions = Int(argument("--interactions", "200000"))!
let out = URL(fileURLWithPath: argument("--out", "Benchmarks/results"))
let threadCounts = argument("--threads", "1,2").split(separator: ",").compactMap { Int($0) }
let trees = Int(argument("--trees", "200"))!
let predictRows = Int(argument("--predict-rows", "1000000"))!
let marketSeed = UInt64(argument("--seed", "7"))!

var market = Market(users: [], listings: [], interactions: [])
let genTime = seconds {
    market = DemoMarket(.init(users: max(200, interactions / 50), listings: max(500, interactions / 25),
                              interactions: interactions, seed: marketSeed)).generate()
}
var data: Dataset!
let featureTime = try seconds { data = try PairFeatures.build(market) }
let split = try TimeSplit(data, trainFraction: 0.8, validFraction: 0)
try FileManager.default.createDirectory(at: out, withIntermediateDirectories: true)
try split.train.writeCSV(to: out.appendingPathComponent("train.csv"))
try split.test.writeCSV(to: out.appendingPathComponent("test.csv"))
print(String(format: "data: %d rows (%.2f%% positive), train %d, test %d, %d features; generated in %.2fs, features in %.2fs",
             data.rowCount, data.positiveRate * 100, split.train.rowCount, split.test.rowCount, data.featureCount,
             genTime, featureTime))

// Batch-prediction input: test rows tiled to `predictRows` rows.
let tiled: Dataset = {
    let n = split.test.rowCount
    return Dataset(schema: split.test.schema,
                   columns: split.test.columns.map { col in (0..<predictRows).map { col[$0 % n] } })
}()

for threads in threadCounts {
    var p = BoostingParameters()
    p.numIterations = trees
    p.numLeaves = 31
    p.learningRate = 0.1
    p.maxBin = 255
    p.threads = threads
    var model: GradientBoostedModel!
    let cpuBefore = cpuSeconds()
    let trainTime = try seconds { model = try GBDTTrainer.train(split.train, parameters: p, recordCurve: false) }
    let trainCPU = cpuSeconds() - cpuBefore
    let report = try model.evaluate(split.test, k: 10)
    // Raw scores against LightGBM's raw scores, probabilities against its probabilities;
    // the median of three of each.
    var scores: [Double] = []
    var rawTimes: [Double] = [], probTimes: [Double] = []
    for _ in 0..<3 {
        rawTimes.append(try seconds { scores = try model.predictRaw(tiled, threads: threads) })
        probTimes.append(try seconds { scores = try model.predictRaw(tiled, threads: threads); for i in scores.indices { scores[i] = logistic(scores[i]) } })
    }
    precondition(scores.count == predictRows)
    let rawTime = rawTimes.sorted()[1], probTime = probTimes.sorted()[1]
    print(String(format: "RESULT impl=tower threads=%d train_s=%.3f train_cpu_s=%.3f auc=%.5f logloss=%.5f p10=%.5f ndcg10=%.5f predict_raw_rows_per_s=%.0f predict_prob_rows_per_s=%.0f peak_rss_mb=%.1f",
                 threads, trainTime, trainCPU, report.auc, report.logLoss, report.ranking?.precision ?? .nan,
                 report.ranking?.ndcg ?? .nan, Double(predictRows) / rawTime, Double(predictRows) / probTime, peakRSSMegabytes()))
}

// `--curve`: train once with the test split as validation and print losses at a few
// iterations (to compare convergence with LightGBM's).
if CommandLine.arguments.contains("--curve") {
    var p = BoostingParameters()
    p.numIterations = trees
    let model = try GBDTTrainer.train(split.train, valid: split.test, parameters: p)
    for i in [1, 10, trees] where i <= model.curve.trainLogLoss.count {
        print("curve", i, "train", model.curve.trainLogLoss[i - 1], "test", model.curve.validLogLoss[i - 1], "auc", model.curve.validAUC[i - 1])
    }
}
if CommandLine.arguments.contains("--debug") {
    var p = BoostingParameters()
    p.numIterations = trees
    let model = try GBDTTrainer.train(split.train, valid: split.test, parameters: p)
    let batch = try model.predictRaw(split.test)
    var maxDiff = 0.0
    for r in 0..<split.test.rowCount { maxDiff = max(maxDiff, abs(batch[r] - model.predictRaw(row: split.test.row(r)))) }
    let probs = batch.map(logistic)
    print("max |score|", batch.map { abs($0) }.max()!, "max |leaf|", model.trees.flatMap { $0.leafValue }.map { abs($0) }.max()!)
    print("debug curve loss", model.curve.validLogLoss.last!, "metrics loss", Metrics.logLoss(probabilities: probs, labels: split.test.labels), "batch-vs-row", maxDiff)
}
if CommandLine.arguments.contains("--shap") {
    var p = BoostingParameters()
    p.numIterations = trees
    let model = try GBDTTrainer.train(split.train, parameters: p, recordCurve: false)
    let rows = split.test.subset(Array(0..<1000))
    let t = try seconds { _ = try TreeSHAP.contributions(model, data: rows) }
    print(String(format: "shap: %.0f rows/s", 1000 / t))
}
if CommandLine.arguments.contains("--bins") {
    var p = BoostingParameters()
    p.numIterations = 1
    let model = try GBDTTrainer.train(split.train, parameters: p, recordCurve: false)
    print(zip(model.schema.names, model.binnings).map { "\($0):\($1.totalBinCount)" }.joined(separator: " "))
}
