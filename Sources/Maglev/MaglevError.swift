/// Why a Maglev table could not be built.
///
/// Each description reads as object, reason, fix.
public enum MaglevError: Error, Equatable, Sendable, CustomStringConvertible {
    /// The ring size is in range but not prime; `suggestion` is the next prime above it.
    case ringSizeNotPrime(size: Int, suggestion: Int)
    /// The ring size is outside ``MaglevTable/sizeRange``.
    case ringSizeOutOfRange(size: Int)
    /// Two backends have the same identity.
    case duplicateBackend(identity: String)
    /// A backend has an empty identity.
    case emptyIdentity
    /// More backends than ``MaglevTable/maxBackends``.
    case tooManyBackends(count: Int)
    /// A backend weight above ``MaglevTable/maxWeight``.
    case weightOutOfRange(identity: String, weight: UInt32)

    /// A sentence a person can act on.
    public var description: String {
        switch self {
        case let .ringSizeNotPrime(size, suggestion):
            return "ring size \(size) is not prime; Maglev needs a prime size (try \(suggestion))"
        case let .ringSizeOutOfRange(size):
            let r = MaglevTable.sizeRange
            return "ring size \(size) is out of range; use a prime from \(r.lowerBound) to \(r.upperBound)"
                + " (\(MaglevTable.defaultSize) is the usual choice)"
        case let .duplicateBackend(identity):
            return "backend '\(identity)' is listed more than once; list each backend once"
        case .emptyIdentity:
            return "a backend has an empty identity; give every backend its address"
        case let .tooManyBackends(count):
            return "\(count) backends is more than the \(MaglevTable.maxBackends) a table can hold;"
                + " split them over several VIPs or remove some"
        case let .weightOutOfRange(identity, weight):
            return "backend '\(identity)' has weight \(weight); weights must be 0 to \(MaglevTable.maxWeight)"
                + " (0 drains the backend)"
        }
    }
}
