import Foundation

/// Marketing shorts: one task per listing renders a verified 1080×1920 H.264/AAC short
/// (photos → script → speech → ffmpeg), stored as a blob and listed by `coordinator shorts`
/// waiting for review. Its tasks go only to workers with ffmpeg, ffprobe and espeak-ng.
public enum RenderKind: JobKindDescriptor {
    public typealias Spec = WireRenderSpec
    public typealias Summary = WireRenderSummary
    public static let name = "render"
    public static let requiredTools = ["ffmpeg", "ffprobe", "espeak-ng"]

    public static var summaryShape: JSONShape<WireRenderSummary>? {
        JSONShape([
            .strings("short_ids", \.shortIds, "The rendered shorts, waiting for review."),
            .integer("rendered", \.rendered, "Shorts rendered."),
        ])
    }

    public static func describe(_ s: WireRenderSummary) -> [String] {
        var lines = ["render: \(s.rendered) short\(s.rendered == 1 ? "" : "s") rendered, waiting for review (`coordinator shorts`)"]
        lines += s.shortIds.map { "  \($0)  (`coordinator shorts get \($0) --out FILE`)" }
        return lines
    }
}
