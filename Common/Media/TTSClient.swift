import Foundation

/// An optional external text-to-speech endpoint. Protocol: `POST url` with JSON
/// `{"text": "...", "language": "ko"|"en"}`; the answer body is a PCM WAV file.
/// Guarantee: `synthesize` returns a parsed WAV or throws an `EndpointError` within
/// `timeout` plus slack; a body that is not a PCM WAV is `.badResponse`.
public struct TTSClient: Sendable {
    public var url: URL
    public var timeout: Double
    public var token: SecretToken?

    public init(url: URL, timeout: Double = 10, token: SecretToken? = nil) {
        self.url = url; self.timeout = timeout; self.token = token
    }

    public func synthesize(_ text: String, language: ShortLanguage) async throws -> Data {
        let body = try JSONSerialization.data(withJSONObject: ["text": text, "language": language.rawValue])
        var headers: [String: String] = [:]
        if let token { headers["Authorization"] = "Bearer \(token.value)" }
        let data = try await HTTPJSON.post(url, json: body, headers: headers, timeout: timeout)
        do { _ = try WAVInfo.parse(data) } catch { throw EndpointError.badResponse("not a PCM WAV: \(error)") }
        return data
    }
}
