import Testing
@testable import Learning
@Test func placeholder() { #expect(Bool(true)) }
