import Config
import Foundation
import Hummingbird
import HummingbirdCore
import NIOCore
import Logging

/// The admin HTTP API used by `xdplb status|stats|reload|drain|undrain|weight|node`,
/// on a unix socket by default (see ``AdminSocket``) or on TCP (``AdminAccess``:
/// writes and the full status need the bearer token):
///
/// | method | path | what |
/// |---|---|---|
/// | GET | `/status` | VIPs, backends, health, weights, slots, digests (JSON; redacted for untrusted TCP readers) |
/// | GET | `/stats[?per_cpu=1]` | counters summed over CPUs (JSON) |
/// | GET | `/metrics` | Prometheus text exposition |
/// | POST | `/reload` | re-read the config file |
/// | POST | `/drain?backend=A[&vip=V]` | weight 0 |
/// | POST | `/undrain?backend=A[&vip=V]` | back to the config's weight |
/// | POST | `/weight?backend=A&weight=W[&vip=V]` | set a weight |
/// | GET | `/deny` | every deny and allow prefix in force, with scope and source (JSON) |
/// | POST | `/deny/add?prefix=P[&vip=V]` | deny a source prefix at run time (every VIP, or V) |
/// | POST | `/deny/del?prefix=P[&vip=V]` | remove a runtime deny |
/// | POST | `/node/drain` | withdraw every VIP of this node (node.bgp) |
/// | POST | `/node/undrain` | announce again what the gate allows |
/// | GET | `/healthz` | 200 while the program is attached; 503 with the reason once it is not |
///
/// At most ``maxConnections`` connections are open at once (more are answered
/// 503 and closed); one idle or half-sent for ``idleTimeout`` is closed.
public enum AdminServer {
    /// Most admin connections open at once.
    public static let maxConnections = 64
    /// An admin connection with no request in progress, or a request sent only in part, is closed after this.
    public static let idleTimeout: TimeAmount = .seconds(10)

    /// Builds the Hummingbird application serving `agent` on `listener`;
    /// `onRunning` runs once the server is bound (publishes the socket).
    public static func application(agent: Agent, metrics: Metrics, listener: AdminListener, logger: Logger,
                                   onRunning: @escaping @Sendable () async -> Void = {}) -> some ApplicationProtocol {
        let access = listener.access
        let router = Router()
        router.get("/healthz") { _, _ in
            guard let problem = await agent.checkAttachment() else { return Response(status: .ok, body: .init(byteBuffer: ByteBuffer(string: "ok\n"))) }
            return Response(status: .serviceUnavailable, body: .init(byteBuffer: ByteBuffer(string: problem + "\n")))
        }
        router.get("/status") { req, _ in
            let status = await agent.status()
            return try json(access.trusts(req) ? status : status.redacted())
        }
        router.get("/stats") { req, _ in
            try json(try await agent.stats(perCPU: req.uri.queryParameters.get("per_cpu") == "1"))
        }
        router.get("/metrics") { _, _ in
            let text = try await metrics.render(agent: agent)
            return Response(status: .ok, headers: [.contentType: "text/plain; version=0.0.4"],
                            body: .init(byteBuffer: ByteBuffer(string: text)))
        }
        router.post("/reload") { req, _ in
            if let no = access.refusal(req) { return no }
            return try await run { try await agent.reload() }
        }
        router.post("/drain") { req, _ in
            if let no = access.refusal(req) { return no }
            return try await run { try await agent.setWeight(backend: try backend(req), vip: req.uri.queryParameters.get("vip"), weight: 0) }
        }
        router.post("/undrain") { req, _ in
            if let no = access.refusal(req) { return no }
            return try await run { try await agent.setWeight(backend: try backend(req), vip: req.uri.queryParameters.get("vip"), weight: nil) }
        }
        router.post("/weight") { req, _ in
            if let no = access.refusal(req) { return no }
            return try await run {
                guard let w = req.uri.queryParameters.get("weight").flatMap(UInt32.init) else {
                    throw AgentError("missing or bad 'weight' (0...\(ConfigLoader.maxWeight))")
                }
                return try await agent.setWeight(backend: try backend(req), vip: req.uri.queryParameters.get("vip"), weight: w)
            }
        }
        router.get("/deny") { _, _ in try json(await agent.prefixListing()) }
        for (op, add) in [("add", true), ("del", false)] {
            router.post("/deny/\(op)") { req, _ in
                if let no = access.refusal(req) { return no }
                return try await run {
                    guard let p = req.uri.queryParameters.get("prefix") else { throw AgentError("missing 'prefix' parameter") }
                    return try await agent.deny(add, prefix: p, vip: req.uri.queryParameters.get("vip"))
                }
            }
        }
        router.post("/node/drain") { req, _ in
            if let no = access.refusal(req) { return no }
            return try await run { try await agent.setNodeDrained(true) }
        }
        router.post("/node/undrain") { req, _ in
            if let no = access.refusal(req) { return no }
            return try await run { try await agent.setNodeDrained(false) }
        }
        let limiter = AdminConnectionLimiter(cap: maxConnections)
        let server = HTTPServerBuilder { responder in
            GuardedHTTP1Channel(base: HTTP1Channel(responder: responder, configuration: .init(idleTimeout: idleTimeout)), limiter: limiter)
        }
        return Application(router: router, server: server,
                           configuration: .init(address: listener.bindAddress, serverName: "xdplb"),
                           onServerRunning: { _ in await onRunning() }, logger: logger)
    }

    static func backend(_ req: Request) throws -> String {
        guard let b = req.uri.queryParameters.get("backend") else { throw AgentError("missing 'backend' parameter") }
        return b
    }

    /// Runs an operation; a refusal (`AgentError`) becomes a 400 and any other
    /// failure a 500, each with the precise message as the body (never empty).
    static func run(_ op: () async throws -> String) async throws -> Response {
        do {
            let msg = try await op()
            return Response(status: .ok, body: .init(byteBuffer: ByteBuffer(string: msg + "\n")))
        } catch let e as AgentError {
            return Response(status: .badRequest, body: .init(byteBuffer: ByteBuffer(string: e.description + "\n")))
        } catch {
            return Response(status: .internalServerError, body: .init(byteBuffer: ByteBuffer(string: "\(error)\n")))
        }
    }

    static func json<T: Encodable>(_ v: T) throws -> Response {
        let enc = JSONEncoder()
        enc.outputFormatting = [.sortedKeys, .prettyPrinted]
        enc.keyEncodingStrategy = .convertToSnakeCase
        let data = try enc.encode(v)
        return Response(status: .ok, headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(bytes: data)))
    }
}
