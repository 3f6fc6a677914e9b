import Config
import Foundation
import Logging

/// This node's part in the cluster: follows the shared config in etcd, publishes what the node
/// runs and what its probes see (under a lease), and collects every live node's observations.
///
/// It never touches the data plane itself: the agent applies configs (and may refuse them)
/// through `Delegate`, and reads `observations` to compute the agreed health.
public actor ClusterMember {
    /// What the member asks of the agent.
    public struct Delegate: Sendable {
        /// Applies the shared config text of `revision`; returns nil, or why it was refused.
        public var apply: @Sendable (_ yaml: String, _ revision: Int64) async -> String?
        /// Another node's (or this node's) published observations changed.
        public var observationsChanged: @Sendable () async -> Void
        /// What this node runs now: table digest per VIP and the hash seed.
        public var running: @Sendable () async -> (digests: [String: String], hashSeed: UInt32)

        public init(apply: @escaping @Sendable (String, Int64) async -> String?,
                    observationsChanged: @escaping @Sendable () async -> Void,
                    running: @escaping @Sendable () async -> (digests: [String: String], hashSeed: UInt32)) {
            self.apply = apply
            self.observationsChanged = observationsChanged
            self.running = running
        }
    }

    /// The settings.
    public nonisolated let config: ClusterConfig
    let store: ClusterStore
    let logger: Logger
    var delegate: Delegate?

    /// The revision and text of the shared config this node runs (0: none).
    public private(set) var runningRevision: Int64 = 0
    public private(set) var runningYAML: String?
    /// Set while the node runs a config from its cache because etcd was unreachable at start.
    public private(set) var staleSince: Date?
    /// The newest revision refused, if newer than the one running.
    public private(set) var refused: NodeReport.Refusal?
    /// Every live node's published observations (node → target → healthy), this node's included.
    public private(set) var observations: [String: [String: Bool]] = [:]
    /// Whether the last etcd exchange worked, and since when it has not.
    public private(set) var reachable = false
    public private(set) var unreachableSince: Date? = Date()
    public private(set) var lastError: String?
    /// Config changes applied from etcd, and the last one's delay from the watch event to applied.
    public private(set) var applied = 0
    public private(set) var lastApplyMs = 0.0
    var ownHealth: [String: Bool] = [:]
    var lease: Int64?
    var published: (report: NodeReport?, health: [String: Bool]?) = (nil, nil)
    /// A publish is running (actor reentrancy: its awaits let others in) / another was asked for meanwhile.
    var publishing = false
    var publishAgain: (asked: Bool, force: Bool) = (false, false)
    var healthMode = ""

    /// A member for `config`'s cluster.
    public init(_ config: ClusterConfig, logger: Logger) throws(EtcdError) {
        self.config = config
        self.logger = logger
        store = ClusterStore(etcd: try EtcdClient(config, logger: logger), prefix: config.prefix)
    }

    // MARK: start

    /// Where the first config came from.
    public struct Start: Sendable {
        /// The shared config (nil: none from etcd or the cache; the node starts with no VIPs).
        public var shared: SharedConfig?
        public var yaml: String?
        public var revision: Int64
        /// From the cache because etcd was unreachable (or its config refused).
        public var fromCache: Bool
        /// What happened, for the log.
        public var note: String
    }

    /// The shared config to start with: etcd's if reachable and valid for `node`, else the cache's.
    public func start(node: NodeConfig) async -> Start {
        var why = ""
        do {
            if let s = try await store.config() {
                do {
                    let shared = try ConfigLoader.parseShared(s.yaml, file: "etcd \(store.keys.config)@\(s.revision)", node: node)
                    accept(yaml: s.yaml, revision: s.revision, fromCache: false)
                    return Start(shared: shared, yaml: s.yaml, revision: s.revision, fromCache: false, note: "config revision \(s.revision) from etcd")
                } catch {
                    refused = .init(revision: s.revision, error: error.description)
                    why = "etcd's config (revision \(s.revision)) is refused: \(error.description)"
                }
            } else {
                reachable = true
                unreachableSince = nil
                return Start(shared: nil, yaml: nil, revision: 0, fromCache: false, note: "etcd holds no shared config yet: no VIPs until one is pushed")
            }
        } catch {
            lastError = error.description
            why = error.description
        }
        switch ClusterCache.load(config.cacheFile) {
        case .success(let c?):
            if let shared = try? ConfigLoader.parseShared(c.yaml, file: config.cacheFile, node: node) {
                runningRevision = c.revision
                runningYAML = c.yaml
                staleSince = Date()
                return Start(shared: shared, yaml: c.yaml, revision: c.revision, fromCache: true,
                             note: "\(why); running the cached config of revision \(c.revision) (saved \(c.saved))")
            }
            return Start(shared: nil, yaml: nil, revision: 0, fromCache: true, note: "\(why); the cache \(config.cacheFile) is not valid for this node either: no VIPs")
        case .success(nil):
            staleSince = Date()
            return Start(shared: nil, yaml: nil, revision: 0, fromCache: true, note: "\(why); no cache at \(config.cacheFile): no VIPs until etcd answers")
        case .failure(let e):
            staleSince = Date()
            return Start(shared: nil, yaml: nil, revision: 0, fromCache: true, note: "\(why); \(e.description): no VIPs until etcd answers")
        }
    }

    /// Records that the node runs `yaml` of `revision`, and caches it.
    func accept(yaml: String, revision: Int64, fromCache: Bool) {
        runningRevision = revision
        runningYAML = yaml
        if !fromCache { staleSince = nil }
        if let r = refused, r.revision <= revision { refused = nil }
        do { try ClusterCache(revision: revision, yaml: yaml, saved: ISO8601DateFormatter().string(from: Date())).save(config.cacheFile) } catch {
            logger.warning("cluster cache not written", metadata: ["error": "\(error.description)"])
        }
    }

    // MARK: the loop

    /// Follows etcd until the task is cancelled: lease, snapshot, watch; reconnects with backoff.
    public func run(_ delegate: Delegate) async {
        self.delegate = delegate
        var backoffMs: UInt64 = 200
        while !Task.isCancelled {
            do {
                try await session()
                backoffMs = 200
            } catch is CancellationError {
                break
            } catch {
                markUnreachable(error)
                await delegate.observationsChanged()
            }
            if Task.isCancelled { break }
            try? await Task.sleep(nanoseconds: backoffMs * 1_000_000)
            backoffMs = min(backoffMs * 2, 2_000)
        }
    }

    func markUnreachable(_ error: Error) {
        let words = (error as? EtcdError)?.description ?? "\(error)"
        if reachable || lastError != words {
            logger.warning("etcd: \(words)", metadata: ["since": "\(unreachableSince.map { ISO8601DateFormatter().string(from: $0) } ?? "now")"])
        }
        if reachable { unreachableSince = Date() }
        reachable = false
        lastError = words
        lease = nil
        published = (nil, nil)
    }

    /// One connected session: grant a lease, publish, read everything, then keep the lease and watch.
    func session() async throws {
        let ttl = max(2, config.leaseTTLMs / 1000)
        let id = try await store.etcd.grantLease(ttlSeconds: ttl)
        lease = id
        try await store.etcd.put(store.keys.member(config.nodeName),
                                 clusterJSON(MemberRecord(node: config.nodeName, started: ISO8601DateFormatter().string(from: Self.started))))
        // The lease is kept alive from now on, also while a slow first apply runs.
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await self.keepLease(id, ttl: ttl) }
            group.addTask { try await self.syncAndFollow() }
            defer { group.cancelAll() }
            _ = try await group.next()
        }
    }

    /// Reads everything under the prefix, applies and publishes, then follows the watch.
    func syncAndFollow() async throws {
        let (revision, kvs) = try await store.etcd.get(store.keys.prefix, prefix: true)
        let wasUnreachable = !reachable
        reachable = true
        if wasUnreachable, let since = unreachableSince {
            logger.notice("etcd reachable again", metadata: ["after_s": "\(String(format: "%.1f", Date().timeIntervalSince(since)))"])
        }
        unreachableSince = nil
        lastError = nil
        var seen: [String: [String: Bool]] = [:]
        var configKV: EtcdKeyValue?
        for kv in kvs {
            if kv.key == store.keys.config { configKV = kv }
            if let name = store.keys.name(in: kv.key, under: store.keys.health), name != config.nodeName,
               let h = try? JSONDecoder().decode(HealthReport.self, from: kv.value) {
                seen[name] = h.observations
            }
        }
        seen[config.nodeName] = ownHealth
        observations = seen
        if let kv = configKV, kv.modRevision != runningRevision || staleSince != nil { await apply(kv) }
        try await publish(force: true)
        await delegate?.observationsChanged()
        try await follow(from: revision + 1)
    }

    static let started = Date()

    func keepLease(_ id: Int64, ttl: Int) async throws {
        while true {
            try await Task.sleep(nanoseconds: UInt64(ttl) * 1_000_000_000 / 3)
            let left = try await store.etcd.keepAlive(lease: id)
            if left <= 0 { throw EtcdError.server(code: 5, message: "lease \(id) expired; publishing again under a new one") }
        }
    }

    func follow(from revision: Int64) async throws {
        let events = try await store.etcd.watch(prefix: store.keys.prefix, fromRevision: revision)
        for try await batch in events {
            var healthChanged = false
            for e in batch {
                if e.kv.key == store.keys.config {
                    if e.kind == .delete {
                        logger.error("the shared config was deleted from etcd; keeping the running one (push a config to change it)")
                    } else {
                        await apply(e.kv)
                    }
                } else if let name = store.keys.name(in: e.kv.key, under: store.keys.health), name != config.nodeName {
                    if e.kind == .delete {
                        observations[name] = nil
                    } else if let h = try? JSONDecoder().decode(HealthReport.self, from: e.kv.value) {
                        if observations[name] != h.observations { observations[name] = h.observations } else { continue }
                    } else {
                        logger.warning("ignoring an unreadable health report", metadata: ["key": "\(e.kv.key)"])
                        continue
                    }
                    healthChanged = true
                }
            }
            if healthChanged { await delegate?.observationsChanged() }
        }
    }

    func apply(_ kv: EtcdKeyValue) async {
        guard let delegate else { return }
        let yaml = String(decoding: kv.value, as: UTF8.self)
        if kv.modRevision == runningRevision && yaml == runningYAML && staleSince == nil { return }
        let t0 = Date()
        if let error = await delegate.apply(yaml, kv.modRevision) {
            refused = .init(revision: kv.modRevision, error: error)
            logger.error("refused the shared config from etcd; the running one keeps forwarding",
                         metadata: ["revision": "\(kv.modRevision)", "running": "\(runningRevision)", "error": "\(error)"])
        } else {
            accept(yaml: yaml, revision: kv.modRevision, fromCache: false)
            applied += 1
            lastApplyMs = Date().timeIntervalSince(t0) * 1000
            logger.notice("applied the shared config from etcd", metadata: ["revision": "\(kv.modRevision)", "ms": "\(String(format: "%.1f", lastApplyMs))"])
        }
        try? await publish(force: false)
    }

    // MARK: publishing

    /// This node's probe results (target → healthy); published if they changed.
    public func setOwnHealth(_ h: [String: Bool]) async {
        ownHealth = h
        observations[config.nodeName] = h
        try? await publish(force: false)
    }

    /// Where the health view comes from, for the report (set by the agent).
    public func setHealthMode(_ mode: String) async {
        guard mode != healthMode else { return }
        healthMode = mode
        try? await publish(force: false)
    }

    /// Publishes the report and health if they changed (or always, with `force`).
    ///
    /// One publish at a time: a call while one runs is folded into another round after it, so
    /// an older report can never land in etcd after a newer one, and what is recorded as
    /// published is exactly what was written.
    public func publish(force: Bool) async throws {
        if publishing {
            publishAgain = (true, publishAgain.force || force)
            return
        }
        publishing = true
        defer { publishing = false }
        var f = force
        repeat {
            publishAgain = (false, false)
            do { try await publishOnce(force: f) } catch {
                // A round asked for meanwhile (a new session's forced publish) still runs.
                if !publishAgain.asked { throw error }
            }
            f = publishAgain.force
        } while publishAgain.asked
    }

    func publishOnce(force: Bool) async throws {
        guard let lease, reachable, let delegate else { return }
        let r = await delegate.running()
        let report = NodeReport(node: config.nodeName, revision: runningRevision, configSHA256: runningYAML.map(sha256Hex) ?? "",
                                hashSeed: r.hashSeed, digests: r.digests, health: healthMode,
                                staleSince: staleSince.map { ISO8601DateFormatter().string(from: $0) }, refused: refused,
                                updated: ISO8601DateFormatter().string(from: Date()))
        let health = ownHealth
        do {
            if force || published.report?.content != report.content {
                try await store.etcd.put(store.keys.node(config.nodeName), clusterJSON(report), lease: lease)
                published.report = report
            }
            if force || published.health != health {
                try await store.etcd.put(store.keys.health(config.nodeName), clusterJSON(HealthReport(node: config.nodeName, observations: health)), lease: lease)
                published.health = health
            }
        } catch {
            lastError = error.description
            throw error
        }
    }

    /// Revokes the lease: this node's report and health disappear now (clean shutdown).
    public func leave() async {
        if let lease { try? await store.etcd.revoke(lease: lease) }
        lease = nil
        await store.etcd.shutdown()
    }

    /// Whether health comes from the cluster now, and a sentence saying where it comes from.
    public func healthSource() -> (consensus: Bool, words: String) {
        if config.healthRule == .local { return (false, "local (cluster.health_rule: local)") }
        let live = observations.count
        if reachable { return (true, "consensus (\(config.healthRule.rawValue) of \(live) live node\(live == 1 ? "" : "s"))") }
        let since = unreachableSince ?? Date()
        let iso = ISO8601DateFormatter().string(from: since)
        if Date().timeIntervalSince(since) * 1000 >= Double(config.fallbackAfterMs) {
            return (false, "local (etcd unreachable since \(iso), longer than cluster.fallback_after)")
        }
        return (true, "consensus on the last view (\(config.healthRule.rawValue) of \(live) nodes; etcd unreachable since \(iso))")
    }
}
