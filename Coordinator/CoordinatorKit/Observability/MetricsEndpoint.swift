import Metrics
import Observability
import Prometheus

/// The process-wide Prometheus registry. `bootstrap()` installs it as swift-metrics'
/// backend once; every Counter/Gauge/Timer created afterwards lands here.
public enum TowerMetrics {
    public static let registry = PrometheusCollectorRegistry()
    static let prometheus = PrometheusExposition(registry: registry, catalog: catalog)
    private static let once: Void = { prometheus.bootstrapMetricsSystem() }()
    public static func bootstrap() { _ = once }

    /// Every metric the coordinator exports, with the `# HELP` text Prometheus shows.
    /// swift-metrics has no place for help text, so it is kept here and written into the
    /// exposition; the README lists the same names (a test holds both to this table).
    public static let catalog: KeyValuePairs<String, String> = [
        "tower_jobs_submitted_total": "Jobs accepted from operators and pipelines.",
        "tower_tasks_completed_total": "Tasks whose result was stored.",
        "tower_tasks_failed_total": "Tasks that failed for good after their last attempt.",
        "tower_task_retries_total": "Attempts beyond a task's first.",
        "tower_lease_expiries_total": "Leases not renewed in time; their tasks went back to the queue.",
        "tower_duplicate_results_total": "Results for tasks already finished (redelivered after a reconnect); ignored.",
        "tower_refused_results_total": "Results refused because the sender did not hold the task's lease.",
        "tower_tasks_queued": "Tasks waiting for a worker.",
        "tower_tasks_leased": "Tasks leased to workers now.",
        "tower_workers_connected": "Workers connected now.",
        "tower_task_duration_seconds": "Time a task ran on its worker.",
        "tower_task_round_trip_seconds": "Time from handing a task out to storing its result.",
        "tower_store_writable": "1 while the SQLite store accepts writes, 0 while a write batch is being retried.",
        "tower_store_write_failures_total": "Write batches the store refused (retried with backoff).",
        "tower_frame_errors_total": "Frames refused: too large, malformed, unknown or before Hello.",
        "tower_refused_connections_total": "Connections refused before authenticating, by reason.",
        "tower_revocation_index_refusals_total": "Peers refused because the revocation index could not be read.",
        "tower_revocation_index_broken": "1 while index.json exists but cannot be read or parsed (every peer but the coordinator is refused).",
        "tower_pipeline_runs_started_total": "Pipeline runs started (schedule, trigger or drift).",
        "tower_pipeline_runs_succeeded_total": "Pipeline runs that succeeded.",
        "tower_pipeline_runs_failed_total": "Pipeline runs that failed.",
    ]

    /// The Prometheus text exposition of every metric, each with its `# HELP` line.
    public static func exposition() -> String { prometheus.text() }
}
