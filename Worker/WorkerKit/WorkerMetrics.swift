import CoreMetrics
import Observability
import Prometheus

/// A worker's metrics (swift-metrics), exported in Prometheus text by
/// `worker --metrics-listen HOST:PORT` at `/metrics`: tasks finished by kind and outcome,
/// tasks running, task durations, whether the coordinator is connected, reconnects.
///
/// Each agent has its own registry, so several workers in one process (tests) never mix.
public final class WorkerMetrics: Sendable {
    /// Every metric a worker exports, with the `# HELP` text Prometheus shows; the README
    /// lists the same names (a test holds both to this table).
    public static let catalog: KeyValuePairs<String, String> = [
        "tower_worker_tasks_total": "Tasks this worker finished, by job kind and outcome (succeeded, failed).",
        "tower_worker_tasks_running": "Tasks running on this worker now.",
        "tower_worker_task_duration_seconds": "Time a task ran on this worker, by job kind.",
        "tower_worker_connected": "1 while connected to the coordinator, 0 while reconnecting.",
        "tower_worker_reconnects_total": "Connections to the coordinator that were lost and dialled again.",
    ]

    public let exposition: PrometheusExposition
    let factory: PrometheusMetricsFactory
    let running: CoreMetrics.Gauge
    let connected: CoreMetrics.Gauge
    let reconnects: CoreMetrics.Counter

    public init() {
        let registry = PrometheusCollectorRegistry()
        exposition = PrometheusExposition(registry: registry, catalog: Self.catalog)
        factory = PrometheusMetricsFactory(registry: registry)
        running = CoreMetrics.Gauge(label: "tower_worker_tasks_running", factory: factory)
        connected = CoreMetrics.Gauge(label: "tower_worker_connected", factory: factory)
        reconnects = CoreMetrics.Counter(label: "tower_worker_reconnects_total", factory: factory)
        running.record(0)
        connected.record(0)
    }

    func finished(kind: String, succeeded: Bool, nanoseconds: UInt64) {
        CoreMetrics.Counter(label: "tower_worker_tasks_total", dimensions: [("kind", kind), ("outcome", succeeded ? "succeeded" : "failed")],
                            factory: factory).increment()
        CoreMetrics.Timer(label: "tower_worker_task_duration_seconds", dimensions: [("kind", kind)], factory: factory)
            .recordNanoseconds(Int64(clamping: nanoseconds))
    }

    /// The Prometheus text of every metric, each with its `# HELP` line.
    public func text() -> String { exposition.text() }
}
