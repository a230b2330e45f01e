import Foundation
import Learning
import Logging
import NIOCore
import Wire

/// Answers the feature store's requests (ingest, training sets, events, recommendations)
/// off the event loop: parsing a large file or building a training set never stalls
/// heartbeats.
public final class FeatureService: @unchecked Sendable {
    public let store: FeatureStore
    private let blobs: BlobStore
    private let loop: EventLoop

    init(store: FeatureStore, blobs: BlobStore, loop: EventLoop, logger: Logger) {
        self.store = store
        self.blobs = blobs
        self.loop = loop
        self.logger = logger
    }

    private func offLoop<T>(_ body: @escaping () throws -> T) -> EventLoopFuture<T> {
        let promise = loop.makePromise(of: T.self)
        DispatchQueue.global().async { promise.completeWith(Result(catching: body)) }
        return promise.futureResult
    }

    /// Picks new listings for a marketing short and queues their render job (set by the
    /// core, which owns job submission); nil = never.
    var shorts: (trigger: ShortTrigger, submit: @Sendable (WireJobSpec) -> EventLoopFuture<WireJobAccepted>)?
    let logger: Logger

    func ingest(_ request: WireIngest, by peer: PeerIdentity) -> EventLoopFuture<WireIngestResult> {
        ingestRows(request, by: peer).flatMap { result, newListings in
            guard let shorts = self.shorts, !newListings.isEmpty else { return self.loop.makeSucceededFuture(result) }
            return self.offLoop { try shorts.trigger.decide(newListings: newListings) }
                .flatMap { decision -> EventLoopFuture<WireIngestResult> in
                    var result = result
                    switch decision {
                    case let .skip(why):
                        result.renderNote = why
                        return self.loop.makeSucceededFuture(result)
                    case let .render(ids):
                        let job: WireJobSpec
                        do { job = try shorts.trigger.job(ids) } catch { return self.loop.makeFailedFuture(error) }
                        return shorts.submit(job).map { accepted in
                            result.renderJobID = accepted.jobID
                            result.renderListingIds = ids.map { UInt64($0) }
                            self.logger.info("queued shorts of new listings", metadata: ["job": "\(accepted.jobID)", "listings": "\(ids)"])
                            return result
                        }
                    }
                }
                // The rows are stored whatever happens here: say why no short was made.
                .flatMapErrorThrowing { error in
                    var result = result
                    result.renderNote = "no short queued: \(error)"
                    self.logger.warning("choosing new listings for shorts failed", metadata: ["error": "\(error)"])
                    return result
                }
        }
    }

    private func ingestRows(_ request: WireIngest, by peer: PeerIdentity) -> EventLoopFuture<(WireIngestResult, [Int])> {
        offLoop {
            guard let table = FeatureStore.Table(rawValue: request.table) else {
                throw WireError.invalidArgument("ingest: unknown table \"\(request.table)\"; expected users, listings or events")
            }
            guard BlobStore.isValidAddress(request.sha256), self.blobs.contains(request.sha256) else {
                throw WireError.notFound(what: "uploaded file \(request.sha256.prefix(16)) (upload it as a blob before Ingest)")
            }
            let file = request.fileName.isEmpty ? "\(table.rawValue).csv" : request.fileName
            let counts = try self.store.ingest(table, csv: [UInt8](try self.blobs.read(request.sha256)), fileName: file,
                                               sha256: request.sha256, actor: peer.name)
            var result = WireIngestResult()
            result.table = table.rawValue
            result.fileName = file
            result.rows = UInt64(counts.rows)
            result.inserted = UInt64(counts.inserted)
            result.updated = UInt64(counts.updated)
            result.unchanged = UInt64(counts.unchanged)
            return (result, counts.newActiveListings)
        }
    }

    func buildTrainingSet(_ request: WireBuildTrainingSet) -> EventLoopFuture<WireTrainingSetInfo> {
        offLoop {
            let definition = try TrainingSetDefinition(wire: request.definition, now: Date().timeIntervalSince1970)
            return try self.store.makeTrainingSet(definition, blobs: self.blobs)
        }
    }

    func record(_ batch: WireEventBatch) -> EventLoopFuture<WireEventsAccepted> {
        offLoop {
            let (inserted, duplicates) = try self.store.record(events: batch.events)
            var accepted = WireEventsAccepted()
            accepted.inserted = UInt64(inserted)
            accepted.duplicates = UInt64(duplicates)
            return accepted
        }
    }

    /// The snapshot last built, and the store state it was built from: rebuilding (and
    /// hashing) every users and listings row on each poll would not scale.
    private let snapshotLock = NSLock()
    private var lastSnapshot: (marker: FeatureStore.ChangeMarker, info: WireServingSnapshot)?

    func servingSnapshot(_ request: WireGetServingSnapshot) -> EventLoopFuture<WireServingSnapshot> {
        offLoop {
            let marker = try self.store.changeMarker()
            if let last = self.snapshotLock.withLock({ self.lastSnapshot }), last.marker == marker { return last.info }
            let snapshot = try self.store.snapshot()
            var info = WireServingSnapshot()
            info.sha256 = try self.blobs.put(snapshot.encoded())
            info.users = UInt32(snapshot.users.count)
            info.listings = UInt32(snapshot.listings.count)
            info.builtAtMs = Int64(Date().timeIntervalSince1970 * 1000)
            if let run = try self.store.latestScoreRun() {
                info.scoreJobID = run.job
                info.scoreModel = run.model
                info.scoreVersion = UInt32(run.version)
                info.scoredAtMs = Int64(run.finishedAt * 1000)
            }
            self.snapshotLock.withLock { self.lastSnapshot = (marker, info) }
            return info
        }
    }

    func recommendations(_ request: WireGetRecommendations) -> EventLoopFuture<WireRecommendationList> {
        offLoop {
            guard request.userID <= UInt64(Int32.max) else { throw WireError.notFound(what: "user \(request.userID) in the feature store") }
            return try self.store.recommendations(user: Int(request.userID), job: request.jobID)
        }
    }
}
