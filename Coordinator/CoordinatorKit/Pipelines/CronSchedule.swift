import Foundation

/// A field of a cron expression, named as errors name it.
public enum CronField: String, Sendable, CaseIterable {
    case minute, hour
    case dayOfMonth = "day-of-month"
    case month
    case dayOfWeek = "day-of-week"

    var range: ClosedRange<Int> {
        switch self {
        case .minute: return 0...59
        case .hour: return 0...23
        case .dayOfMonth: return 1...31
        case .month: return 1...12
        // 7 is accepted as a second spelling of Sunday and folded onto 0 after parsing.
        case .dayOfWeek: return 0...7
        }
    }

    var names: [String] {
        switch self {
        case .month: return ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"]
        case .dayOfWeek: return ["sun", "mon", "tue", "wed", "thu", "fri", "sat"]
        default: return []
        }
    }

    /// The value of the first name: months count from 1, days from 0 (Sunday).
    var firstNameValue: Int { self == .month ? 1 : 0 }
}

/// Why a cron expression or a time zone name was refused; the description names the field
/// and the offending text so the operator can fix the config line.
public enum CronError: Error, Equatable, Sendable, CustomStringConvertible {
    case fieldCount(expression: String, count: Int)
    case unknownMacro(String)
    case invalidField(CronField, text: String, problem: String)
    case unknownTimeZone(String)

    public var description: String {
        switch self {
        case let .fieldCount(expression, count):
            return "\"\(expression)\": expected 5 fields (minute hour day-of-month month day-of-week) or a macro, got \(count)"
        case let .unknownMacro(macro):
            return "unknown macro \"\(macro)\"; known macros: \(CronSchedule.macros.map(\.0).joined(separator: ", "))"
        case let .invalidField(field, text, problem):
            return "\(field.rawValue) field \"\(text)\": \(problem)"
        case let .unknownTimeZone(name):
            return "unknown time zone \"\(name)\""
        }
    }
}

/// A standard five-field cron schedule (minute hour day-of-month month day-of-week)
/// evaluated in one time zone.
///
/// Syntax: `*`, lists `a,b`, ranges `a-b`, steps `*/n`, `a-b/n` and `a/n` (from `a` to the
/// field's end), month names `jan`–`dec` and day names `sun`–`sat` in any case, day-of-week
/// 0–7 where both 0 and 7 are Sunday, and the macros `@hourly`, `@daily`, `@midnight`,
/// `@weekly`, `@monthly`, `@yearly`, `@annually`. When both day-of-month and day-of-week
/// are restricted (neither is exactly `*`), a day matches if either matches; otherwise both
/// must.
///
/// Guarantees of ``next(after:)``:
/// - The result is strictly after its argument, and it is the earliest such fire time.
/// - Daylight saving time: a schedule with a fixed hour (the hour field does not start
///   with `*`) fires once per matching local time. A local time skipped by a
///   spring-forward gap fires at the first instant after the gap (02:30 on the
///   spring-forward day in New York fires at 03:00 EDT); a local time repeated by a
///   fall-back overlap fires only at its first occurrence.
/// - A schedule whose hour field starts with `*` (`30 * * * *`, `0 */2 * * *`) follows
///   real instants instead: it fires at every instant whose local time matches, so a
///   repeated hour fires twice (once per real hour) and a skipped hour not at all — no
///   real hour is missed and none fires twice.
/// - The search looks at most ``searchHorizonYears`` ahead; `nil` means the expression
///   cannot fire in that span (`0 0 30 2 *`), not that the search gave up early.
/// - Work is proportional to the number of months, days and hours skipped, never to the
///   number of minutes between fire times.
public struct CronSchedule: Sendable, Equatable, CustomStringConvertible {
    /// The text the schedule was parsed from, as written.
    public let expression: String
    public let timeZone: TimeZone

    // Bit i set = value i matches.
    let minutes: UInt64
    let hours: UInt64
    let daysOfMonth: UInt64
    let months: UInt64
    let daysOfWeek: UInt64
    let dayOfMonthRestricted: Bool
    let dayOfWeekRestricted: Bool
    /// The hour field starts with `*`: the schedule follows real instants across DST changes.
    let followsRealTime: Bool

    /// Long enough for `0 0 29 2 *` from any date: leap days can be 8 years apart (2096 → 2104).
    public static let searchHorizonYears = 9

    static let macros: [(String, String)] = [
        ("@hourly", "0 * * * *"), ("@daily", "0 0 * * *"), ("@midnight", "0 0 * * *"), ("@weekly", "0 0 * * 0"),
        ("@monthly", "0 0 1 * *"), ("@yearly", "0 0 1 1 *"), ("@annually", "0 0 1 1 *"),
    ]

    public init(_ expression: String, timeZone: TimeZone) throws {
        self.expression = expression
        self.timeZone = timeZone
        var text = expression.trimmingCharacters(in: .whitespaces)
        if text.hasPrefix("@") {
            guard let expansion = Self.macros.first(where: { $0.0 == text.lowercased() })?.1 else {
                throw CronError.unknownMacro(text)
            }
            text = expansion
        }
        let fields = text.split(whereSeparator: { $0 == " " || $0 == "\t" }).map(String.init)
        guard fields.count == 5 else { throw CronError.fieldCount(expression: expression, count: fields.count) }
        minutes = try Self.parse(fields[0], .minute)
        hours = try Self.parse(fields[1], .hour)
        daysOfMonth = try Self.parse(fields[2], .dayOfMonth)
        months = try Self.parse(fields[3], .month)
        var dow = try Self.parse(fields[4], .dayOfWeek)
        if dow & (1 << 7) != 0 { dow = (dow | 1) & ~(1 << 7) }
        daysOfWeek = dow
        dayOfMonthRestricted = fields[2] != "*"
        dayOfWeekRestricted = fields[4] != "*"
        followsRealTime = fields[1].hasPrefix("*")
    }

    public var description: String { "\(expression) (\(timeZone.identifier))" }

    /// The time zone with this IANA identifier (`Asia/Seoul`, `UTC`).
    public static func timeZone(named name: String) throws -> TimeZone {
        guard !name.isEmpty, let zone = TimeZone(identifier: name) else { throw CronError.unknownTimeZone(name) }
        return zone
    }

    // MARK: Parsing

    static func parse(_ field: String, _ kind: CronField) throws -> UInt64 {
        var mask: UInt64 = 0
        for item in field.split(separator: ",", omittingEmptySubsequences: false).map(String.init) {
            guard !item.isEmpty else { throw CronError.invalidField(kind, text: field, problem: "empty list element") }
            mask |= try parseItem(item, kind)
        }
        return mask
    }

    /// One list element: `*`, `v`, `a-b`, each optionally followed by `/step`.
    static func parseItem(_ item: String, _ kind: CronField) throws -> UInt64 {
        let range = kind.range
        let parts = item.split(separator: "/", omittingEmptySubsequences: false).map(String.init)
        guard parts.count <= 2 else { throw CronError.invalidField(kind, text: item, problem: "more than one step") }
        var step = 1
        if parts.count == 2 {
            guard let s = Int(parts[1]), s > 0 else {
                throw CronError.invalidField(kind, text: item, problem: "step must be a positive whole number")
            }
            step = s
        }
        let lower: Int, upper: Int
        if parts[0] == "*" {
            // Day-of-week 7 duplicates Sunday; `*` stops at 6 so `*/2` is Sun, Tue, Thu, Sat.
            (lower, upper) = (range.lowerBound, kind == .dayOfWeek ? 6 : range.upperBound)
        } else {
            let bounds = parts[0].split(separator: "-", omittingEmptySubsequences: false).map(String.init)
            guard bounds.count <= 2 else { throw CronError.invalidField(kind, text: item, problem: "a range has one start and one end") }
            lower = try value(bounds[0], kind, item: item)
            if bounds.count == 2 {
                upper = try value(bounds[1], kind, item: item)
                guard lower <= upper else {
                    throw CronError.invalidField(kind, text: item, problem: "range start \(lower) is after its end \(upper)")
                }
            } else {
                // `a/n` runs from a to the end of the field, as in Vixie cron.
                upper = parts.count == 2 ? range.upperBound : lower
            }
        }
        var mask: UInt64 = 0
        for v in stride(from: lower, through: upper, by: step) { mask |= 1 << UInt64(v) }
        return mask
    }

    static func value(_ text: String, _ kind: CronField, item: String) throws -> Int {
        let range = kind.range
        // Digits only: `Int` alone would also take "+5".
        if text.allSatisfy({ ("0"..."9").contains($0) }), let n = Int(text) {
            guard range.contains(n) else {
                throw CronError.invalidField(kind, text: item, problem: "value out of range \(range.lowerBound)–\(range.upperBound)")
            }
            return n
        }
        if let index = kind.names.firstIndex(of: text.lowercased()) { return index + kind.firstNameValue }
        switch kind {
        case .month: throw CronError.invalidField(kind, text: item, problem: "not a number or month name (jan–dec)")
        case .dayOfWeek: throw CronError.invalidField(kind, text: item, problem: "not a number or day name (sun–sat)")
        default: throw CronError.invalidField(kind, text: item, problem: "not a number")
        }
    }

    // MARK: Matching

    /// The earliest fire time strictly after `date`, or nil when the expression cannot fire
    /// within ``searchHorizonYears``.
    public func next(after date: Date) -> Date? {
        // Cron has minute resolution; whole seconds are enough and keep the arithmetic exact.
        var instant = Int64(date.timeIntervalSince1970.rounded(.down))
        let horizon = instant + Int64(Self.searchHorizonYears) * 366 * 86_400
        // Walk the time zone's constant-offset segments: inside one, local time and real
        // time move together, so the first matching local minute is the answer.
        var lowerWall = instant + offset(at: instant) + 1
        if !followsRealTime, let overlapEnd = overlapEnd(containing: instant) {
            // `date` lies in the second pass of a repeated hour, whose local times a
            // fixed-time schedule has already had.
            lowerWall = max(lowerWall, overlapEnd)
        }
        while instant < horizon {
            let offset = offset(at: instant)
            let segmentEnd = nextTransition(after: instant).map { min($0, horizon) } ?? horizon
            if let wall = firstMatch(fromWall: lowerWall, beforeWall: segmentEnd + offset) {
                return Date(timeIntervalSince1970: TimeInterval(wall - offset))
            }
            guard segmentEnd < horizon else { return nil }
            let newOffset = self.offset(at: segmentEnd)
            if newOffset > offset {
                // Spring forward: local times in [end+old, end+new) do not exist. A fixed-time
                // schedule due in the gap fires at the first instant after it.
                if !followsRealTime, firstMatch(fromWall: segmentEnd + offset, beforeWall: segmentEnd + newOffset) != nil {
                    return Date(timeIntervalSince1970: TimeInterval(segmentEnd))
                }
                lowerWall = segmentEnd + newOffset
            } else {
                // Fall back: local times in [end+new, end+old) occur again. A fixed-time
                // schedule already had its first occurrence, so it resumes after the overlap.
                lowerWall = followsRealTime ? segmentEnd + newOffset : segmentEnd + offset
            }
            instant = segmentEnd
        }
        return nil
    }

    /// When `instant` falls in the second pass of a fall-back overlap, the local time at
    /// which that overlap ends. Overlaps are far shorter than the 6 hours looked back.
    func overlapEnd(containing instant: Int64) -> Int64? {
        guard let transition = nextTransition(after: instant - 6 * 3600), transition <= instant else { return nil }
        let before = offset(at: transition - 1), after = offset(at: transition)
        guard before > after, instant + after < transition + before else { return nil }
        return transition + before
    }

    func offset(at instant: Int64) -> Int64 {
        Int64(timeZone.secondsFromGMT(for: Date(timeIntervalSince1970: TimeInterval(instant))))
    }

    func nextTransition(after instant: Int64) -> Int64? {
        guard let t = timeZone.nextDaylightSavingTimeTransition(after: Date(timeIntervalSince1970: TimeInterval(instant))) else { return nil }
        // Transitions fall on whole seconds; rounding up keeps the segment end after `instant`.
        return max(Int64(t.timeIntervalSince1970.rounded(.up)), instant + 1)
    }

    /// The first matching local minute at or after `start` and before `limit`, both local
    /// times in seconds since 1970-01-01T00:00 (wall clock, no offset).
    func firstMatch(fromWall start: Int64, beforeWall limit: Int64) -> Int64? {
        var day = start.floorDivided(by: 86_400)
        let secondOfDay = start - day * 86_400
        var hour = Int(secondOfDay / 3600)
        // Round up to a whole minute.
        var minute = Int((secondOfDay % 3600 + 59) / 60)
        while true {
            if minute == 60 { minute = 0; hour += 1 }
            if hour == 24 { hour = 0; day += 1 }
            guard day * 86_400 + Int64(hour * 3600 + minute * 60) < limit else { return nil }
            let (year, month, dayOfMonth) = CivilDate.civil(fromDays: day)
            if months & (1 << UInt64(month)) == 0 {
                // Jump to the first day of the next month; the month test repeats there.
                let (y, m) = month == 12 ? (year + 1, 1) : (year, month + 1)
                day = CivilDate.days(year: y, month: m, day: 1)
                (hour, minute) = (0, 0)
                continue
            }
            guard dayMatches(day: day, dayOfMonth: dayOfMonth) else {
                day += 1
                (hour, minute) = (0, 0)
                continue
            }
            guard let h = hours.firstBit(from: hour) else {
                day += 1
                (hour, minute) = (0, 0)
                continue
            }
            if h != hour { (hour, minute) = (h, 0) }
            guard let m = minutes.firstBit(from: minute) else {
                (hour, minute) = (hour + 1, 0)
                continue
            }
            let wall = day * 86_400 + Int64(hour * 3600 + m * 60)
            return wall < limit ? wall : nil
        }
    }

    func dayMatches(day: Int64, dayOfMonth: Int) -> Bool {
        let domMatches = daysOfMonth & (1 << UInt64(dayOfMonth)) != 0
        let dowMatches = daysOfWeek & (1 << UInt64(CivilDate.weekday(fromDays: day))) != 0
        if dayOfMonthRestricted && dayOfWeekRestricted { return domMatches || dowMatches }
        return domMatches && dowMatches
    }
}

extension UInt64 {
    /// The lowest set bit at or above `index` (below 64), if any.
    func firstBit(from index: Int) -> Int? {
        guard index < 64 else { return nil }
        let rest = self >> UInt64(index)
        return rest == 0 ? nil : index + rest.trailingZeroBitCount
    }
}

extension Int64 {
    func floorDivided(by d: Int64) -> Int64 {
        let q = self / d
        return (self % d != 0 && (self < 0) != (d < 0)) ? q - 1 : q
    }
}

/// Proleptic Gregorian calendar arithmetic on day numbers (days since 1970-01-01), so the
/// cron search walks local dates without a `Calendar` and without time zone lookups.
enum CivilDate {
    /// Days since 1970-01-01 of a Gregorian date. Counts in 400-year eras that start on
    /// March 1st, so the leap day is the last day of an era-year.
    static func days(year: Int, month: Int, day: Int) -> Int64 {
        let y = Int64(month <= 2 ? year - 1 : year)
        let era = y.floorDivided(by: 400)
        let yearOfEra = y - era * 400
        let shiftedMonth = Int64(month > 2 ? month - 3 : month + 9)
        let dayOfYear = (153 * shiftedMonth + 2) / 5 + Int64(day) - 1
        let dayOfEra = yearOfEra * 365 + yearOfEra / 4 - yearOfEra / 100 + dayOfYear
        // 719_468 = days from 0000-03-01 to 1970-01-01.
        return era * 146_097 + dayOfEra - 719_468
    }

    /// The inverse of ``days(year:month:day:)``.
    static func civil(fromDays days: Int64) -> (year: Int, month: Int, day: Int) {
        let z = days + 719_468
        let era = z.floorDivided(by: 146_097)
        let dayOfEra = z - era * 146_097
        let yearOfEra = (dayOfEra - dayOfEra / 1460 + dayOfEra / 36_524 - dayOfEra / 146_096) / 365
        let dayOfYear = dayOfEra - (365 * yearOfEra + yearOfEra / 4 - yearOfEra / 100)
        let shiftedMonth = (5 * dayOfYear + 2) / 153
        let day = dayOfYear - (153 * shiftedMonth + 2) / 5 + 1
        let month = shiftedMonth < 10 ? shiftedMonth + 3 : shiftedMonth - 9
        let year = yearOfEra + era * 400 + (month <= 2 ? 1 : 0)
        return (Int(year), Int(month), Int(day))
    }

    /// 0 = Sunday; 1970-01-01 was a Thursday.
    static func weekday(fromDays days: Int64) -> Int {
        Int((days + 4).floorDivided(by: 7) * -7 + days + 4)
    }
}
