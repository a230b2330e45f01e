import Foundation
import GatewayKit
import Testing
import Wire

@Suite struct EventQueueTests {
    func event(_ i: Int) -> WireFeedbackEvent {
        .with { $0.eventID = "q\(i)"; $0.userID = 1; $0.listingID = 2; $0.type = "click"; $0.eventTimeMs = 1_780_272_000_000 }
    }

    func directory() -> URL {
        FileManager.default.temporaryDirectory.appendingPathComponent("tower-queue-\(UUID().uuidString.prefix(8))")
    }

    @Test func aFullQueueRefusesWithTheLimitAndKeepsWhatItHas() throws {
        let dir = directory()
        let one = try event(0).serializedData().count + 4
        let queue = try EventQueue(directory: dir, maxBytes: one * 3)
        try queue.append([event(0), event(1)])
        try queue.append([event(2)])
        #expect(throws: EventQueue.QueueError.full(bytes: one * 3, limit: one * 3)) { try queue.append([event(3)]) }
        #expect(EventQueue.QueueError.full(bytes: one * 3, limit: one * 3).description
                == "the gateway's event queue is full (\(one * 3) of \(one * 3) bytes) while the coordinator is unreachable; retry later or raise --queue-max-bytes")
        #expect(queue.peek(10).map(\.eventID) == ["q0", "q1", "q2"])
        // Delivered events leave; the rest survive a restart, in order.
        try queue.drop(1)
        let reopened = try EventQueue(directory: dir, maxBytes: one * 3)
        #expect(reopened.peek(10).map(\.eventID) == ["q1", "q2"])
        try reopened.append([event(3)])
        #expect(reopened.count == 3)
    }

    @Test func aRecordTornByACrashIsDroppedOnOpenNeverHalfRead() throws {
        let dir = directory()
        let queue = try EventQueue(directory: dir)
        try queue.append([event(0), event(1)])
        // A crash in the middle of appending the third record.
        let handle = try FileHandle(forWritingTo: queue.url)
        handle.seekToEndOfFile()
        handle.write(Data([0, 0, 0, 40, 0x0A, 0x02]))
        try handle.close()
        let reopened = try EventQueue(directory: dir)
        #expect(reopened.peek(10).map(\.eventID) == ["q0", "q1"])
        let expected = try [event(0), event(1)].reduce(0) { $0 + 4 + (try $1.serializedData().count) }
        #expect(try Data(contentsOf: queue.url).count == expected)
    }
}
