import Foundation

/// The diagnostic kind: every task echoes a deterministic payload, optionally after
/// sleeping and after reading a shared blob. Proves the path end to end.
public enum EchoKind: JobKindDescriptor {
    public typealias Spec = WireEchoSpec
    public typealias Summary = WireEchoSummary
    public static let name = "echo"

    public static var summaryShape: JSONShape<WireEchoSummary>? {
        JSONShape([
            .integer("tasks", \.tasks, "Tasks whose echoed payload was verified."),
            .integer("payload_bytes", \.payloadBytes, "Payload bytes verified in all."),
            .integerMap("tasks_per_worker", \.tasksPerWorker, "Tasks each worker ran, by worker name."),
        ])
    }

    public static func describe(_ s: WireEchoSummary) -> [String] {
        let perWorker = s.tasksPerWorker.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: " ")
        return ["echo: \(s.tasks) payloads verified (\(s.payloadBytes) bytes); per worker: \(perWorker)"]
    }
}
