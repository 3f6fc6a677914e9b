import Config
import HummingbirdCore

/// Everything the admin API needs before the agent starts, checked up front
/// so a bad setting fails the start before anything touches the kernel:
/// the endpoint, its socket (group, stale file) or its token file.
public struct AdminListener: Sendable {
    /// Where the API listens.
    public let endpoint: AdminEndpoint
    /// The unix socket (nil on TCP).
    public let socket: AdminSocket?
    /// Who may do what.
    public let access: AdminAccess

    /// Checks `node.admin`, `node.admin_group` and `node.admin_token_file`.
    /// - Throws: ``AgentError`` (or ``AdminEndpointError``) with what to fix.
    public init(node: NodeConfig) throws {
        endpoint = try AdminEndpoint(parsing: node.admin)
        switch endpoint {
        case .unix(let path):
            socket = try AdminSocket(path: path, group: node.adminGroup)
            access = .socket
        case .tcp:
            socket = nil
            access = .tcp(token: try node.adminTokenFile.map { try AdminToken(file: $0) })
        }
    }

    /// What Hummingbird binds: the socket's temporary name, or host and port.
    var bindAddress: BindAddress {
        switch endpoint {
        case .unix: .unixDomainSocket(path: socket!.bindPath)
        case .tcp(let host, let port): .hostname(host, port: port)
        }
    }
}
