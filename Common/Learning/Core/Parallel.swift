import Dispatch
import Foundation
#if os(Linux)
import Glibc
import Synchronization
#endif

/// Runs `body(0..<count)` on up to `threads` threads with a fixed striping (worker t
/// takes t, t+threads, …), so work assignment — and hence any per-item result — does not
/// depend on scheduling.
@inline(__always)
func parallelFor(_ count: Int, threads: Int, _ body: (Int) -> Void) {
    let workers = min(threads, count)
    if workers <= 1 {
        for i in 0..<count { body(i) }
        return
    }
    // The body only touches memory partitioned by index; the caller guarantees that,
    // which is what the unchecked box asserts to the compiler.
    withoutActuallyEscaping(body) { escapable in
        let box = UncheckedSendable(escapable)
        runOnWorkers(workers) { t in
            var i = t
            while i < count {
                box.value(i)
                i += workers
            }
        }
    }
}

/// Splits 0..<count into `chunks` contiguous ranges and runs them in parallel.
@inline(__always)
func parallelChunks(_ count: Int, threads: Int, minChunk: Int = 4096, _ body: (Range<Int>) -> Void) {
    let chunks = max(1, min(threads * 4, count / max(1, minChunk)))
    if chunks <= 1 || threads <= 1 {
        body(0..<count)
        return
    }
    let size = (count + chunks - 1) / chunks
    parallelFor(chunks, threads: threads) { c in
        let lo = c * size
        let hi = min(count, lo + size)
        if lo < hi { body(lo..<hi) }
    }
}

/// Sum of `part(range)` over `count` items split into blocks whose size depends only on
/// `count` and `block`, added in block order: the same bits at any thread count, which a
/// per-thread partial sum would not give (floating-point addition is not associative).
func deterministicSum(_ count: Int, threads: Int, block: Int = 8192, _ part: (Range<Int>) -> Double) -> Double {
    let blocks = max(1, (count + block - 1) / block)
    if blocks == 1 { return part(0..<count) }
    var partials = [Double](repeating: 0, count: blocks)
    partials.withUnsafeMutableBufferPointer { out in
        let o = out.baseAddress!
        parallelFor(blocks, threads: threads) { b in
            o[b] = part((b * block)..<min(count, (b + 1) * block))
        }
    }
    var s = 0.0
    for p in partials { s += p }
    return s
}

/// Runs `body(t)` for t in 0..<workers concurrently (t = 0 on the calling thread) and
/// returns when all have finished.
func runOnWorkers(_ workers: Int, _ body: @escaping @Sendable (Int) -> Void) {
    #if os(Linux)
    if WorkerPool.shared.run(workers, body) { return }
    #endif
    DispatchQueue.concurrentPerform(iterations: workers, execute: body)
}

#if os(Linux)
/// A few long-lived threads that wake within microseconds. A tree of 31 leaves asks
/// for a parallel region several times per node, thousands of times per model, many on
/// nodes of a few hundred rows; with GCD's `concurrentPerform` each region paid a
/// wake-up of pooled threads that could cost as much as the node's work, so threads only
/// paid on large nodes. Workers spin briefly after a region (the next one usually comes
/// within microseconds) and then sleep on a condition variable, so an idle pool costs
/// nothing on a machine shared with other work.
///
/// One region runs at a time; a caller that finds the pool busy (a concurrent caller, or
/// a region nested inside another) falls back to GCD rather than waiting.
final class WorkerPool: @unchecked Sendable {
    static let shared = WorkerPool()

    /// Bumped to publish a region; workers run every region they see.
    private let generation = Atomic<Int>(0)
    /// Workers of the current region that have not finished yet.
    private let remaining = Atomic<Int>(0)
    private let busy = Atomic<Bool>(false)
    private let lock: UnsafeMutablePointer<pthread_mutex_t>
    private let wake: UnsafeMutablePointer<pthread_cond_t>
    private let done: UnsafeMutablePointer<pthread_cond_t>
    /// Guarded by `lock`.
    private var sleepers = 0
    private var callerWaiting = false
    private var threadCount = 0
    /// Written only while no region runs (before `generation` is bumped, which
    /// publishes it); read by workers after they see the bump.
    private nonisolated(unsafe) var job: (@Sendable (Int) -> Void)? = nil
    private nonisolated(unsafe) var jobWorkers = 0
    /// Spins before sleeping: long enough to bridge the gaps between the regions of one
    /// training, short enough that idle workers do not compete with other processes.
    private let spinLimit = 20_000

    private init() {
        lock = .allocate(capacity: 1)
        wake = .allocate(capacity: 1)
        done = .allocate(capacity: 1)
        pthread_mutex_init(lock, nil)
        pthread_cond_init(wake, nil)
        pthread_cond_init(done, nil)
    }

    /// False when the pool is busy or cannot start threads; the caller then runs the
    /// region some other way.
    func run(_ workers: Int, _ body: @escaping @Sendable (Int) -> Void) -> Bool {
        guard workers > 1, workers <= 64 else { return false }
        guard busy.compareExchange(expected: false, desired: true, ordering: .acquiring).exchanged else { return false }
        defer { busy.store(false, ordering: .releasing) }
        pthread_mutex_lock(lock)
        while threadCount < workers - 1 {
            if !startThread(index: threadCount + 1, seen: generation.load(ordering: .relaxed)) {
                pthread_mutex_unlock(lock)
                return false
            }
            threadCount += 1
        }
        job = body
        jobWorkers = workers
        // Every pool thread takes part in every region, even with nothing to do, so that
        // none can still be reading `job` when the next region overwrites it.
        remaining.store(threadCount, ordering: .relaxed)
        generation.add(1, ordering: .releasing)
        if sleepers > 0 { pthread_cond_broadcast(wake) }
        pthread_mutex_unlock(lock)

        body(0)

        var spins = 0
        while remaining.load(ordering: .acquiring) != 0 && spins < spinLimit { spins += 1 }
        if remaining.load(ordering: .acquiring) != 0 {
            pthread_mutex_lock(lock)
            while remaining.load(ordering: .acquiring) != 0 {
                callerWaiting = true
                pthread_cond_wait(done, lock)
            }
            callerWaiting = false
            pthread_mutex_unlock(lock)
        }
        job = nil
        return true
    }

    /// `seen`: the generation before the region that needs this thread, so the thread
    /// runs that region even if it starts after it was published.
    private func startThread(index: Int, seen: Int) -> Bool {
        let context = Unmanaged.passRetained(WorkerStart(pool: self, index: index, seen: seen)).toOpaque()
        var thread = pthread_t()
        let started = pthread_create(&thread, nil, { raw in
            let start = Unmanaged<WorkerStart>.fromOpaque(raw!).takeRetainedValue()
            start.pool.workerLoop(index: start.index, seen: start.seen)
            return nil
        }, context)
        if started != 0 {
            Unmanaged<WorkerStart>.fromOpaque(context).release()
            return false
        }
        pthread_detach(thread)
        return true
    }

    private func workerLoop(index: Int, seen initial: Int) {
        var seen = initial
        while true {
            var current = generation.load(ordering: .acquiring)
            var spins = 0
            while current == seen && spins < spinLimit {
                spins += 1
                current = generation.load(ordering: .acquiring)
            }
            if current == seen {
                pthread_mutex_lock(lock)
                sleepers += 1
                while generation.load(ordering: .acquiring) == seen { pthread_cond_wait(wake, lock) }
                sleepers -= 1
                pthread_mutex_unlock(lock)
                current = generation.load(ordering: .acquiring)
            }
            seen = current
            // A worker beyond this region's count has nothing to do (the pool may hold
            // more threads than a region asks for) but still reports in.
            if index < jobWorkers, let body = job { body(index) }
            if remaining.subtract(1, ordering: .acquiringAndReleasing).newValue == 0 {
                pthread_mutex_lock(lock)
                if callerWaiting { pthread_cond_signal(done) }
                pthread_mutex_unlock(lock)
            }
        }
    }
}

private final class WorkerStart {
    let pool: WorkerPool
    let index: Int
    let seen: Int
    init(pool: WorkerPool, index: Int, seen: Int) { self.pool = pool; self.index = index; self.seen = seen }
}
#endif

/// Cores available to this process; the default thread count.
var availableCores: Int { max(1, ProcessInfo.processInfo.activeProcessorCount) }

struct UncheckedSendable<T>: @unchecked Sendable {
    let value: T
    init(_ value: T) { self.value = value }
}
