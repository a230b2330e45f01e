import Dispatch
import Foundation

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

/// Cores available to this process; the default thread count.
var availableCores: Int { max(1, ProcessInfo.processInfo.activeProcessorCount) }

struct UncheckedSendable<T>: @unchecked Sendable {
    let value: T
    init(_ value: T) { self.value = value }
}
