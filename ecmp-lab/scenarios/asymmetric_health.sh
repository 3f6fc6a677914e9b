#!/usr/bin/env bash
# Scenario 9, asymmetric health: LB node 1 alone loses its path to backend 1
# for its own packets (probe_cut: its kernel's packets to be1's addresses are
# dropped on its interface; the balancer's GRE, sent with XDP_TX, still gets
# through), so only node 1's health probes see be1 down. While long-lived
# connections run, ECMP then moves flows between the nodes: the last node is
# drained (`xdplb node drain`: the router takes it out of its ECMP set, its
# flows move to the others, whose conntrack has never seen them) and
# undrained (some move back). Two rounds:
#   majority  the agents' health consensus (cluster.health_rule: majority):
#             node 1 is outvoted, be1 stays in every ring, the digests stay
#             equal, and no connection may break;
#   local     the same with consensus off (health_rule: local; the agents are
#             restarted with it, as in agent_restart): node 1 takes be1 out of
#             its own ring only; reported: how the digests diverge and how
#             many connections break when flows move onto node 1.
# Afterwards the agents run with the lab's rule again.
set -o errexit -o nounset -o pipefail
. "$(dirname "$0")/../scenario.sh" asymmetric_health

pick_victim asymmetric_health          # the node drained to move flows: the last one
cut=1
[ "$victim" != "$cut" ] || die "asymmetric_health: needs at least 2 LB nodes in service"
be=$PROBE_CUT_BACKEND
meta cut_node "lb$cut"
meta backend "be$be"
meta backend_v4 "$(be4 "$be")"
meta backend_v6 "$(be6 "$be")"
meta lb_nodes "$(wc -w <<<"$nodes")"
meta backends "$(active_backends)"
bound=$(python3 -c "print($HC_FALL * $HC_INTERVAL_MS / 1000 + $HC_TIMEOUT_MS / 1000 + $HC_SLACK_S)")
meta local_down_bound_s "$bound"
SC_UNDO+=("probe_uncut $cut")

# local_down I: node I's own probes see backend $be down on every VIP.
local_down() {
	status_json "$1" | python3 -c '
import json, sys
d = json.load(sys.stdin); a = set(sys.argv[1:])
e = [b for v in d["vips"] for b in v["backends"] if b["address"] in a]
sys.exit(0 if e and all(b.get("healthy") is False for b in e) else 1)' "$(be4 "$be")" "$(be6 "$be")"
}

# use_rule RULE: restart every agent with cluster.health_rule RULE (SIGKILL +
# start: the pinned data plane is adopted, the BGP routes stay through grace).
use_rule() {
	local rule=$1 i t0 t
	[ "$(health_rule)" != "$rule" ] || return 0
	t0=$(now)
	echo "$rule" >"$LAB_STATE_DIR/health_rule"
	for i in $(up_nodes); do
		write_config "$i"
		kill_agent "$i"
		start_agent "$i"
	done
	t=$(wait_until 30 all_healthy) || die "asymmetric_health: agents not healthy 30 s after switching to health_rule $rule"
	meta "switch_to_${rule}_s" "$(elapsed "$t0" "$(now)")"
}

# round TAG: one cut / move / move back / uncut, with long-lived connections.
round() {
	local tag=$1 t pid
	long_start "long_$tag" $((2 * PHASE + 9))
	pid=$LONG_PID
	snapshot_stats "$SC/${tag}_stats0.json"
	meta "${tag}_retrans0" "$(client_retrans)"
	probe_cut "$cut"
	t=$(wait_until 10 local_down "$cut") || t=-1
	meta "${tag}_local_down_s" "$t"
	sleep $((HC_INTERVAL_MS * 3 / 1000 + 1))   # several probe rounds: a split would show by now
	snapshot_status "$SC/${tag}_status_split.json"
	meta "${tag}_cluster_rc" "$(cluster_status_json "$SC/${tag}-cluster.json")"
	# ECMP moves flows: the last node leaves the router's set, then comes back.
	route_event "${tag}_drain" $others
	lbx "$victim" node drain >"$SC/${tag}_drain.out"
	t=$(wait_until 10 ecmp_is $others) || t=-1
	meta "${tag}_drain_poll_s" "$t"
	phase "$PHASE"
	snapshot_stats "$SC/${tag}_stats1.json"
	route_event "${tag}_undrain" $nodes
	lbx "$victim" node undrain >"$SC/${tag}_undrain.out"
	t=$(wait_until 30 ecmp_is $nodes) || t=-1
	meta "${tag}_undrain_poll_s" "$t"
	with_progress "$SC_NAME: long-lived connections" wait "$pid" || warn "long-lived traffic exited with $? (see $SC)"
	sed 's/^/    /' "$SC/long_$tag.log" || true
	snapshot_stats "$SC/${tag}_stats2.json"
	meta "${tag}_retrans1" "$(client_retrans)"
	probe_uncut "$cut"
	t=$(wait_until 30 all_healthy) || t=-1
	meta "${tag}_heal_s" "$t"
}

use_rule majority
round majority
SC_UNDO+=("use_rule $CLUSTER_HEALTH_RULE")
use_rule local
round local
use_rule "$CLUSTER_HEALTH_RULE"
SC_UNDO=("probe_uncut $cut")
analyze
