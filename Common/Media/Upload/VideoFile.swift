import Foundation

/// A finished short on disk, read a range at a time, so a chunked upload holds at most
/// one chunk in memory whatever the video's size.
final class VideoFile {
    let url: URL
    let size: Int
    private let handle: FileHandle

    init(_ url: URL) throws(UploadError) {
        guard url.isFileURL else {
            throw .unreadableFile(path: url.absoluteString, reason: "not a file URL")
        }
        do {
            let attributes = try FileManager.default.attributesOfItem(atPath: url.path)
            guard let size = (attributes[.size] as? NSNumber)?.intValue else {
                throw UploadError.unreadableFile(path: url.path, reason: "size unknown")
            }
            guard size > 0 else { throw UploadError.unreadableFile(path: url.path, reason: "empty file") }
            self.size = size
            self.handle = try FileHandle(forReadingFrom: url)
        } catch let error as UploadError {
            throw error
        } catch {
            throw .unreadableFile(path: url.path, reason: error.localizedDescription)
        }
        self.url = url
    }

    deinit {
        try? handle.close()
    }

    /// The bytes `range` of the file; fails if the file shrank since it was opened.
    func read(_ range: Range<Int>) throws(UploadError) -> Data {
        do {
            try handle.seek(toOffset: UInt64(range.lowerBound))
            var data = Data(capacity: range.count)
            // read(upToCount:) may return less than asked near a pipe or network file; loop.
            while data.count < range.count {
                guard let piece = try handle.read(upToCount: range.count - data.count), !piece.isEmpty else {
                    throw UploadError.unreadableFile(path: url.path, reason: "file ended at \(range.lowerBound + data.count) of \(size) bytes")
                }
                data.append(piece)
            }
            return data
        } catch let error as UploadError {
            throw error
        } catch {
            throw .unreadableFile(path: url.path, reason: error.localizedDescription)
        }
    }
}
