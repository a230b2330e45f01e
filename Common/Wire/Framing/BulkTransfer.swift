#if canImport(Glibc)
import Glibc
#endif
import Foundation
import NIOCore

/// Settings that make blob streams (1 MiB chunks, datasets, videos) cheap without costing
/// the many small-message connections anything.
public enum BulkTransfer {
    /// Socket reads start at 2 KiB and may grow to 256 KiB while a peer streams. NIO's
    /// default stops at 64 KiB, which splits every 1 MiB chunk into 16+ reads, each a
    /// syscall, a decrypt call and a trip through the pipeline; the adaptive allocator
    /// shrinks back when reads get small, so idle connections stay small.
    public static let receiveAllocator = AdaptiveRecvByteBufferAllocator(minimum: 64, initial: 2048, maximum: 256 * 1024)

    /// Largest allocation glibc serves from the heap rather than with its own `mmap`: the
    /// most its own dynamic threshold would ever reach (32 MiB on 64-bit).
    public static let mmapThresholdBytes: Int32 = 32 << 20

    /// Free memory at the top of the heap kept rather than returned to the kernel: twice
    /// the mmap threshold, which is what glibc sets itself when it raises its threshold
    /// dynamically — but setting the threshold by hand leaves this at 128 KiB, so every
    /// freed stream buffer shrank the heap and the next one faulted its pages back in
    /// (1 MiB frames: 1,099 → 1,555 MB/s, envelopes 672 → 1,281, same binary and run).
    public static let trimThresholdBytes: Int32 = 64 << 20

    /// Keeps stream buffers in the heap. glibc serves allocations of 128 KiB and more with
    /// `mmap` and returns them with `munmap`, so each 1 MiB frame buffer costs ~256 page
    /// faults. The buffers are larger than the frames: NIO rounds capacities up to powers
    /// of two (a 1 MiB chunk and its header take 2 MiB), and NIOSSL encrypts a flush of
    /// several queued chunks into one buffer (8 MiB and more). With the threshold at 4 MiB
    /// a 1 MiB stream ran at 1,006 MB/s, at 32 MiB 1,652 MB/s, at glibc's fixed 128 KiB
    /// 931 MB/s (Benchmarks/README.md). An operator's own `MALLOC_MMAP_THRESHOLD_` and
    /// `MALLOC_TRIM_THRESHOLD_` win. Call once, at start.
    public static func tuneAllocator() {
        #if canImport(Glibc)
        // Swift's Glibc module leaves out <malloc.h>; mallopt is looked up instead;
        // M_MMAP_THRESHOLD is glibc's -3 and M_TRIM_THRESHOLD -1.
        typealias Mallopt = @convention(c) (Int32, Int32) -> Int32
        guard let symbol = dlsym(UnsafeMutableRawPointer(bitPattern: 0), "mallopt") else { return }
        let mallopt = unsafeBitCast(symbol, to: Mallopt.self)
        let environment = ProcessInfo.processInfo.environment
        if environment["MALLOC_MMAP_THRESHOLD_"] == nil { _ = mallopt(-3, mmapThresholdBytes) }
        if environment["MALLOC_TRIM_THRESHOLD_"] == nil { _ = mallopt(-1, trimThresholdBytes) }
        #endif
    }
}
