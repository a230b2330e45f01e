import Foundation
@testable import Media

/// Test inputs made on the spot with ffmpeg's generators: no files from outside.
enum Fixtures {
    static func tempDir(_ name: String = #function) throws -> URL {
        let safe = name.filter { $0.isLetter || $0.isNumber }
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("media-\(safe)-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        return dir
    }

    /// Renders one frame of a lavfi source (plus optional filters) to `name` in `dir`.
    static func photo(_ name: String, in dir: URL, source: String = "testsrc2=size=1280x960", filters: String? = nil) async throws -> URL {
        let out = dir.appendingPathComponent(name)
        var args = ["-v", "error", "-y", "-f", "lavfi", "-i", source]
        if let filters { args += ["-vf", filters] }
        _ = try await ProcessRunner.check("ffmpeg", args + ["-frames:v", "1", out.path], timeout: 30)
        return out
    }

    static let sharp = (name: "sharp.png", source: "testsrc2=size=1280x960", filters: String?.none)
    static let blurry = (name: "blurry.png", source: "testsrc2=size=1280x960", filters: String?("gblur=sigma=12"))
    static let dark = (name: "dark.png", source: "testsrc2=size=1280x960", filters: String?("eq=brightness=-0.6"))

    static let richFacts = ListingFacts(id: 4217, price: 1250, areaM2: 84.3, rooms: 3, region: "Mapo", subwayDistanceM: 350,
                                        schoolScore: 78, expectedYield: 3.6, newBuild: true,
                                        reasons: ["close to the subway", "good school district", "attractive rental yield"])
    static let sparseFacts = ListingFacts(id: 9, price: 640, areaM2: 59, rooms: 2, region: "Nowon", expectedYield: 4.1, newBuild: false)

    static var haveMediaTools: Bool { Tools.available("ffmpeg") && Tools.available("ffprobe") }
    static var haveSpeech: Bool { Tools.available("espeak-ng") && Tools.available("ffprobe") }
    static var canRender: Bool { haveMediaTools && Tools.available("espeak-ng") && Tools.cjkFont() != nil }
}

/// Collects values from @Sendable callbacks.
final class Recorder<T>: @unchecked Sendable {
    private let lock = NSLock()
    private var items: [T] = []
    func append(_ x: T) { lock.lock(); items.append(x); lock.unlock() }
    var values: [T] { lock.lock(); defer { lock.unlock() }; return items }
}

/// A flag set from one place and read from callbacks.
final class Flag: @unchecked Sendable {
    private let lock = NSLock()
    private var value = false
    private var setAt: Date?
    func set() { lock.lock(); if !value { value = true; setAt = Date() }; lock.unlock() }
    var isSet: Bool { lock.lock(); defer { lock.unlock() }; return value }
    var time: Date? { lock.lock(); defer { lock.unlock() }; return setAt }
}
