import AsyncHTTPClient
import Config
import Foundation
import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOFoundationCompat
import NIOHTTP1
import NIOSSL

/// A key-value pair as stored in etcd.
public struct EtcdKeyValue: Sendable, Equatable {
    /// The key (text: xdplb's keys are UTF-8).
    public var key: String
    /// The value bytes.
    public var value: Data
    /// Revision that created the key, and that last changed it.
    public var createRevision: Int64
    public var modRevision: Int64
    /// Number of changes since creation.
    public var version: Int64
    /// The lease the key is attached to (0: none).
    public var lease: Int64
}

/// A failure talking to etcd, in words an operator can act on.
public enum EtcdError: Error, CustomStringConvertible, Sendable, Equatable {
    /// No endpoint answered (each endpoint's error listed).
    case unreachable(String)
    /// etcd answered with an error (its gRPC code and message).
    case server(code: Int, message: String)
    /// The revision asked for was compacted away.
    case compacted(String)
    /// etcd answered something this client cannot read.
    case badResponse(String)
    /// Client-side setup failed (TLS files, password file).
    case setup(String)

    public var description: String {
        switch self {
        case .unreachable(let s): return "etcd unreachable: \(s)"
        case .server(let code, let m): return "etcd refused the request (code \(code)): \(m)"
        case .compacted(let m): return "etcd: \(m)"
        case .badResponse(let s): return "etcd answered something unexpected: \(s)"
        case .setup(let s): return s
        }
    }
}

/// One etcd watch event.
public struct EtcdEvent: Sendable {
    /// Put (created or changed) or delete.
    public enum Kind: Sendable { case put, delete }
    public var kind: Kind
    /// The key after the event (for a delete: key and mod revision only).
    public var kv: EtcdKeyValue
}

/// A client of etcd's v3 API through its JSON gateway (`/v3/...`), over async-http-client.
///
/// Why the gateway: it is part of every etcd server (3.4's is `/v3/`), needs no generated code
/// and no protoc plugin in the build, and async-http-client gives HTTP/1.1 keep-alive, TLS with
/// client certificates (swift-nio-ssl) and streamed bodies for watches. Endpoints are tried in
/// order, starting with the last one that answered; a request fails over to the next on a
/// connection error or when a member says it is unavailable.
public final class EtcdClient: Sendable {
    let endpoints: [String]
    let http: HTTPClient
    let requestTimeout: TimeAmount
    let credentials: (user: String, password: String)?
    let state = NIOLockedValueBox<(preferred: Int, token: String?)>((0, nil))
    let logger: Logger

    /// A client for the cluster section's endpoints, TLS and auth.
    /// - Throws: `EtcdError.setup` if a TLS or password file can't be read.
    public init(_ config: ClusterConfig, logger: Logger) throws(EtcdError) {
        endpoints = config.endpoints
        requestTimeout = .milliseconds(Int64(config.requestTimeoutMs))
        self.logger = logger
        var tls: TLSConfiguration?
        if config.endpoints.contains(where: { $0.hasPrefix("https://") }) {
            var t = TLSConfiguration.makeClientConfiguration()
            do {
                if let ca = config.caFile { t.trustRoots = .certificates(try NIOSSLCertificate.fromPEMFile(ca)) }
                if let cert = config.certFile, let key = config.keyFile {
                    t.certificateChain = try NIOSSLCertificate.fromPEMFile(cert).map { .certificate($0) }
                    t.privateKey = .privateKey(try NIOSSLPrivateKey(file: key, format: .pem))
                }
            } catch {
                throw .setup("cluster TLS files: \(error)")
            }
            tls = t
        }
        if let user = config.username, let file = config.passwordFile {
            guard let data = FileManager.default.contents(atPath: file) else {
                throw .setup("cluster.password_file \(file): cannot read it")
            }
            let pw = String(decoding: data, as: UTF8.self).trimmingCharacters(in: .newlines)
            credentials = (user, pw)
        } else {
            credentials = nil
        }
        var timeout = HTTPClient.Configuration.Timeout()
        timeout.connect = .milliseconds(Int64(min(config.requestTimeoutMs, 1_000)))
        // No read timeout: watches stay quiet for as long as nothing changes.
        timeout.read = nil
        var c = HTTPClient.Configuration(tlsConfiguration: tls, timeout: timeout)
        c.httpVersion = .http1Only
        c.decompression = .disabled
        http = HTTPClient(eventLoopGroup: HTTPClient.defaultEventLoopGroup, configuration: c)
    }

    /// Closes every connection; the client is unusable afterwards.
    public func shutdown() async {
        try? await http.shutdown()
    }

    // MARK: requests

    /// Sends one JSON request to `/v3/<path>`, failing over between endpoints.
    func call<Response: Decodable>(_ path: String, _ body: some Encodable, as _: Response.Type) async throws(EtcdError) -> Response {
        let bytes: Data
        do { bytes = try JSONEncoder().encode(body) } catch { throw .badResponse("encoding a request: \(error)") }
        let (data, _) = try await post(path, bytes, stream: false)
        return try decode(Response.self, data ?? Data(), path: path)
    }

    func decode<T: Decodable>(_: T.Type, _ data: Data, path: String) throws(EtcdError) -> T {
        do { return try JSONDecoder().decode(T.self, from: data) } catch {
            throw .badResponse("\(path): \(String(decoding: data.prefix(200), as: UTF8.self))")
        }
    }

    /// POSTs `body`; returns the whole body (unary) or the live response (stream).
    func post(_ path: String, _ body: Data, stream: Bool) async throws(EtcdError) -> (Data?, HTTPClientResponse?) {
        var errors: [String] = []
        let start = state.withLockedValue { $0.preferred }
        var authRetried = false
        var i = 0
        while i < endpoints.count {
            let index = (start + i) % endpoints.count
            let url = endpoints[index] + "/v3/" + path
            var req = HTTPClientRequest(url: url)
            req.method = .POST
            req.headers.add(name: "Content-Type", value: "application/json")
            if credentials != nil {
                let token: String
                if let t = state.withLockedValue({ $0.token }) { token = t } else { token = try await authenticate(endpoint: endpoints[index]) }
                req.headers.add(name: "Authorization", value: token)
            }
            req.body = .bytes(ByteBuffer(data: body))
            do {
                let response = try await http.execute(req, deadline: .now() + requestTimeout, logger: logger)
                if stream && response.status == .ok {
                    state.withLockedValue { $0.preferred = index }
                    return (nil, response)
                }
                let data = try await collect(response)
                if response.status == .ok {
                    state.withLockedValue { $0.preferred = index }
                    return (data, nil)
                }
                let e = try? JSONDecoder().decode(WireError.self, from: data)
                let code = e?.code ?? e?.grpc_code ?? Int(response.status.code)
                let message = e?.message ?? e?.error ?? String(decoding: data.prefix(200), as: UTF8.self)
                // 14 unavailable (no leader, member stopping): another member may serve it.
                if code == 14 { errors.append("\(endpoints[index]): \(message)"); i += 1; continue }
                // 16 unauthenticated (token expired): authenticate again once.
                if code == 16 && credentials != nil && !authRetried {
                    authRetried = true
                    state.withLockedValue { $0.token = nil }
                    continue
                }
                if message.contains("compacted") { throw EtcdError.compacted(message) }
                throw EtcdError.server(code: code, message: message)
            } catch let e as EtcdError {
                throw e
            } catch {
                errors.append("\(endpoints[index]): \(Self.words(error))")
                i += 1
            }
        }
        throw .unreachable(errors.joined(separator: "; "))
    }

    /// The whole body of a unary response, bounded in size and time.
    func collect(_ response: HTTPClientResponse) async throws -> Data {
        let timeout = requestTimeout
        return try await withThrowingTaskGroup(of: Data?.self) { group in
            group.addTask { Data(buffer: try await response.body.collect(upTo: 64 << 20)) }
            group.addTask { try await Task.sleep(nanoseconds: UInt64(timeout.nanoseconds)); return nil }
            defer { group.cancelAll() }
            guard let first = try await group.next(), let data = first else { throw HTTPClientError.readTimeout }
            return data
        }
    }

    func authenticate(endpoint: String) async throws(EtcdError) -> String {
        guard let credentials else { throw .setup("no credentials") }
        var req = HTTPClientRequest(url: endpoint + "/v3/auth/authenticate")
        req.method = .POST
        do {
            req.body = .bytes(ByteBuffer(data: try JSONEncoder().encode(WireAuthRequest(name: credentials.user, password: credentials.password))))
            let response = try await http.execute(req, deadline: .now() + requestTimeout, logger: logger)
            let data = try await collect(response)
            guard response.status == .ok, let token = try? JSONDecoder().decode(WireAuthResponse.self, from: data).token else {
                let e = try? JSONDecoder().decode(WireError.self, from: data)
                throw EtcdError.server(code: e?.code ?? Int(response.status.code), message: "authenticating as \(credentials.user): \(e?.message ?? e?.error ?? "refused (HTTP \(response.status.code)) \(String(decoding: data.prefix(200), as: UTF8.self))")")
            }
            state.withLockedValue { $0.token = token }
            return token
        } catch let e as EtcdError { throw e } catch {
            throw .unreachable("\(endpoint): \(Self.words(error))")
        }
    }

    /// A short description of a transport error.
    static func words(_ error: Error) -> String {
        if let e = error as? HTTPClientError {
            if e == .deadlineExceeded || e == .readTimeout { return "timed out" }
            if e == .connectTimeout { return "connect timed out" }
            return "\(e)"
        }
        let s = "\(error)"
        for (needle, words) in [("Connection refused", "connection refused"), ("No route to host", "no route to host"),
                                ("Network is unreachable", "network unreachable"), ("Connection reset", "connection reset"),
                                ("certificate", "TLS: \(s.prefix(120))")] where s.contains(needle) {
            return words
        }
        return s.count > 160 ? String(s.prefix(160)) + "…" : s
    }

    static func kv(_ w: WireKV) -> EtcdKeyValue {
        EtcdKeyValue(key: String(decoding: Data(base64Encoded: w.key ?? "") ?? Data(), as: UTF8.self),
                     value: Data(base64Encoded: w.value ?? "") ?? Data(),
                     createRevision: w.create_revision?.value ?? 0, modRevision: w.mod_revision?.value ?? 0,
                     version: w.version?.value ?? 0, lease: w.lease?.value ?? 0)
    }

    /// The end of the range holding every key that starts with `prefix`.
    static func prefixEnd(_ prefix: String) -> Data {
        var bytes = Array(prefix.utf8)
        while let last = bytes.last {
            if last < 0xff { bytes[bytes.count - 1] = last + 1; return Data(bytes) }
            bytes.removeLast()
        }
        return Data([0])
    }

    // MARK: KV

    /// Reads `key` (or every key under it with `prefix`), at `revision` or the newest.
    /// - Returns: the store's revision and the pairs found.
    public func get(_ key: String, prefix: Bool = false, revision: Int64? = nil) async throws(EtcdError) -> (revision: Int64, kvs: [EtcdKeyValue]) {
        let r = try await call("kv/range", WireRangeRequest(key: key.base64, range_end: prefix ? Self.prefixEnd(key).base64 : nil,
                                                             revision: revision.map(EtcdInt.init)), as: WireRangeResponse.self)
        return (r.header?.revision?.value ?? 0, (r.kvs ?? []).map(Self.kv))
    }

    /// Writes `key`, attached to `lease` if given. - Returns: the new revision.
    @discardableResult
    public func put(_ key: String, _ value: Data, lease: Int64? = nil) async throws(EtcdError) -> Int64 {
        struct R: Decodable { var header: WireHeader? }
        let r = try await call("kv/put", WirePutRequest(key: key.base64, value: value.base64, lease: lease.map(EtcdInt.init)), as: R.self)
        return r.header?.revision?.value ?? 0
    }

    /// Deletes `key` (or every key under it). - Returns: the new revision.
    @discardableResult
    public func delete(_ key: String, prefix: Bool = false) async throws(EtcdError) -> Int64 {
        struct R: Decodable { var header: WireHeader? }
        let r = try await call("kv/deleterange", WireDeleteRequest(key: key.base64, range_end: prefix ? Self.prefixEnd(key).base64 : nil), as: R.self)
        return r.header?.revision?.value ?? 0
    }

    /// Writes every pair in one transaction, only if no key in `unchangedSince` was modified after the
    /// revision given for it (`nil`: the key must not exist).
    /// - Returns: whether it was written, and the store's revision after.
    public func putAll(_ pairs: [(String, Data)], unchangedSince: [String: Int64?] = [:]) async throws(EtcdError) -> (written: Bool, revision: Int64) {
        let compares = unchangedSince.sorted { $0.key < $1.key }.map { key, rev in
            rev.map { WireCompare(target: "MOD", key: key.base64, result: "LESS", mod_revision: EtcdInt($0 + 1)) }
                ?? WireCompare(target: "VERSION", key: key.base64, result: "EQUAL", version: EtcdInt(0))
        }
        let ops = pairs.map { WireRequestOp(request_put: WirePutRequest(key: $0.0.base64, value: $0.1.base64)) }
        let r = try await call("kv/txn", WireTxnRequest(compare: compares, success: ops, failure: []), as: WireTxnResponse.self)
        return (r.succeeded ?? false, r.header?.revision?.value ?? 0)
    }

    /// The version of the member that answers, and the store's revision (a liveness probe).
    public func status() async throws(EtcdError) -> (version: String, revision: Int64) {
        let r = try await call("maintenance/status", [String: String](), as: WireStatusResponse.self)
        return (r.version ?? "?", r.header?.revision?.value ?? 0)
    }

    // MARK: leases

    /// Grants a lease of `ttlSeconds`. - Returns: its id.
    public func grantLease(ttlSeconds: Int) async throws(EtcdError) -> Int64 {
        let r = try await call("lease/grant", WireLease(ID: nil, TTL: EtcdInt(Int64(ttlSeconds))), as: WireLeaseResponse.self)
        guard let id = r.ID?.value, id != 0 else { throw .badResponse("lease grant without an id\(r.error.map { ": \($0)" } ?? "")") }
        return id
    }

    /// Refreshes a lease. - Returns: its TTL in seconds, 0 if it has expired.
    public func keepAlive(lease: Int64) async throws(EtcdError) -> Int64 {
        let r = try await call("lease/keepalive", WireLease(ID: EtcdInt(lease), TTL: nil), as: WireResult<WireLeaseResponse>.self)
        if let e = r.error { throw .server(code: e.code ?? 0, message: e.message ?? e.error ?? "keepalive failed") }
        return r.result?.TTL?.value ?? 0
    }

    /// Revokes a lease: every key attached to it is deleted now.
    public func revoke(lease: Int64) async throws(EtcdError) {
        struct R: Decodable { var header: WireHeader? }
        _ = try await call("kv/lease/revoke", WireLease(ID: EtcdInt(lease), TTL: nil), as: R.self)
    }

    // MARK: watch

    /// Watches every key under `prefix` from `revision` on. The stream ends (throws) when the
    /// connection does; the caller watches again from the last revision it saw + 1.
    public func watch(prefix: String, fromRevision revision: Int64) async throws(EtcdError) -> AsyncThrowingStream<[EtcdEvent], Error> {
        let create = WireWatchCreate(create_request: .init(key: prefix.base64, range_end: Self.prefixEnd(prefix).base64,
                                                           start_revision: EtcdInt(revision), progress_notify: true, prev_kv: false))
        let body: Data
        do { body = try JSONEncoder().encode(create) } catch { throw .badResponse("\(error)") }
        let (_, response) = try await post("watch", body, stream: true)
        guard let response else { throw .badResponse("watch: no stream") }
        return AsyncThrowingStream { continuation in
            let task = Task {
                var pending = Data()
                do {
                    for try await chunk in response.body {
                        pending.append(contentsOf: chunk.readableBytesView)
                        while let nl = pending.firstIndex(of: UInt8(ascii: "\n")) {
                            let line = pending[pending.startIndex..<nl]
                            pending = Data(pending[pending.index(after: nl)...])
                            if line.isEmpty { continue }
                            let r = try JSONDecoder().decode(WireResult<WireWatchResponse>.self, from: Data(line))
                            if let e = r.error { throw EtcdError.server(code: e.code ?? 0, message: e.message ?? "watch failed") }
                            guard let w = r.result else { continue }
                            if let c = w.compact_revision?.value, c > 0 {
                                throw EtcdError.compacted("watch from revision \(revision): compacted up to \(c)")
                            }
                            if w.canceled == true { throw EtcdError.server(code: 0, message: "watch canceled: \(w.cancel_reason ?? "")") }
                            let events = (w.events ?? []).map { EtcdEvent(kind: $0.type == "DELETE" ? .delete : .put, kv: Self.kv($0.kv ?? WireKV())) }
                            if !events.isEmpty { continuation.yield(events) }
                        }
                        if pending.count > 64 << 20 { throw EtcdError.badResponse("watch line longer than 64 MiB") }
                    }
                    continuation.finish(throwing: EtcdError.unreachable("watch stream ended"))
                } catch {
                    continuation.finish(throwing: error)
                }
            }
            continuation.onTermination = { _ in task.cancel() }
        }
    }
}
