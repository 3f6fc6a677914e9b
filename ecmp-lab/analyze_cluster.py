"""Numbers of the lab's cluster scenarios (cluster_push, bad_push,
asymmetric_health, etcd_loss), of the through-tunnel check (tunnel_check) and
of second chance (simultaneous_change);
used by analyze.py, stdlib only.

Each scenario directory holds meta.tsv, the JSON `xdplb cluster push --json`
and `xdplb cluster status --json` printed (TAG.json, TAG-cluster.json), the
pollers' results (TAG-N: seconds from TAG.t until node N reached the state,
TAG-N.rev: the revision it ran then), snapshots of every node's status and
stats, and the traffic client's JSON.
"""
import os
import re

import analyze as A


def node_times(d, tag):
    """{lbN: seconds or None (timed out)} from the pollers' TAG-N files."""
    out = {}
    for name in os.listdir(d):
        mm = re.fullmatch(re.escape(tag) + r"-(\d+)", name)
        if mm:
            v = open(os.path.join(d, name)).read().strip()
            out["lb" + mm.group(1)] = float(v) if v not in ("timeout", "") else None
    return dict(sorted(out.items(), key=lambda kv: A.natural(kv[0])))


def node_revisions(d, tag):
    out = {}
    for name in os.listdir(d):
        mm = re.fullmatch(re.escape(tag) + r"-(\d+)\.rev", name)
        if mm:
            out["lb" + mm.group(1)] = int(open(os.path.join(d, name)).read().strip())
    return dict(sorted(out.items(), key=lambda kv: A.natural(kv[0])))


def load_or(d, name, default=None):
    try:
        return A.load(os.path.join(d, name))
    except (OSError, ValueError):
        return default


def cluster_view(d, tag):
    """What `xdplb cluster status --json` said after TAG: exit, agreed, per node revision and digests."""
    c = load_or(d, tag + "-cluster.json", {}) or {}
    rows = c.get("rows") or []
    digests = [r.get("digests") or {} for r in rows]
    return {
        "exit": None,
        "agreed": c.get("agreed"),
        "config_revision": c.get("configRevision", c.get("config_revision")),
        "nodes": {r.get("node"): {"lease": r.get("lease"), "revision": r.get("revision"),
                                  "problems": r.get("problems") or []} for r in rows},
        "vips": len(c.get("vips") or []),
        "digests_equal": bool(rows) and all(x == digests[0] for x in digests) and bool(digests[0]),
    }


def push(d, m, tag):
    """One push: the command's result, every node's time to it, the cluster's view after."""
    p = load_or(d, tag + ".json", {}) or {}
    times = node_times(d, tag)
    revs = node_revisions(d, tag)
    view = cluster_view(d, tag)
    view["exit"] = m.get(tag + "_status_rc")
    rev = p.get("revision")
    return {
        "exit": m.get(tag + "_rc"), "revision_before": m.get(tag + "_before"), "revision": rev,
        "converged": p.get("converged"),
        "converge_ms": round(p["converge_ms"], 1) if isinstance(p.get("converge_ms"), (int, float)) else None,
        "command_s": m.get(tag + "_command_s"),
        "vips": p.get("vips"), "backends": p.get("backends"),
        "node_seconds": times, "max_node_seconds": A.worst(times),
        "node_revisions": revs,
        "every_node_on_revision": bool(revs) and rev is not None and all(r == rev for r in revs.values())
        and len(revs) == len(times),
        "expected_digests": load_or(d, tag + ".digests"),
        "cluster_status": view,
    }


def cluster_push(d, m, out):
    goal_s = float(m.get("goal_s", 1))
    pushes = {t: push(d, m, t) for t in ("half", "full")}
    big = {t: push(d, m, t) for t in ("big", "big_back") if (t + "_rc") in m}
    res = {"lb_nodes": m.get("lb_nodes"), "backends": m.get("backends"), "goal_s": goal_s,
           "weight_change": pushes["half"], "weight_back": pushes["full"]}
    worst = [p["max_node_seconds"] for p in pushes.values()]
    res["max_push_to_every_node_s"] = None if None in worst else max(worst)
    for t, p in pushes.items():
        A.say("push %s (revision %s -> %s, exit %s): every node runs it with the expected digests after %s s (%s); "
              "push --wait: converged %s in %s ms, command %s s; cluster status exit %s",
              "be1 weight 50" if t == "half" else "weights back to 100", p["revision_before"], p["revision"], p["exit"],
              p["max_node_seconds"], "  ".join("%s %s" % kv for kv in p["node_seconds"].items()),
              p["converged"], p["converge_ms"], p["command_s"], p["cluster_status"]["exit"])
    goals = []
    for t, p in pushes.items():
        goals += [
            goal("push %s: every node runs the new revision with the offline digests (s)" % t,
                 p["exit"] == 0 and p["every_node_on_revision"] and p["max_node_seconds"] is not None
                 and p["max_node_seconds"] < goal_s, p["max_node_seconds"], "< %g on %s nodes" % (goal_s, m.get("lb_nodes"))),
            goal("push %s: xdplb cluster status agrees (exit)" % t, p["cluster_status"]["exit"] == 0,
                 p["cluster_status"]["exit"], 0),
        ]
    if big:
        res["big"] = {"vips": m.get("big_vips"), "backends_per_vip": m.get("big_backends_per_vip"), **big["big"]}
        res["big_back"] = big["big_back"]
        for t, p in big.items():
            A.say("push %s (revision %s, %s VIPs, %s distinct backends, exit %s): converged %s, every node's report "
                  "in etcd names it %s ms after the write (command %s s); cluster status exit %s, digests equal on "
                  "every node %s", "100 VIPs x 100 backends" if t == "big" else "back to the lab's 4 VIPs",
                  p["revision"], p["vips"], p["backends"], p["exit"], p["converged"], p["converge_ms"],
                  p["command_s"], p["cluster_status"]["exit"], p["cluster_status"]["digests_equal"])
            goals.append(goal("push %s: converged on every node, same digests, status agrees" % t,
                              p["exit"] == 0 and p["converged"] is True and p["cluster_status"]["exit"] == 0
                              and p["cluster_status"]["digests_equal"],
                              "%s ms" % p["converge_ms"], "converged (time reported)"))
    return A.finish("cluster_push", res, goals, out)


goal = A.goal


def node_views(status):
    """{lbN: (revision, refused_revision, refused_error, {vip: digest})} from a status snapshot."""
    out = {}
    for n, s in sorted(status.items(), key=lambda kv: int(kv[0])):
        c = s.get("cluster") or {}
        out["lb" + n] = {"revision": c.get("revision"), "refused_revision": c.get("refused_revision"),
                         "refused_error": c.get("refused_error"), "etcd_reachable": c.get("etcd_reachable"),
                         "health": c.get("health"), "health_consensus": c.get("health_consensus"),
                         "digests": {v["name"]: v["digest"] for v in s.get("vips", [])}}
    return out


def bad_push(d, m, out):
    ls, _ = A.long_summary(os.path.join(d, "long.json"))
    short = A.short_summary(os.path.join(d, "short.json"))
    v0 = node_views(A.load(os.path.join(d, "status0.json")))
    vr = node_views(A.load(os.path.join(d, "status_refused.json")))
    vg = node_views(A.load(os.path.join(d, "status_good.json")))
    delta = A.stats_delta(A.load(os.path.join(d, "stats0.json")), A.load(os.path.join(d, "stats1.json")))
    lb_drops = sum(A.drops(v) for v in delta.values())
    r0, bad = m.get("revision_before"), m.get("bad_revision")
    refused = node_times(d, "refused")
    digests_kept = set(v0) == set(vr) and all(vr[n]["digests"] == v0[n]["digests"] for n in v0)
    kept_revision = bool(vr) and all(vr[n]["revision"] == r0 for n in vr)
    refused_all = bool(vr) and all(x["refused_revision"] == bad for x in vr.values())
    names_key = all("ring_size" in (x["refused_error"] or "") for x in vr.values())
    good = push(d, m, "good")
    good["cluster_status"]["exit"] = m.get("status_good_rc")
    cleared = bool(vg) and all(x["refused_revision"] is None and x["revision"] == good["revision"] for x in vg.values())
    res = {
        "revision_before": r0,
        "cli": {"exit": m.get("cli_rc"), "says_nothing_was_written": m.get("cli_says_nothing_written", 0) > 0,
                "names_the_key": m.get("cli_names_key", 0) > 0, "revision_after": m.get("revision_after_cli")},
        "etcdctl_put": {"revision": bad, "refused_by_every_node": refused_all, "refusal_names_ring_size": names_key,
                        "seconds_to_refused": refused, "max_seconds_to_refused": A.worst(refused),
                        "revision_kept": kept_revision, "digests_kept": digests_kept,
                        "cluster_status_exit": m.get("status_refused_rc"),
                        "nodes": {n: {k: x[k] for k in ("revision", "refused_revision", "refused_error")} for n, x in vr.items()}},
        "short_while_refused": short,
        "good_push": good, "refusals_cleared": cleared,
        "long_lived": ls, "lb_drops": lb_drops,
    }
    A.say("invalid file: xdplb cluster push exit %s (names vips[0].ring_size: %s, says nothing was written: %s); "
          "etcd's config revision %s -> %s", m.get("cli_rc"), res["cli"]["names_the_key"],
          res["cli"]["says_nothing_was_written"], r0, m.get("revision_after_cli"))
    A.say("the same text put with etcdctl (revision %s): refused by every node %s after %s s (%s); each kept revision %s: %s, "
          "digests unchanged: %s; cluster status exit %s", bad, refused_all, A.worst(refused),
          "  ".join("%s %s" % kv for kv in refused.items()), r0, kept_revision, digests_kept, m.get("status_refused_rc"))
    A.say("while refused: %d short connections, %d failed; then a good push (revision %s, exit %s): every node after %s s, "
          "refusals cleared %s, cluster status exit %s", short["connections"], short["failed"], good["revision"],
          good["exit"], good["max_node_seconds"], cleared, m.get("status_good_rc"))
    A.say("long-lived: %d connections, %d broken; LB drops %d", ls["connections"], ls["broken"], lb_drops)
    goals = [
        goal("invalid push refused: exit 2, revision unchanged",
             m.get("cli_rc") == 2 and m.get("revision_after_cli") == r0 and res["cli"]["says_nothing_was_written"],
             "exit %s, revision %s -> %s" % (m.get("cli_rc"), r0, m.get("revision_after_cli")), "exit 2, unchanged"),
        goal("bad value in etcd refused by every node (refused_revision)", refused_all and names_key,
             ",".join(str(x["refused_revision"]) for x in vr.values()), bad),
        goal("old config kept: revision and digests unchanged on every node", kept_revision and digests_kept,
             kept_revision and digests_kept, True),
        goal("cluster status flags the refusal (exit)", m.get("status_refused_rc") == 1, m.get("status_refused_rc"), 1),
        goal("short connections failed while refused", short["failed"] == 0 and short["connections"] > 0,
             short["failed"], 0),
        goal("good push converges, refusals cleared, status agrees",
             good["exit"] == 0 and good["every_node_on_revision"] and cleared and m.get("status_good_rc") == 0,
             "exit %s, every node %s s" % (good["exit"], good["max_node_seconds"]), "exit 0, all, status 0"),
        goal("broken long-lived connections", ls["broken"] == 0, ls["broken"], 0),
    ]
    return A.finish("bad_push", res, goals, out)


def asymmetric_round(d, m, tag, routes_log):
    ls, raw = A.long_summary(os.path.join(d, "long_%s.json" % tag))
    t_move = float(m.get("t_%s_drain" % tag, 0))
    broken_at = [c.get("broken_at") or 0 for c in raw["conns"] if c["broken"]]
    before_move = sum(1 for t in broken_at if t and t < t_move)
    st = A.load(os.path.join(d, "%s_status_split.json" % tag))
    s0, s1, s2 = (A.load(os.path.join(d, "%s_stats%d.json" % (tag, i))) for i in range(3))
    drain, back = A.stats_delta(s0, s1), A.stats_delta(s1, s2)
    victim, cut = str(m["victim"]), m["cut_node"]
    addrs = (m["backend_v4"], m["backend_v6"])
    per_node, digests = {}, {}
    for n, s in sorted(st.items(), key=lambda kv: int(kv[0])):
        e = [b for v in s["vips"] for b in v["backends"] if b["address"] in addrs]
        c = s.get("cluster") or {}
        per_node["lb" + n] = {
            # status: healthy = the node's own probe, agreed_healthy = the cluster's (decides the ring)
            "local_healthy": sorted(set(b["healthy"] for b in e), key=str),
            "healthy": sorted(set(b.get("agreed_healthy", b["healthy"]) for b in e), key=str),
            "slots": sum(b["slots"] for b in e), "health": c.get("health"),
        }
        for v in s["vips"]:
            digests.setdefault(v["name"], {})["lb" + n] = v["digest"]
    differ = sorted(v for v, by in digests.items() if len(set(by.values())) > 1)
    moved_drain = sum(v["counters"].get("ct_miss", 0) for n, v in drain.items() if n != victim)
    moved_back = back.get(victim, {"counters": {}})["counters"].get("ct_miss", 0)
    lb_drops = sum(A.drops(v) for v in drain.values()) + sum(A.drops(v) for v in back.values())
    be = m["backend"]
    on_be = ls["by_backend"].get(be, {"connections": 0, "broken": 0})
    return {
        "health_rule": tag,
        "local_down_s": m.get(tag + "_local_down_s"), "per_node": per_node,
        "digests": digests, "digests_equal": not differ, "vips_with_differing_digests": differ,
        "cluster_status_exit": m.get(tag + "_cluster_rc"),
        "drain_to_new_ecmp_s": A.route_times(m, routes_log, tag + "_drain")["seconds"],
        "undrain_to_ecmp_s": A.route_times(m, routes_log, tag + "_undrain")["seconds"],
        "flows_moved_by_drain_ct_miss": moved_drain, "flows_moved_back_ct_miss": moved_back,
        "long_lived": ls, "broken": ls["broken"], "broken_on_backend": on_be["broken"],
        "broken_before_flows_moved": before_move, "broken_after_flows_moved": ls["broken"] - before_move,
        "connections_on_backend": on_be["connections"],
        "client_tcp_retransmits": A.retrans(m, tag + "_retrans0", tag + "_retrans1"),
        "lb_drops": lb_drops, "heal_s": m.get(tag + "_heal_s"),
    }


def asymmetric_health(d, m, out, routes_log):
    cut, be, victim = m["cut_node"], m["backend"], "lb%s" % m["victim"]
    rounds = {t: asymmetric_round(d, m, t, routes_log) for t in ("majority", "local")}
    res = {"cut_node": cut, "backend": be, "moved_by_draining": victim, "lb_nodes": m.get("lb_nodes"),
           "method": "%s's own packets to %s dropped on its interface (tc egress); its XDP_TX'ed GRE passes" % (cut, be),
           "switch_to_local_s": m.get("switch_to_local_s"), "switch_back_s": m.get("switch_to_majority_s"),
           **rounds}
    for t, r in rounds.items():
        A.say("%s: %s's probes see %s down after %s s; %s: local_healthy %s, agreed healthy %s, slots %s; "
              "digests equal %s%s; cluster status exit %s", t, cut, be, r["local_down_s"],
              "  ".join("%s" % n for n in r["per_node"]), {n: x["local_healthy"] for n, x in r["per_node"].items()},
              {n: x["healthy"] for n, x in r["per_node"].items()}, {n: x["slots"] for n, x in r["per_node"].items()},
              r["digests_equal"], "" if r["digests_equal"] else " (differ on %s)" % ", ".join(r["vips_with_differing_digests"]),
              r["cluster_status_exit"])
        A.say("%s: %s drained (out of ECMP %s s) and undrained (%s s): %d + %d flows moved; %d long-lived connections, "
              "%d broken (%d of %d on %s; %d before the flows moved, %d after); retransmits %s, LB drops %d", t, victim,
              r["drain_to_new_ecmp_s"], r["undrain_to_ecmp_s"], r["flows_moved_by_drain_ct_miss"],
              r["flows_moved_back_ct_miss"], r["long_lived"]["connections"], r["broken"], r["broken_on_backend"],
              r["connections_on_backend"], be, r["broken_before_flows_moved"], r["broken_after_flows_moved"],
              r["client_tcp_retransmits"], r["lb_drops"])
    mj, lo = rounds["majority"], rounds["local"]
    cut_sees_down = lambda r: r["per_node"].get(cut, {}).get("local_healthy") == [False]
    kept = all(x["healthy"] == [True] and x["slots"] > 0 for x in mj["per_node"].values())
    goals = [
        goal("majority: %s's own probes see %s down (else nothing was tested)" % (cut, be), cut_sees_down(mj),
             mj["per_node"].get(cut, {}).get("local_healthy"), [False]),
        goal("majority: %s stays healthy and in every node's ring" % be, kept, kept, True),
        goal("majority: digests equal on every node", mj["digests_equal"], mj["digests_equal"], True),
        goal("majority: xdplb cluster status agrees (exit)", mj["cluster_status_exit"] == 0, mj["cluster_status_exit"], 0),
        goal("majority: flows moved by ECMP (else nothing was tested)", mj["flows_moved_by_drain_ct_miss"] > 0,
             mj["flows_moved_by_drain_ct_miss"], "> 0"),
        goal("majority: broken connections", mj["broken"] == 0 and mj["long_lived"]["connected"] == mj["long_lived"]["connections"],
             mj["broken"], 0),
        goal("local: %s's own probes see %s down (else nothing was tested)" % (cut, be), cut_sees_down(lo),
             lo["per_node"].get(cut, {}).get("local_healthy"), [False]),
        goal("local: digests diverge (consensus off)", not lo["digests_equal"],
             "%d VIPs differ" % len(lo["vips_with_differing_digests"]), "reported"),
        goal("local: broken connections when flows move (consensus off)", True, lo["broken"], "reported"),
    ]
    return A.finish("asymmetric_health", res, goals, out)


def last_checks(status):
    """{(node, vip, backend): last_check} from a status snapshot."""
    return {(n, v["name"], b["address"]): b.get("last_check") for n, s in status.items()
            for v in s["vips"] for b in v["backends"]}


def etcd_loss(d, m, out):
    ls, _ = A.long_summary(os.path.join(d, "long.json"))
    short = A.short_summary(os.path.join(d, "short.json"))
    delta = A.stats_delta(A.load(os.path.join(d, "stats0.json")), A.load(os.path.join(d, "stats1.json")))
    lb_drops = sum(A.drops(v) for v in delta.values())
    member, final = push(d, m, "member"), push(d, m, "final")
    s0, s1 = A.load(os.path.join(d, "status_down0.json")), A.load(os.path.join(d, "status_down1.json"))
    v0, v1 = node_views(s0), node_views(s1)
    vb = node_views(A.load(os.path.join(d, "status_back.json")))
    want = member["expected_digests"] or {}
    fam = lambda name: "6" if name.startswith("[") else "4"
    kept = all(x["revision"] == member["revision"] and x["digests"] and
               all(dg == want.get(fam(v)) for v, dg in x["digests"].items()) for x in list(v0.values()) + list(v1.values()))
    lc0, lc1 = last_checks(s0), last_checks(s1)
    probes_ran = bool(lc0) and all(lc1.get(k) and lc0[k] and lc1[k] > lc0[k] for k in lc0)
    fell_back = all(x["health_consensus"] is False and (x["health"] or "").startswith("local") for x in v1.values())
    unreachable = node_times(d, "unreachable")
    reachable = node_times(d, "reachable")
    res = {
        "members": m.get("members"), "leader_killed": m.get("leader"), "new_leader": m.get("new_leader"),
        "one_member_down_push": member,
        "one_member_down_cluster_status_agrees_again_after_s": m.get("member_agreed_after_s"),
        "all_down": {
            "seconds_until_every_node_says_unreachable": A.worst(unreachable), "per_node": unreachable,
            "outage_s": m.get("outage_s"), "fallback_after": m.get("fallback_after"),
            "revision_and_digests_kept": kept, "probes_kept_running": probes_ran,
            "fell_back_to_local_health": fell_back,
            "nodes_at_start": {n: {k: x[k] for k in ("etcd_reachable", "revision", "health")} for n, x in v0.items()},
            "nodes_at_end": {n: {k: x[k] for k in ("etcd_reachable", "revision", "health")} for n, x in v1.items()},
        },
        "members_back": {
            "etcd_answers_s": m.get("etcd_back_s"), "every_node_reachable_s": A.worst(reachable), "per_node": reachable,
            "cluster_status_agrees_s": m.get("agreed_s"), "cluster_status_exit": m.get("back_status_rc"),
            "nodes": {n: {k: x[k] for k in ("etcd_reachable", "revision", "health")} for n, x in vb.items()},
        },
        "final_push": final,
        "long_lived": ls, "short": short, "lb_drops": lb_drops,
        "client_tcp_retransmits": A.retrans(m, "retrans0", "retrans1"),
    }
    A.say("leader %s killed: a push (revision %s -> %s, exit %s) runs on every node with the offline digests after %s s "
          "(--wait: %s ms); cluster status then exit %s (%s), agreeing %s s later; new leader %s", m.get("leader"),
          member["revision_before"], member["revision"], member["exit"], member["max_node_seconds"],
          member["converge_ms"], member["cluster_status"]["exit"],
          "; ".join("%s %s %s" % (n, x["lease"], ", ".join(x["problems"])) for n, x in member["cluster_status"]["nodes"].items()
                    if x["problems"]) or "no node flagged", m.get("member_agreed_after_s"), m.get("new_leader"))
    A.say("all %s members down: every node says unreachable after %s s (%s); %s s later: revision and digests kept %s, "
          "probes kept running %s, fell back to its own probes %s (%s)", m.get("members"), A.worst(unreachable),
          "  ".join("%s %s" % kv for kv in unreachable.items()), m.get("outage_s"), kept, probes_ran, fell_back,
          "; ".join("%s: %s" % (n, x["health"]) for n, x in v1.items()))
    A.say("members back: etcd answers after %s s, every node reconnected after %s s, cluster status agrees after %s s "
          "(exit %s); a push then (revision %s) on every node after %s s", m.get("etcd_back_s"), A.worst(reachable),
          m.get("agreed_s"), m.get("back_status_rc"), final["revision"], final["max_node_seconds"])
    A.say("meanwhile: %d long-lived connections, %d broken; %d short, %d failed; LB drops %d, client retransmits %s",
          ls["connections"], ls["broken"], short["connections"], short["failed"], lb_drops, res["client_tcp_retransmits"])
    goals = [
        goal("one member (the leader) down: a push converges on every node",
             member["exit"] == 0 and member["every_node_on_revision"] and member["max_node_seconds"] is not None,
             "%s s" % member["max_node_seconds"], "converged"),
        goal("one member down: cluster status agrees (exit)", member["cluster_status"]["exit"] == 0,
             member["cluster_status"]["exit"], 0),
        goal("all down: every node says unreachable", A.worst(unreachable) is not None, A.worst(unreachable), "seen"),
        goal("all down: revision and digests kept on every node", kept, kept, True),
        goal("all down: local probes keep running, health falls back to them", probes_ran and fell_back,
             probes_ran and fell_back, True),
        goal("members back: every node reconnects, cluster status agrees (exit 0)",
             A.worst(reachable) is not None and m.get("back_status_rc") == 0, m.get("back_status_rc"), 0),
        goal("members back: a push converges on every node", final["exit"] == 0 and final["every_node_on_revision"],
             "%s s" % final["max_node_seconds"], "converged"),
        goal("broken long-lived connections", ls["broken"] == 0 and ls["connected"] == ls["connections"], ls["broken"], 0),
        goal("failed short connections", short["failed"] == 0 and short["connections"] > 0, short["failed"], 0),
        goal("packets dropped by LB nodes", lb_drops == 0, lb_drops, 0),
    ]
    return A.finish("etcd_loss", res, goals, out)


def entries_of(status, addresses, port):
    """{lbN: [backend entries of ADDRESSES in the VIPs on PORT]} from a status snapshot."""
    out = {}
    for node, st in status.items():
        vs = [v for v in st.get("vips") or [] if v["name"].rsplit("/", 1)[0].endswith(":%d" % port)]
        out["lb" + node] = [dict(b, vip=v["name"]) for v in vs for b in v["backends"] if b["address"] in addresses]
    return dict(sorted(out.items(), key=lambda kv: A.natural(kv[0])))


def in_ring(e):
    return e.get("agreed_healthy", e["healthy"]) is True and e["slots"] > 0


def tunnel_check(d, m, out):
    addrs = {m["backend_v4"], m["backend_v6"]}
    http, echo = m.get("http_port", 80), m.get("echo_port", 7)
    be, bound = m["backend"], m["bound_s"]
    s0 = A.load(os.path.join(d, "status_tunnel0.json"))
    sd = A.load(os.path.join(d, "status_tunnel_down.json"))
    sp = A.load(os.path.join(d, "status_plain_off.json"))
    down = node_times(d, "tunnel_down")
    up = node_times(d, "tunnel_up")
    # The checks the status names: the HTTP VIPs' through GRE, the echo VIPs' plain.
    checks_http = sorted({e["check"] for es in entries_of(s0, addrs, http).values() for e in es})
    checks_echo = sorted({e["check"] for es in entries_of(s0, addrs, echo).values() for e in es})
    via_gre = bool(checks_http) and all("via GRE" in c for c in checks_http) and not any("via GRE" in c for c in checks_echo)
    http_down = entries_of(sd, addrs, http)
    echo_kept = entries_of(sd, addrs, echo)
    out_of_http = bool(http_down) and all(es and all(not in_ring(e) for e in es) for es in http_down.values())
    kept_by_plain = bool(echo_kept) and all(es and all(in_ring(e) and e["healthy"] for e in es) for es in echo_kept.values())
    down_reason = sorted({e["last_result"] for es in http_down.values() for e in es})[:3]
    plain = entries_of(sp, addrs, http)
    plain_kept = bool(plain) and all(es and all(in_ring(e) and e["healthy"] for e in es) for es in plain.values())
    # The probe program's packets between the two snapshots (every node wraps its own probes).
    p0 = A.load(os.path.join(d, "stats_tunnel0.json"))
    p1 = A.load(os.path.join(d, "stats_tunnel1.json"))
    gre = {}
    for node, st in p1.items():
        t1, t0 = st.get("tunnel_probes") or {}, (p0.get(node) or {}).get("tunnel_probes") or {}
        gre["lb" + node] = {k: int(v["packets"] - t0.get(k, {}).get("packets", 0)) for k, v in t1.items()
                            if k in ("gre_v4", "gre_v6") or k.startswith("drop")}
    wrapped = bool(gre) and all(g.get("gre_v4", 0) > 0 and g.get("gre_v6", 0) > 0 for g in gre.values())
    st = A.short_summary(os.path.join(d, "short_tunnel.json"))
    sp_short = A.short_summary(os.path.join(d, "short_plain.json"))
    expected_share = round(100.0 / m["backends"], 1)
    res = {
        "backend": be, "bound_s": bound, "checks": {"http": checks_http, "echo": checks_echo},
        "tunnel": {"seconds_to_out_of_http_rings": down, "max_seconds": A.worst(down),
                   "out_of_every_http_ring": out_of_http, "why": down_reason,
                   "kept_in_echo_rings_by_plain_check": kept_by_plain,
                   "probe_packets_through_gre": gre, "short": st,
                   "seconds_back_after_vip_restored": up, "max_seconds_back": A.worst(up),
                   "cluster_status_exit": m.get("tunnel_status_rc")},
        "plain": {"waited_s": m.get("plain_waited_s"), "still_healthy_in_every_http_ring": plain_kept,
                  "short": sp_short, "failed_pct": round(100.0 * sp_short["failed"] / max(sp_short["connections"], 1), 1),
                  "expected_failed_pct": expected_share},
    }
    A.say("checks: HTTP VIPs %s; echo VIPs %s", "; ".join(checks_http[:2]), "; ".join(checks_echo[:2]))
    A.say("%s without the VIPs on lo, through-tunnel check: out of the HTTP VIPs' rings on every node after %s s (%s; bound %s s), "
          "last result %s; kept in the echo VIPs' rings by their plain check: %s", be, A.worst(down),
          "  ".join("%s %s" % kv for kv in down.items()), bound, down_reason, kept_by_plain)
    A.say("probe packets wrapped in GRE meanwhile: %s", "  ".join("%s %s" % (n, g) for n, g in gre.items()))
    A.say("while out: %d short HTTP connections, %d failed, %d to %s; VIPs back: in again after %s s",
          st["connections"], st["failed"], st["by_backend"].get(be, 0), be, A.worst(up))
    A.say("plain check, same fault: still healthy in every ring after %s s: %s; %d of %d short HTTP connections failed "
          "(%.1f %%; %s's share: %.1f %%)", m.get("plain_waited_s"), plain_kept, sp_short["failed"],
          sp_short["connections"], res["plain"]["failed_pct"], be, expected_share)
    goals = [
        goal("HTTP VIPs checked through GRE, echo VIPs plainly (status)", via_gre, via_gre, True),
        goal("out of the HTTP VIPs' rings on every node (through-tunnel check)",
             out_of_http and A.worst(down) is not None and A.worst(down) <= bound, A.worst(down), "<= %s s" % bound),
        goal("kept in the echo VIPs' rings (plain check still passes)", kept_by_plain, kept_by_plain, True),
        goal("probes wrapped in GRE (v4 and v6) on every node", wrapped, wrapped, True),
        goal("failed short connections while out", st["failed"] == 0 and st["connections"] > 0
             and st["by_backend"].get(be, 0) == 0, "%d failed, %d to %s" % (st["failed"], st["by_backend"].get(be, 0), be), 0),
        goal("back in after the VIPs return", A.worst(up) is not None, A.worst(up), "seen"),
        goal("plain check keeps it (what it cannot see)", plain_kept and sp_short["failed"] > 0,
             "healthy %s, %d failed" % (plain_kept, sp_short["failed"]), "healthy, > 0 failed"),
    ]
    return A.finish("tunnel_check", res, goals, out)


def simultaneous_round(d, m, tag):
    ls, raw = A.long_summary(os.path.join(d, "long_%s.json" % tag))
    delta = A.stats_delta(A.load(os.path.join(d, tag + "_stats0.json")), A.load(os.path.join(d, tag + "_stats1.json")))
    d0 = A.load(os.path.join(d, tag + "_decap0.json"))
    d1 = A.load(os.path.join(d, tag + "_decap1.json"))
    dd = {b: {k: v - d0.get(b, {}).get(k, 0) for k, v in c.items()} for b, c in d1.items()}
    return {
        "long_lived": ls, "broken": ls["broken"],
        "second_hop_packets_per_node": {"lb" + k: v["counters"].get("second_hop", 0) for k, v in delta.items()},
        "ct_miss_per_node": {"lb" + k: v["counters"].get("ct_miss", 0) for k, v in delta.items()},
        "handed_on_per_backend": {b: c.get("fwd_handed_on", 0) for b, c in dd.items()},
        "received_handed_on_per_backend": {b: c.get("hop_received", 0) for b, c in dd.items()},
        "hop_drops_per_backend": {b: c.get("drop_hop_unknown", 0) + c.get("drop_hop_no_route", 0) for b, c in dd.items()},
        "lb_drops": sum(A.drops(v) for v in delta.values()),
    }


def simultaneous_change(d, m, out):
    on, off = simultaneous_round(d, m, "on"), simultaneous_round(d, m, "off")
    don, doff = simultaneous_round(d, m, "drain_on"), simultaneous_round(d, m, "drain_off")
    res = {"victim": "lb%s" % m["victim"], "new_backend": m["new_backend"], "long_conns": m["long_conns"],
           "on": on, "off": off, "drain_on": don, "drain_off": doff}
    for tag, r in (("backend added, second chance on", on), ("backend added, second chance off", off),
                   ("be1 drained, second chance on", don), ("be1 drained, second chance off", doff)):
        A.say("%s: %d long-lived connections, %d broken; ct misses per node %s; second hop packets per node %s; "
              "handed on per backend %s; received handed on %s; LB drops %d", tag, r["long_lived"]["connections"],
              r["broken"], r["ct_miss_per_node"], r["second_hop_packets_per_node"],
              {b: v for b, v in r["handed_on_per_backend"].items() if v}, {b: v for b, v in r["received_handed_on_per_backend"].items() if v},
              r["lb_drops"])
    goals = [
        goal("broken with second chance (backend added + LB node drained at once)",
             on["broken"] == 0 and on["long_lived"]["connected"] == on["long_lived"]["connections"], on["broken"], 0),
        goal("second hops were used (packets handed on)", sum(on["handed_on_per_backend"].values()) > 0,
             sum(on["handed_on_per_backend"].values()), "> 0"),
        goal("without second chance the same change breaks some", off["broken"] > 0, off["broken"], "> 0 (reported)"),
        goal("broken with second chance (be1 drained + LB node drained at once)",
             don["broken"] == 0 and don["long_lived"]["connected"] == don["long_lived"]["connections"], don["broken"], 0),
        goal("without second chance the drain breaks some", doff["broken"] > 0, doff["broken"], "> 0 (reported)"),
    ]
    return A.finish("simultaneous_change", res, goals, out)


def key_numbers(name, r):
    if name == "cluster_push":
        s = "push -> every node (offline digests): %s s / %s s (goal < %g s, %s nodes); --wait %s / %s ms" % (
            r["weight_change"]["max_node_seconds"], r["weight_back"]["max_node_seconds"], r["goal_s"], r["lb_nodes"],
            r["weight_change"]["converge_ms"], r["weight_back"]["converge_ms"])
        if "big" in r:
            s += "; 100 VIPs x 100 backends: %s ms (back: %s ms), digests equal %s" % (
                r["big"]["converge_ms"], r["big_back"]["converge_ms"], r["big"]["cluster_status"]["digests_equal"])
        return s
    if name == "bad_push":
        e = r["etcdctl_put"]
        return ("push of an invalid file: exit %s, revision %s -> %s; etcdctl put (rev %s) refused by every node %s in %s s, "
                "old revision/digests kept %s; %d/%d short failed; good push %s s; %d broken") % (
            r["cli"]["exit"], r["revision_before"], r["cli"]["revision_after"], e["revision"], e["refused_by_every_node"],
            e["max_seconds_to_refused"], e["revision_kept"] and e["digests_kept"], r["short_while_refused"]["failed"],
            r["short_while_refused"]["connections"], r["good_push"]["max_node_seconds"], r["long_lived"]["broken"])
    if name == "asymmetric_health":
        mj, lo = r["majority"], r["local"]
        return ("%s blind to %s: majority: digests equal %s, %d moved, %d broken; local: %d VIPs' digests differ, "
                "%d moved, %d broken (%d before / %d after the move)") % (
            r["cut_node"], r["backend"], mj["digests_equal"], mj["flows_moved_by_drain_ct_miss"] + mj["flows_moved_back_ct_miss"],
            mj["broken"], len(lo["vips_with_differing_digests"]),
            lo["flows_moved_by_drain_ct_miss"] + lo["flows_moved_back_ct_miss"], lo["broken"],
            lo["broken_before_flows_moved"], lo["broken_after_flows_moved"])
    if name == "etcd_loss":
        a, b = r["all_down"], r["members_back"]
        return ("leader down: push on every node %s s; all down %s s: unreachable seen %s s, kept config %s, "
                "local health %s; back: agreed %s s; %d broken, %d/%d short failed, %d LB drops") % (
            r["one_member_down_push"]["max_node_seconds"], a["outage_s"], a["seconds_until_every_node_says_unreachable"],
            a["revision_and_digests_kept"], a["fell_back_to_local_health"] and a["probes_kept_running"],
            b["cluster_status_agrees_s"], r["long_lived"]["broken"], r["short"]["failed"], r["short"]["connections"],
            r["lb_drops"])
    if name == "simultaneous_change":
        return ("%s long-lived connections, LB node %s drained with a backend change: added: %d broken with second "
                "chance (%d packets handed on), %d without; be1 drained: %d with, %d without") % (
            r["long_conns"], r["victim"], r["on"]["broken"], sum(r["on"]["handed_on_per_backend"].values()),
            r["off"]["broken"], r["drain_on"]["broken"], r["drain_off"]["broken"])
    if name == "tunnel_check":
        t, p = r["tunnel"], r["plain"]
        return ("%s without the VIPs on lo: through-tunnel check out of every ring in %s s (bound %s s), plain check "
                "kept it; %d/%d short failed with the tunnel check, %d/%d (%.1f %%) with the plain one") % (
            r["backend"], t["max_seconds"], r["bound_s"], t["short"]["failed"], t["short"]["connections"],
            p["short"]["failed"], p["short"]["connections"], p["failed_pct"])
    return None


SCENARIOS = {"cluster_push": cluster_push, "bad_push": bad_push, "asymmetric_health": asymmetric_health,
             "etcd_loss": etcd_loss, "tunnel_check": tunnel_check,
             "simultaneous_change": simultaneous_change}
WITH_ROUTES = {"asymmetric_health"}
