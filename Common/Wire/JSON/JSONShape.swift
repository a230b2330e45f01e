import Foundation

/// One field of a JSON object the API serves, declared once: its name, its JSON Schema
/// and how to read it from the message it comes from. The response and the OpenAPI
/// document are both made from the same list, so they cannot disagree.
public struct JSONField<Source> {
    public let name: String
    public let schema: JSONValue
    public let value: (Source) -> JSONValue

    public init(_ name: String, schema: JSONValue, description: String, _ value: @escaping (Source) -> JSONValue) {
        self.name = name
        var schema = schema
        if case var .object(o) = schema {
            o["description"] = .string(description)
            schema = .object(o)
        }
        self.schema = schema
        self.value = value
    }

    public static func integer<N: BinaryInteger>(_ name: String, _ path: KeyPath<Source, N>, _ description: String) -> JSONField {
        JSONField(name, schema: ["type": "integer"], description: description) { .integer(Int64(clamping: $0[keyPath: path])) }
    }

    public static func number(_ name: String, _ path: KeyPath<Source, Double>, _ description: String) -> JSONField {
        JSONField(name, schema: ["type": "number"], description: description) { .number($0[keyPath: path]) }
    }

    public static func boolean(_ name: String, _ path: KeyPath<Source, Bool>, _ description: String) -> JSONField {
        JSONField(name, schema: ["type": "boolean"], description: description) { .bool($0[keyPath: path]) }
    }

    public static func string(_ name: String, _ path: KeyPath<Source, String>, _ description: String) -> JSONField {
        JSONField(name, schema: ["type": "string"], description: description) { .string($0[keyPath: path]) }
    }

    /// A string the protocol leaves empty when there is none, served as `null` then.
    public static func optionalString(_ name: String, _ path: KeyPath<Source, String>, _ description: String) -> JSONField {
        JSONField(name, schema: ["type": ["string", "null"]], description: description) { s in
            let v = s[keyPath: path]
            return v.isEmpty ? .null : .string(v)
        }
    }

    public static func strings(_ name: String, _ path: KeyPath<Source, [String]>, _ description: String) -> JSONField {
        JSONField(name, schema: ["type": "array", "items": ["type": "string"]], description: description) { .array($0[keyPath: path].map(JSONValue.string)) }
    }

    public static func stringMap(_ name: String, _ path: KeyPath<Source, [String: String]>, _ description: String) -> JSONField {
        JSONField(name, schema: ["type": "object", "additionalProperties": ["type": "string"]], description: description) {
            .object($0[keyPath: path].mapValues(JSONValue.string))
        }
    }

    public static func numberMap(_ name: String, _ path: KeyPath<Source, [String: Double]>, _ description: String) -> JSONField {
        JSONField(name, schema: ["type": "object", "additionalProperties": ["type": "number"]], description: description) {
            .object($0[keyPath: path].mapValues(JSONValue.number))
        }
    }

    public static func integerMap<N: BinaryInteger>(_ name: String, _ path: KeyPath<Source, [String: N]>, _ description: String) -> JSONField {
        JSONField(name, schema: ["type": "object", "additionalProperties": ["type": "integer"]], description: description) {
            .object($0[keyPath: path].mapValues { .integer(Int64(clamping: $0)) })
        }
    }

    /// Epoch milliseconds as RFC 3339 text (UTC, milliseconds); 0 means "not yet" and is
    /// served as `null` when `optional`.
    public static func time(_ name: String, _ path: KeyPath<Source, Int64>, optional: Bool = false, _ description: String) -> JSONField {
        JSONField(name, schema: ["type": optional ? ["string", "null"] : "string", "format": "date-time"], description: description) { s in
            let ms = s[keyPath: path]
            return optional && ms == 0 ? .null : .string(JSONTime.rfc3339(ms))
        }
    }
}

/// An object made of ``JSONField``s: renders a message and describes itself.
public struct JSONShape<Source> {
    public let fields: [JSONField<Source>]

    public init(_ fields: [JSONField<Source>]) { self.fields = fields }

    public func render(_ source: Source) -> JSONValue {
        .object(Dictionary(uniqueKeysWithValues: fields.map { ($0.name, $0.value(source)) }))
    }

    /// Every field required and no other allowed: a client may rely on each key.
    public var schema: JSONValue {
        ["type": "object", "additionalProperties": false,
         "required": .array(fields.map { .string($0.name) }),
         "properties": .object(Dictionary(uniqueKeysWithValues: fields.map { ($0.name, $0.schema) }))]
    }
}

public enum JSONTime {
    /// `2026-11-27T13:04:06.123Z`.
    public static func rfc3339(_ epochMs: Int64) -> String {
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        formatter.timeZone = TimeZone(identifier: "UTC")
        return formatter.string(from: Date(timeIntervalSince1970: Double(epochMs) / 1000))
    }
}
