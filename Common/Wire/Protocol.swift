import Foundation

/// A task's number, unique across the coordinator's data directory.
public typealias TaskID = UInt64
/// One worker connection. A worker that reconnects gets a new session.
public typealias SessionID = String

/// Constants both sides of a Tower connection agree on.
public enum WireProtocol {
    /// Bumped on any incompatible change to tower.proto's meaning. A Hello with another
    /// version is refused with an error naming both.
    public static let version: UInt32 = 1
    /// The version string of this build, sent in Hello and recorded with every run.
    public static let binaryVersion = "tower 0.1.0"
    /// Blob chunk size: large enough to amortise per-frame costs, small enough that a
    /// heartbeat is never stuck behind more than a millisecond of bulk data.
    public static let blobChunkBytes = 1 << 20
}

extension WireCapabilities {
    /// What this host offers: cores, memory, and the external tools found on PATH.
    public static func probeHost(slots: Int? = nil, labels: [String: String] = [:], jobKinds: [String]) -> WireCapabilities {
        var caps = WireCapabilities()
        caps.cores = UInt32(ProcessInfo.processInfo.activeProcessorCount)
        caps.memoryBytes = ProcessInfo.processInfo.physicalMemory
        caps.slots = UInt32(slots ?? ProcessInfo.processInfo.activeProcessorCount)
        caps.labels = labels
        caps.jobKinds = jobKinds
        let path = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin"
        for tool in ["ffmpeg", "ffprobe", "espeak-ng"] {
            if path.split(separator: ":").contains(where: { FileManager.default.isExecutableFile(atPath: "\($0)/\(tool)") }) {
                caps.tools.append(tool)
            }
        }
        return caps
    }
}
