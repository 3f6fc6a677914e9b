"""Numbers of the lab's flood scenario (a real SYN flood, protection off and
on); used by analyze.py, stdlib only.

The scenario directory holds, per round TAG (off, on): meta.tsv keys TAG_*
and t_TAG_*, flood_TAG.json (ecmp-lab/flood.py: the spoofed SYNs sent),
abuse_TAG.log (hping3's output: the abusive source's packets transmitted),
short_TAG.json and long_TAG.json (traffic.py: the real client), every node's
stats before the flood (TAG_stats0), mid-flood after the backend joined
(TAG_stats_mid), right after the flood (TAG_stats1) and after the round's
traffic (TAG_stats2), and CPU counters before and after the flood
(TAG_cpu0/1.json: /proc/stat's cpu line, each agent's utime+stime).
"""
import os
import re

import analyze as A

ROUNDS = ("off", "on")
REASONS = ("drop_deny", "drop_rate_src_syn", "drop_rate_src_pps")


def load_or(d, name, default=None):
    try:
        return A.load(os.path.join(d, name))
    except (OSError, ValueError):
        return default


def hping_sent(d, tag):
    """Packets hping3 says it transmitted (None: no statistics line)."""
    try:
        text = open(os.path.join(d, "abuse_%s.log" % tag)).read()
    except OSError:
        return None
    m = re.search(r"(\d+) packets transmitted", text)
    return int(m.group(1)) if m else None


def vip_flows_delta(a, b, vip):
    """Per node: {new_flows, drop_*} of VIP between two snapshots."""
    out = {}
    for node in sorted(b, key=int):
        fa = (a.get(node, {}).get("vip_flows") or {}).get(vip, {})
        fb = (b[node].get("vip_flows") or {}).get(vip, {})
        out["lb" + node] = {k: int(fb.get(k, 0) - fa.get(k, 0)) for k in ("new_flows",) + REASONS}
    return out


def conntrack(snap):
    return {"lb" + n: {k: s.get("conntrack", {}).get(k) for k in ("ways", "established", "embryonic", "free")}
            for n, s in sorted(snap.items(), key=lambda kv: int(kv[0]))}


def total(per_node, key):
    return sum(v.get(key) or 0 for v in per_node.values())


def cpu(d, tag):
    a, b = load_or(d, "%s_cpu0.json" % tag), load_or(d, "%s_cpu1.json" % tag)
    if not a or not b:
        return None
    hz = float(b["clk_tck"])
    wall = b["t"] - a["t"]
    dj = [y - x for x, y in zip(a["stat"], b["stat"])]     # user nice system idle iowait irq softirq steal
    tot = sum(dj) or 1
    busy = tot - dj[3] - dj[4]
    agents = {"lb" + n: round((b["agents"][n] - a["agents"].get(n, 0)) / hz, 2) for n in b["agents"] if n in a["agents"]}
    return {
        "wall_s": round(wall, 2), "cpus": b["cpus"],
        "machine_busy_pct": round(100.0 * busy / tot, 1),
        "machine_softirq_pct": round(100.0 * dj[6] / tot, 1),
        "machine_system_pct": round(100.0 * dj[2] / tot, 1),
        "machine_user_pct": round(100.0 * (dj[0] + dj[1]) / tot, 1),
        "softirq_cpu_s": round(dj[6] / hz, 2),
        "agent_cpu_s": agents,
        "measures": "machine-wide /proc/stat over the flood (every namespace shares the kernel: softirq is the "
                    "packet work of all of them, XDP on the LB nodes' veths included, plus the router's forwarding "
                    "and the backends' TCP); agent_cpu_s: utime+stime of each LB node's xdplb run (control plane)",
    }


def round_numbers(d, m, tag):
    s0, smid, s1, s2 = (load_or(d, "%s_%s.json" % (tag, k), {}) for k in ("stats0", "stats_mid", "stats1", "stats2"))
    fl = load_or(d, "flood_%s.json" % tag, {})
    ls, _ = A.long_summary(os.path.join(d, "long_%s.json" % tag))
    short = A.short_summary(os.path.join(d, "short_%s.json" % tag))
    during = A.stats_delta(s0, s1)          # the flood (and the join) only
    whole = A.stats_delta(s0, s2)           # the round's traffic
    fvip, avip = m["flood_vip"], m["abuse_vip"]
    fsecs = fl.get("seconds") or None
    rx = {"lb" + n: v["counters"].get("rx", 0) for n, v in during.items()}
    flood_new = vip_flows_delta(s0, s1, fvip)
    # The client's short connections to the flood's VIP (v4, port 80) come on top of the flood's SYNs.
    client_to_fvip = sum(1 for c in A.load(os.path.join(d, "short_%s.json" % tag))["conns"]
                         if c.get("dst") == m["flood_target"].rsplit(":", 1)[0] and c.get("port") == int(m["flood_target"].rsplit(":", 1)[1]))
    new_seen = total(flood_new, "new_flows")
    drops = {r: sum(v["counters"].get(r, 0) for v in whole.values()) for r in sorted(
        {k for v in whole.values() for k in v["counters"] if k.startswith("drop_")})}
    # Per VIP: the drops of the protection's reasons, over the round.
    vips = sorted({v for s in s2.values() for v in (s.get("vip_flows") or {})})
    per_vip = {v: {r: total(vip_flows_delta(s0, s2, v), r) for r in REASONS} for v in vips}
    others_drops = sum(sum(x.values()) for v, x in per_vip.items() if v != avip)
    ab = vip_flows_delta(s0, s2, avip)
    ab_sent = hping_sent(d, tag)
    ab_delivered = total(ab, "new_flows")
    ab_syn, ab_pps = total(ab, "drop_rate_src_syn"), total(ab, "drop_rate_src_pps")
    window = None
    if ("t_%s_flood" % tag) in m and ("t_%s_flood_end" % tag) in m:
        window = round(float(m["t_%s_flood_end" % tag]) - float(m["t_%s_flood" % tag]), 3)
    n_nodes = len(s2) or 1
    bound = None
    if tag == "on" and window is not None:
        # GCRA per node: burst at once, then rate per second; + 1 per node for rounding.
        bound = int(n_nodes * (m["prot_new_flows"] * window + m["prot_new_flow_burst"] + 1))
    ct_miss = sum(v["counters"].get("ct_miss", 0) for v in during.values())
    rxa = lambda k: m.get("%s_attacker_%s" % (tag, k))
    res = {
        "protection": "per-source limits" if tag == "on" else "off",
        "flood": {
            "sent": fl.get("sent"), "send_errors": fl.get("send_errors"), "seconds": fl.get("seconds"),
            "pps_offered": fl.get("pps"), "sources": fl.get("sources"), "sources_prefix": fl.get("sources_prefix"),
            "max_syns_per_source": fl.get("max_per_source"),
            "lb_rx_packets": sum(rx.values()), "lb_rx_per_node": rx,
            "lb_rx_pps": round(sum(rx.values()) / fsecs, 1) if fsecs else None,
            "new_flows_seen": new_seen, "new_flows_seen_per_node": {k: v["new_flows"] for k, v in flood_new.items()},
            "client_connections_to_the_vip": client_to_fvip,
            "new_flows_seen_pps": round(new_seen / fsecs, 1) if fsecs else None,
            "seen_fraction": round((new_seen - client_to_fvip) / fl["sent"], 4) if fl.get("sent") else None,
        },
        "conntrack_before": conntrack(s0), "conntrack_mid_flood": conntrack(smid), "conntrack_after_flood": conntrack(s1),
        "conntrack_after_round": conntrack(s2),
        "established_after_flood": total(conntrack(s1), "established"),
        "established_before_flood": total(conntrack(s0), "established"),
        # Per node: established ways after the flood minus before (a SYN never takes an established way).
        "established_change_per_node": {n: (x["established"] or 0) - (conntrack(s0).get(n, {}).get("established") or 0)
                                        for n, x in conntrack(s1).items()},
        "embryonic_mid_flood": total(conntrack(smid), "embryonic"),
        "embryonic_after_flood": total(conntrack(s1), "embryonic"),
        "ct_miss_during_flood": ct_miss,
        "drops": drops, "drops_per_vip": per_vip, "drops_on_other_vips": others_drops,
        "abusive": {"source": m.get("abuse_src"), "target": m.get("abuse_target"), "sent": ab_sent,
                    "rate_asked": m.get("abuse_rate"),
                    # From before hping3 started to after it ended: an upper bound on its sending time.
                    "window_s": window,
                    "pps_sent_at_least": round(ab_sent / window, 1) if ab_sent and window else None,
                    "delivered": ab_delivered, "delivered_per_node": {k: v["new_flows"] for k, v in ab.items()},
                    "dropped_syn": ab_syn, "dropped_pps": ab_pps, "dropped_deny": total(ab, "drop_deny"),
                    "limit_bound": bound},
        "long_lived": ls, "short": short,
        "backend_join": {"push": A.push_result(d, "%s_push_add.json" % tag),
                         "healthy_everywhere_s": m.get("%s_added_healthy_s" % tag)},
        "attacker_rx_packets": (rxa("rx1") - rxa("rx0")) if rxa("rx0") is not None and rxa("rx1") is not None else None,
        "attacker_tcp_in_segments": (rxa("tcp_in1") - rxa("tcp_in0")) if rxa("tcp_in0") is not None and rxa("tcp_in1") is not None else None,
        "cpu": cpu(d, tag),
        "flood_alert_log_lines": {"lb" + str(k.rsplit("_", 1)[1]): v for k, v in m.items()
                                  if k.startswith("%s_flood_alerts_" % tag)},
        "new_flows_per_second_mid_flood": {"lb" + n: round((s.get("vip_flows") or {}).get(fvip, {}).get("new_flows_per_second") or 0)
                                           for n, s in sorted(smid.items(), key=lambda kv: int(kv[0]))},
    }
    return res


def flood(d, m, out):
    rounds = {tag: round_numbers(d, m, tag) for tag in ROUNDS if os.path.exists(os.path.join(d, "flood_%s.json" % tag))}
    lim = load_or(d, "on_status_limits.json", {})
    limits = {"lb" + n: (s.get("protection") or {}).get("limits", {}).get(m["abuse_vip"]) for n, s in lim.items()}
    res = {
        "lb_nodes": m["lb_nodes"], "long_conns": m["long_conns"], "flood_target": m["flood_target"],
        "flood_sources": m["flood_sources"], "lab_prefix": m["lab_prefix"], "flood_rate_asked": m["flood_rate"],
        "flood_seconds_asked": m["flood_seconds"], "new_backend": m["new_backend"],
        "limits": {"new_flows_per_second": m["prot_new_flows"], "new_flow_burst": m["prot_new_flow_burst"],
                   "packets_per_second": m["prot_pps"], "packet_burst": m["prot_pps_burst"],
                   "flood_alert_new_flows_per_second": m.get("prot_flood_alert"),
                   "per": "LB node and source /32 (IPv4), /128 (IPv6)"},
        "limits_as_the_nodes_run_them": limits,
        "protection_after": m.get("protection_after"),
        "rounds": rounds,
    }
    for tag, r in rounds.items():
        f, ab, c = r["flood"], r["abusive"], r["cpu"] or {}
        A.say("[%s] flood: %s SYNs in %s s = %s pps offered from %s sources (%s); seen at the LB nodes: %s new flows "
              "(%s pps, %s of the SYNs), rx %s pps", tag, f["sent"], f["seconds"], f["pps_offered"], f["sources"],
              f["sources_prefix"], f["new_flows_seen"], f["new_flows_seen_pps"], f["seen_fraction"], f["lb_rx_pps"])
        A.say("[%s] conntrack mid-flood (established/embryonic/free of ways): %s", tag, "  ".join(
            "%s %s/%s/%s of %s" % (n, x["established"], x["embryonic"], x["free"], x["ways"])
            for n, x in r["conntrack_mid_flood"].items()))
        A.say("[%s] conntrack after the flood: %s; ct_miss during it %d", tag, "  ".join(
            "%s %s/%s/%s" % (n, x["established"], x["embryonic"], x["free"]) for n, x in r["conntrack_after_flood"].items()),
            r["ct_miss_during_flood"])
        A.say("[%s] real client: %d long-lived (%d up), %d broken %s; %d short, %d failed; be join: healthy everywhere in %s s",
              tag, r["long_lived"]["connections"], r["long_lived"]["connected"], r["long_lived"]["broken"],
              r["long_lived"]["broken_reasons"] or "", r["short"]["connections"], r["short"]["failed"],
              r["backend_join"]["healthy_everywhere_s"])
        A.say("[%s] abusive source %s: %s SYNs sent (>= %s pps), %s delivered %s, dropped %s (new-flow limit) + %s (packet limit)%s",
              tag, ab["source"], ab["sent"], ab["pps_sent_at_least"], ab["delivered"], ab["delivered_per_node"], ab["dropped_syn"],
              ab["dropped_pps"], "; bound %s" % ab["limit_bound"] if ab["limit_bound"] is not None else "")
        A.say("[%s] drops %s; on other VIPs %d; reached the attacker: %s packets, %s TCP segments", tag,
              {k: v for k, v in r["drops"].items() if v} or 0, r["drops_on_other_vips"], r["attacker_rx_packets"],
              r["attacker_tcp_in_segments"])
        A.say("[%s] agents' new-flow rate of %s mid-flood %s; flood alert log lines %s", tag, m["flood_vip"],
              r["new_flows_per_second_mid_flood"], r["flood_alert_log_lines"])
        if c:
            A.say("[%s] CPU over %s s (%s CPUs, machine-wide): busy %s%%, softirq %s%% (%s s); agents %s", tag,
                  c["wall_s"], c["cpus"], c["machine_busy_pct"], c["machine_softirq_pct"], c["softirq_cpu_s"], c["agent_cpu_s"])
    goals = []
    for tag, r in rounds.items():
        ls = r["long_lived"]
        goals += [
            goal_("[%s] long-lived connections up" % tag, ls["connected"] == ls["connections"] > 0, ls["connected"], ls["connections"]),
            goal_("[%s] real connections broken" % tag, ls["broken"] == 0, ls["broken"], 0),
            goal_("[%s] short connections failed" % tag, r["short"]["failed"] == 0, r["short"]["failed"], 0),
            goal_("[%s] SYN flood seen at the LB nodes (new flows)" % tag, r["flood"]["new_flows_seen"] > 0,
                  r["flood"]["new_flows_seen"], "> 0"),
            goal_("[%s] established flows kept (sum over nodes after the flood)" % tag,
                  r["established_after_flood"] >= m["long_conns"], r["established_after_flood"], ">= %s" % m["long_conns"]),
            goal_("[%s] established ways per node after the flood minus before" % tag,
                  all(v >= 0 for v in r["established_change_per_node"].values()), r["established_change_per_node"], ">= 0 each"),
            goal_("[%s] TCP segments that reached the attacker (router blackhole)" % tag,
                  r["attacker_tcp_in_segments"] == 0, r["attacker_tcp_in_segments"], 0),
        ]
    if "off" in rounds:
        r = rounds["off"]
        goals += [
            goal_("[off] the flood in conntrack (embryonic mid-flood)", r["embryonic_mid_flood"] > 0, r["embryonic_mid_flood"], "> 0"),
            goal_("[off] protection drops", sum(r["drops_per_vip"][v][k] for v in r["drops_per_vip"] for k in REASONS) == 0,
                  sum(r["drops_per_vip"][v][k] for v in r["drops_per_vip"] for k in REASONS), 0),
        ]
    if "on" in rounds:
        ab = rounds["on"]["abusive"]
        goals += [
            goal_("[on] abusive source cut: dropped (new-flow + packet limit)", ab["dropped_syn"] + ab["dropped_pps"] > 0,
                  ab["dropped_syn"] + ab["dropped_pps"], "> 0"),
            goal_("[on] abusive source delivered within nodes x (rate x seconds + burst)",
                  ab["limit_bound"] is not None and 0 < ab["delivered"] <= ab["limit_bound"], ab["delivered"],
                  "1..%s" % ab["limit_bound"]),
            goal_("[on] drops on the other VIPs (the real client's)", rounds["on"]["drops_on_other_vips"] == 0,
                  rounds["on"]["drops_on_other_vips"], 0),
        ]
    goals.append(goal_("protection off again after the scenario", str(m.get("protection_after", "")).startswith("protection: off"),
                       m.get("protection_after"), "protection: off"))
    return A.finish("flood", res, goals, out)


def goal_(name, ok, value, target):
    return A.goal(name, ok, value, target)


def key_numbers(name, r):
    if name != "flood":
        return None
    parts = []
    for tag in ROUNDS:
        x = r["rounds"].get(tag)
        if not x:
            continue
        ab = x["abusive"]
        parts.append("%s: %s pps offered, %s seen, %d/%d broken, ct est/emb %d/%d, abusive %s/%s delivered%s, drops %d" % (
            tag, x["flood"]["pps_offered"], x["flood"]["new_flows_seen_pps"], x["long_lived"]["broken"],
            x["long_lived"]["connections"], x["established_after_flood"], x["embryonic_mid_flood"], ab["delivered"], ab["sent"],
            " (bound %s)" % ab["limit_bound"] if ab["limit_bound"] is not None else "", sum(x["drops"].values())))
    return "; ".join(parts)


SCENARIOS = {"flood": flood}
WITH_ROUTES = set()
