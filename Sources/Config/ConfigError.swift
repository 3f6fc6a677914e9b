/// One problem in a configuration file: where (file and key path) and why.
public struct ConfigIssue: Sendable, Equatable, CustomStringConvertible {
    /// The file the problem is in.
    public var file: String
    /// Dotted key path with indices, e.g. `vips[0].ring_size`; empty for the whole document.
    public var keyPath: String
    /// What is wrong, and where possible how to fix it.
    public var reason: String

    /// `file: key.path: reason`.
    public var description: String {
        keyPath.isEmpty ? "\(file): \(reason)" : "\(file): \(keyPath): \(reason)"
    }
}

/// A configuration was refused; holds every problem found, in file order.
public struct ConfigError: Error, Sendable, CustomStringConvertible {
    /// Each problem found.
    public var issues: [ConfigIssue]

    /// One line per problem.
    public var description: String { issues.map(\.description).joined(separator: "\n") }
}
