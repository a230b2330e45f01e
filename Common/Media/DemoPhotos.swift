import Foundation

/// Listing photos for the demo market, drawn by ffmpeg's own filters (no image files
/// in the repository, nothing fetched): a façade — sky, lawn, a block with a grid of
/// windows, a door — and a living room — walls, floor, a window, a sofa, a table. The
/// colours follow the listing id, so listings look different and the same id always
/// gets the same photos. Film grain keeps them from being flat (the photo analysis
/// ranks flat images as unsharp).
public enum DemoPhotos {
    static let walls = ["0xd9c7a7", "0xc9d6df", "0xe8d8c4", "0xb8c4b0", "0xe3c9c9", "0xcfcfcf"]
    static let accents = ["0x3b5b92", "0x8c3b3b", "0x3b7d5a", "0x6b4f8c", "0x9c7a2b", "0x2b6f7a"]
    static let size = (width: 1280, height: 960)

    /// Writes `<id>-1.jpg` (façade) and `<id>-2.jpg` (room) into `directory`; their names.
    public static func draw(listing id: Int, into directory: URL) async throws -> [String] {
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let wall = walls[abs(id) % walls.count], accent = accents[abs(id / walls.count) % accents.count]
        let floors = 2 + abs(id) % 3
        var names: [String] = []
        for (n, graph) in [(1, facade(wall: wall, accent: accent, floors: floors)), (2, room(wall: wall, accent: accent))] {
            let name = "\(id)-\(n).jpg"
            _ = try await ProcessRunner.check("ffmpeg", ["-v", "error", "-y", "-f", "lavfi", "-i", graph, "-frames:v", "1", "-q:v", "3",
                                                 directory.appendingPathComponent(name).path], timeout: 30)
            names.append(name)
        }
        return names
    }

    static func box(_ x: Int, _ y: Int, _ w: Int, _ h: Int, _ color: String, thickness: String = "fill") -> String {
        "drawbox=x=\(x):y=\(y):w=\(w):h=\(h):color=\(color):t=\(thickness)"
    }

    static func facade(wall: String, accent: String, floors: Int) -> String {
        let top = 760 - floors * 170
        var parts = ["color=c=0x8ec5ea:s=\(size.width)x\(size.height):d=1",
                     box(0, 760, size.width, 200, "0x5f8a3f"),
                     box(240, top, 800, 760 - top, wall),
                     box(220, top - 40, 840, 40, "0x4a4a4a")]
        for row in 0..<floors {
            for col in 0..<4 where !(row == floors - 1 && col == 2) {
                let x = 300 + col * 190, y = top + 40 + row * 170
                parts.append(box(x, y, 110, 90, "0xe6f2ff"))
                parts.append(box(x, y, 110, 90, accent, thickness: "6"))
            }
        }
        parts.append(box(590, 630, 100, 130, accent))
        parts.append("noise=alls=7:allf=t")
        return parts.joined(separator: ",")
    }

    static func room(wall: String, accent: String) -> String {
        ["color=c=\(wall):s=\(size.width)x\(size.height):d=1",
         box(0, 620, size.width, 340, "0xa27b5c"),
         box(0, 610, size.width, 14, "0xf4f4f4"),
         box(760, 150, 380, 300, "0xd6ecff"),
         box(760, 150, 380, 300, "0xf8f8f8", thickness: "14"),
         box(948, 150, 4, 300, "0xf8f8f8"),
         box(120, 440, 460, 100, accent),
         box(120, 520, 460, 160, accent),
         box(100, 500, 40, 180, accent), box(560, 500, 40, 180, accent),
         box(650, 650, 240, 30, "0x5b3a29"), box(670, 680, 14, 80, "0x5b3a29"), box(856, 680, 14, 80, "0x5b3a29"),
         "noise=alls=7:allf=t"].joined(separator: ",")
    }
}
