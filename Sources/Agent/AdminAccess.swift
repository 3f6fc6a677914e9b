import Hummingbird

/// Who may do what on the admin API. On the unix socket the file permissions
/// already admitted root or `node.admin_group`: everything is allowed. On TCP
/// anyone who can reach the port may read counters and redacted status; writes
/// and the full status need `Authorization: Bearer <node.admin_token_file>`.
public enum AdminAccess: Sendable {
    /// The unix socket: trusted.
    case socket
    /// TCP; `token` nil means no token is configured and TCP is read-only.
    case tcp(token: AdminToken?)

    /// True when `req` may see secrets (hash seed, paths) and write.
    func trusts(_ req: Request) -> Bool {
        switch self {
        case .socket: return true
        case .tcp(let token): return token?.accepts(authorization: req.headers[.authorization]) ?? false
        }
    }

    /// nil when `req` may write; else the 401/403 answer saying what is missing.
    func refusal(_ req: Request) -> Response? {
        guard case .tcp(let token) = self else { return nil }
        guard let token else {
            return Self.answer(.forbidden, "writes over TCP are off: the agent has no node.admin_token_file (or use its unix socket)")
        }
        guard let header = req.headers[.authorization] else {
            var r = Self.answer(.unauthorized, "this write needs the admin token: Authorization: Bearer TOKEN (xdplb --admin-token-file FILE)")
            r.headers[.wwwAuthenticate] = "Bearer realm=\"xdplb\""
            return r
        }
        return token.accepts(authorization: header) ? nil : Self.answer(.forbidden, "the admin token does not match node.admin_token_file")
    }

    static func answer(_ status: HTTPResponse.Status, _ text: String) -> Response {
        Response(status: status, headers: [.contentType: "text/plain"], body: .init(byteBuffer: ByteBuffer(string: text + "\n")))
    }
}
