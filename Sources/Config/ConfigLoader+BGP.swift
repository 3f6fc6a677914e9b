import NetAddress
import Yams

extension Reader {
    /// `node.bgp`: identity, peers, timers and the announcement policy.
    mutating func bgpSection(_ e: (Node, String)) -> BGPConfig? {
        guard let m = mapping(e.0, e.1, allowed: ["local_asn", "router_id", "peers", "bfd", "hold_time", "communities", "med",
                                                   "table", "fail_open", "drain_timeout", "quiet_time", "grace_time", "daemon"])
        else { return nil }
        let path = e.1
        let asn = integer(m["local_asn"], 1...Int(UInt32.max))
        if m["local_asn"] == nil { fail("\(path).local_asn", "missing (this node's AS number)") }
        var rid = address(m["router_id"])
        if let r = rid, r.isV6 { fail(m["router_id"]!.1, "\(r) is IPv6; a BGP router id is an IPv4 address"); rid = nil }
        if m["router_id"] == nil { fail("\(path).router_id", "missing (an IPv4 address of this node)") }
        var peers: [BGPConfig.Peer] = []
        let list = sequence(m["peers"]) ?? []
        if m["peers"] == nil || list.isEmpty { fail("\(path).peers", "missing or empty (a list of {address, asn})") }
        var seenPeer: [IPAddress: String] = [:]
        var seenName: [String: String] = [:]
        for (i, (pn, ppath)) in list.enumerated() {
            guard let pm = mapping(pn, ppath, allowed: ["address", "asn", "bfd", "name"]) else { continue }
            let pa = address(pm["address"])
            if pm["address"] == nil { fail("\(ppath).address", "missing") }
            let pasn = integer(pm["asn"], 1...Int(UInt32.max))
            if pm["asn"] == nil { fail("\(ppath).asn", "missing (the peer's AS number)") }
            var name = "peer\(i + 1)"
            if let (s, p) = scalar(pm["name"]) {
                if s.isEmpty || s.count > 32 || !s.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "_") }) || !s.first!.isLetter {
                    fail(p, "'\(s.prefix(40))' is not a session name (a letter, then letters, digits or _, at most 32)")
                } else { name = s }
            }
            if let first = seenName[name] { fail(ppath, "duplicate session name \(name) (also \(first))") }
            seenName[name] = ppath
            guard let pa, let pasn else { continue }
            if let first = seenPeer[pa] { fail(ppath, "duplicate peer \(pa) (also \(first))"); continue }
            seenPeer[pa] = ppath
            var peer = BGPConfig.Peer(address: pa, asn: UInt32(pasn), name: name)
            if let b = bool(pm["bfd"]) { peer.bfd = b }
            peers.append(peer)
        }
        guard let asn, let rid, !peers.isEmpty else { return nil }
        var b = BGPConfig(localASN: UInt32(asn), routerID: rid, peers: peers)
        if let bm = mapping(m["bfd"]?.0, m["bfd"]?.1 ?? "", allowed: ["interval", "multiplier"]) {
            if let v = duration(bm["interval"], 10...10_000) { b.bfdIntervalMs = v }
            if let v = integer(bm["multiplier"], 2...255) { b.bfdMultiplier = v }
        }
        if let (s, p) = scalar(m["hold_time"]) {
            if let v = Int(s), v == 0 || (3...65535).contains(v) { b.holdTimeSeconds = v } else {
                fail(p, "'\(s.prefix(40))' is not a BGP hold time (0 or 3...65535 seconds)")
            }
        }
        for (cn, cpath) in sequence(m["communities"]) ?? [] {
            guard let (s, _) = scalar((cn, cpath)) else { continue }
            if let c = BGPCommunity(s) { b.communities.append(c) } else { fail(cpath, "'\(s.prefix(40))' is not a community like 65001:100") }
        }
        if let v = integer(m["med"], 0...Int(UInt32.max)) { b.med = UInt32(v) }
        // 253-255 are the kernel's default/main/local tables; 0 is unspecified.
        if let v = integer(m["table"], 1...252) { b.table = UInt32(v) }
        if let v = choice(m["fail_open"], BGPConfig.FailOpenPolicy.self) { b.failOpen = v }
        if let v = duration(m["drain_timeout"], 0...3_600_000) { b.drainTimeoutMs = v }
        if let v = duration(m["quiet_time"], 100...60_000) { b.quietMs = v }
        if let v = duration(m["grace_time"], 1_000...86_400_000) { b.graceTimeMs = v }
        if let dm = mapping(m["daemon"]?.0, m["daemon"]?.1 ?? "", allowed: ["binary", "control_socket", "config"]) {
            for (key, assign) in [("binary", \BGPConfig.daemonBinary), ("control_socket", \.controlSocket), ("config", \.daemonConfig)] {
                guard let (s, p) = scalar(dm[key]) else { continue }
                if key != "binary" && !s.hasPrefix("/") { fail(p, "'\(s.prefix(60))' must be an absolute path"); continue }
                if s.isEmpty || s.utf8.count > 107 || s.contains(where: { $0.isNewline || $0 == "\"" || $0.asciiValue.map { $0 < 32 } ?? false }) {
                    fail(p, "'\(s.prefix(60))' is not a usable path (at most 107 bytes, no quotes or control characters)")
                    continue
                }
                b[keyPath: assign] = s
            }
        }
        let detectMs = b.bfdIntervalMs * b.bfdMultiplier
        if b.holdTimeSeconds != 0 && b.holdTimeSeconds * 1000 <= detectMs {
            fail("\(path).hold_time", "\(b.holdTimeSeconds)s is not longer than BFD's detection time (\(detectMs)ms)")
        }
        return b
    }
}
