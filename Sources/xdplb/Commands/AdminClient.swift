import Agent
import ArgumentParser
import Config
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// A minimal HTTP/1.1 client for the agent's admin API: its unix socket
/// (default) or TCP, with the bearer token when one is given.
enum AdminClient {
    struct Reply {
        var status: Int
        var body: String
    }

    /// Sends `method path` to the agent `admin` names; throws a clear error if nothing answers.
    static func request(_ method: String, _ path: String, via admin: AdminOptions, timeoutSeconds: Int = 30) throws -> Reply {
        let endpoint: AdminEndpoint
        do { endpoint = try AdminEndpoint(parsing: admin.admin) } catch {
            throw ValidationError("--admin \(error)")
        }
        let token = try admin.token()
        let fd = try connect(endpoint)
        defer { close(fd) }
        var tv = timeval(tv_sec: timeoutSeconds, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        let host = if case .tcp = endpoint { endpoint.description } else { "localhost" }
        let auth = token.map { "Authorization: Bearer \($0)\r\n" } ?? ""
        let req = "\(method) \(path) HTTP/1.1\r\nHost: \(host)\r\n\(auth)Content-Length: 0\r\nConnection: close\r\n\r\n"
        _ = req.withCString { send(fd, $0, strlen($0), Int32(MSG_NOSIGNAL)) }
        var data = [UInt8]()
        var buf = [UInt8](repeating: 0, count: 65536)
        while true {
            let n = recv(fd, &buf, buf.count, 0)
            if n <= 0 { break }
            data += buf[0..<n]
        }
        let text = String(decoding: data, as: UTF8.self)
        guard let headerEnd = text.range(of: "\r\n\r\n") else {
            throw AgentUnreachable(address: endpoint.description, reason: "no HTTP response")
        }
        let head = text[..<headerEnd.lowerBound]
        let status = head.split(separator: " ").dropFirst().first.flatMap { Int($0) } ?? 0
        var body = String(text[headerEnd.upperBound...])
        if head.lowercased().contains("transfer-encoding: chunked") { body = dechunk(body) }
        return Reply(status: status, body: body)
    }

    /// A connected socket to `endpoint`.
    static func connect(_ endpoint: AdminEndpoint) throws -> Int32 {
        switch endpoint {
        case .unix(let path):
            switch UnixSocketConnector.connect(path: path) {
            case .success(let fd): return fd
            case .failure(let e) where e.errno == EACCES:
                throw ValidationError("cannot connect to the admin socket \(path): \(e); it is for root and node.admin_group only")
            case .failure(let e):
                throw AgentUnreachable(address: endpoint.description, reason: e.description)
            }
        case .tcp(var host, let port):
            if host == "localhost" { host = "127.0.0.1" }
            var hints = addrinfo()
            hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
            hints.ai_flags = AI_NUMERICHOST
            var res: UnsafeMutablePointer<addrinfo>?
            guard getaddrinfo(host, String(port), &hints, &res) == 0, let ai = res else {
                throw ValidationError("admin address '\(endpoint)': cannot resolve '\(host)'")
            }
            defer { freeaddrinfo(res) }
            let fd = socket(ai.pointee.ai_family, Int32(SOCK_STREAM.rawValue), 0)
            guard fd >= 0 else { throw ValidationError("socket: \(String(cString: strerror(errno)))") }
            guard Glibc.connect(fd, ai.pointee.ai_addr, ai.pointee.ai_addrlen) == 0 else {
                let reason = String(cString: strerror(errno))
                close(fd)
                throw AgentUnreachable(address: endpoint.description, reason: reason)
            }
            return fd
        }
    }

    static func dechunk(_ s: String) -> String {
        var out = ""
        var rest = Substring(s)
        while let nl = rest.range(of: "\r\n"), let size = Int(rest[..<nl.lowerBound], radix: 16), size > 0 {
            let start = nl.upperBound
            let bytes = Array(rest[start...].utf8)
            out += String(decoding: bytes.prefix(size), as: UTF8.self)
            rest = Substring(String(decoding: bytes.dropFirst(size + 2), as: UTF8.self))
        }
        return out
    }

    /// POSTs an operation and prints its answer; non-2xx exits 1 with the agent's message.
    static func operate(_ path: String, via admin: AdminOptions) throws {
        let r = try request("POST", path, via: admin)
        if (200..<300).contains(r.status) {
            print(r.body, terminator: r.body.hasSuffix("\n") ? "" : "\n")
        } else {
            printError(r.body.trimmingCharacters(in: .whitespacesAndNewlines))
            throw ExitCode(1)
        }
    }

    static func get<T: Decodable>(_ path: String, via admin: AdminOptions, as: T.Type) throws -> T {
        let r = try request("GET", path, via: admin)
        guard r.status == 200 else { throw ValidationError("agent at \(admin.admin) answered \(r.status): \(r.body)") }
        let dec = JSONDecoder()
        dec.keyDecodingStrategy = .convertFromSnakeCase
        return try dec.decode(T.self, from: Data(r.body.utf8))
    }
}

struct AgentUnreachable: Error, CustomStringConvertible {
    var address: String
    var reason: String
    var description: String { "no agent answers on \(address) (\(reason)); is 'xdplb run' running? (--admin sets the address)" }
}

/// Options shared by commands that talk to the agent.
struct AdminOptions: ParsableArguments {
    @Option(help: ArgumentHelp("The agent's admin API (node.admin of its config): a unix socket path or host:port.",
                               valueName: "path|host:port"))
    var admin: String = AdminEndpoint.defaultSocketPath

    @Option(help: ArgumentHelp("File holding the bearer token for TCP writes (node.admin_token_file); default $\(tokenFileVariable).",
                               valueName: "file"))
    var adminTokenFile: String?

    /// The environment variable naming the token file when --admin-token-file is not given.
    static let tokenFileVariable = "XDPLB_ADMIN_TOKEN_FILE"

    /// The token from --admin-token-file or $XDPLB_ADMIN_TOKEN_FILE (nil: none given).
    func token() throws -> String? {
        guard let file = adminTokenFile ?? ProcessInfo.processInfo.environment[Self.tokenFileVariable], !file.isEmpty else { return nil }
        guard let data = FileManager.default.contents(atPath: file) else {
            throw ValidationError("admin token file \(file): cannot be read")
        }
        let token = String(decoding: data, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        guard !token.isEmpty, token.unicodeScalars.allSatisfy({ (0x21...0x7e).contains($0.value) }) else {
            throw ValidationError("admin token file \(file): expected one line of printable ASCII without spaces")
        }
        return token
    }
}

func percentEncode(_ s: String) -> String {
    s.addingPercentEncoding(withAllowedCharacters: .alphanumerics.union(CharacterSet(charactersIn: "-._~"))) ?? s
}
