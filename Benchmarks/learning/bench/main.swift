// learning-bench: Tower's GBDT on the demo market, a synthetic table or a real CSV, for side-by-side comparison with
// LightGBM (Benchmarks/learning/lightgbm_peer.py reads the CSVs written here).
//
// usage: learning-bench [--dataset market|few|wide|NAME --csv DIR] [--rows N] [--interactions N]
//                       [--out DIR] [--threads 1,2] [--repeat 3] [--valid 1|0] [--trees 200]
//                       [--seed S] [--predict-rows N] [--curve] [--shap] [--bins]
// `--dataset NAME --csv DIR` reads DIR/NAME.csv (numeric columns and a 0/1 `label`, as
// Benchmarks/learning/housing.sh writes the real housing sets `ames` and `sacramento`)
// and splits its rows 80/20 after a shuffle with the fixed `--seed`.
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
/// market: the project's own generator; few: 171k × 5 synthetic; wide: 145k × 32 synthetic;
/// any other name with `--csv DIR`: DIR/NAME.csv (real data).
let dataset = argument("--dataset", "market")
let csvDirectory = argument("--csv", "")
let repeats = max(1, Int(argument("--repeat", "1"))!)
/// Validation log-loss and AUC on the test rows after every iteration, as the HPO trials
/// do; the LightGBM peer gets the same test rows as its valid set.
let perIterationValidation = argument("--valid", "1") != "0"

let source: Dataset
var genTime = 0.0
switch dataset {
case _ where !csvDirectory.isEmpty:
    let url = URL(fileURLWithPath: csvDirectory).appendingPathComponent("\(dataset).csv")
    source = try TabularCSV.load(url, options: TabularCSVOptions(labelColumn: "label"))
case "few":
    let rows = Int(argument("--rows", "171000"))!
    var d: Dataset!
    genTime = seconds { d = SyntheticTable.fewFeatures(rows: rows + rows / 4, seed: marketSeed) }
    source = d
case "wide":
    let rows = Int(argument("--rows", "145000"))!
    var d: Dataset!
    genTime = seconds { d = SyntheticTable.manyFeatures(rows: rows + rows / 4, seed: marketSeed) }
    source = d
default:
    var market = Market(users: [], listings: [], interactions: [])
    genTime = seconds {
        market = DemoMarket(.init(users: max(200, interactions / 50), listings: max(500, interactions / 25),
                                  interactions: interactions, seed: marketSeed)).generate()
    }
    source = try PairFeatures.build(market)
}
// Synthetic rows are i.i.d., so the first 80% train and the rest test; the market is
// split by time as the product does; a CSV's rows (the housing sets are not stored in
// random order: Sacramento's come in runs sorted by price) are shuffled first with the
// fixed seed (Fisher–Yates over Xoshiro256), then 80/20.
let trainPart: Dataset, testPart: Dataset
if dataset == "market" && csvDirectory.isEmpty {
    let split = try TimeSplit(source, trainFraction: 0.8, validFraction: 0)
    trainPart = split.train
    testPart = split.test
} else if !csvDirectory.isEmpty {
    var order = Array(0..<source.rowCount)
    var rng = Xoshiro256(seed: marketSeed)
    for i in stride(from: order.count - 1, to: 0, by: -1) { order.swapAt(i, rng.index(below: i + 1)) }
    let cut = source.rowCount * 4 / 5
    trainPart = source.subset(Array(order[..<cut]))
    testPart = source.subset(Array(order[cut...]))
} else {
    let cut = source.rowCount * 4 / 5
    trainPart = source.subset(Array(0..<cut))
    testPart = source.subset(Array(cut..<source.rowCount))
}
try FileManager.default.createDirectory(at: out, withIntermediateDirectories: true)
let trainURL = out.appendingPathComponent("train.csv"), testURL = out.appendingPathComponent("test.csv")
try trainPart.writeCSV(to: trainURL)
try testPart.writeCSV(to: testURL)
// Both sides train on what the CSV holds (read back here, as the peer reads it), so
// neither sees values the other does not.
let options = TabularCSVOptions(labelColumn: "label", groupColumn: testPart.groups == nil ? nil : "group",
                                ignoredColumns: ["day"])
let train = try TabularCSV.load(trainURL, options: options)
let test = try TabularCSV.load(testURL, options: options, schema: train.schema)
print(String(format: "data %@: train %d, test %d, %d features, %.2f%% positive; generated in %.2fs",
             dataset, train.rowCount, test.rowCount, train.featureCount, train.positiveRate * 100, genTime))

// Batch-prediction input: test rows tiled to `predictRows` rows.
let tiled: Dataset = {
    let n = test.rowCount
    return Dataset(schema: test.schema, columns: test.columns.map { col in (0..<predictRows).map { col[$0 % n] } })
}()

for run in 1...repeats {
    for threads in threadCounts {
        var p = BoostingParameters()
        p.numIterations = trees
        p.numLeaves = 31
        p.learningRate = 0.1
        p.maxBin = 255
        p.threads = threads
        var model: GradientBoostedModel!
        let cpuBefore = cpuSeconds()
        let trainTime = try seconds {
            model = try GBDTTrainer.train(train, valid: perIterationValidation ? test : nil, parameters: p, recordCurve: false)
        }
        let trainCPU = cpuSeconds() - cpuBefore
        let report = try model.evaluate(test, k: 10)
        // Raw scores against LightGBM's raw scores, probabilities against its probabilities;
        // the median of three of each, measured in the first run only.
        var rawRate = Double.nan, probRate = Double.nan
        if run == 1 && predictRows > 0 {
            var scores: [Double] = []
            var rawTimes: [Double] = [], probTimes: [Double] = []
            for _ in 0..<3 {
                rawTimes.append(try seconds { scores = try model.predictRaw(tiled, threads: threads) })
                probTimes.append(try seconds { scores = try model.predictRaw(tiled, threads: threads); for i in scores.indices { scores[i] = logistic(scores[i]) } })
            }
            precondition(scores.count == predictRows)
            rawRate = Double(predictRows) / rawTimes.sorted()[1]
            probRate = Double(predictRows) / probTimes.sorted()[1]
        }
        let lastAUC = model.curve.validAUC.last ?? .nan
        print(String(format: "RESULT impl=tower dataset=%@ run=%d threads=%d train_s=%.3f train_cpu_s=%.3f auc=%.5f valid_auc_last_iter=%.5f logloss=%.5f p10=%.5f ndcg10=%.5f predict_raw_rows_per_s=%.0f predict_prob_rows_per_s=%.0f peak_rss_mb=%.1f",
                     dataset, run, threads, trainTime, trainCPU, report.auc, lastAUC, report.logLoss,
                     report.ranking?.precision ?? .nan, report.ranking?.ndcg ?? .nan, rawRate, probRate, peakRSSMegabytes()))
    }
}
let split = (train: train, test: test)

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
