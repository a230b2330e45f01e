import Foundation

/// A score from an external vision service.
public struct VisionScore: Sendable, Equatable, Codable {
    /// 0…1, higher is better.
    public var quality: Double
    public var labels: [String]
}

/// An optional external image scorer. Protocol: `POST url` with JSON
/// `{"image": "<base64>", "filename": "..."}`; answer `{"quality": 0.0–1.0, "labels": [...]}`
/// (labels optional). Guarantee: `score` never throws and returns within `timeout` plus
/// slack; any failure — refused, hung, non-2xx, malformed, quality out of range — is nil,
/// and the analyzer then uses its local score.
public struct VisionClient: Sendable {
    public var url: URL
    public var timeout: Double
    public var token: SecretToken?

    public init(url: URL, timeout: Double = 5, token: SecretToken? = nil) {
        self.url = url; self.timeout = timeout; self.token = token
    }

    /// The last failure is reported here (for logs) and then dropped.
    public func score(imageAt image: URL, onFailure: (@Sendable (EndpointError) -> Void)? = nil) async -> VisionScore? {
        do {
            let bytes = try Data(contentsOf: image)
            let body = try JSONSerialization.data(withJSONObject: ["image": bytes.base64EncodedString(),
                                                                   "filename": image.lastPathComponent])
            var headers: [String: String] = [:]
            if let token { headers["Authorization"] = "Bearer \(token.value)" }
            let data = try await HTTPJSON.post(url, json: body, headers: headers, timeout: timeout)
            guard let obj = try? JSONSerialization.jsonObject(with: data) as? [String: Any],
                  let q = (obj["quality"] as? NSNumber)?.doubleValue, q >= 0, q <= 1
            else { throw EndpointError.badResponse("no quality in 0…1") }
            return VisionScore(quality: q, labels: obj["labels"] as? [String] ?? [])
        } catch let e as EndpointError {
            onFailure?(e); return nil
        } catch {
            onFailure?(.transport("\(error)")); return nil
        }
    }
}
