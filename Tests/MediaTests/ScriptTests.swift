import Foundation
import Testing
@testable import Media

@Suite("Script")
struct ScriptTests {
    @Test("templates fit their target by estimate and keep opening, price and call to action",
          arguments: [ShortLanguage.english, .korean])
    func templatesFit(language: ShortLanguage) {
        for facts in [Fixtures.richFacts, Fixtures.sparseFacts] {
            let script = ScriptWriter().template(facts, language: language)
            #expect((18.0...26.0).contains(script.estimatedSeconds), "\(language) \(facts.id): \(script.estimatedSeconds) s")
            #expect(script.source == .template)
            #expect(script.lines.last!.contains(String(facts.id)))
            #expect(script.lines.count >= 4)
        }
    }

    @Test("template facts: prices in each language's units, reasons in Korean, no invented facts")
    func templateContents() {
        #expect(Templates.koreanPrice(1250) == "12억 5천만 원")
        #expect(Templates.koreanPrice(85) == "9천만 원")
        #expect(Templates.koreanPrice(3000) == "30억 원")
        #expect(Templates.englishPrice(1250) == "1.25 billion won")
        #expect(Templates.englishPrice(950) == "950 million won")
        let en = ScriptWriter().template(Fixtures.richFacts, language: .english).text
        #expect(en.contains("Why it stands out: close to the subway."))
        #expect(en.contains("1.25 billion won"))
        let ko = ScriptWriter().template(Fixtures.richFacts, language: .korean).text
        #expect(ko.contains("가장 큰 장점은 가까운 지하철역입니다."))
        #expect(ko.contains("마포구"))
        let sparse = ScriptWriter().template(Fixtures.sparseFacts, language: .english).text
        #expect(!sparse.contains("subway") && !sparse.contains("school") && !sparse.contains("new build"))
    }

    @Test("an LLM answer from a chat-completions server is used, and the request follows the protocol",
          .timeLimit(.minutes(1)))
    func chatAnswerUsed() async throws {
        let answer = """
        1. A bright three-room home in Mapo, eighty-four square metres.
        2. Asking price: one point two five billion won.
        - The subway is a five-minute walk away.
        - Expected rental yield is three point six percent a year.
        - It is a brand new building that nobody has lived in yet.
        Ask Tower Realty about listing 4217 today and book your viewing.
        """
        let reply = try String(data: JSONSerialization.data(withJSONObject: ["choices": [["message": ["role": "assistant", "content": answer]]]]),
                               encoding: .utf8)!
        let server = try FakeHTTPServer { _ in .json(status: 200, body: reply) }
        defer { server.shutdown() }
        let chat = ChatCompletionsClient(baseURL: server.baseURL, model: "tower-writer", token: SecretToken("sk-test-123"),
                                         temperature: 0.3, timeout: 5)
        #expect(!"\(chat)".contains("sk-test-123") && !String(reflecting: chat.token!).contains("sk-test-123"))
        let script = await ScriptWriter(chat: chat).write(Fixtures.richFacts, language: .english)
        #expect(script.source == .llm, "\(script.fallbackReason ?? "")")
        #expect(script.lines.first == "A bright three-room home in Mapo, eighty-four square metres.")
        #expect(script.lines.count == 6)
        let request = try #require(server.requests.first)
        #expect(request.method == "POST" && request.uri == "/v1/chat/completions")
        #expect(request.header("Authorization") == "Bearer sk-test-123")
        let body = try #require(try JSONSerialization.jsonObject(with: request.body) as? [String: Any])
        #expect(body["model"] as? String == "tower-writer")
        #expect(body["temperature"] as? Double == 0.3)
        let messages = try #require(body["messages"] as? [[String: String]])
        #expect(messages.map { $0["role"] } == ["system", "user"])
        #expect(messages[1]["content"]?.contains("listing id: 4217") == true)
    }

    @Test("a 500, a hung server, a refused connection and a too-short answer all fall back to the templates",
          .timeLimit(.minutes(1)))
    func chatFallbacks() async throws {
        let failing = try FakeHTTPServer { _ in .json(status: 500, body: #"{"error":"boom"}"#) }
        let hung = try FakeHTTPServer { _ in .hang }
        let short = try FakeHTTPServer { _ in .json(status: 200, body: #"{"choices":[{"message":{"content":"Buy it.\nNow."}}]}"#) }
        defer { failing.shutdown(); hung.shutdown(); short.shutdown() }
        let template = ScriptWriter().template(Fixtures.richFacts, language: .korean)

        let cases: [(URL, String)] = [(failing.baseURL, "HTTP status 500"), (hung.baseURL, "no answer within 1.0 s"),
                                      (try refusedURL(), "connection failed"), (short.baseURL, "outside 15–30 s")]
        // The reason says which ended each attempt (the timeout for the hung one); the
        // test's time limit catches a hang. No clock is read: load would make it flaky.
        for (url, reason) in cases {
            let script = await ScriptWriter(chat: ChatCompletionsClient(baseURL: url, model: "m", timeout: 1))
                .write(Fixtures.richFacts, language: .korean)
            #expect(script.source == .template)
            #expect(script.lines == template.lines)
            #expect(script.fallbackReason?.contains(reason) == true, "\(script.fallbackReason ?? "nil") should say \(reason)")
        }
        #expect(hung.requests.count == 1 && failing.requests.count == 1)
    }

    @Test("LLM answers lose list markers and quotes")
    func answerLines() {
        #expect(ScriptWriter.lines(fromAnswer: "1. One.\n\n- \"Two.\"\n  3) Three.\n* Four") == ["One.", "Two.", "Three.", "Four"])
    }
}
