import Config
import Testing

/// `node.admin`, `node.admin_group`, `node.admin_token_file` (issue #11 finding 17):
/// a unix socket by default, TCP opt-in; each setting only where it applies.
@Suite("admin API settings (issue #11.17)")
struct AdminConfigTests {
    static func node(_ fields: String) -> String {
        "node: { interface: eth0, encap_source: { ipv4: 10.0.2.2 }\(fields.isEmpty ? "" : ", " + fields) }\nvips: []"
    }

    static func refusal(_ yaml: String) -> String? {
        do throws(ConfigError) {
            _ = try ConfigLoader.parse(yaml, file: "f.yaml")
            return nil
        } catch {
            return error.issues.map(\.description).joined(separator: "\n")
        }
    }

    @Test("no node.admin: the default unix socket, root only")
    func defaultIsTheSocket() throws {
        let n = try ConfigLoader.parse(Self.node(""), file: "f.yaml").node
        #expect(try AdminEndpoint(parsing: n.admin) == .unix(path: "/run/xdplb/admin.sock"))
        #expect(n.adminGroup == nil && n.adminTokenFile == nil)
    }

    @Test("a per-node socket path with a group, and TCP with a token file, are kept")
    func socketAndTCPForms() throws {
        let s = try ConfigLoader.parse(Self.node("admin: 'unix:/run/xdplb/lb1.sock', admin_group: xdplb"), file: "f.yaml").node
        #expect(try AdminEndpoint(parsing: s.admin) == .unix(path: "/run/xdplb/lb1.sock"))
        #expect(s.adminGroup == "xdplb")
        let t = try ConfigLoader.parse(Self.node("admin: '[::1]:9180', admin_token_file: /etc/xdplb/admin.token"), file: "f.yaml").node
        #expect(try AdminEndpoint(parsing: t.admin) == .tcp(host: "::1", port: 9180))
        #expect(t.adminTokenFile == "/etc/xdplb/admin.token")
    }

    @Test("each refusal names the key and the reason", arguments: [
        ("admin: '127.0.0.1:9180', admin_group: adm",
         "f.yaml: node.admin_group: applies to a unix-socket node.admin only (TCP writes use node.admin_token_file)"),
        ("admin_token_file: /etc/t",
         "f.yaml: node.admin_token_file: applies to a TCP node.admin only (the unix socket is guarded by its file permissions)"),
        ("admin: '127.0.0.1:9180', admin_token_file: etc/t", "f.yaml: node.admin_token_file: 'etc/t' must be an absolute path without '..'"),
        ("admin: 'unix:x.sock'", "f.yaml: node.admin: unix:x.sock: a socket path must be absolute"),
        ("admin: '/run/xdplb/../x.sock'", "f.yaml: node.admin: /run/xdplb/../x.sock: a socket path must name a file, without '.', '..' or control characters"),
        ("admin: '/run/xdplb/'", "f.yaml: node.admin: /run/xdplb/: a socket path must name a file, without '.', '..' or control characters"),
        ("admin: '10.0.0.1:0'", "f.yaml: node.admin: '10.0.0.1:0' is neither a socket path (/path or unix:/path) nor host:port"),
        ("admin: 'example.com:80'", "f.yaml: node.admin: 'example.com:80': 'example.com' is not an IP address or localhost"),
        ("admin: '10.0.0.1:9180'", "f.yaml: node.admin: '10.0.0.1:9180' is not a loopback address; set node.admin_allow_remote: true to allow it"),
        ("admin_group: ''", "f.yaml: node.admin_group: '' is not a group name (letters, digits, '_', '-', '.', at most 32)"),
    ])
    func refused(fields: String, error: String) {
        #expect(Self.refusal(Self.node(fields)) == error)
    }

    @Test("a remote TCP address is accepted with admin_allow_remote")
    func remoteAllowed() throws {
        let n = try ConfigLoader.parse(Self.node("admin: '10.0.0.1:9180', admin_allow_remote: true"), file: "f.yaml").node
        #expect(try AdminEndpoint(parsing: n.admin) == .tcp(host: "10.0.0.1", port: 9180))
    }
}
