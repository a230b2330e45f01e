import Foundation
import NIOCore
import Wire

/// Answers the operator's tracking and registry requests off the event loop, and turns
/// store rows into wire messages. Manual promotions and rollbacks are recorded like the
/// automatic ones.
public final class RegistryService: @unchecked Sendable {
    public let tracking: TrackingStore
    public let registry: ModelRegistry
    private let loop: EventLoop

    init(tracking: TrackingStore, models: ModelRegistry, loop: EventLoop) {
        self.tracking = tracking
        self.registry = models
        self.loop = loop
    }

    private func offLoop<T>(_ body: @escaping () throws -> T) -> EventLoopFuture<T> {
        let promise = loop.makePromise(of: T.self)
        DispatchQueue.global().async { promise.completeWith(Result(catching: body)) }
        return promise.futureResult
    }

    func runs(_ request: WireListRuns) -> EventLoopFuture<WireRunList> {
        offLoop {
            guard !request.experiment.isEmpty else { throw WireError.invalidArgument("name an experiment: `coordinator runs EXPERIMENT`") }
            let sort = request.sortBy.isEmpty ? nil : request.sortBy
            let total = try self.tracking.runCount(experiment: request.experiment)
            if total == 0, !(try self.tracking.experiments().contains { $0.name == request.experiment }) {
                throw RegistryError.unknownExperiment(request.experiment, known: try self.tracking.experiments().map(\.name))
            }
            if let sort, !(try self.tracking.hasMetric(sort, experiment: request.experiment)) {
                throw RegistryError.unknownMetric(sort, experiment: request.experiment, known: try self.tracking.metricKeys(experiment: request.experiment))
            }
            let runs = request.runIds.isEmpty
                ? try self.tracking.runs(experiment: request.experiment, sortBy: sort, ascending: request.ascending, limit: request.limit == 0 ? nil : Int(request.limit))
                : try self.tracking.runs(experiment: request.experiment, ids: request.runIds)
            var list = WireRunList()
            list.total = UInt64(total)
            let curves = request.sortBy.isEmpty ? [:] : try self.tracking.curves(runs.map(\.id), metric: request.sortBy)
            for run in runs {
                var info = WireRunInfo()
                info.id = run.id
                info.experiment = run.experiment
                info.status = run.status
                info.params = run.params
                info.metrics = run.metrics
                info.tags = run.tags
                info.artifacts = run.artifacts
                info.error = run.error ?? ""
                info.startedAtMs = Int64((run.startedAt?.timeIntervalSince1970 ?? 0) * 1000)
                info.finishedAtMs = Int64((run.finishedAt?.timeIntervalSince1970 ?? 0) * 1000)
                if let curve = curves[run.id] {
                    info.curveSteps = curve.map { UInt32($0.step) }
                    info.curveValues = curve.map(\.value)
                }
                list.runs.append(info)
            }
            return list
        }
    }

    func experiments() -> EventLoopFuture<WireExperimentList> {
        offLoop {
            var list = WireExperimentList()
            list.experiments = try self.tracking.experiments().map { e in
                .with {
                    $0.name = e.name
                    $0.runs = UInt32(clamping: e.runs)
                    $0.lastRunAtMs = e.lastRunAt.map { Int64(($0.timeIntervalSince1970 * 1000).rounded()) } ?? 0
                }
            }
            return list
        }
    }

    func models() -> EventLoopFuture<WireModelList> {
        offLoop {
            var list = WireModelList()
            list.models = try self.registry.models().map { m in
                var s = WireModelSummary()
                s.name = m.name
                s.versions = UInt32(m.versions)
                s.aliases = m.aliases.mapValues(UInt32.init)
                return s
            }
            return list
        }
    }

    func model(_ name: String) -> EventLoopFuture<WireModelDetail> {
        offLoop { try self.detail(name) }
    }

    func detail(_ name: String) throws -> WireModelDetail {
        var detail = WireModelDetail()
        detail.name = name
        detail.versions = try registry.versions(of: name).map { v in
            var info = WireModelVersionInfo()
            info.version = UInt32(v.version)
            info.runID = v.runID ?? ""
            info.sha256 = v.sha256
            info.metrics = v.metrics
            info.createdAtMs = Int64(v.createdAt.timeIntervalSince1970 * 1000)
            return info
        }
        detail.aliases = try registry.aliases(of: name).mapValues(UInt32.init)
        detail.decisions = try registry.decisions(model: name).map(Self.decision)
        return detail
    }

    static func decision(_ d: PromotionRecord) -> WireDecisionInfo {
        var info = WireDecisionInfo()
        info.version = UInt32(d.version)
        info.previousVersion = UInt32(d.previousVersion ?? 0)
        info.promoted = d.promoted
        info.action = d.action
        info.reasons = d.reasons
        info.actor = d.actor
        info.atMs = Int64(d.at.timeIntervalSince1970 * 1000)
        info.numbers = d.numbers
        return info
    }

    func promote(_ request: WirePromote, by peer: PeerIdentity) -> EventLoopFuture<WirePromotionResult> {
        offLoop {
            let alias = request.alias.isEmpty ? "champion" : request.alias
            guard !request.reason.isEmpty else { throw WireError.invalidArgument("a manual promotion needs --reason (it is recorded)") }
            let current = try self.registry.alias(request.name, alias)
            let record = try self.registry.decide(model: request.name, alias: alias, version: Int(request.version), expected: current,
                                                  promoted: true, action: "manual", reasons: [request.reason], numbers: [:], actor: peer.name)
            var result = WirePromotionResult()
            result.decision = Self.decision(record)
            return result
        }
    }

    func rollback(_ request: WireRollback, by peer: PeerIdentity) -> EventLoopFuture<WirePromotionResult> {
        offLoop {
            let record = try self.registry.rollback(model: request.name, alias: request.alias.isEmpty ? "champion" : request.alias,
                                                    actor: peer.name, reason: request.reason.isEmpty ? "operator rollback" : request.reason)
            var result = WirePromotionResult()
            result.decision = Self.decision(record)
            return result
        }
    }
}

extension RegistryError {
    /// Registry errors cross the wire as not-found or invalid-argument frames.
    var wire: WireError {
        switch self {
        case .unknownModel, .unknownVersion, .unknownRun, .unknownExperiment: return .notFound(what: description)
        case .aliasMoved, .nothingToRollBack, .unknownMetric: return .invalidArgument(description)
        }
    }
}
