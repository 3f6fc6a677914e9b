#!/usr/bin/env python3
"""Numbers of the lab's scenarios (stdlib only; reads files, sends nothing).

    analyze.py SCENARIO --dir DIR --routes ROUTES.log --out FILE.json
        DIR holds what the scenario script collected: meta.tsv (KEY<TAB>VALUE),
        the traffic client's JSON (short.json, long.json, probe0/1.json) and
        snapshots of every node's `xdplb status --json` / `xdplb stats --json`
        ({"1": {...}, "2": {...}}); ROUTES.log is the router's route history
        (ip -ts monitor route, read by routes.py). Prints the scenario's numbers and writes
        them as one JSON object with "name", "ok" and "goals".
    analyze.py report --dir REPORTDIR [--out FILE.json] ...
        Prints the summary of every scenario and writes the whole report, with
        every scenario's timeline (REPORTDIR/NAME.timeline.json, timeline.py)
        under "timelines".
"""
import argparse
import collections
import json
import math
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import routes  # noqa: E402  (ecmp-lab/routes.py: the router's route history)


# ---- inputs -----------------------------------------------------------------

def load(path):
    with open(path) as f:
        return json.load(f)


def read_meta(d):
    meta = {}
    path = os.path.join(d, "meta.tsv")
    if os.path.exists(path):
        for line in open(path):
            k, _, v = line.rstrip("\n").partition("\t")
            for conv in (int, float):
                try:
                    v = conv(v)
                    break
                except ValueError:
                    pass
            meta[k] = v
    return meta


def short_summary(path):
    d = load(path)
    conns = d["conns"]
    ok = [c for c in conns if c.get("ok")]
    errors = collections.Counter(c.get("error", "?") for c in conns if not c.get("ok"))
    by_backend = collections.Counter(c["backend"] for c in ok)
    return {
        "connections": len(conns),
        "ok": len(ok),
        "failed": len(conns) - len(ok),
        "errors": dict(errors.most_common(5)),
        "by_backend": dict(sorted(by_backend.items(), key=lambda kv: natural(kv[0]))),
        "seconds": d.get("seconds"),
        "median_ms": median([c["ms"] for c in ok]),
    }


def long_summary(path):
    d = load(path)
    conns = d["conns"]
    by_backend = {}
    for c in conns:
        b = by_backend.setdefault(c["backend"] or "(none)", {"connections": 0, "broken": 0})
        b["connections"] += 1
        b["broken"] += 1 if c["broken"] else 0
    reasons = collections.Counter(c["broken"] for c in conns if c["broken"])
    gaps = [c["max_gap"] for c in conns if c["connected"]]
    return {
        "connections": len(conns),
        "connected": sum(1 for c in conns if c["connected"]),
        "broken": sum(1 for c in conns if c["broken"]),
        "broken_reasons": dict(reasons.most_common(5)),
        "lines_answered": sum(c["received"] for c in conns),
        "max_reply_gap_s": round(max(gaps), 3) if gaps else None,
        "stalled_over_1s": sum(1 for g in gaps if g > 1.0),
        "by_backend": dict(sorted(by_backend.items(), key=lambda kv: natural(kv[0]))),
        "sending_seconds": d.get("sending_seconds"),
        "interval_s": d.get("interval"),
    }, d


def stats_delta(a, b):
    """Per node: counter deltas, VIP and backend packet deltas."""
    out = {}
    for node in sorted(b, key=int):
        na, nb = a.get(node, {}), b[node]
        def delta(section):
            pa = na.get(section, {})
            return {k: int(v["packets"] - pa.get(k, {}).get("packets", 0)) for k, v in nb.get(section, {}).items()}
        out[node] = {"counters": delta("counters"), "vips": delta("vips"), "backends": delta("backends")}
    return out


def drops(node_delta):
    return sum(v for k, v in node_delta["counters"].items() if k.startswith("drop_"))


def push_result(d, name):
    """What `xdplb cluster push --json` printed (revision, converged, converge_ms), or {}."""
    try:
        r = load(os.path.join(d, name))
    except (OSError, ValueError):
        return {}
    return {k: r.get(k) for k in ("revision", "converged", "converge_ms")}


def natural(s):
    head = s.rstrip("0123456789")
    tail = s[len(head):]
    return (head, int(tail) if tail else -1)


def median(xs):
    xs = sorted(xs)
    return round(xs[len(xs) // 2], 2) if xs else None


def pct_dev(count, expected):
    return round(100.0 * (count - expected) / expected, 2) if expected else None


def binomial_tolerance_pct(n, buckets, sigmas):
    if not n or not buckets:
        return None
    p = 1.0 / buckets
    return round(100.0 * sigmas * math.sqrt((1 - p) / (n * p)), 2)


def goal(name, ok, value, target):
    return {"goal": name, "ok": bool(ok), "value": value, "target": target}


def finish(name, result, goals, out):
    result = {"name": name, "ok": all(g["ok"] for g in goals), "goals": goals, **result}
    with open(out, "w") as f:
        json.dump(result, f, indent=2, sort_keys=False)
    for g in goals:
        print("  %-4s %s: %s (goal %s)" % ("ok" if g["ok"] else "MISS", g["goal"], g["value"], g["target"]))
    return result


def say(fmt, *a):
    print("  " + (fmt % a if a else fmt))


# ---- scenarios --------------------------------------------------------------

def distribution(d, m, out):
    short = short_summary(os.path.join(d, "short.json"))
    nb, nn, k = m["backends"], m["lb_nodes"], m["tolerance_sigmas"]
    per_backend = {"be%d" % i: short["by_backend"].get("be%d" % i, 0) for i in range(1, nb + 1)}
    exp_b = short["ok"] / nb
    delta = stats_delta(load(os.path.join(d, "stats0.json")), load(os.path.join(d, "stats1.json")))
    per_node = {"lb" + n: v["counters"].get("new_flow", 0) for n, v in delta.items()}
    exp_n = sum(per_node.values()) / nn if nn else 0
    status = load(os.path.join(d, "status.json"))
    digests = collections.defaultdict(set)
    for s in status.values():
        for v in s["vips"]:
            digests[v["name"]].add(v["digest"])
    # Backends by family, from the connection records.
    fam = collections.defaultdict(collections.Counter)
    for c in load(os.path.join(d, "short.json"))["conns"]:
        if c.get("ok"):
            fam["ipv6" if ":" in c["dst"] else "ipv4"][c["backend"]] += 1
    dev_b = max(abs(pct_dev(c, exp_b)) for c in per_backend.values()) if exp_b else None
    dev_n = max(abs(pct_dev(c, exp_n)) for c in per_node.values()) if exp_n else None
    # A fair split of n flows over k buckets is binomial: one bucket's relative
    # standard deviation is sqrt((1-p)/(n p)), p = 1/k. Allowed: k_sigma of it.
    tol_b = binomial_tolerance_pct(short["ok"], nb, k)
    tol_n = binomial_tolerance_pct(sum(per_node.values()), nn, k)
    say("%d short connections (%d ok, %d failed) in %.1f s, median %.1f ms",
        short["connections"], short["ok"], short["failed"], short["seconds"] or 0, short["median_ms"] or 0)
    say("per backend (even share %.0f): %s", exp_b,
        "  ".join("%s %d (%+.1f%%)" % (b, c, pct_dev(c, exp_b)) for b, c in per_backend.items()))
    say("per LB node, SYNs taking the ring (even share %.0f): %s", exp_n,
        "  ".join("%s %d (%+.1f%%)" % (n, c, pct_dev(c, exp_n)) for n, c in per_node.items()))
    say("ring digests equal on every node: %s", all(len(v) == 1 for v in digests.values()))
    res = {
        "connections": short["connections"], "ok_connections": short["ok"], "failed": short["failed"],
        "errors": short["errors"], "seconds": short["seconds"],
        "per_backend": per_backend, "even_share_backend": round(exp_b, 1), "max_backend_deviation_pct": dev_b,
        "per_backend_by_family": {k: dict(sorted(v.items(), key=lambda kv: natural(kv[0]))) for k, v in fam.items()},
        "per_lb_node_syns": per_node, "even_share_node": round(exp_n, 1), "max_node_deviation_pct": dev_n,
        "lb_node_syns_total": sum(per_node.values()),
        "digests_equal": all(len(v) == 1 for v in digests.values()),
        "digests": {k: sorted(v) for k, v in digests.items()},
        "tolerance_sigmas": k, "tolerance_backend_pct": tol_b, "tolerance_node_pct": tol_n,
    }
    goals = [
        goal("failed connections", short["failed"] == 0, short["failed"], 0),
        goal("max backend deviation from even share (%)", dev_b is not None and dev_b <= tol_b, dev_b,
             "<= %s (%s binomial sigmas)" % (tol_b, k)),
        goal("max LB node deviation from even share (%)", dev_n is not None and dev_n <= tol_n, dev_n,
             "<= %s (%s binomial sigmas)" % (tol_n, k)),
        goal("same ring digests on every node", res["digests_equal"], res["digests_equal"], True),
    ]
    return finish("distribution", res, goals, out)


def route_times(m, routes_log, tag):
    """Seconds from event TAG (meta t_TAG) to the router's ECMP set want4/6_TAG,
    per family, from the route history; None: not seen."""
    if not routes_log or not os.path.exists(routes_log) or ("t_" + tag) not in m:
        return {"ipv4": None, "ipv6": None, "seconds": None}
    ev = routes.parse(routes_log)
    t = float(m["t_" + tag])
    out = {}
    for fam, prefix in (("ipv4", m["vip4"]), ("ipv6", m["vip6"])):
        want = frozenset(x for x in str(m.get("want%s_%s" % (fam[-1], tag), "")).split(",") if x)
        s = routes.converge(ev, prefix, t, want, t + 60)
        out[fam] = round(s, 3) if s is not None else None
    out["seconds"] = None if None in (out["ipv4"], out["ipv6"]) else max(out["ipv4"], out["ipv6"])
    return out


def route_changes(m, routes_log, since, until):
    if not routes_log or not os.path.exists(routes_log):
        return None
    ev = routes.parse(routes_log)
    return {fam: [(round(t - since, 3), sorted(g)) for t, g in routes.changes(ev, prefix, since, until)]
            for fam, prefix in (("ipv4", m["vip4"]), ("ipv6", m["vip6"]))}


def retrans(m, a, b):
    return int(m[b] - m[a]) if a in m and b in m else None


def node_failure(d, m, out, routes_log):
    ls, raw = long_summary(os.path.join(d, "long.json"))
    s0, s1, s2 = (load(os.path.join(d, "stats%d.json" % i)) for i in range(3))
    during, after = stats_delta(s0, s1), stats_delta(s1, s2)
    victim = str(m["victim"])
    cut, back = route_times(m, routes_log, "cut"), route_times(m, routes_log, "restore")
    moved = sum(v["counters"].get("ct_miss", 0) for n, v in during.items() if n != victim)
    lb_drops = sum(drops(v) for n, v in during.items() if n != victim) + sum(drops(v) for v in after.values())
    res = {
        "method": m["method"], "victim": "lb" + victim, "bfd": m.get("bfd"),
        "route_before": str(m.get("route_before", "")), "route_during": str(m.get("route_during", "")), "route_after": str(m.get("route_after", "")),
        "detection_to_new_ecmp_s": cut["seconds"], "detection_per_family_s": cut,
        "rejoin_to_ecmp_s": back["seconds"], "rejoin_per_family_s": back,
        "long_lived": ls,
        "flows_moved_to_other_nodes_ct_miss": moved,
        "packets_lost_router_into_cut": m.get("cut_tx_dropped"),
        "client_tcp_retransmits_failure": retrans(m, "retrans0", "retrans1"),
        "client_tcp_retransmits_restore": retrans(m, "retrans1", "retrans2"),
        "lb_drops": lb_drops,
        "victim_agent_saw": m.get("victim_agent_saw") or "no health change",
    }
    say("lb%s cut silently (%s): out of the router's ECMP set after %s s (v4 %s, v6 %s; BFD %s); back %s s after restore",
        victim, m["method"], cut["seconds"], cut["ipv4"], cut["ipv6"], m.get("bfd"), back["seconds"])
    say("lost in the detection window: %s packets the router sent into the cut (client data, BFD, BGP); client TCP retransmits %s "
        "(%s after the restore); LB drops %d", res["packets_lost_router_into_cut"],
        res["client_tcp_retransmits_failure"], res["client_tcp_retransmits_restore"], lb_drops)
    say("%d long-lived connections (%d up), %d moved to other nodes (ct_miss), broken %d %s; max reply gap %.2f s",
        ls["connections"], ls["connected"], moved, ls["broken"], ls["broken_reasons"] or "", ls["max_reply_gap_s"] or 0)
    say("the cut node's agent (its health checks cross the cut link): %s", res["victim_agent_saw"])
    goals = [
        goal("connections up", ls["connected"] == ls["connections"], ls["connected"], ls["connections"]),
        goal("broken connections", ls["broken"] == 0, ls["broken"], 0),
        goal("router's ECMP set without the dead node (s)", cut["seconds"] is not None, cut["seconds"], "seen"),
        goal("flows moved by the failure (else nothing was tested)", moved > 0, moved, "> 0"),
        goal("router's ECMP set with the node again after restore (s)", back["seconds"] is not None, back["seconds"], "seen"),
    ]
    return finish("node_failure", res, goals, out)


def node_drain(d, m, out, routes_log):
    ls, raw = long_summary(os.path.join(d, "long.json"))
    s0, s1, s1b, s2 = (load(os.path.join(d, n)) for n in ("stats0.json", "stats1.json", "stats1b.json", "stats2.json"))
    victim = str(m["victim"])
    drain = route_times(m, routes_log, "drain")
    during, quiet, after = stats_delta(s0, s1), stats_delta(s1, s1b), stats_delta(s1b, s2)
    vip_pk = lambda nd: sum(nd["vips"].values())
    moved = sum(v["counters"].get("ct_miss", 0) for n, v in during.items() if n != victim)
    lb_drops = sum(drops(v) for v in during.values()) + sum(drops(v) for v in quiet.values()) + \
        sum(drops(v) for v in after.values())
    rt = retrans(m, "retrans0", "retrans1")
    still = vip_pk(quiet[victim]) if victim in quiet else None
    st = load(os.path.join(d, "status_drained.json"))
    anns = sorted(set(v.get("announcement") for v in st.get("vips", [])))
    res = {
        "victim": "lb" + victim, "route_before": str(m.get("route_before", "")), "route_during": str(m.get("route_during", "")),
        "route_after": str(m.get("route_after", "")),
        "drain_to_new_ecmp_s": drain["seconds"], "drain_per_family_s": drain,
        "traffic_stopped_after_s": m.get("traffic_stopped_s"),
        "victim_vip_packets_after_stopped": still,
        "victim_announcements": anns,
        "stop_seconds": m.get("stop_s"),
        "long_lived": ls, "flows_moved_to_other_nodes_ct_miss": moved,
        "client_tcp_retransmits": rt, "lb_drops": lb_drops,
    }
    say("lb%s drained: out of the router's ECMP set after %s s (v4 %s, v6 %s); its VIP traffic stopped after %s s "
        "(%s VIP packets in the 0.5 s after); agent and bird stopped in %s s",
        victim, drain["seconds"], drain["ipv4"], drain["ipv6"], res["traffic_stopped_after_s"], still, res["stop_seconds"])
    say("%d long-lived connections, %d moved to other nodes, broken %d %s; client TCP retransmits %s, LB drops %d",
        ls["connections"], moved, ls["broken"], ls["broken_reasons"] or "", rt, lb_drops)
    goals = [
        goal("broken connections", ls["broken"] == 0, ls["broken"], 0),
        goal("router's ECMP set without the drained node (s)", drain["seconds"] is not None, drain["seconds"], "seen"),
        goal("VIP packets reaching the node after traffic stopped", still == 0, still, 0),
        goal("packets lost: client TCP retransmits", rt == 0, rt, 0),
        goal("packets lost: LB drops", lb_drops == 0, lb_drops, 0),
        goal("flows moved by the drain (else nothing was tested)", moved > 0, moved, "> 0"),
    ]
    return finish("node_drain", res, goals, out)


def node_join(d, m, out, routes_log):
    ls, raw = long_summary(os.path.join(d, "long.json"))
    s0, s1 = load(os.path.join(d, "stats0.json")), load(os.path.join(d, "stats1.json"))
    victim = str(m["victim"])
    join = route_times(m, routes_log, "join")
    conv = m.get("converged_s")
    conv = conv if isinstance(conv, (int, float)) else None
    delta = stats_delta(s0, s1)
    took = delta.get(victim, {"counters": {}})["counters"].get("ct_miss", 0)
    early = m.get("announced_before_converged")
    lb_drops = sum(drops(v) for v in delta.values())
    rt = retrans(m, "retrans0", "retrans1")
    res = {
        "victim": "lb" + victim, "route_before": str(m.get("route_before", "")), "route_after": str(m.get("route_after", "")),
        "start_to_health_converged_s": conv,
        "start_to_ecmp_s": join["seconds"], "join_per_family_s": join,
        "announced_before_converged_samples": early,
        "long_lived": ls, "flows_taken_by_the_node_ct_miss": took,
        "client_tcp_retransmits": rt, "lb_drops": lb_drops,
    }
    say("lb%s started (bird + agent): health converged after %s s, in the router's ECMP set after %s s (v4 %s, v6 %s); "
        "samples with an announcement before convergence: %s", victim, conv, join["seconds"], join["ipv4"], join["ipv6"], early)
    say("%d long-lived connections, %d flows moved to it (its ct_miss), broken %d %s; client TCP retransmits %s, LB drops %d",
        ls["connections"], took, ls["broken"], ls["broken_reasons"] or "", rt, lb_drops)
    goals = [
        goal("broken connections", ls["broken"] == 0, ls["broken"], 0),
        goal("router's ECMP set with the node (s)", join["seconds"] is not None, join["seconds"], "seen"),
        goal("announced only after health converged (samples announcing before)", early == 0 and conv is not None,
             early, 0),
        goal("flows moved to the joined node (else nothing was tested)", took > 0, took, "> 0"),
    ]
    return finish("node_join", res, goals, out)


def backend_failure(d, m, out):
    ls, raw = long_summary(os.path.join(d, "long.json"))
    short = short_summary(os.path.join(d, "short.json"))
    victim = m["victim"]
    removal, back = per_node_seconds(d, "removed"), per_node_seconds(d, "back")
    removal_worst, back_worst = worst(removal), worst(back)
    consensus = m.get("consensus_s", 0)
    bound = m["hc_fall"] * m["hc_interval_ms"] / 1000 + m["hc_timeout_ms"] / 1000 + m["slack_s"] + consensus
    others_broken = sum(v["broken"] for b, v in ls["by_backend"].items() if b != victim)
    victim_ls = ls["by_backend"].get(victim, {"connections": 0, "broken": 0})
    to_victim = short["by_backend"].get(victim, 0)
    try:
        cs = load(os.path.join(d, "cluster_after_removal.json"))
        flagged = {r["node"]: r.get("problems") for r in cs.get("rows", []) if r.get("problems")}
    except (OSError, ValueError):
        cs, flagged = {}, None
    res = {
        "victim": victim,
        "cluster_status_after_removal": {"exit": m.get("removed_status_rc"), "agreed": cs.get("agreed"),
                                         "flagged": flagged},
        "removal_seconds_per_node": removal, "removal_seconds_max": removal_worst,
        "removal_bound_s": round(bound, 3),
        "bound_formula": "fall x interval + timeout + %.1f s + %.1f s consensus (%d x %d ms + %d ms)" % (
            m["slack_s"], consensus, m["hc_fall"], m["hc_interval_ms"], m["hc_timeout_ms"]),
        "back_in_ring_after_restart_s": back_worst, "back_seconds_per_node": back,
        "long_lived": ls,
        "broken_on_victim": victim_ls["broken"], "connections_on_victim": victim_ls["connections"],
        "broken_on_other_backends": others_broken,
        "new_connections_after_removal": short["connections"], "new_failed": short["failed"],
        "new_to_victim": to_victim, "new_by_backend": short["by_backend"],
    }
    say("%s killed: out of every ring after %s s (per node %s; bound %.2f s = %s)",
        victim, removal_worst, removal, bound, res["bound_formula"])
    say("xdplb cluster status after the removal: exit %s%s", m.get("removed_status_rc"),
        "; " + "; ".join("%s: %s" % (n, ", ".join(p)) for n, p in flagged.items()) if flagged else "")
    say("long-lived: %d on %s (%d broke with it, expected), %d on other backends broke",
        victim_ls["connections"], victim, victim_ls["broken"], others_broken)
    say("new connections after removal: %d, failed %d, to %s %d; back in the ring %s s after restart",
        short["connections"], short["failed"], victim, to_victim, back_worst)
    goals = [
        goal("removal time (s)", removal_worst is not None and removal_worst <= bound, removal_worst, "<= %.2f" % bound),
        goal("broken connections on other backends", others_broken == 0, others_broken, 0),
        goal("every node agrees on the tables after the removal (xdplb cluster status exit)",
             m.get("removed_status_rc") in (0, None), m.get("removed_status_rc"), 0),
        goal("new connections failed", short["failed"] == 0, short["failed"], 0),
        goal("new connections to the dead backend", to_victim == 0, to_victim, 0),
        goal("connections on the victim (else nothing was tested)", victim_ls["connections"] > 0,
             victim_ls["connections"], "> 0"),
    ]
    return finish("backend_failure", res, goals, out)


def per_node_seconds(d, tag):
    """{lbN: seconds} from poll.py's TAG-N files (None: timed out)."""
    out = {}
    for name in sorted(os.listdir(d), key=natural):
        if name.startswith(tag + "-"):
            v = open(os.path.join(d, name)).read().strip()
            out["lb" + name.split("-")[1]] = float(v) if v != "timeout" else None
    return out


def worst(per_node):
    return None if None in per_node.values() or not per_node else max(per_node.values())


def flow_key(c):
    return (c["src"], c["sport"], c["dst"], c["port"])


def backend_added(d, m, out):
    ls, raw = long_summary(os.path.join(d, "long.json"))
    p0 = {flow_key(c): c for c in load(os.path.join(d, "probe0.json"))["conns"] if c.get("ok")}
    p1 = {flow_key(c): c for c in load(os.path.join(d, "probe1.json"))["conns"] if c.get("ok")}
    s0, s1 = short_summary(os.path.join(d, "probe0.json")), short_summary(os.path.join(d, "probe1.json"))
    both = [k for k in p0 if k in p1]
    new = m["new_backend"]
    changed = [k for k in both if p0[k]["backend"] != p1[k]["backend"]]
    to_new = sum(1 for k in changed if p1[k]["backend"] == new)
    frac = len(changed) / len(both) if both else None
    ideal = 1.0 / m["backends_after"]
    tol = m["tolerance_rel"] * ideal
    res = {
        "backends_before": m["backends_before"], "backends_after": m["backends_after"], "new_backend": new,
        "push_to_ring_seconds": worst(per_node_seconds(d, "joined")),
        "push_to_ring_seconds_per_node": per_node_seconds(d, "joined"),
        "push": push_result(d, "push.json"),
        "probe_flows": len(both), "probe_failed_before": s0["failed"], "probe_failed_after": s1["failed"],
        "changed_backend": len(changed), "changed_fraction": round(frac, 4) if frac is not None else None,
        "ideal_fraction": round(ideal, 4), "tolerance": round(tol, 4),
        "moved_to_new_backend": to_new, "moved_between_old_backends": len(changed) - to_new,
        "after_by_backend": s1["by_backend"],
        "long_lived": ls,
    }
    say("%d fixed flows before/after %s joined: %d changed backend = %.3f (Maglev ideal 1/%d = %.3f); "
        "%d to %s, %d between old backends",
        len(both), new, len(changed), frac or 0, m["backends_after"], ideal, to_new, new, len(changed) - to_new)
    say("xdplb cluster push to the ring of every node: %s s (push: revision %s, converged %s); long-lived: %d connections, %d broken",
        res["push_to_ring_seconds"], res["push"].get("revision"), res["push"].get("converged"), ls["connections"], ls["broken"])
    goals = [
        goal("probe flows failed", s0["failed"] + s1["failed"] == 0, s0["failed"] + s1["failed"], 0),
        goal("changed fraction vs ideal", frac is not None and abs(frac - ideal) <= tol,
             res["changed_fraction"], "%.3f +- %.3f" % (ideal, tol)),
        goal("broken established connections", ls["broken"] == 0, ls["broken"], 0),
    ]
    return finish("backend_added", res, goals, out)


def agent_restart(d, m, out, routes_log):
    ls, raw = long_summary(os.path.join(d, "long.json"))
    short = short_summary(os.path.join(d, "short.json"))
    delta = stats_delta(load(os.path.join(d, "stats0.json")), load(os.path.join(d, "stats1.json")))
    nodes = sorted(delta, key=int)
    restarts = {"lb" + n: {"seconds": m.get("restart_seconds_" + n), "program_before": m.get("prog_before_" + n),
                           "program_after": m.get("prog_after_" + n), "up_mode": m.get("up_mode_" + n)}
                for n in nodes}
    adopted = all(r["program_before"] == r["program_after"] and r["up_mode"] == "adopted" for r in restarts.values())
    lb_drops = sum(drops(v) for v in delta.values())
    no_neigh = sum(v["counters"].get("pass_no_neigh", 0) for v in delta.values())
    retrans = m["retrans1"] - m["retrans0"]
    res = {
        "restarts": restarts, "all_adopted_same_program": adopted,
        "long_lived": ls, "short": short,
        "lb_drops": lb_drops, "lb_pass_no_neigh": no_neigh,
        "vip_packets": sum(sum(v["vips"].values()) for v in delta.values()),
        "client_tcp_retransmits": retrans,
    }
    say("agents SIGKILLed and restarted in turn: %s",
        "  ".join("%s %.2fs (%s, prog %s->%s)" % (n, r["seconds"] or -1, r["up_mode"], r["program_before"],
                                                 r["program_after"]) for n, r in restarts.items()))
    say("meanwhile: %d long-lived connections (%d broken, %d lines), %d short (%d failed); "
        "%d VIP packets, LB drops %d, client TCP retransmits %d",
        ls["connections"], ls["broken"], ls["lines_answered"], short["connections"], short["failed"],
        res["vip_packets"], lb_drops, retrans)
    ch = route_changes(m, routes_log, m["t_restarts"], m["t_restarts_end"]) if "t_restarts" in m else None
    n_changes = sum(len(v) for v in ch.values()) if ch is not None else None
    res["route_changes_during_restarts"] = n_changes
    res["route_changes"] = ch
    res["route_before"], res["route_after"] = str(m.get("route_before", "")), str(m.get("route_after", ""))
    say("router's VIP routes during the restarts (%.1f s): %s changes (route history); ECMP set %s before, %s after",
        m.get("t_restarts_end", 0) - m.get("t_restarts", 0), n_changes, m.get("route_before"), m.get("route_after"))
    goals = [
        goal("router's VIP route changes during the restarts", n_changes == 0, n_changes, 0),
        goal("broken long-lived connections", ls["broken"] == 0, ls["broken"], 0),
        goal("failed short connections", short["failed"] == 0, short["failed"], 0),
        goal("packets dropped by LB nodes", lb_drops == 0, lb_drops, 0),
        goal("every agent adopted the pinned program", adopted, adopted, True),
    ]
    return finish("agent_restart", res, goals, out)


def drain(d, m, out):
    ls, raw = long_summary(os.path.join(d, "long.json"))
    short = short_summary(os.path.join(d, "short.json"))
    victim = m["victim"]
    end = (raw.get("sending_from") or 0) + (raw.get("sending_seconds") or 0)
    on_victim = [c for c in raw["conns"] if c["backend"] == victim]
    finished = [c for c in on_victim if not c["broken"] and c["received"] == c["sent"]
                and (c["last_reply_at"] or 0) >= end - 1.0]
    status = load(os.path.join(d, "status_drained.json"))
    drained_everywhere = all(b["slots"] == 0 and b["weight"] == 0 for s in status.values() for v in s["vips"]
                             for b in v["backends"] if b["address"] in (m["victim_v4"], m["victim_v6"]))
    to_victim = short["by_backend"].get(victim, 0)
    res = {
        "victim": victim,
        "drained_on_every_node": drained_everywhere,
        "long_lived": ls,
        "connections_on_drained": len(on_victim),
        "finished_on_drained": len(finished),
        "seconds_after_drain": round(end - m["t_drain"], 2) if raw.get("sending_from") else None,
        "new_connections": short["connections"], "new_failed": short["failed"],
        "new_to_drained": to_victim, "new_by_backend": short["by_backend"],
        "undrain_to_ring_seconds": m.get("undrain_seconds"),
    }
    say("%s drained on every node: %d of its %d long-lived connections kept working to the end (%.1f s after the drain)",
        victim, len(finished), len(on_victim), res["seconds_after_drain"] or 0)
    say("new connections after the drain: %d, failed %d, to %s %d; by backend %s",
        short["connections"], short["failed"], victim, to_victim, short["by_backend"])
    goals = [
        goal("established connections on the drained backend that finished", len(finished) == len(on_victim) > 0,
             "%d/%d" % (len(finished), len(on_victim)), "all, > 0"),
        goal("broken connections (any backend)", ls["broken"] == 0, ls["broken"], 0),
        goal("new connections to the drained backend", to_victim == 0, to_victim, 0),
        goal("new connections failed", short["failed"] == 0, short["failed"], 0),
    ]
    return finish("drain", res, goals, out)


# ---- the whole report -------------------------------------------------------

def report(a):
    order = a.order.split(",")
    lab = load(a.lab) if a.lab and os.path.exists(a.lab) else {}
    lab.update({"lb_nodes": a.lb_nodes, "backends": a.backends, "quick": a.quick == "1",
                "xdplb": a.xdplb, "kernel": os.uname().release, "seconds": float(a.seconds)})
    out = {"lab": lab}
    print("==== ecmp-lab report: %d LB nodes, %d backends%s, %.0f s ====" % (
        a.lb_nodes, a.backends, " (quick)" if a.quick == "1" else "", float(a.seconds)))
    for name in order:
        path = os.path.join(a.dir, name + ".json")
        r = load(path) if os.path.exists(path) else {"name": name, "ok": False, "error": "no result"}
        out[name] = r
        line = key_numbers(name, r)
        print("%-16s %-4s %s" % (name, "ok" if r.get("ok") else "MISS", line))
    out["ok"] = all(out[n].get("ok") for n in order)
    # Each scenario's timeline (timeline.py), for the HTML report and anyone plotting.
    out["timelines"] = {}
    for name in order:
        path = os.path.join(a.dir, name + ".timeline.json")
        if os.path.exists(path):
            try:
                out["timelines"][name] = load(path)
            except ValueError:
                pass
    if a.out:
        with open(a.out, "w") as f:
            json.dump(out, f, indent=2)
    return 0


def key_numbers(name, r):
    if "error" in r and len(r) <= 3:
        return r["error"]
    try:
        import analyze_cluster  # noqa: E402  (the cluster scenarios)
        line = analyze_cluster.key_numbers(name, r)
        if line is not None:
            return line
        import analyze_flood  # noqa: E402  (the flood scenario)
        line = analyze_flood.key_numbers(name, r)
        if line is not None:
            return line
        if name == "distribution":
            return "%d conns; backends %s (max dev %.1f%%); LB nodes %s (max dev %.1f%%)" % (
                r["connections"], "/".join(str(v) for v in r["per_backend"].values()), r["max_backend_deviation_pct"],
                "/".join(str(v) for v in r["per_lb_node_syns"].values()), r["max_node_deviation_pct"])
        if name == "node_failure":
            return "%s cut: out of ECMP in %s s (BFD %s); %s pkts into the cut, %s retransmits; %d moved, %d broken" % (
                r["victim"], r["detection_to_new_ecmp_s"], r["bfd"], r["packets_lost_router_into_cut"],
                r["client_tcp_retransmits_failure"], r["flows_moved_to_other_nodes_ct_miss"], r["long_lived"]["broken"])
        if name == "node_drain":
            return "%s drained: out of ECMP in %s s, traffic stopped %s s; %s retransmits, %d LB drops, %d broken" % (
                r["victim"], r["drain_to_new_ecmp_s"], r["traffic_stopped_after_s"], r["client_tcp_retransmits"],
                r["lb_drops"], r["long_lived"]["broken"])
        if name == "node_join":
            return "%s joined: health converged %s s, in ECMP %s s after start; %d moved to it, %d broken" % (
                r["victim"], r["start_to_health_converged_s"], r["start_to_ecmp_s"],
                r["flows_taken_by_the_node_ct_miss"], r["long_lived"]["broken"])
        if name == "backend_failure":
            cs = r.get("cluster_status_after_removal") or {}
            return "%s out of the rings in %s s (bound %.2f); %d broken on other backends; %d new to it, %d failed%s" % (
                r["victim"], r["removal_seconds_max"], r["removal_bound_s"], r["broken_on_other_backends"],
                r["new_to_victim"], r["new_failed"],
                "" if cs.get("exit") in (0, None) else "; NODES DISAGREE: " + "; ".join(
                    "%s: %s" % (n, ", ".join(p)) for n, p in (cs.get("flagged") or {}).items()))
        if name == "backend_added":
            return "%.3f of flows changed backend (ideal %.3f); %d moved between old; %d broken" % (
                r["changed_fraction"] or 0, r["ideal_fraction"], r["moved_between_old_backends"],
                r["long_lived"]["broken"])
        if name == "agent_restart":
            return "%d restarts: %s route changes, %d long broken, %d short failed, %d LB drops, %d retransmits" % (
                len(r["restarts"]), r["route_changes_during_restarts"], r["long_lived"]["broken"], r["short"]["failed"],
                r["lb_drops"], r["client_tcp_retransmits"])
        if name == "drain":
            return "%d/%d drained-backend connections finished; %d new to it, %d failed" % (
                r["finished_on_drained"], r["connections_on_drained"], r["new_to_drained"], r["new_failed"])
    except (KeyError, TypeError) as e:
        return "(incomplete: %s)" % e
    return ""


if __name__ == "__main__":
    scen = {"distribution": distribution, "node_failure": node_failure, "node_drain": node_drain,
            "node_join": node_join, "backend_failure": backend_failure,
            "backend_added": backend_added, "agent_restart": agent_restart, "drain": drain}
    with_routes = {"node_failure", "node_drain", "node_join", "agent_restart"}
    import analyze_cluster  # noqa: E402  (ecmp-lab/analyze_cluster.py: the cluster scenarios)
    scen.update(analyze_cluster.SCENARIOS)
    with_routes |= analyze_cluster.WITH_ROUTES
    import analyze_flood  # noqa: E402  (ecmp-lab/analyze_flood.py: the flood scenario)
    scen.update(analyze_flood.SCENARIOS)
    with_routes |= analyze_flood.WITH_ROUTES
    p = argparse.ArgumentParser(description="xdplb lab report")
    p.add_argument("what", choices=sorted(scen) + ["report"])
    p.add_argument("--dir", required=True)
    p.add_argument("--out")
    p.add_argument("--routes", help="the router's route history (ip -ts monitor route)")
    p.add_argument("--lab")
    p.add_argument("--lb-nodes", type=int, default=0)
    p.add_argument("--backends", type=int, default=0)
    p.add_argument("--quick", default="0")
    p.add_argument("--xdplb", default="")
    p.add_argument("--seconds", default="0")
    p.add_argument("--order", default=",".join(scen))
    a = p.parse_args()
    if a.what == "report":
        sys.exit(report(a))
    m = read_meta(a.dir)
    if a.what in with_routes:
        r = scen[a.what](a.dir, m, a.out, a.routes)
    else:
        r = scen[a.what](a.dir, m, a.out)
    sys.exit(0)
