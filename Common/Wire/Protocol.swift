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
    /// Tools every worker looks for, beyond those its kinds require, so operators see
    /// what a host could run.
    public static let commonTools = ["ffmpeg", "ffprobe", "espeak-ng"]

    /// What this host offers: cores, memory, the job kinds it has runners for, and which
    /// of `tools` (plus ``commonTools``) are on its PATH, each with its version line.
    public static func probeHost(slots: Int? = nil, labels: [String: String] = [:], jobKinds: [String], tools: [String] = []) -> WireCapabilities {
        var caps = WireCapabilities()
        caps.cores = UInt32(ProcessInfo.processInfo.activeProcessorCount)
        caps.memoryBytes = ProcessInfo.processInfo.physicalMemory
        caps.slots = UInt32(slots ?? ProcessInfo.processInfo.activeProcessorCount)
        caps.labels = labels
        caps.jobKinds = jobKinds
        let path = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin"
        for tool in Set(commonTools + tools).sorted() {
            let candidates = path.split(separator: ":").map { "\($0)/\(tool)" }
            guard let found = candidates.first(where: { FileManager.default.isExecutableFile(atPath: $0) }) else { continue }
            caps.tools.append(tool)
            if let version = versionLine(of: found) { caps.toolVersions[tool] = version }
        }
        return caps
    }

    /// The first line `TOOL -version` (ffmpeg's spelling) or `TOOL --version` prints, or
    /// nil if neither answers within two seconds.
    static func versionLine(of executable: String) -> String? {
        for flag in ["-version", "--version"] {
            let process = Process()
            process.executableURL = URL(fileURLWithPath: executable)
            process.arguments = [flag]
            let out = Pipe()
            process.standardOutput = out
            process.standardError = FileHandle.nullDevice
            guard (try? process.run()) != nil else { continue }
            let deadline = Date().addingTimeInterval(2)
            while process.isRunning && Date() < deadline { usleep(10_000) }
            if process.isRunning { process.terminate(); continue }
            let text = String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
            if process.terminationStatus == 0, let line = text.split(separator: "\n").first {
                return String(line.prefix(200))
            }
        }
        return nil
    }
}
