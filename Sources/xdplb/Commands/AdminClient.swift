import ArgumentParser
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// A minimal HTTP/1.1 client for the agent's loopback admin API.
enum AdminClient {
    struct Reply {
        var status: Int
        var body: String
    }

    /// Sends `method path` to `address` (`host:port`); throws a clear error if nothing answers.
    static func request(_ method: String, _ path: String, address: String, timeoutSeconds: Int = 30) throws -> Reply {
        guard let colon = address.lastIndex(of: ":"), let port = UInt16(address[address.index(after: colon)...]) else {
            throw ValidationError("admin address '\(address)' is not host:port")
        }
        var host = String(address[..<colon])
        if host.hasPrefix("[") { host = String(host.dropFirst().dropLast()) }
        if host == "localhost" { host = "127.0.0.1" }
        var hints = addrinfo()
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        var res: UnsafeMutablePointer<addrinfo>?
        guard getaddrinfo(host, String(port), &hints, &res) == 0, let ai = res else {
            throw ValidationError("admin address '\(address)': cannot resolve '\(host)'")
        }
        defer { freeaddrinfo(res) }
        let fd = socket(ai.pointee.ai_family, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw ValidationError("socket: \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        var tv = timeval(tv_sec: timeoutSeconds, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        guard connect(fd, ai.pointee.ai_addr, ai.pointee.ai_addrlen) == 0 else {
            throw AgentUnreachable(address: address, reason: String(cString: strerror(errno)))
        }
        let req = "\(method) \(path) HTTP/1.1\r\nHost: \(address)\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
        _ = req.withCString { send(fd, $0, strlen($0), 0) }
        var data = [UInt8]()
        var buf = [UInt8](repeating: 0, count: 65536)
        while true {
            let n = recv(fd, &buf, buf.count, 0)
            if n <= 0 { break }
            data += buf[0..<n]
        }
        let text = String(decoding: data, as: UTF8.self)
        guard let headerEnd = text.range(of: "\r\n\r\n") else {
            throw AgentUnreachable(address: address, reason: "no HTTP response")
        }
        let head = text[..<headerEnd.lowerBound]
        let status = head.split(separator: " ").dropFirst().first.flatMap { Int($0) } ?? 0
        var body = String(text[headerEnd.upperBound...])
        if head.lowercased().contains("transfer-encoding: chunked") { body = dechunk(body) }
        return Reply(status: status, body: body)
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
    static func operate(_ path: String, address: String) throws {
        let r = try request("POST", path, address: address)
        if (200..<300).contains(r.status) {
            print(r.body, terminator: r.body.hasSuffix("\n") ? "" : "\n")
        } else {
            printError(r.body.trimmingCharacters(in: .whitespacesAndNewlines))
            throw ExitCode(1)
        }
    }

    static func get<T: Decodable>(_ path: String, address: String, as: T.Type) throws -> T {
        let r = try request("GET", path, address: address)
        guard r.status == 200 else { throw ValidationError("agent at \(address) answered \(r.status): \(r.body)") }
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
    @Option(help: "The agent's admin address (node.admin of its config).")
    var admin: String = "127.0.0.1:9180"
}

func percentEncode(_ s: String) -> String {
    s.addingPercentEncoding(withAllowedCharacters: .alphanumerics.union(CharacterSet(charactersIn: "-._~"))) ?? s
}
