import Foundation
import Logging

/// Fetches content-addressed blobs from the coordinator over whichever connection is
/// current, for every client (worker, operator, gateway).
///
/// Guarantees: a blob is requested once however many callers wait for it; it is verified
/// against its address before anyone sees it (and cached, when there is a cache); a
/// transfer cut by a lost connection starts over on the next one, so callers wait across
/// reconnects instead of hanging on a connection that is gone.
public final class BlobFetcher: @unchecked Sendable {
    private let cache: BlobStore?
    private let logger: Logger
    private let lock = NSLock()
    private var client: WireClient?
    private var waiters: [String: [CheckedContinuation<Data, Error>]] = [:]
    private var assemblers: [String: BlobAssembler] = [:]
    /// Request id → blob, for the current connection's requests only.
    private var requests: [UInt64: String] = [:]
    /// Above the ids `WireClient.request` uses, so answers come through `receive`.
    private var nextRequest: UInt64 = 1 << 62

    public init(cache: BlobStore?, logger: Logger) {
        self.cache = cache
        self.logger = logger
    }

    /// The blob, from the cache or from the coordinator.
    public func fetch(_ hash: String) async throws -> Data {
        if let cache, cache.contains(hash) { return try cache.read(hash) }
        return try await withCheckedThrowingContinuation { continuation in
            let request: (WireClient, UInt64)? = lock.withLock {
                if waiters[hash] != nil {
                    waiters[hash]!.append(continuation)
                    return nil
                }
                waiters[hash] = [continuation]
                assemblers[hash] = BlobAssembler(hash: hash)
                // Not connected: the request goes out as soon as a connection is attached.
                guard let client else { return nil }
                return (client, register(hash))
            }
            if let (client, id) = request {
                logger.info("fetching a blob from the coordinator", metadata: ["sha256": "\(hash)"])
                client.send(.blobRequest(.with { $0.sha256 = hash }), requestID: id)
            }
        }
    }

    /// Uses `client` from now on; every fetch still waiting is asked again on it.
    public func attach(_ client: WireClient) {
        let again: [(String, UInt64)] = lock.withLock {
            self.client = client
            return waiters.keys.sorted().map { hash in
                assemblers[hash] = BlobAssembler(hash: hash)
                return (hash, register(hash))
            }
        }
        for (hash, id) in again {
            logger.info("fetching a blob again after reconnecting", metadata: ["sha256": "\(hash)"])
            client.send(.blobRequest(.with { $0.sha256 = hash }), requestID: id)
        }
    }

    /// `client` is gone: transfers in flight on it start over on the next connection.
    public func detach(_ client: WireClient) {
        lock.withLock {
            guard self.client === client else { return }
            self.client = nil
            requests.removeAll()
            for hash in waiters.keys { assemblers[hash] = BlobAssembler(hash: hash) }
        }
    }

    /// Takes a message if it answers one of our requests (a chunk or an error); returns
    /// whether it did.
    @discardableResult
    public func receive(_ envelope: WireEnvelope) -> Bool {
        switch envelope.body {
        case let .blobChunk(chunk):
            let hash = chunk.sha256
            let outcome: Result<Data, Error>?
            do {
                outcome = try lock.withLock { () -> Result<Data, Error>? in
                    // Chunks of a transfer from before a reconnect count for nothing.
                    guard requests[envelope.requestID] == hash, var assembler = assemblers[hash] else { return nil }
                    guard let data = try assembler.append(chunk) else {
                        assemblers[hash] = assembler
                        return nil
                    }
                    return .success(data)
                }
            } catch {
                outcome = .failure(error)
            }
            guard let outcome else { return true }
            // Verifying and caching a large blob takes long enough to starve heartbeats if
            // done on the connection's event loop.
            let cache = self.cache
            DispatchQueue.global().async {
                self.finish(hash, outcome.flatMap { data in
                    Result {
                        if let cache { try cache.putVerified(data, expected: hash) } else {
                            let actual = BlobStore.sha256Hex(data)
                            guard actual == hash else { throw WireError.blobCorrupt(expected: hash, actual: actual) }
                        }
                        return data
                    }
                })
            }
            return true
        case let .error(frame):
            guard let hash = lock.withLock({ requests[envelope.requestID] }) else { return false }
            finish(hash, .failure(WireError.remote(code: frame.code, message: frame.message)))
            return true
        default:
            return false
        }
    }

    /// Fails every fetch still waiting (the owner is shutting down).
    public func failAll(_ error: Error) {
        let all = lock.withLock { () -> [CheckedContinuation<Data, Error>] in
            defer { waiters.removeAll(); assemblers.removeAll(); requests.removeAll() }
            return waiters.values.flatMap { $0 }
        }
        all.forEach { $0.resume(throwing: error) }
    }

    /// Called with the lock held.
    private func register(_ hash: String) -> UInt64 {
        nextRequest += 1
        requests[nextRequest] = hash
        return nextRequest
    }

    private func finish(_ hash: String, _ result: Result<Data, Error>) {
        let waiting = lock.withLock { () -> [CheckedContinuation<Data, Error>] in
            assemblers[hash] = nil
            requests = requests.filter { $0.value != hash }
            return waiters.removeValue(forKey: hash) ?? []
        }
        waiting.forEach { $0.resume(with: result) }
    }
}
