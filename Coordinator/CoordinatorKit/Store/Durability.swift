/// How hard the store works to keep a committed transaction across a power loss
/// (`durability:` in the coordinator's YAML). The store runs SQLite in WAL mode either way.
///
/// - ``normal`` (`synchronous = NORMAL`, the default): a crash of the coordinator process
///   loses nothing that was committed; a power loss or kernel crash may lose the last
///   transactions, never corrupts the file. Tasks whose results are lost simply run again.
/// - ``strict`` (`synchronous = FULL`): every commit waits for the WAL to reach the disk,
///   so a power loss loses nothing committed, at the cost of one fsync per write batch.
public enum Durability: String, CaseIterable, Sendable, Equatable {
    case normal
    case strict

    /// The value of SQLite's `synchronous` pragma this durability sets.
    public var synchronousPragma: String {
        switch self {
        case .normal: return "NORMAL"
        case .strict: return "FULL"
        }
    }
}
