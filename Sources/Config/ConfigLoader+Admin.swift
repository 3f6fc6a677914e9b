import Yams

extension Reader {
    /// `node.admin`, `node.admin_group`, `node.admin_token_file`, `node.admin_allow_remote`:
    /// a unix socket by default (group may connect), TCP opt-in (loopback unless allowed; token for writes).
    mutating func adminSection(_ m: [String: (Node, String)], _ n: inout NodeConfig) {
        if let v = bool(m["admin_allow_remote"]) { n.adminAllowRemote = v }
        var endpoint = AdminEndpoint.unix(path: AdminEndpoint.defaultSocketPath)
        if let (v, p) = scalar(m["admin"]) {
            do {
                endpoint = try AdminEndpoint(parsing: v)
                n.admin = v
                if case .tcp = endpoint, !endpoint.isLoopback, !n.adminAllowRemote {
                    fail(p, "\(Echo.quoted(v)) is not a loopback address; set node.admin_allow_remote: true to allow it")
                }
            } catch {
                fail(p, error.description)
            }
        }
        if let (g, p) = scalar(m["admin_group"]) {
            if case .tcp = endpoint {
                fail(p, "applies to a unix-socket node.admin only (TCP writes use node.admin_token_file)")
            } else if g.isEmpty || g.utf8.count > 32 || !g.unicodeScalars.allSatisfy({ $0.isASCII && ($0.properties.isAlphabetic || ("0"..."9").contains($0) || "_-.".unicodeScalars.contains($0)) }) {
                fail(p, "'\(Echo.clip(Echo.escaped(g), 40))' is not a group name (letters, digits, '_', '-', '.', at most 32)")
            } else {
                n.adminGroup = g
            }
        }
        if let (f, p) = scalar(m["admin_token_file"]) {
            if case .unix = endpoint {
                fail(p, "applies to a TCP node.admin only (the unix socket is guarded by its file permissions)")
            } else if !f.hasPrefix("/") || f.split(separator: "/").contains("..") || f.utf8.count > 4096 {
                fail(p, "'\(Echo.clip(Echo.escaped(f), 60))' must be an absolute path without '..'")
            } else {
                n.adminTokenFile = f
            }
        }
    }
}
