import Foundation
import Testing
@testable import CoordinatorKit

/// An instant written with its offset, so expected fire times read as wall clock times.
func instant(_ iso: String) -> Date {
    guard let date = ISO8601DateFormatter().date(from: iso) else { fatalError("bad test date \(iso)") }
    return date
}

func zone(_ name: String) -> TimeZone { TimeZone(identifier: name)! }

/// The first `count` fire times after `start`.
func fires(_ expression: String, in timeZone: String = "UTC", after start: String, count: Int) throws -> [Date] {
    let schedule = try CronSchedule(expression, timeZone: zone(timeZone))
    var out: [Date] = []
    var cursor = instant(start)
    while out.count < count, let next = schedule.next(after: cursor) {
        out.append(next)
        cursor = next
    }
    return out
}

@Suite struct CronSyntaxTests {
    @Test func listsRangesAndSteps() throws {
        #expect(try fires("0,30 9-17/4 * * *", after: "2024-01-01T00:00:00Z", count: 7) == [
            "2024-01-01T09:00:00Z", "2024-01-01T09:30:00Z", "2024-01-01T13:00:00Z", "2024-01-01T13:30:00Z",
            "2024-01-01T17:00:00Z", "2024-01-01T17:30:00Z", "2024-01-02T09:00:00Z",
        ].map(instant))
        #expect(try fires("*/20 3 * * *", after: "2024-01-01T00:00:00Z", count: 4) == [
            "2024-01-01T03:00:00Z", "2024-01-01T03:20:00Z", "2024-01-01T03:40:00Z", "2024-01-02T03:00:00Z",
        ].map(instant))
        // `a/n` runs from a to the end of the field.
        #expect(try fires("5/20 0 * * *", after: "2024-01-01T00:00:00Z", count: 4) == [
            "2024-01-01T00:05:00Z", "2024-01-01T00:25:00Z", "2024-01-01T00:45:00Z", "2024-01-02T00:05:00Z",
        ].map(instant))
    }

    @Test func monthAndDayNamesInAnyCase() throws {
        // Jan 31 2024 is a Wednesday; the next weekday of July is Monday July 1st.
        #expect(try fires("0 12 * JAN,Jul MON-fri", after: "2024-01-31T12:00:00Z", count: 2) == [
            "2024-07-01T12:00:00Z", "2024-07-02T12:00:00Z",
        ].map(instant))
    }

    @Test func sundayIsBothZeroAndSeven() throws {
        // Jan 1 2024 is a Monday.
        let sunday = [instant("2024-01-07T00:00:00Z")]
        #expect(try fires("0 0 * * 0", after: "2024-01-01T00:00:00Z", count: 1) == sunday)
        #expect(try fires("0 0 * * 7", after: "2024-01-01T00:00:00Z", count: 1) == sunday)
        #expect(try fires("0 0 * * SUN", after: "2024-01-01T00:00:00Z", count: 1) == sunday)
        // 5-7 is Friday, Saturday, Sunday.
        #expect(try fires("0 0 * * 5-7", after: "2024-01-01T00:00:00Z", count: 4) == [
            "2024-01-05T00:00:00Z", "2024-01-06T00:00:00Z", "2024-01-07T00:00:00Z", "2024-01-12T00:00:00Z",
        ].map(instant))
    }

    @Test(arguments: [
        ("@hourly", "2024-05-15T11:00:00Z"),
        ("@daily", "2024-05-16T00:00:00Z"),
        ("@midnight", "2024-05-16T00:00:00Z"),
        ("@weekly", "2024-05-19T00:00:00Z"),
        ("@monthly", "2024-06-01T00:00:00Z"),
        ("@yearly", "2025-01-01T00:00:00Z"),
        ("@ANNUALLY", "2025-01-01T00:00:00Z"),
    ])
    func macros(macro: String, expected: String) throws {
        // May 15 2024 is a Wednesday.
        #expect(try fires(macro, after: "2024-05-15T10:15:00Z", count: 1) == [instant(expected)])
    }

    @Test func dayOfMonthOrDayOfWeekWhenBothAreRestricted() throws {
        // September 2024 starts on a Sunday: Fridays are 6, 13, 20, 27, Oct 4, 11, 18; Oct 13 is a Sunday.
        #expect(try fires("0 0 13 * 5", after: "2024-09-01T00:00:00Z", count: 8) == [
            "2024-09-06T00:00:00Z", "2024-09-13T00:00:00Z", "2024-09-20T00:00:00Z", "2024-09-27T00:00:00Z",
            "2024-10-04T00:00:00Z", "2024-10-11T00:00:00Z", "2024-10-13T00:00:00Z", "2024-10-18T00:00:00Z",
        ].map(instant))
    }

    @Test func dayOfMonthAndDayOfWeekWhenOneIsAStar() throws {
        #expect(try fires("0 0 13 * *", after: "2024-09-01T00:00:00Z", count: 2) == [
            "2024-09-13T00:00:00Z", "2024-10-13T00:00:00Z",
        ].map(instant))
        #expect(try fires("0 0 * * 5", after: "2024-09-01T00:00:00Z", count: 2) == [
            "2024-09-06T00:00:00Z", "2024-09-13T00:00:00Z",
        ].map(instant))
        #expect(try fires("0 0 1-7 * *", after: "2024-09-01T00:00:00Z", count: 2) == [
            "2024-09-02T00:00:00Z", "2024-09-03T00:00:00Z",
        ].map(instant))
    }

    @Test func nextIsStrictlyAfterItsArgument() throws {
        let schedule = try CronSchedule("0 * * * *", timeZone: zone("UTC"))
        #expect(schedule.next(after: instant("2024-01-01T10:00:00Z")) == instant("2024-01-01T11:00:00Z"))
        #expect(schedule.next(after: instant("2024-01-01T09:59:59Z")) == instant("2024-01-01T10:00:00Z"))
        #expect(schedule.next(after: instant("2024-01-01T10:00:00Z").addingTimeInterval(0.5)) == instant("2024-01-01T11:00:00Z"))
        #expect(schedule.next(after: instant("2024-01-01T09:59:59Z").addingTimeInterval(0.5)) == instant("2024-01-01T10:00:00Z"))
    }

    @Test func crossesMonthAndYearEnds() throws {
        #expect(try fires("59 23 31 12 *", after: "2024-12-31T23:59:00Z", count: 1) == [instant("2025-12-31T23:59:00Z")])
        #expect(try fires("0 0 1 * *", after: "2024-01-31T12:00:00Z", count: 1) == [instant("2024-02-01T00:00:00Z")])
        // Months without a 31st are passed over.
        #expect(try fires("30 0 31 * *", after: "2024-01-31T00:30:00Z", count: 3) == [
            "2024-03-31T00:30:00Z", "2024-05-31T00:30:00Z", "2024-07-31T00:30:00Z",
        ].map(instant))
        #expect(try fires("0 0 * * *", after: "2024-02-28T00:00:00Z", count: 2) == [
            "2024-02-29T00:00:00Z", "2024-03-01T00:00:00Z",
        ].map(instant))
    }

    @Test func leapDayWaitsForTheNextLeapYear() throws {
        #expect(try fires("0 0 29 2 *", after: "2024-03-01T00:00:00Z", count: 2) == [
            "2028-02-29T00:00:00Z", "2032-02-29T00:00:00Z",
        ].map(instant))
        // 2100 is not a leap year: eight years between leap days.
        #expect(try fires("0 0 29 2 *", after: "2096-03-01T00:00:00Z", count: 1) == [instant("2104-02-29T00:00:00Z")])
    }

    @Test func impossibleDatesNeverFire() throws {
        #expect(try CronSchedule("0 0 30 2 *", timeZone: zone("UTC")).next(after: instant("2024-01-01T00:00:00Z")) == nil)
        #expect(try CronSchedule("0 0 31 4,6,9,11 *", timeZone: zone("Europe/Berlin")).next(after: instant("2024-01-01T00:00:00Z")) == nil)
    }

    @Test func manyFireTimesInARowAreCheap() throws {
        // A minutely schedule over two DST changes: 10 000 consecutive calls.
        let start = instant("2024-03-09T00:00:00-05:00")
        let schedule = try CronSchedule("* * * * *", timeZone: zone("America/New_York"))
        var cursor = start
        for _ in 0..<10_000 { cursor = schedule.next(after: cursor)! }
        #expect(cursor == start.addingTimeInterval(10_000 * 60))
    }
}

@Suite struct CronDaylightSavingTests {
    // 2024 in New York: spring forward Mar 10 02:00 EST → 03:00 EDT; fall back Nov 3 02:00 EDT → 01:00 EST.
    // 2024 in Berlin: spring forward Mar 31 02:00 CET → 03:00 CEST; fall back Oct 27 03:00 CEST → 02:00 CET.

    @Test func aSkippedLocalTimeFiresOnceAtTheEndOfTheGapInNewYork() throws {
        #expect(try fires("30 2 * * *", in: "America/New_York", after: "2024-03-09T02:30:00-05:00", count: 3) == [
            "2024-03-10T03:00:00-04:00", "2024-03-11T02:30:00-04:00", "2024-03-12T02:30:00-04:00",
        ].map(instant))
        // 02:00 and 02:30 both fall in the gap and 03:00 is the gap's end: one firing for the three.
        #expect(try fires("0,30 2,3 * * *", in: "America/New_York", after: "2024-03-10T00:00:00-05:00", count: 3) == [
            "2024-03-10T03:00:00-04:00", "2024-03-10T03:30:00-04:00", "2024-03-11T02:00:00-04:00",
        ].map(instant))
    }

    @Test func aRepeatedLocalTimeFiresOnlyAtItsFirstOccurrenceInNewYork() throws {
        #expect(try fires("30 1 * * *", in: "America/New_York", after: "2024-11-02T01:30:00-04:00", count: 2) == [
            "2024-11-03T01:30:00-04:00", "2024-11-04T01:30:00-05:00",
        ].map(instant))
        // Asked from inside the second pass of the repeated hour, it does not fire again.
        #expect(try fires("30 1 * * *", in: "America/New_York", after: "2024-11-03T01:15:00-05:00", count: 1) == [
            instant("2024-11-04T01:30:00-05:00"),
        ])
    }

    @Test func wildcardHoursFollowRealTimeInNewYork() throws {
        #expect(try fires("30 * * * *", in: "America/New_York", after: "2024-11-03T00:30:00-04:00", count: 3) == [
            "2024-11-03T01:30:00-04:00", "2024-11-03T01:30:00-05:00", "2024-11-03T02:30:00-05:00",
        ].map(instant))
        // 01:30 EST to 03:30 EDT is one real hour: nothing fires in the gap.
        #expect(try fires("30 * * * *", in: "America/New_York", after: "2024-03-10T01:00:00-05:00", count: 2) == [
            "2024-03-10T01:30:00-05:00", "2024-03-10T03:30:00-04:00",
        ].map(instant))
    }

    @Test func midnightOnTheChangeDaysInNewYork() throws {
        #expect(try fires("@daily", in: "America/New_York", after: "2024-03-09T12:00:00-05:00", count: 2) == [
            "2024-03-10T00:00:00-05:00", "2024-03-11T00:00:00-04:00",
        ].map(instant))
    }

    @Test func aSkippedLocalTimeFiresOnceAtTheEndOfTheGapInBerlin() throws {
        #expect(try fires("30 2 * * *", in: "Europe/Berlin", after: "2024-03-30T02:30:00+01:00", count: 2) == [
            "2024-03-31T03:00:00+02:00", "2024-04-01T02:30:00+02:00",
        ].map(instant))
    }

    @Test func aRepeatedLocalTimeFiresOnlyAtItsFirstOccurrenceInBerlin() throws {
        #expect(try fires("30 2 * * *", in: "Europe/Berlin", after: "2024-10-26T02:30:00+02:00", count: 2) == [
            "2024-10-27T02:30:00+02:00", "2024-10-28T02:30:00+01:00",
        ].map(instant))
    }

    @Test func wildcardHoursFollowRealTimeInBerlin() throws {
        #expect(try fires("15 * * * *", in: "Europe/Berlin", after: "2024-10-27T01:15:00+02:00", count: 3) == [
            "2024-10-27T02:15:00+02:00", "2024-10-27T02:15:00+01:00", "2024-10-27T03:15:00+01:00",
        ].map(instant))
        #expect(try fires("15 * * * *", in: "Europe/Berlin", after: "2024-03-31T01:15:00+01:00", count: 1) == [
            instant("2024-03-31T03:15:00+02:00"),
        ])
    }

    @Test func seoulMidnightIsEveryTwentyFourHours() throws {
        let times = try fires("0 0 * * *", in: "Asia/Seoul", after: "2024-03-09T12:00:00+09:00", count: 3)
        #expect(times == ["2024-03-10T00:00:00+09:00", "2024-03-11T00:00:00+09:00", "2024-03-12T00:00:00+09:00"].map(instant))
        #expect(times[0] == instant("2024-03-09T15:00:00Z"))
        // No DST in Seoul: the days the US and Europe change are ordinary there.
        let november = try fires("0 0 * * *", in: "Asia/Seoul", after: "2024-11-02T12:00:00+09:00", count: 3)
        #expect(zip(november, november.dropFirst()).map { $1.timeIntervalSince($0) } == [86_400, 86_400])
    }
}

@Suite struct CronErrorTests {
    @Test(arguments: [
        ("61 * * * *", "minute field \"61\": value out of range 0–59"),
        ("1,61 * * * *", "minute field \"61\": value out of range 0–59"),
        ("* 24 * * *", "hour field \"24\": value out of range 0–23"),
        ("* * 0 * *", "day-of-month field \"0\": value out of range 1–31"),
        ("* * * 13 *", "month field \"13\": value out of range 1–12"),
        ("* * * * 8", "day-of-week field \"8\": value out of range 0–7"),
        ("x * * * *", "minute field \"x\": not a number"),
        ("+5 * * * *", "minute field \"+5\": not a number"),
        ("* * * foo *", "month field \"foo\": not a number or month name (jan–dec)"),
        ("* * * * funday", "day-of-week field \"funday\": not a number or day name (sun–sat)"),
        ("*/0 * * * *", "minute field \"*/0\": step must be a positive whole number"),
        ("5-2 * * * *", "minute field \"5-2\": range start 5 is after its end 2"),
        ("1,,2 * * * *", "minute field \"1,,2\": empty list element"),
        ("* * * *", "\"* * * *\": expected 5 fields (minute hour day-of-month month day-of-week) or a macro, got 4"),
        ("@fortnightly", "unknown macro \"@fortnightly\"; known macros: @hourly, @daily, @midnight, @weekly, @monthly, @yearly, @annually"),
    ])
    func parseErrorsNameTheFieldAndText(expression: String, message: String) {
        do {
            _ = try CronSchedule(expression, timeZone: zone("UTC"))
            Issue.record("\"\(expression)\" was accepted")
        } catch {
            #expect("\(error)" == message)
        }
    }

    @Test func typedErrorCarriesTheField() {
        #expect(throws: CronError.invalidField(.hour, text: "24", problem: "value out of range 0–23")) {
            try CronSchedule("0 24 * * *", timeZone: zone("UTC"))
        }
    }

    @Test func timeZonesAreLookedUpByIdentifier() throws {
        #expect(try CronSchedule.timeZone(named: "Asia/Seoul").identifier == "Asia/Seoul")
        #expect(throws: CronError.unknownTimeZone("Mars/Base")) { try CronSchedule.timeZone(named: "Mars/Base") }
        #expect(throws: CronError.unknownTimeZone("")) { try CronSchedule.timeZone(named: "") }
        #expect(CronError.unknownTimeZone("Mars/Base").description == "unknown time zone \"Mars/Base\"")
    }
}
