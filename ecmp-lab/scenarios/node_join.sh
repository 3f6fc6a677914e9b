#!/usr/bin/env bash
# Scenario 4, node (re)join: while long-lived connections run, the LB node
# node_drain stopped (or the last node, stopped here first if it is in
# service) starts again: `xdplb bgp run` (bird) and `xdplb run`. The agent
# announces its VIPs only once its health checks have converged; then the
# router adds it to the ECMP set and some flows move to it (ct_miss there,
# same Maglev ring, same backend). Measured: time from the start to the
# node's health convergence and to the router's new ECMP set. Goal: 0 broken,
# the announcement not before health converged.
set -o errexit -o nounset -o pipefail
. "$(dirname "$0")/../scenario.sh" node_join

victim=$LB_NODES
if ! node_stopped "$victim"; then
	log "node_join: lb$victim is in service: draining and stopping it first"
	lbx "$victim" node drain >/dev/null
	others=$(for i in $(up_nodes); do [ "$i" = "$victim" ] || printf '%s ' "$i"; done)
	wait_until 10 ecmp_is $others >/dev/null || die "lb$victim not withdrawn within 10 s"
	sleep 1
	stop_agent "$victim"
	stop_bgp "$victim"
	touch "$LAB_STATE_DIR/lb$victim.stopped"
fi
meta victim "$victim"
meta route_before "$(ecmp_nodes 4)"

long_start long $((3 * PHASE + 6))
phase "$PHASE"
snapshot_stats "$SC/stats0.json"
meta retrans0 "$(client_retrans)"
rm -f "$LAB_STATE_DIR/lb$victim.stopped"
nodes=$(up_nodes)
# Polls the agent (retrying until it answers) and its announcement table.
poll_node "$victim" converged converged --table "$BGP_TABLE"
sleep 0.3
route_event join $nodes
now >"$SC/converged.t"
start_bgp "$victim"
# The agent: it announces on its own once its health checks converged. The
# drain of node_drain is kept in its state directory: undrain it (the
# operator's step when a node goes back into service).
start_agent "$victim"
lbx "$victim" node undrain >"$SC/undrain.out"
t=$(wait_until 30 ecmp_is $nodes) || t=-1
meta join_poll_s "$t"
meta route_after "$(ecmp_nodes 4)"
wait "$POLL_PID" || true
meta converged_s "$(cat "$SC/converged-$victim" 2>/dev/null || echo timeout)"
meta announced_before_converged "$(cat "$SC/converged-$victim.early" 2>/dev/null || echo -1)"
wait_until 30 all_healthy >/dev/null || warn "not every node healthy 30 s after lb$victim started"
phase "$PHASE"
long_wait
meta retrans1 "$(client_retrans)"
snapshot_stats "$SC/stats1.json"
analyze
