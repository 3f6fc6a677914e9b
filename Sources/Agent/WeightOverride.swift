/// An admin setting of a backend's weight (`xdplb drain|undrain|weight`).
enum WeightOverride: Equatable, Sendable {
    /// This weight (0: drained).
    case weight(UInt32)
    /// The config's weight, overriding a setting made for every VIP.
    case configured
}
