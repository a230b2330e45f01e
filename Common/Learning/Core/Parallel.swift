import Dispatch
import Foundation
#if os(Linux)
import Glibc
import Synchronization
#endif

/// Runs `body(i)` for every i in 0..<count on up to `threads` threads. Which thread runs
/// an item depends on scheduling, so a body must key everything it writes by `i` (never
/// by thread); then the result does not depend on the thread count.
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
        #if os(Linux)
        if WorkerPool.shared.run(count: count, workers: workers, { i in box.value(i) }) { return }
        #endif
        DispatchQueue.concurrentPerform(iterations: workers) { t in
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

#if os(Linux)
/// A few long-lived threads that wake within microseconds. A tree of 31 leaves asks
/// for a parallel region several times per node, thousands of times per model, many on
/// nodes of a few hundred rows; GCD's `concurrentPerform` mostly ran such short regions
/// on the calling thread alone, so threads only paid on large nodes.
///
/// Items are claimed one at a time rather than dealt out in advance — the caller from
/// the front, workers from the back: on a machine shared with other work a worker may
/// not get a core for milliseconds, and the caller then simply runs the items itself
/// instead of waiting for it (a fixed assignment made a 2-thread run slower than a
/// 1-thread run under load). Results do not depend on who runs an item: callers key all
/// output by item index.
///
/// Workers spin for a while after a region (the next one usually comes within
/// microseconds) and then sleep on a condition variable, so an idle pool costs nothing.
/// One region runs at a time; a caller that finds the pool busy (a concurrent caller, or
/// a region nested inside another) falls back to GCD rather than waiting.
final class WorkerPool: @unchecked Sendable {
    static let shared = WorkerPool()

    /// Odd while a region is open for workers to join, even when closed; a region moves
    /// it up by two.
    private let generation = Atomic<Int>(0)
    /// Unclaimed items `front..<back`, packed as back << 32 | front: the caller claims
    /// from the front, workers from the back. Successive regions over the same items
    /// (one per tree node, features in the same order) then give each end mostly the
    /// same items, whose histograms stay in that core's cache; handing items out from
    /// one counter moved about half of them between cores at every node (Ames, 2
    /// threads: 0.220 → 0.207 s, median of 8). Either end still takes whatever the
    /// other leaves.
    private let ends = Atomic<Int>(0)
    /// Items not finished yet.
    private let pending = Atomic<Int>(0)
    /// Workers that have joined the open region and not yet left it: the caller does not
    /// reuse `job` until this is zero.
    private let inside = Atomic<Int>(0)
    private let busy = Atomic<Bool>(false)
    private let lock: UnsafeMutablePointer<pthread_mutex_t>
    private let wake: UnsafeMutablePointer<pthread_cond_t>
    private let done: UnsafeMutablePointer<pthread_cond_t>
    /// Guarded by `lock`.
    private var sleepers = 0
    private var callerWaiting = false
    private var threadCount = 0
    /// Written only while the region is closed and no worker is inside; read by workers
    /// inside an open region.
    private nonisolated(unsafe) var job: (@Sendable (Int) -> Void)? = nil
    /// Workers with an index below this join (the pool may hold more threads than a
    /// region asks for).
    private nonisolated(unsafe) var jobWorkers = 0
    /// Spins before sleeping: long enough to bridge the gaps between the regions of one
    /// training, short enough that idle workers do not compete with other processes.
    /// At 20,000 (~10 µs here) workers slept between most of a small data set's nodes
    /// and every region began with a futex wake (Ames, 2 threads: 0.26–0.37 s, bimodal);
    /// at 200,000 (~100 µs) 0.22 s.
    private let spinLimit = 200_000

    /// The learner uses `shared`; a test makes its own so that no other test's region
    /// makes it fall back to GCD.
    init() {
        lock = .allocate(capacity: 1)
        wake = .allocate(capacity: 1)
        done = .allocate(capacity: 1)
        pthread_mutex_init(lock, nil)
        pthread_cond_init(wake, nil)
        pthread_cond_init(done, nil)
    }

    /// Runs `body(0..<count)` on the caller and up to `workers − 1` pool threads. False
    /// when the pool is busy or cannot start threads; the caller then runs the region
    /// some other way.
    func run(count: Int, workers: Int, _ body: @escaping @Sendable (Int) -> Void) -> Bool {
        guard workers > 1, workers <= 64, count > 0, count < 1 << 31 else { return false }
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
        ends.store(count << 32, ordering: .relaxed)
        pending.store(count, ordering: .relaxed)
        generation.add(1, ordering: .sequentiallyConsistent)  // open
        if sleepers > 0 { pthread_cond_broadcast(wake) }
        pthread_mutex_unlock(lock)

        while let i = claim(fromFront: true) {
            body(i)
            _ = pending.subtract(1, ordering: .acquiringAndReleasing)
        }
        // Closed before counting who is inside: a worker that joins after this sees the
        // region closed and leaves without touching `job` (its check and this one are
        // both sequentially consistent, so one of the two sees the other).
        generation.add(1, ordering: .sequentiallyConsistent)
        var spins = 0
        while !finished() && spins < spinLimit { spins += 1 }
        if !finished() {
            pthread_mutex_lock(lock)
            while !finished() {
                callerWaiting = true
                pthread_cond_wait(done, lock)
            }
            callerWaiting = false
            pthread_mutex_unlock(lock)
        }
        job = nil
        return true
    }

    /// The next unclaimed item from one end, or nil when none is left.
    @inline(__always) private func claim(fromFront: Bool) -> Int? {
        var old = ends.load(ordering: .relaxed)
        while true {
            let front = old & 0xFFFF_FFFF, back = old >> 32
            if front >= back { return nil }
            let new = fromFront ? old + 1 : (back - 1) << 32 | front
            let (exchanged, current) = ends.compareExchange(expected: old, desired: new, ordering: .relaxed)
            if exchanged { return fromFront ? front : back - 1 }
            old = current
        }
    }

    @inline(__always) private func finished() -> Bool {
        pending.load(ordering: .acquiring) == 0 && inside.load(ordering: .sequentiallyConsistent) == 0
    }

    private func notifyCaller() {
        pthread_mutex_lock(lock)
        if callerWaiting { pthread_cond_signal(done) }
        pthread_mutex_unlock(lock)
    }

    /// `seen`: the generation when the thread was asked for, so it joins the region that
    /// needed it even if it starts after the region opened.
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
            if current & 1 == 0 { continue }  // closed: wait for the next region
            inside.add(1, ordering: .sequentiallyConsistent)
            if generation.load(ordering: .sequentiallyConsistent) == current && index < jobWorkers, let body = job {
                while let i = claim(fromFront: false) {
                    body(i)
                    if pending.subtract(1, ordering: .acquiringAndReleasing).newValue == 0 { notifyCaller() }
                }
            }
            if inside.subtract(1, ordering: .sequentiallyConsistent).newValue == 0 { notifyCaller() }
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
