import ArgumentParser
import Foundation

@main
struct Bench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "tower-bench",
        abstract: "Tower's benchmarks. Each prints a table; peers run on the same machine in the same run.",
        subcommands: [Fuzz.self, MessageFuzz.self, APIFuzz.self, TaskThroughput.self, TLSThroughput.self, HPOBench.self, LoopBench.self, RenderBench.self, GatewayCluster.self, RunsBench.self, All.self])

    struct All: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Every benchmark of the cluster foundation.")
        func run() async throws {
            try await TaskThroughput.parse([]).run()
            try await TLSThroughput.parse([]).run()
            try await Fuzz.parse([]).run()
        }
    }
}

/// Prints rows as an aligned table.
func printTable(_ title: String, _ header: [String], _ rows: [[String]]) {
    let widths = header.indices.map { i in ([header[i]] + rows.map { $0[i] }).map(\.count).max() ?? 0 }
    func line(_ cells: [String]) -> String {
        cells.enumerated().map { $1.padding(toLength: widths[$0], withPad: " ", startingAt: 0) }.joined(separator: "  ")
    }
    print("\n## \(title)")
    print(line(header))
    print(line(widths.map { String(repeating: "-", count: $0) }))
    rows.forEach { print(line($0)) }
}

func percentile(_ sorted: [UInt64], _ p: Double) -> UInt64 {
    guard !sorted.isEmpty else { return 0 }
    return sorted[min(sorted.count - 1, Int(Double(sorted.count) * p))]
}

func format(_ value: Double, _ digits: Int = 0) -> String { String(format: "%.\(digits)f", value) }
