import Cluster
import Config
import Foundation
import Health

extension Agent {
    /// Starts following the cluster in etcd (no-op outside a cluster); runs until the task is cancelled.
    public func runCluster() async {
        guard let member else { return }
        let delegate = ClusterMember.Delegate(
            apply: { [self] yaml, revision in await self.applyShared(yaml: yaml, revision: revision) },
            observationsChanged: { [self] in await self.clusterHealthChanged() },
            running: { [self] in await self.runningTables() })
        await publishOwnHealth()
        // Transitions publish at once (healthChanged); this also publishes a target's first
        // results, which are no transition (targets start healthy), so every node's vote counts.
        await withTaskGroup(of: Void.self) { group in
            group.addTask { await member.run(delegate) }
            group.addTask { [self] in
                while !Task.isCancelled {
                    try? await Task.sleep(nanoseconds: 250_000_000)
                    await self.publishOwnHealth()
                }
            }
            await group.next()
            group.cancelAll()
        }
    }

    /// Applies a shared config from etcd; returns nil, or why it was refused (the running one stays).
    func applyShared(yaml: String, revision: Int64) async -> String? {
        let shared: SharedConfig
        do { shared = try ConfigLoader.parseShared(yaml, file: "etcd revision \(revision)", node: fileConfig.node) } catch {
            events["cluster_refused", default: 0] += 1
            return error.description
        }
        if shared.hasGlobalProtection && fileConfig.protection.defaults != ProtectionRules() {
            logger.warning("the shared config's protection section replaces this node file's (runtime denies still apply)",
                           metadata: ["revision": "\(revision)"])
        }
        do {
            try await install(fileConfig.running(shared), source: "etcd revision \(revision)")
        } catch {
            events["cluster_refused", default: 0] += 1
            return "\(error)"
        }
        self.shared = shared
        events["cluster_applied", default: 0] += 1
        return nil
    }

    /// Another node's observations changed, or etcd came or went: recompute the agreed health.
    func clusterHealthChanged() async {
        do { try await reconcileWithHealth(reason: "cluster-health") } catch {
            logger.error("reconcile failed", metadata: ["error": "\(error)"])
        }
    }

    /// This node's probe results as published: target → healthy, for every target probed at least once.
    func publishOwnHealth() async {
        guard let member else { return }
        var own: [String: Bool] = [:]
        for (t, s) in await health.states where s.probes > 0 { own[t.description] = s.healthy }
        await member.setOwnHealth(own)
    }

    /// The agreed health (target description → healthy), or nil when this node uses its own probes.
    func agreedHealth() async -> [String: Bool]? {
        guard let member else { return nil }
        let (consensus, words) = await member.healthSource()
        await member.setHealthMode(words)
        guard consensus else { return nil }
        return HealthConsensus.effective(member.config.healthRule, observations: await member.observations)
    }

    /// What the node runs, for its cluster report.
    func runningTables() -> (digests: [String: String], hashSeed: UInt32) {
        var d: [String: String] = [:]
        for v in config.vips { d[v.name] = controller.vips[v.name]?.ring?.digest ?? "" }
        return (d, config.node.hashSeed)
    }

    /// The cluster part of the status (nil outside a cluster).
    func clusterStatus() async -> AgentStatus.Cluster? {
        guard let member else { return nil }
        let iso = ISO8601DateFormatter()
        let source = await member.healthSource()
        let obs = await member.observations
        return AgentStatus.Cluster(
            nodeName: member.config.nodeName, endpoints: member.config.endpoints, prefix: member.config.prefix,
            revision: await member.runningRevision, etcdReachable: await member.reachable,
            unreachableSince: await member.unreachableSince.map { iso.string(from: $0) },
            staleSince: await member.staleSince.map { iso.string(from: $0) }, lastError: await member.lastError,
            refusedRevision: await member.refused?.revision, refusedError: await member.refused?.error,
            healthRule: member.config.healthRule.rawValue, health: source.words, healthConsensus: source.consensus,
            liveNodes: obs.keys.sorted(), applied: await member.applied, lastApplyMs: await member.lastApplyMs)
    }
}
