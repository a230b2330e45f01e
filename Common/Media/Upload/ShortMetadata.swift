/// What a platform shows with the video.
///
/// Guarantees nothing about length limits (YouTube: title ≤ 100 characters, Instagram:
/// caption ≤ 2200): the platform enforces them and its refusal comes back as
/// `UploadError.rejected` with the API's message.
public struct ShortMetadata: Sendable, Hashable {
    /// YouTube's `privacyStatus`; `private` by default so nothing goes public unreviewed.
    public enum Privacy: String, Sendable, Hashable {
        case `private`, unlisted, `public`
    }

    public var title: String
    public var description: String
    public var tags: [String]
    /// YouTube category id; 19 is "Travel & Events", the closest to property tours.
    public var categoryID: String
    public var privacy: Privacy

    public init(title: String, description: String, tags: [String] = [], categoryID: String = "19",
                privacy: Privacy = .private) {
        self.title = title
        self.description = description
        self.tags = tags
        self.categoryID = categoryID
        self.privacy = privacy
    }

    /// The Instagram caption: the title, a blank line, the description, then the tags as hashtags.
    public var instagramCaption: String {
        var parts = [title]
        if !description.isEmpty { parts.append(description) }
        let hashtags = tags.map { "#" + $0.filter { !$0.isWhitespace } }.filter { $0.count > 1 }
        if !hashtags.isEmpty { parts.append(hashtags.joined(separator: " ")) }
        return parts.joined(separator: "\n\n")
    }
}
