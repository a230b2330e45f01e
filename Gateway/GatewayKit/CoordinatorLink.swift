import Foundation
import Learning
import Logging
import NIOConcurrencyHelpers
import NIOCore
import ServiceLifecycle
import Wire

/// The gateway's side of the cluster: it loads the champion and the serving snapshot,
/// swaps them when an alias moves or listings change, forwards feedback events, and keeps
/// events on disk while the coordinator is unreachable.
///
/// Guarantees: a swap is prepared completely (model decoded, listing features computed)
/// before it replaces the serving snapshot; events are delivered in the order they were
/// accepted, and the coordinator stores each event id once, so replays after a crash or an
/// outage neither lose nor duplicate.
public final class CoordinatorLink: Service, @unchecked Sendable {
    public struct Settings: Sendable {
        public var host: String
        public var port: Int
        public var identity: TLSIdentity
        public var model: String = "match"
        /// How often the listings and the latest score job are checked for changes.
        public var refreshInterval: Duration = .seconds(5)
        public var queueDirectory: URL
        public var queueMaxBytes = 64 << 20

        public init(host: String, port: Int, identity: TLSIdentity, queueDirectory: URL) {
            self.host = host
            self.port = port
            self.identity = identity
            self.queueDirectory = queueDirectory
        }
    }

    public let settings: Settings
    public let state: ServingState
    public let queue: EventQueue
    let group: EventLoopGroup
    let logger: Logger
    private let client = NIOLockedValueBox<ClusterClient?>(nil)
    private let wake = AsyncStream<Void>.makeStream()
    private let metrics: GatewayMetrics
    private let lastRefreshProblem = NIOLockedValueBox<String?>(nil)
    /// One refresh at a time: the promotion watcher and the timer both ask, and two
    /// overlapping loads of the same snapshot would each build a market and the later
    /// would replace the one being served. A request while one runs makes it run again.
    private let refreshing = NIOLockedValueBox<(running: Bool, again: Bool, force: Bool)>((false, false, false))

    public init(settings: Settings, state: ServingState, group: EventLoopGroup, metrics: GatewayMetrics, logger: Logger) throws {
        self.settings = settings
        self.state = state
        self.group = group
        self.metrics = metrics
        self.logger = logger
        queue = try EventQueue(directory: settings.queueDirectory, maxBytes: settings.queueMaxBytes)
        metrics.eventsQueued.record(queue.count)
    }

    var connected: ClusterClient? { client.withLockedValue { $0 } }

    /// Connects (retrying while the coordinator is down), then keeps the snapshot fresh and
    /// the event queue draining until shutdown.
    public func run() async throws {
        await withGracefulShutdownHandler {
            await withTaskGroup(of: Void.self) { group in
                group.addTask { await self.connectAndWatch() }
                group.addTask { await self.refreshLoop() }
                group.addTask { await self.replayLoop() }
                await group.next()
                group.cancelAll()
            }
        } onGracefulShutdown: {
            self.wake.continuation.finish()
        }
        await connected?.shutdown()
    }

    private func connectAndWatch() async {
        var attempt = 0
        while !Task.isCancelled && !Task.isShuttingDownGracefully {
            do {
                let c = try await ClusterClient.connect(host: settings.host, port: settings.port, identity: settings.identity,
                                                        group: group, reconnect: true, logger: logger)
                client.withLockedValue { $0 = c }
                logger.info("connected to the coordinator", metadata: ["coordinator": "\(settings.host):\(settings.port)"])
                let events = try await c.promotions(models: [settings.model])
                await refresh(force: true)
                wake.continuation.yield()
                for await event in events {
                    logger.notice("alias moved", metadata: ["model": "\(event.model)", "alias": "\(event.alias)", "version": "\(event.version)"])
                    await refresh(force: true)
                }
                return
            } catch let error as WireError where error.isPermanentRefusal {
                logger.error("the coordinator refused the gateway's certificate; fix it and restart", metadata: ["error": "\(error)"])
                return
            } catch {
                attempt += 1
                if attempt == 1 || attempt % 10 == 0 {
                    logger.warning("cannot reach the coordinator; serving what is loaded and retrying", metadata: ["error": "\(error)"])
                }
                try? await Task.sleep(for: .milliseconds(ReconnectBackoff().delayMs(afterFailures: attempt)))
            }
        }
    }

    private func refreshLoop() async {
        while !Task.isCancelled && !Task.isShuttingDownGracefully {
            try? await Task.sleep(for: settings.refreshInterval)
            await refresh(force: false)
        }
    }

    /// Loads the champion and the snapshot when either changed, and swaps them in; while
    /// a refresh runs, another request only makes it run once more when it ends.
    func refresh(force: Bool) async {
        let start = refreshing.withLockedValue { r -> Bool in
            if r.running { r.again = true; r.force = r.force || force; return false }
            r.running = true
            return true
        }
        guard start else { return }
        var force = force
        while true {
            await refreshOnce(force: force)
            let next = refreshing.withLockedValue { r -> Bool? in
                guard r.again else { r.running = false; return nil }
                defer { r.again = false; r.force = false }
                return r.force
            }
            guard let again = next else { return }
            force = again
        }
    }

    private func refreshOnce(force: Bool) async {
        guard let c = connected else { return }
        do {
            let current = state.snapshot
            let detail = try await c.model(settings.model)
            guard let version = detail.aliases["champion"], let row = detail.versions.first(where: { $0.version == version }) else {
                return
            }
            let served = try await c.request(.getServingSnapshot(.with { $0.knownSha256 = current?.snapshotSha256 ?? "" }))
            guard case let .servingSnapshot(info) = served else { return }
            if !force, let current, current.modelSha256 == row.sha256, current.snapshotSha256 == info.sha256,
               current.scoreJob == (Int(info.scoreVersion) == current.modelVersion ? info.scoreJobID : nil) {
                return
            }
            let model = current?.modelSha256 == row.sha256 ? current!.model : try ModelFile.decode(try await c.blob(row.sha256))
            let market: ServingMarket
            if let current, current.snapshotSha256 == info.sha256 {
                market = current.market
            } else {
                market = ServingMarket(try MarketSnapshot.decode(try await c.blob(info.sha256)), sha256: info.sha256)
            }
            let next = ServingSnapshot(modelName: settings.model, modelVersion: Int(version), modelSha256: row.sha256, model: model,
                                       market: market, scoreJob: info.scoreJobID.isEmpty ? nil : info.scoreJobID,
                                       scoreVersion: Int(info.scoreVersion), previous: current)
            state.swap(next)
            metrics.modelVersion(settings.model, version: Int(version))
            if current?.modelVersion != next.modelVersion || current?.snapshotSha256 != next.snapshotSha256 {
                logger.notice("serving", metadata: ["model": "\(settings.model)", "version": "\(version)", "users": "\(market.usersByID.count)",
                                                    "listings": "\(market.listingsByID.count)"])
            }
        } catch {
            // Once per distinct problem, not every refresh: "no model yet" can last hours.
            let text = "\(error)"
            if lastRefreshProblem.withLockedValue({ old in defer { old = text }; return old != text }) {
                logger.warning("could not refresh the model or listings; still serving what is loaded", metadata: ["error": "\(text)"])
            }
            return
        }
        lastRefreshProblem.withLockedValue { $0 = nil }
    }

    /// Stored recommendations of `user` from the serving snapshot's score job, fetched once.
    func precomputed(user: Int, snapshot: ServingSnapshot) async -> ServingState.CachedRecommendations? {
        guard let job = snapshot.scoreJob else { return nil }
        if let hit = state.cached(job: job, user: user) { return hit }
        guard let c = connected else { return nil }
        guard let list = try? await c.recommendations(user: UInt64(user), job: job), !list.items.isEmpty else { return nil }
        let items = list.items.map {
            RecommendationItem(listing_id: Int($0.listingID), score: $0.score, rank: Int($0.rank), reasons: $0.reasons,
                               listing: snapshot.listingsByID[Int($0.listingID)])
        }
        let cached = ServingState.CachedRecommendations(items: items, version: Int(list.modelVersion))
        state.cache(job: job, user: user, cached)
        return cached
    }

    // MARK: Events

    public enum Delivery: Equatable, Sendable {
        case delivered(inserted: Int, duplicates: Int)
        case queued(Int)
    }

    /// Sends events now when nothing is waiting before them, else queues them behind.
    public func submit(_ events: [WireFeedbackEvent]) async throws -> Delivery {
        if queue.isEmpty, let c = connected {
            do {
                let accepted = try await c.send(events: events)
                return .delivered(inserted: Int(accepted.inserted), duplicates: Int(accepted.duplicates))
            } catch let error as WireError {
                if case .remote = error { throw error }
                // Unreachable: fall through to the disk queue.
            }
        }
        try queue.append(events)
        metrics.eventsQueued.record(queue.count)
        wake.continuation.yield()
        return .queued(queue.count)
    }

    private func replayLoop() async {
        while !Task.isCancelled && !Task.isShuttingDownGracefully {
            await replay()
            // Woken by new queued events or a reconnect; otherwise retry every second.
            try? await Task.sleep(for: .seconds(1))
        }
    }

    /// Sends the queue in order, in batches, removing each batch once it is stored.
    func replay() async {
        while !queue.isEmpty, let c = connected {
            let batch = queue.peek(500)
            do {
                _ = try await c.send(events: batch)
                try queue.drop(batch.count)
                metrics.eventsQueued.record(queue.count)
                metrics.eventsReplayed.increment(by: batch.count)
            } catch let error as WireError {
                if case let .remote(_, message) = error {
                    // The coordinator refuses this batch for good (e.g. an unknown listing):
                    // keeping it would block everything behind it.
                    logger.error("the coordinator refused queued events; dropping the batch", metadata: ["error": "\(message)", "events": "\(batch.count)"])
                    try? queue.drop(batch.count)
                    metrics.eventsDropped.increment(by: batch.count)
                    continue
                }
                return
            } catch {
                logger.error("the event queue cannot be rewritten", metadata: ["error": "\(error)"])
                return
            }
        }
    }
}
