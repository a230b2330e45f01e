import Metrics

/// The coordinator's metrics (exported for Prometheus by the metrics endpoint), in one
/// place so the core only says what happened.
struct ClusterMetrics {
    let tasksCompleted = Counter(label: "tower_tasks_completed_total")
    let tasksFailed = Counter(label: "tower_tasks_failed_total")
    let taskRetries = Counter(label: "tower_task_retries_total")
    let leaseExpiries = Counter(label: "tower_lease_expiries_total")
    let duplicateResults = Counter(label: "tower_duplicate_results_total")
    let refusedResults = Counter(label: "tower_refused_results_total")
    let storeWritable = Gauge(label: "tower_store_writable")
    let storeWriteFailures = Counter(label: "tower_store_write_failures_total")
    let jobsSubmitted = Counter(label: "tower_jobs_submitted_total")
    let queuedGauge = Gauge(label: "tower_tasks_queued")
    let leasedGauge = Gauge(label: "tower_tasks_leased")
    let workersGauge = Gauge(label: "tower_workers_connected")
    let taskDuration = Metrics.Timer(label: "tower_task_duration_seconds", preferredDisplayUnit: .seconds)
    let roundTrip = Metrics.Timer(label: "tower_task_round_trip_seconds", preferredDisplayUnit: .seconds)
}
