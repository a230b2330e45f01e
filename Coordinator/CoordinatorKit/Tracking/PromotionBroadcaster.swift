import Foundation
import Logging
import NIOCore
import Wire

/// Pushes a ``WirePromotionEvent`` to every subscribed connection when an alias moves, so
/// a gateway can hot-swap the champion without polling. Subscriptions end with their
/// connection; a subscriber that reconnects reads the current aliases, then subscribes.
public final class PromotionBroadcaster: @unchecked Sendable {
    private let lock = NSLock()
    private var subscribers: [ObjectIdentifier: (Channel, Set<String>)] = [:]
    private let models: ModelRegistry
    private let logger: Logger

    init(models: ModelRegistry, logger: Logger) {
        self.models = models
        self.logger = logger
    }

    public func subscribe(_ channel: Channel, models: Set<String>) {
        lock.withLock { subscribers[ObjectIdentifier(channel)] = (channel, models) }
    }

    public func unsubscribe(_ channel: Channel) {
        _ = lock.withLock { subscribers.removeValue(forKey: ObjectIdentifier(channel)) }
    }

    public var count: Int { lock.withLock { subscribers.count } }

    func publish(_ record: PromotionRecord) {
        var event = WirePromotionEvent()
        event.model = record.model
        event.alias = record.alias
        event.version = UInt32(record.version)
        event.previousVersion = UInt32(record.previousVersion ?? 0)
        event.action = record.action
        event.atMs = Int64(record.at.timeIntervalSince1970 * 1000)
        event.sha256 = (try? models.version(record.model, record.version).sha256) ?? ""
        let targets = lock.withLock { subscribers.values.filter { $0.1.isEmpty || $0.1.contains(record.model) }.map(\.0) }
        for channel in targets {
            channel.writeAndFlush(WireEnvelope(.promotionEvent(event)), promise: nil)
        }
        logger.info("alias moved", metadata: ["model": "\(record.model)", "alias": "\(record.alias)", "version": "\(record.version)", "subscribers": "\(targets.count)"])
    }
}
