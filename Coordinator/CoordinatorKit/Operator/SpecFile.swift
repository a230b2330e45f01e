import Foundation
import Wire
import Yams

/// A job spec as an operator writes it — YAML or JSON, the fields of the kind's spec
/// message — turned into the protobuf JSON the coordinator's planner for that kind reads.
/// The client needs no knowledge of the kind.
public enum SpecFile {
    public static func json(fromFile path: String) throws -> Data {
        let text: String
        do { text = try String(contentsOfFile: path, encoding: .utf8) }
        catch { throw WireError.invalidArgument("cannot read the spec file \(path): \(error.localizedDescription)") }
        return try json(from: text, path: path)
    }

    public static func json(from text: String, path: String = "spec") throws -> Data {
        let value: Any?
        do { value = try Yams.load(yaml: text) }
        catch { throw WireError.invalidArgument("\(path) is neither YAML nor JSON: \(error)") }
        guard let mapping = value as? [String: Any] else {
            throw WireError.invalidArgument("\(path) must be a mapping of the spec's fields (e.g. `tasks: 10`), got \(value.map { "\(type(of: $0))" } ?? "nothing")")
        }
        guard JSONSerialization.isValidJSONObject(mapping) else {
            throw WireError.invalidArgument("\(path) holds values JSON cannot carry (dates or binary); write them as strings")
        }
        return try JSONSerialization.data(withJSONObject: mapping, options: [.sortedKeys])
    }
}
