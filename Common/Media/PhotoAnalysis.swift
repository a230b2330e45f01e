import Foundation

/// One dominant colour of a photo and the share of its pixels near it.
public struct DominantColor: Sendable, Equatable, Codable {
    public var red: UInt8, green: UInt8, blue: UInt8
    /// Fraction of the analysed pixels in this colour's bin, 0…1.
    public var share: Double

    /// "#RRGGBB".
    public var hex: String { String(format: "#%02X%02X%02X", red, green, blue) }
}

/// Why a photo is not used while better ones exist.
public enum PhotoRejection: String, Sendable, Equatable, Codable {
    case tooDark, tooBright, blurry, tooSmall
}

/// Measurements of one photo, all computed locally from a 256-pixel-wide luma/RGB frame
/// decoded by ffmpeg, so they are comparable across photos of any size and format.
public struct PhotoMetrics: Sendable, Equatable, Codable {
    /// The original pixel size (from ffprobe).
    public var width: Int, height: Int
    /// Mean luma (BT.601), 0 = black … 1 = white.
    public var brightness: Double
    /// Standard deviation of luma, 0…0.5.
    public var contrast: Double
    /// Variance of the 4-neighbour Laplacian of luma (0–255 scale) on the 256-wide frame:
    /// about 0 for a flat or very blurred picture, hundreds for a crisp one.
    public var sharpness: Double
    /// Up to three colours, most common first (coarse 4×4×4 RGB histogram; deterministic).
    public var dominantColors: [DominantColor]
}

/// The analysis of one photo: local metrics always, an external score when a vision
/// endpoint answered, the resulting quality and whether the photo is rejected.
public struct PhotoReport: Sendable, Equatable, Codable {
    public enum ScoreSource: String, Sendable, Codable { case local, vision }
    public var url: URL
    public var metrics: PhotoMetrics
    /// 0…1, higher is better. From the vision endpoint when `source == .vision`.
    public var quality: Double
    public var source: ScoreSource
    /// Empty when the photo is fit to use.
    public var rejections: [PhotoRejection]
    public var isAcceptable: Bool { rejections.isEmpty }
}

/// The thresholds and weights of photo selection. Defaults were measured on ffmpeg's
/// testsrc2 pattern: crisp ≈ 400 Laplacian variance, gblur σ=12 ≈ 8, eq=brightness=-0.6 ≈ 0.18 mean luma.
public struct PhotoPolicy: Sendable, Equatable {
    public var minBrightness = 0.25
    public var maxBrightness = 0.92
    public var minSharpness = 40.0
    /// Shorter side in pixels; the short is 1080 wide, so much less than half of that looks soft.
    public var minShortSide = 480

    public init() {}

    func rejections(_ m: PhotoMetrics) -> [PhotoRejection] {
        var r: [PhotoRejection] = []
        if m.brightness < minBrightness { r.append(.tooDark) }
        if m.brightness > maxBrightness { r.append(.tooBright) }
        if m.sharpness < minSharpness { r.append(.blurry) }
        if min(m.width, m.height) < minShortSide { r.append(.tooSmall) }
        return r
    }

    /// The local quality score, 0…1: sharpness 35 %, exposure 25 %, contrast 20 %,
    /// resolution 20 %. Sharpness is scored on a log scale (variance 1000 → 1) because
    /// the Laplacian variance spans orders of magnitude between photos.
    func quality(_ m: PhotoMetrics) -> Double {
        let sharp = min(1, log10(1 + max(0, m.sharpness)) / 3)
        let exposure = max(0, 1 - abs(m.brightness - 0.55) / 0.45)
        let contrast = min(1, m.contrast / 0.25)
        let resolution = min(1, Double(m.width * m.height) / 2_073_600)   // 1080×1920
        return 0.35 * sharp + 0.25 * exposure + 0.2 * contrast + 0.2 * resolution
    }
}

/// Errors analysing one photo.
public enum PhotoError: Error, Equatable, CustomStringConvertible {
    /// ffmpeg or ffprobe could not read it (corrupt, not an image, missing).
    case undecodable(URL, String)
    public var description: String {
        switch self { case let .undecodable(u, why): return "cannot decode \(u.lastPathComponent): \(why)" }
    }
}

/// Analyses listing photos and picks the ones a short shows.
///
/// Guarantees: analysis of a photo is deterministic for its bytes; `choose` never returns
/// a rejected photo while an acceptable one exists, never returns more than `max`, and
/// returns an empty list only when no photo could be decoded at all.
public struct PhotoAnalyzer: Sendable {
    public var policy: PhotoPolicy
    /// Optional external scorer; any failure of it falls back to the local score.
    public var vision: VisionClient?
    /// Per-photo limit on ffmpeg/ffprobe.
    public var toolTimeout: Double

    public init(policy: PhotoPolicy = PhotoPolicy(), vision: VisionClient? = nil, toolTimeout: Double = 30) {
        self.policy = policy; self.vision = vision; self.toolTimeout = toolTimeout
    }

    /// Analyses one photo.
    public func analyze(_ url: URL) async throws -> PhotoReport {
        let metrics = try await Self.measure(url, timeout: toolTimeout)
        var quality = policy.quality(metrics)
        var source = PhotoReport.ScoreSource.local
        if let vision, let scored = await vision.score(imageAt: url) {
            quality = scored.quality
            source = .vision
        }
        return PhotoReport(url: url, metrics: metrics, quality: quality, source: source, rejections: policy.rejections(metrics))
    }

    /// The result of `choose`: the photos to show in order, every report, and the photos
    /// skipped because they could not be read (with why).
    public struct Selection: Sendable {
        public var chosen: [PhotoReport]
        public var reports: [PhotoReport]
        public var unreadable: [(url: URL, reason: String)]
    }

    /// Picks and orders up to `max` photos. The rule: acceptable photos (not too dark,
    /// too bright, blurry or small) by quality, best first (ties keep the input order);
    /// rejected photos are used only when no acceptable one exists, again best first, so a
    /// listing with only poor photos still gets a short. Unreadable photos are skipped.
    public func choose(_ photos: [URL], max: Int = 5) async -> Selection {
        var reports: [PhotoReport] = []
        var unreadable: [(URL, String)] = []
        for url in photos {
            do { reports.append(try await analyze(url)) } catch { unreadable.append((url, "\(error)")) }
        }
        return Selection(chosen: Self.order(reports, max: max), reports: reports, unreadable: unreadable)
    }

    /// The ordering rule of `choose`, on reports already made.
    public static func order(_ reports: [PhotoReport], max: Int) -> [PhotoReport] {
        let ranked = reports.enumerated().sorted { a, b in
            a.element.quality != b.element.quality ? a.element.quality > b.element.quality : a.offset < b.offset
        }.map(\.element)
        let acceptable = ranked.filter(\.isAcceptable)
        return Array((acceptable.isEmpty ? ranked : acceptable).prefix(Swift.max(0, max)))
    }

    // MARK: Measuring

    static let analysisWidth = 256

    /// Decodes the photo to a 256-wide RGB frame and its original size, then measures it.
    public static func measure(_ url: URL, timeout: Double = 30) async throws -> PhotoMetrics {
        let probe = try await ProcessRunner.run("ffprobe", ["-v", "error", "-select_streams", "v:0", "-show_entries",
                                                            "stream=width,height", "-of", "json", url.path], timeout: timeout).0
        guard probe.status == 0,
              let json = try? JSONSerialization.jsonObject(with: probe.stdout) as? [String: Any],
              let stream = (json["streams"] as? [[String: Any]])?.first,
              let width = stream["width"] as? Int, let height = stream["height"] as? Int, width > 0, height > 0
        else { throw PhotoError.undecodable(url, "ffprobe: " + (probe.stderrTail.isEmpty ? "no video stream" : probe.stderrTail)) }

        let decoded = try await ProcessRunner.run("ffmpeg", ["-v", "error", "-i", url.path, "-frames:v", "1",
                                                             "-vf", "scale=\(analysisWidth):-2", "-f", "rawvideo",
                                                             "-pix_fmt", "rgb24", "-"], timeout: timeout).0
        let rowBytes = analysisWidth * 3
        guard decoded.status == 0, decoded.stdout.count >= rowBytes * 3 else {
            throw PhotoError.undecodable(url, "ffmpeg: " + decoded.stderrTail)
        }
        let rows = decoded.stdout.count / rowBytes
        return metrics(rgb: [UInt8](decoded.stdout.prefix(rows * rowBytes)), width: analysisWidth, height: rows,
                       originalWidth: width, originalHeight: height)
    }

    /// The measurements of a packed RGB24 frame; pure, so it is tested without ffmpeg.
    static func metrics(rgb: [UInt8], width w: Int, height h: Int, originalWidth: Int, originalHeight: Int) -> PhotoMetrics {
        let n = w * h
        var luma = [Double](repeating: 0, count: n)
        var sum = 0.0
        // 4×4×4 bins: per bin a count and RGB sums, so a bin's colour is the mean of its pixels.
        var binCount = [Int](repeating: 0, count: 64)
        var binSum = [Int](repeating: 0, count: 64 * 3)
        for i in 0..<n {
            let r = Int(rgb[3 * i]), g = Int(rgb[3 * i + 1]), b = Int(rgb[3 * i + 2])
            let y = 0.299 * Double(r) + 0.587 * Double(g) + 0.114 * Double(b)
            luma[i] = y; sum += y
            let bin = (r >> 6) << 4 | (g >> 6) << 2 | (b >> 6)
            binCount[bin] += 1
            binSum[3 * bin] += r; binSum[3 * bin + 1] += g; binSum[3 * bin + 2] += b
        }
        let mean = sum / Double(n)
        var sq = 0.0
        for y in luma { sq += (y - mean) * (y - mean) }
        let std = (sq / Double(n)).squareRoot()

        // Laplacian over the interior pixels; its variance is the usual focus measure.
        var lapSum = 0.0, lapSq = 0.0, count = 0.0
        if w >= 3 && h >= 3 {
            for y in 1..<(h - 1) {
                for x in 1..<(w - 1) {
                    let i = y * w + x
                    let l = luma[i - 1] + luma[i + 1] + luma[i - w] + luma[i + w] - 4 * luma[i]
                    lapSum += l; lapSq += l * l; count += 1
                }
            }
        }
        let lapMean = count > 0 ? lapSum / count : 0
        let lapVar = count > 0 ? max(0, lapSq / count - lapMean * lapMean) : 0

        let top = (0..<64).filter { binCount[$0] > 0 }
            .sorted { binCount[$0] != binCount[$1] ? binCount[$0] > binCount[$1] : $0 < $1 }
            .prefix(3)
        let colors = top.map { bin -> DominantColor in
            let c = binCount[bin]
            return DominantColor(red: UInt8(binSum[3 * bin] / c), green: UInt8(binSum[3 * bin + 1] / c),
                                 blue: UInt8(binSum[3 * bin + 2] / c), share: Double(c) / Double(n))
        }
        return PhotoMetrics(width: originalWidth, height: originalHeight, brightness: mean / 255, contrast: std / 255,
                            sharpness: lapVar, dominantColors: colors)
    }
}
