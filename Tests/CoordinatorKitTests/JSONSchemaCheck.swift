import Foundation
import Wire

/// Checks a JSON value against the JSON Schema subset the API's OpenAPI document uses
/// (type, enum, properties, required, additionalProperties, items, oneOf, $ref into
/// components, format date-time, minimum). Returns every violation with its place, so a
/// failed test says exactly which field broke the contract.
struct JSONSchemaCheck {
    let document: JSONValue

    func violations(of value: JSONValue, against schema: JSONValue, at path: String = "$") -> [String] {
        if let ref = schema["$ref"]?.stringValue {
            guard let target = resolve(ref) else { return ["\(path): unresolvable $ref \(ref)"] }
            return violations(of: value, against: target, at: path)
        }
        if let options = schema["oneOf"]?.arrayValue {
            let matching = options.filter { violations(of: value, against: $0, at: path).isEmpty }.count
            return matching == 1 ? [] : ["\(path): matches \(matching) of the \(options.count) schemas of oneOf, expected exactly 1"]
        }
        var problems: [String] = []
        if let type = schema["type"] {
            let allowed = type.arrayValue?.compactMap(\.stringValue) ?? [type.stringValue ?? ""]
            guard allowed.contains(where: { Self.has(value, type: $0) }) else {
                return ["\(path): \(Self.typeName(value)) where the schema allows \(allowed.joined(separator: " or "))"]
            }
        }
        if let choices = schema["enum"]?.arrayValue, !choices.contains(value) {
            problems.append("\(path): \(value.text()) is not one of \(JSONValue.array(choices).text())")
        }
        if schema["format"]?.stringValue == "date-time", case let .string(text) = value, !Self.isRFC3339(text) {
            problems.append("\(path): \"\(text)\" is not an RFC 3339 date-time")
        }
        if let minimum = schema["minimum"], case let .integer(n) = value, case let .integer(m) = minimum, n < m {
            problems.append("\(path): \(n) is below the minimum \(m)")
        }
        if case let .object(fields) = value {
            let properties: [String: JSONValue]
            if case let .object(p)? = schema["properties"] { properties = p } else { properties = [:] }
            for key in schema["required"]?.arrayValue?.compactMap(\.stringValue) ?? [] where fields[key] == nil {
                problems.append("\(path): required field \"\(key)\" is missing")
            }
            for (key, field) in fields.sorted(by: { $0.key < $1.key }) {
                if let property = properties[key] {
                    problems += violations(of: field, against: property, at: "\(path).\(key)")
                } else if let extra = schema["additionalProperties"] {
                    if extra == .bool(false) {
                        problems.append("\(path): field \"\(key)\" is not in the schema")
                    } else if case .object = extra {
                        problems += violations(of: field, against: extra, at: "\(path).\(key)")
                    }
                }
            }
        }
        if case let .array(items) = value, let itemSchema = schema["items"] {
            for (i, item) in items.enumerated() { problems += violations(of: item, against: itemSchema, at: "\(path)[\(i)]") }
        }
        return problems
    }

    /// `#/components/schemas/Job` → that schema.
    func resolve(_ ref: String) -> JSONValue? {
        guard ref.hasPrefix("#/") else { return nil }
        var node: JSONValue? = document
        for part in ref.dropFirst(2).split(separator: "/") { node = node?[String(part)] }
        return node
    }

    /// The schema the document promises for a GET of `path` (a concrete path, matched
    /// against the document's templates) answering `status`.
    func responseSchema(path: String, status: Int) -> JSONValue? {
        guard case let .object(paths)? = document["paths"] else { return nil }
        let parts = path.split(separator: "/")
        for (template, item) in paths {
            let pattern = template.split(separator: "/")
            guard pattern.count == parts.count,
                  zip(pattern, parts).allSatisfy({ $0.hasPrefix("{") || $0 == $1 }) else { continue }
            return item["get"]?["responses"]?["\(status)"]?["content"]?["application/json"]?["schema"]
        }
        return nil
    }

    static func has(_ value: JSONValue, type: String) -> Bool {
        switch (type, value) {
        case ("null", .null), ("boolean", .bool), ("integer", .integer), ("string", .string), ("array", .array), ("object", .object): return true
        case ("number", .integer), ("number", .number): return true
        default: return false
        }
    }

    static func typeName(_ value: JSONValue) -> String {
        switch value {
        case .null: return "null"
        case .bool: return "a boolean"
        case .integer: return "an integer"
        case .number: return "a number"
        case .string: return "a string"
        case .array: return "an array"
        case .object: return "an object"
        }
    }

    static func isRFC3339(_ text: String) -> Bool {
        text.range(of: #"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$"#, options: .regularExpression) != nil
    }
}
