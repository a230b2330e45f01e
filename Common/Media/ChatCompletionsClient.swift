import Foundation

/// One message of a chat-completions request.
public struct ChatMessage: Sendable, Equatable, Codable {
    public var role: String
    public var content: String
    public init(role: String, content: String) { self.role = role; self.content = content }
}

/// A client for an OpenAI-compatible chat-completions endpoint:
/// `POST {baseURL}/v1/chat/completions` with `{model, messages, temperature}` and a bearer
/// token; the answer is `choices[0].message.content`.
///
/// Guarantees: `complete` returns or throws an `EndpointError` within `timeout` plus slack;
/// the token is sent only in the Authorization header and never appears in a description.
public struct ChatCompletionsClient: Sendable, CustomStringConvertible {
    public var baseURL: URL
    public var model: String
    public var token: SecretToken?
    public var temperature: Double
    public var timeout: Double

    public init(baseURL: URL, model: String, token: SecretToken? = nil, temperature: Double = 0.7, timeout: Double = 15) {
        self.baseURL = baseURL; self.model = model; self.token = token; self.temperature = temperature; self.timeout = timeout
    }

    public var description: String { "chat-completions \(baseURL.absoluteString) model \(model)" }

    public func complete(messages: [ChatMessage]) async throws -> String {
        struct Request: Encodable { var model: String; var messages: [ChatMessage]; var temperature: Double }
        struct Response: Decodable {
            struct Choice: Decodable { struct Message: Decodable { var content: String? }; var message: Message }
            var choices: [Choice]
        }
        let body = try JSONEncoder().encode(Request(model: model, messages: messages, temperature: temperature))
        var headers: [String: String] = [:]
        if let token { headers["Authorization"] = "Bearer \(token.value)" }
        let url = baseURL.appendingPathComponent("v1").appendingPathComponent("chat").appendingPathComponent("completions")
        let data = try await HTTPJSON.post(url, json: body, headers: headers, timeout: timeout)
        guard let decoded = try? JSONDecoder().decode(Response.self, from: data) else {
            throw EndpointError.badResponse("not a chat-completions response")
        }
        guard let content = decoded.choices.first?.message.content?.trimmingCharacters(in: .whitespacesAndNewlines),
              !content.isEmpty else { throw EndpointError.badResponse("no choices[0].message.content") }
        return content
    }
}
