import CoreMetrics
import Foundation
import Metrics
import NIOConcurrencyHelpers
import Prometheus

/// The gateway's metrics (swift-metrics, exported in Prometheus text at `/metrics`):
/// requests and latency by route and status, the model version served (an info metric),
/// and the event queue.
///
/// Each gateway has its own registry, so two gateways in one process (tests) never mix.
public final class GatewayMetrics: Sendable {
    public let registry: PrometheusCollectorRegistry
    let factory: PrometheusMetricsFactory
    let eventsQueued: CoreMetrics.Gauge
    let eventsReplayed: CoreMetrics.Counter
    let eventsDropped: CoreMetrics.Counter
    private let servedVersion = NIOLockedValueBox<(model: String, version: Int)?>(nil)
    /// Request counters and timers by route and status, made once each: making them per
    /// request went through the registry's label checks and lock every time (a few per
    /// cent of a precomputed answer's cost).
    private let requestMetrics = NIOLockedValueBox<[RouteStatus: (CoreMetrics.Counter, CoreMetrics.Timer)]>([:])

    private struct RouteStatus: Hashable {
        var route: String
        var status: Int
    }

    public init() {
        registry = PrometheusCollectorRegistry()
        var f = PrometheusMetricsFactory(registry: registry)
        f.defaultDurationHistogramBuckets = [.microseconds(250), .microseconds(500), .milliseconds(1), .milliseconds(2), .milliseconds(5),
                                             .milliseconds(10), .milliseconds(25), .milliseconds(50), .milliseconds(100), .milliseconds(250),
                                             .milliseconds(500), .seconds(1), .seconds(2.5)]
        factory = f
        eventsQueued = CoreMetrics.Gauge(label: "tower_gateway_events_queued", factory: f)
        eventsReplayed = CoreMetrics.Counter(label: "tower_gateway_events_replayed_total", factory: f)
        eventsDropped = CoreMetrics.Counter(label: "tower_gateway_events_dropped_total", factory: f)
    }

    func request(route: String, status: Int, nanoseconds: Int64) {
        let key = RouteStatus(route: route, status: status)
        let (counter, timer) = requestMetrics.withLockedValue { made in
            if let pair = made[key] { return pair }
            let dimensions = [("route", route), ("status", String(status))]
            let pair = (CoreMetrics.Counter(label: "tower_gateway_requests_total", dimensions: dimensions, factory: factory),
                        CoreMetrics.Timer(label: "tower_gateway_request_duration_seconds", dimensions: dimensions, factory: factory))
            made[key] = pair
            return pair
        }
        counter.increment()
        timer.recordNanoseconds(nanoseconds)
    }

    /// `tower_gateway_model_info{model, version} 1` for the version served, 0 for the one before.
    func modelVersion(_ model: String, version: Int) {
        let previous = servedVersion.withLockedValue { old -> (String, Int)? in
            defer { old = (model, version) }
            return old.map { ($0.model, $0.version) }
        }
        if let previous, previous != (model, version) {
            CoreMetrics.Gauge(label: "tower_gateway_model_info", dimensions: [("model", previous.0), ("version", String(previous.1))], factory: factory).record(0)
        }
        CoreMetrics.Gauge(label: "tower_gateway_model_info", dimensions: [("model", model), ("version", String(version))], factory: factory).record(1)
    }

    public func exposition() -> String {
        var buffer: [UInt8] = []
        registry.emit(into: &buffer)
        return String(decoding: buffer, as: UTF8.self)
    }
}
