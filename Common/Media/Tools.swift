import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Finds the external programs Media drives (ffmpeg, ffprobe, espeak-ng). A worker
/// advertises the `ffmpeg` capability only when `available("ffmpeg")` is true.
public enum Tools {
    /// The absolute path of `name` on PATH (then /usr/bin, /usr/local/bin), or nil.
    public static func path(_ name: String) -> String? {
        if name.hasPrefix("/") { return FileManager.default.isExecutableFile(atPath: name) ? name : nil }
        let pathDirs = (ProcessInfo.processInfo.environment["PATH"] ?? "").split(separator: ":").map(String.init)
        for dir in pathDirs + ["/usr/bin", "/usr/local/bin"] where !dir.isEmpty {
            let candidate = dir + "/" + name
            if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
        }
        return nil
    }

    /// Whether `name` can be run.
    public static func available(_ name: String) -> Bool { path(name) != nil }

    /// The Noto CJK font the captions and overlays use (it has Hangul and Latin), from
    /// Debian's fonts-noto-cjk.
    public static func cjkFont() -> URL? {
        let candidates = [
            "/usr/share/fonts/opentype/noto/NotoSansCJK-Bold.ttc",
            "/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc",
            "/usr/share/fonts/noto-cjk/NotoSansCJK-Bold.ttc",
        ]
        return candidates.first { FileManager.default.fileExists(atPath: $0) }.map { URL(fileURLWithPath: $0) }
    }
}

/// An error running an external program; each case carries what an operator needs to act.
public enum ToolError: Error, Equatable, CustomStringConvertible {
    /// The program is not installed (install-deps.sh --media installs it).
    case missing(String)
    /// It exited with a non-zero status; `lastLines` is the tail of its stderr.
    case failed(tool: String, status: Int32, lastLines: String)
    /// It ran longer than allowed and was killed.
    case timedOut(tool: String, seconds: Double)
    /// Its output could not be understood.
    case unreadableOutput(tool: String, detail: String)

    public var description: String {
        switch self {
        case .missing(let t): return "\(t) is not installed (run Deploy/install-deps.sh --media)"
        case let .failed(t, s, lines): return "\(t) exited with status \(s): \(lines)"
        case let .timedOut(t, s): return "\(t) did not finish within \(s) s and was killed"
        case let .unreadableOutput(t, d): return "\(t) produced unreadable output: \(d)"
        }
    }
}

/// Runs a program to completion off the Swift concurrency pool. Every call returns only
/// after the child has exited and been reaped, so a caller never leaves a process behind.
enum ProcessRunner {
    struct Output: Sendable {
        var status: Int32
        var stdout: Data
        var stderr: Data
        var stderrTail: String { ProcessRunner.tail(stderr) }
    }

    /// Runs `tool` with `arguments`, killing it after `timeout` seconds.
    /// `onStdout`, when given, receives stdout chunks as they arrive (and stdout is not
    /// collected); `shouldKill` is polled every 50 ms and kills the child when true.
    static func run(_ tool: String, _ arguments: [String], timeout: Double, in directory: URL? = nil,
                    onStdout: (@Sendable (Data) -> Void)? = nil,
                    shouldKill: (@Sendable () -> Bool)? = nil) async throws -> (Output, killedByRequest: Bool) {
        guard let executable = Tools.path(tool) else { throw ToolError.missing(tool) }
        return try await withCheckedThrowingContinuation { continuation in
            // A plain thread rather than the cooperative pool: the work below blocks on
            // pipes and waitpid, and the pool has only as many threads as cores.
            let thread = Thread {
                do {
                    let result = try runBlocking(executable: executable, name: tool, arguments: arguments, timeout: timeout, directory: directory,
                                                 onStdout: onStdout, shouldKill: shouldKill)
                    continuation.resume(returning: result)
                } catch {
                    continuation.resume(throwing: error)
                }
            }
            thread.start()
        }
    }

    /// Convenience: run and require exit status 0, returning stdout.
    static func check(_ tool: String, _ arguments: [String], timeout: Double, in directory: URL? = nil) async throws -> Data {
        let (out, _) = try await run(tool, arguments, timeout: timeout, in: directory)
        guard out.status == 0 else { throw ToolError.failed(tool: tool, status: out.status, lastLines: out.stderrTail) }
        return out.stdout
    }

    private static func runBlocking(executable: String, name: String, arguments: [String], timeout: Double, directory: URL?,
                                    onStdout: (@Sendable (Data) -> Void)?,
                                    shouldKill: (@Sendable () -> Bool)?) throws -> (Output, killedByRequest: Bool) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        if let directory { process.currentDirectoryURL = directory }
        let outPipe = Pipe(), errPipe = Pipe()
        process.standardOutput = outPipe
        process.standardError = errPipe
        process.standardInput = FileHandle.nullDevice
        try process.run()
        let pid = process.processIdentifier
        let state = KillState()

        // stderr is drained on its own thread so a chatty child never blocks on a full pipe
        // while we wait on stdout.
        let errBox = DataBox()
        let errDone = DispatchSemaphore(value: 0)
        let errThread = Thread {
            errBox.data = errPipe.fileHandleForReading.readDataToEndOfFile()
            errDone.signal()
        }
        errThread.start()

        // The watchdog enforces the timeout and the caller's stop request; it kills with
        // SIGKILL because a render being abandoned has nothing worth flushing.
        let finished = DispatchSemaphore(value: 0)
        let watchdog = Thread {
            let deadline = Date().addingTimeInterval(timeout)
            while finished.wait(timeout: .now() + 0.05) == .timedOut {
                if let shouldKill, shouldKill() {
                    state.set(.requested); kill(pid, SIGKILL); break
                }
                if Date() >= deadline {
                    state.set(.timedOut); kill(pid, SIGKILL); break
                }
            }
        }
        watchdog.start()

        var stdout = Data()
        let reader = outPipe.fileHandleForReading
        while true {
            let chunk = reader.availableData
            if chunk.isEmpty { break }
            if let onStdout { onStdout(chunk) } else { stdout.append(chunk) }
        }
        process.waitUntilExit()
        finished.signal()
        errDone.wait()
        let output = Output(status: process.terminationStatus, stdout: stdout, stderr: errBox.data)
        switch state.get() {
        case .timedOut: throw ToolError.timedOut(tool: name, seconds: timeout)
        case .requested: return (output, true)
        case .none: return (output, false)
        }
    }

    /// The last few non-empty lines of a program's stderr, for error messages.
    static func tail(_ data: Data, lines: Int = 6) -> String {
        let text = String(decoding: data, as: UTF8.self)
        return text.split(whereSeparator: \.isNewline).suffix(lines).joined(separator: " | ")
    }
}

private final class DataBox: @unchecked Sendable {
    // Written once by the stderr thread before it signals; read only after the wait.
    var data = Data()
}

private final class KillState: @unchecked Sendable {
    enum Reason { case none, timedOut, requested }
    private let lock = NSLock()
    private var reason = Reason.none
    func set(_ r: Reason) { lock.lock(); if reason == .none { reason = r }; lock.unlock() }
    func get() -> Reason { lock.lock(); defer { lock.unlock() }; return reason }
}
