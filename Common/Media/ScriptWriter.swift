import Foundation

/// A short's voice-over: one caption unit per line, in one language.
public struct ShortScript: Sendable, Equatable, Codable {
    public enum Source: String, Sendable, Codable { case template, llm }
    public var language: ShortLanguage
    public var lines: [String]
    public var source: Source
    /// ScriptWriter's estimate of the spoken length (`SpeechRate`), seconds.
    public var estimatedSeconds: Double
    /// Why the LLM's script was not used, when an LLM was configured but the templates were.
    public var fallbackReason: String?

    public var text: String { lines.joined(separator: " ") }
}

/// How long espeak-ng (1.51, default rate) takes to speak a line, by a linear model fitted
/// to its measured WAV durations on this toolchain: a fixed cost per line (espeak pads each
/// WAV with silence), a cost per syllable, per digit (numbers are read out: 350 is "three
/// hundred and fifty"), and per comma or colon (a pause). English syllables are vowel groups
/// of each word; Korean syllables are precomposed Hangul. Fitted within ~0.5 s per line.
public enum SpeechRate {
    /// The silence Speech puts between lines, seconds.
    public static let linePause = 0.25

    struct Model { var perLine, perSyllable, perDigit, perPause: Double }
    static let english = Model(perLine: 0.87, perSyllable: 0.136, perDigit: 0.31, perPause: 0.33)
    static let korean = Model(perLine: 1.25, perSyllable: 0.134, perDigit: 0.29, perPause: 0.55)

    /// Estimated seconds to speak one line.
    public static func seconds(_ line: String, _ language: ShortLanguage) -> Double {
        var syllables = 0.0, digits = 0.0, pauses = 0.0
        var inVowelGroup = false, wordHasVowel = false, inWord = false
        func endWord() { if inWord && !wordHasVowel { syllables += 1 }; inWord = false; wordHasVowel = false; inVowelGroup = false }
        for ch in line {
            if ch.isNumber { endWord(); digits += 1; continue }
            if ch == "," || ch == ":" { pauses += 1 }
            if let scalar = ch.unicodeScalars.first, (0xAC00...0xD7A3).contains(scalar.value) {
                endWord(); syllables += 1; continue
            }
            if ch.isLetter || ch == "'" {
                inWord = true
                let vowel = "aeiouyAEIOUY".contains(ch)
                if vowel && !inVowelGroup { syllables += 1; wordHasVowel = true }
                inVowelGroup = vowel
            } else {
                endWord()
            }
        }
        endWord()
        let m = language == .english ? english : korean
        return m.perLine + m.perSyllable * syllables + m.perDigit * digits + m.perPause * pauses
    }

    /// Estimated seconds to speak the lines with Speech's pauses between them.
    public static func seconds(_ lines: [String], _ language: ShortLanguage) -> Double {
        lines.reduce(0) { $0 + seconds($1, language) } + linePause * Double(max(0, lines.count - 1))
    }
}

/// Writes a short's script from listing facts.
///
/// Guarantees: the template script always has the opening (home, region, size), the price
/// and the call to action with the listing id; optional sentences (reasons strongest first,
/// subway, yield, school, new build, price per m², then neutral fillers) are added in that
/// priority while the estimate stays within `targetSeconds`, and fillers are added until it
/// reaches the lower bound. States only facts it was given. An LLM script is used only when
/// it answers in time and its estimate is within `acceptedSeconds`; otherwise the templates.
public struct ScriptWriter: Sendable {
    /// The window the templates aim for; narrower than 15–30 s so estimate error stays inside.
    public var targetSeconds: ClosedRange<Double> = 18...26
    /// The window an LLM answer must fit to be accepted.
    public var acceptedSeconds: ClosedRange<Double> = 15...30
    public var chat: ChatCompletionsClient?

    public init(chat: ChatCompletionsClient? = nil) { self.chat = chat }

    /// The script for `facts` in `language`: from the LLM when configured and usable, else the templates.
    public func write(_ facts: ListingFacts, language: ShortLanguage) async -> ShortScript {
        var script = template(facts, language: language)
        guard let chat else { return script }
        do {
            let answer = try await chat.complete(messages: Self.prompt(facts, language: language))
            let lines = Self.lines(fromAnswer: answer)
            let estimate = SpeechRate.seconds(lines, language)
            guard lines.count >= 2 else { throw EndpointError.badResponse("fewer than two lines") }
            guard acceptedSeconds.contains(estimate) else {
                throw EndpointError.badResponse(String(format: "script of about %.1f s, outside %.0f–%.0f s",
                                                       estimate, acceptedSeconds.lowerBound, acceptedSeconds.upperBound))
            }
            return ShortScript(language: language, lines: lines, source: .llm, estimatedSeconds: estimate, fallbackReason: nil)
        } catch {
            script.fallbackReason = "\(error)"
            return script
        }
    }

    /// The template script; pure and deterministic.
    public func template(_ facts: ListingFacts, language: ShortLanguage) -> ShortScript {
        let t = Templates(facts: facts, language: language)
        let opening = t.opening, closing = [t.callToAction]
        var chosen: [String] = []
        func estimate(_ middle: [String]) -> Double { SpeechRate.seconds(opening + middle + closing, language) }
        for sentence in t.optional where estimate(chosen + [sentence]) <= targetSeconds.upperBound {
            chosen.append(sentence)
        }
        for filler in t.fillers where estimate(chosen) < targetSeconds.lowerBound {
            chosen.append(filler)
        }
        let lines = opening + chosen + closing
        return ShortScript(language: language, lines: lines, source: .template,
                           estimatedSeconds: SpeechRate.seconds(lines, language), fallbackReason: nil)
    }

    static func prompt(_ f: ListingFacts, language: ShortLanguage) -> [ChatMessage] {
        let lang = language == .korean ? "Korean" : "English"
        var facts = ["listing id: \(f.id)", "region: \(f.region)", "price: \(Int(f.price.rounded())) million KRW",
                     "area: \(Int(f.areaM2.rounded())) m²", "rooms: \(f.rooms)",
                     String(format: "expected rental yield: %.1f %%", f.expectedYield), "new build: \(f.newBuild ? "yes" : "no")"]
        if let d = f.subwayDistanceM { facts.append("subway distance: \(Int(d.rounded())) m") }
        if let s = f.schoolScore { facts.append("school score: \(Int(s.rounded())) / 100") }
        if !f.reasons.isEmpty { facts.append("why our model recommends it: " + f.reasons.joined(separator: "; ")) }
        return [
            ChatMessage(role: "system", content: "You write voice-over scripts for 20-second vertical real-estate videos. "
                        + "Answer in \(lang) with the script only: 5 to 8 short sentences, one per line, no numbering. "
                        + "Use only the facts given. End by asking viewers to contact Tower Realty about the listing id."),
            ChatMessage(role: "user", content: facts.joined(separator: "\n")),
        ]
    }

    /// Caption lines from an LLM answer: one per non-empty line, list markers and quotes removed.
    static func lines(fromAnswer answer: String) -> [String] {
        answer.split(whereSeparator: \.isNewline).map { raw -> String in
            var s = raw.trimmingCharacters(in: .whitespaces)
            if let marker = s.range(of: #"^(\d+[.)]|[-*•])\s*"#, options: .regularExpression) { s.removeSubrange(marker) }
            return s.trimmingCharacters(in: CharacterSet(charactersIn: "\"“”").union(.whitespaces))
        }.filter { !$0.isEmpty }
    }
}

/// The sentences of the templates for one listing and language.
struct Templates {
    let opening: [String]
    let optional: [String]
    let fillers: [String]
    let callToAction: String

    init(facts f: ListingFacts, language: ShortLanguage) {
        let area = Int(f.areaM2.rounded())
        let walkMinutes = f.subwayDistanceM.map { max(1, Int(($0 / 80).rounded(.up))) }   // 80 m a minute on foot
        let perM2 = f.areaM2 > 0 ? f.price / f.areaM2 : nil
        switch language {
        case .english:
            opening = ["A \(f.rooms)-room home in \(f.region), \(area) square metres.",
                       "Asking price: \(Self.englishPrice(f.price))."]
            var o: [String] = []
            for (i, r) in f.reasons.prefix(3).enumerated() {
                o.append(i == 0 ? "Why it stands out: \(r)." : "Plus: \(r).")
            }
            if let d = f.subwayDistanceM, let m = walkMinutes {
                o.append("The subway is about \(m) minutes' walk away, \(Int(d.rounded())) metres.")
            }
            o.append(String(format: "Expected rental yield: %.1f percent a year.", f.expectedYield))
            if let s = f.schoolScore { o.append("The school district scores \(Int(s.rounded())) out of 100.") }
            if f.newBuild { o.append("It is a new build.") }
            if let p = perM2 { o.append(String(format: "That is %.1f million won per square metre.", p)) }
            optional = o
            fillers = ["The photos show the home as it is listed today.", "Book a viewing and see it for yourself.",
                       "Good homes in \(f.region) do not stay on the market for long."]
            callToAction = "Ask Tower Realty about listing \(f.id)."
        case .korean:
            let region = Self.koreanRegions[f.region] ?? f.region
            opening = ["\(region)의 방 \(f.rooms)개, \(area)제곱미터 집입니다.",
                       "가격은 \(Self.koreanPrice(f.price))입니다."]
            var o: [String] = []
            let reasons = f.reasons.compactMap { Self.koreanReasons[$0] }    // English-only phrases are left out
            for (i, r) in reasons.prefix(3).enumerated() {
                o.append(i == 0 ? "가장 큰 장점은 \(r)입니다." : "또한 \(r)도 돋보입니다.")
            }
            if let d = f.subwayDistanceM, let m = walkMinutes {
                o.append("지하철역까지 걸어서 약 \(m)분, \(Int(d.rounded()))미터 거리입니다.")
            }
            o.append(String(format: "예상 임대 수익률은 연 %.1f퍼센트입니다.", f.expectedYield))
            if let s = f.schoolScore { o.append("학군 점수는 100점 만점에 \(Int(s.rounded()))점입니다.") }
            if f.newBuild { o.append("새로 지은 신축 건물입니다.") }
            if let p = perM2 { o.append("제곱미터당 약 \(Int((p * 100).rounded()))만 원입니다.") }
            optional = o
            fillers = ["사진으로 지금의 모습을 확인해 보세요.", "직접 방문해서 확인해 보세요.",
                       "\(region)의 좋은 집은 오래 기다려 주지 않습니다."]
            callToAction = "매물 번호 \(f.id)번, 타워 부동산에 문의하세요."
        }
    }

    /// 1,250 (million KRW) → "1.25 billion won"; 950 → "950 million won".
    static func englishPrice(_ million: Double) -> String {
        if million >= 1000 {
            var s = String(format: "%.2f", million / 1000)
            while s.hasSuffix("0") { s.removeLast() }
            if s.hasSuffix(".") { s.removeLast() }
            return "\(s) billion won"
        }
        return "\(Int(million.rounded())) million won"
    }

    /// Million KRW in 억/천만 units, rounded to 10 million: 1,250 → "12억 5천만 원", 85 → "9천만 원".
    static func koreanPrice(_ million: Double) -> String {
        let tens = Int((million / 10).rounded()) * 10
        let eok = tens / 100, cheon = (tens % 100) / 10
        var parts: [String] = []
        if eok > 0 { parts.append("\(eok)억") }
        if cheon > 0 { parts.append("\(cheon)천만") }
        if parts.isEmpty { parts.append("\(Int(million.rounded()))백만") }
        return parts.joined(separator: " ") + " 원"
    }

    static let koreanRegions = [
        "Gangnam": "강남구", "Songpa": "송파구", "Seongdong": "성동구", "Mapo": "마포구",
        "Jongno": "종로구", "Yeongdeungpo": "영등포구", "Gangseo": "강서구", "Nowon": "노원구",
    ]

    /// Korean for Learning's `PairFeatures.reasonPhrases`.
    static let koreanReasons = [
        "price within budget": "예산에 맞는 가격", "same region as preferred": "원하시는 지역",
        "short commute": "짧은 출퇴근 시간", "commute within your limit": "여유로운 출퇴근 시간",
        "good schools for your children": "아이들에게 좋은 학군", "good school district": "좋은 학군",
        "rental yield fits your risk appetite": "투자 성향에 맞는 임대 수익률", "attractive rental yield": "매력적인 임대 수익률",
        "new build, as preferred": "원하시는 신축", "new build": "신축", "enough space for your household": "가족에게 넉넉한 공간",
        "close to the subway": "가까운 지하철역", "good price per m²": "합리적인 면적당 가격",
    ]
}

extension ScriptWriter {
    /// What a platform shows above the short: rooms, region, area and price, in the
    /// script's language (under YouTube's 100-character title limit).
    public static func title(_ f: ListingFacts, language: ShortLanguage) -> String {
        let area = Int(f.areaM2.rounded())
        switch language {
        case .english:
            return "\(f.rooms)-room home in \(f.region), \(area) m² · \(Templates.englishPrice(f.price)) · listing \(f.id)"
        case .korean:
            return "\(Templates.koreanRegions[f.region] ?? f.region) 방 \(f.rooms)개 \(area)㎡ · \(Templates.koreanPrice(f.price)) · 매물 \(f.id)번"
        }
    }
}
