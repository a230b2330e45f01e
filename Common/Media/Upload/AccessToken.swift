/// An OAuth access token read from configuration.
///
/// Guarantees: the secret never appears in `description`, `debugDescription`, string
/// interpolation, `dump` or a `Logger` metadata value built from this type; the only way
/// to read it is `revealedForRequest`, which the upload clients call when they build the
/// one header or form field the platform expects.
public struct AccessToken: Sendable, Hashable, CustomStringConvertible, CustomDebugStringConvertible,
    CustomReflectable
{
    private let secret: String

    public init(_ secret: String) {
        self.secret = secret
    }

    /// The raw token, for the `Authorization` header or the `access_token` field only.
    var revealedForRequest: String { secret }

    public var description: String { "AccessToken(<redacted>)" }
    public var debugDescription: String { description }
    // `dump` and the debugger walk Mirror children; give them nothing to walk.
    public var customMirror: Mirror { Mirror(self, children: []) }

    /// `text` with every occurrence of the token replaced, for anything that came back
    /// from a server (an API may echo a request, token included, in an error message).
    func redacting(_ text: String) -> String {
        guard !secret.isEmpty else { return text }
        return text.replacingOccurrences(of: secret, with: "<redacted>")
    }
}
