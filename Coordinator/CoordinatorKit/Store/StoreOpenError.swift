/// The coordinator's store could not be opened; names the file and what to check.
public enum StoreOpenError: Error, Equatable, CustomStringConvertible, Sendable {
    case cannotOpen(path: String, reason: String)

    public var description: String {
        switch self {
        case let .cannotOpen(path, reason):
            return "cannot open the coordinator's store \(path): \(reason)"
        }
    }
}
