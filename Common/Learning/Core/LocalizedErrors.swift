import Foundation

// Foundation shows `localizedDescription` when an error crosses an API that only knows
// `Error`; these make it the same text as `description`, which says what to do.
extension DataError: LocalizedError { public var errorDescription: String? { description } }
extension ModelFileError: LocalizedError { public var errorDescription: String? { description } }
extension ParameterError: LocalizedError { public var errorDescription: String? { description } }
extension TrainingError: LocalizedError { public var errorDescription: String? { description } }
extension LogisticError: LocalizedError { public var errorDescription: String? { description } }
