#!/usr/bin/env bash
# Scenario 2, node failure: LONG_CONNS long-lived echo connections send
# continuously; mid-flight the last LB node dies silently: every frame between
# it and the router is dropped both ways while the link's carrier stays up
# (cut_node: a hung host or a dead NIC behind a live switch port). A link that
# goes down would be seen by the router's kernel and bird at once, without
# BFD; a silent node is the case BFD is for. BFD (100 ms x 3) takes the
# node's BGP sessions down and the router's ECMP set shrinks; flows rehash to
# the other nodes, whose conntrack has never seen them (ct_miss): they take
# the Maglev ring, the same on every node, so they reach the same backend.
# Measured: time from the cut to the new ECMP set (route history), packets
# lost in the detection window (what the router sent into the cut, client
# TCP retransmits, LB drop counters). Goal: 0 broken. Then the node is
# restored and rejoins the ECMP set.
set -o errexit -o nounset -o pipefail
. "$(dirname "$0")/../scenario.sh" node_failure

pick_victim node_failure
meta lb_nodes "$LB_NODES"
meta method "every frame between the router and the node dropped both ways, carrier up (BFD detects it)"
meta bfd "${BFD_INTERVAL_MS} ms x $BFD_MULTIPLIER"
meta route_before "$(ecmp_nodes 4)"

long_start long $((3 * PHASE + 4))
phase "$PHASE"
snapshot_stats "$SC/stats0.json"
meta retrans0 "$(client_retrans)"
route_event cut $others
log_lines=$(wc -l <"$LAB_STATE_DIR/agent-lb$victim.log")
cut_node "$victim"
t=$(wait_until 10 ecmp_is $others) || t=-1
meta route_during "$(ecmp_nodes 4)"
meta cut_poll_s "$t"
phase "$PHASE"
snapshot_stats "$SC/stats1.json"
# What the router sent into the cut (client data, its own BFD and BGP): lost.
ns_exec "$NS_ROUTER" tc -s qdisc show dev "$(if_rtr_lb "$victim")" >"$SC/cut-qdisc.txt" 2>&1 || true
meta cut_tx_dropped "$(awk '/^qdisc clsact/ { c = 1 } c && /dropped/ { sub(/.*dropped /, ""); sub(/,.*/, ""); print; exit }' "$SC/cut-qdisc.txt")"
meta retrans1 "$(client_retrans)"
route_event restore $nodes
uncut_node "$victim"
t=$(wait_until 30 ecmp_is $nodes) || t=-1
meta restore_poll_s "$t"
# What the cut node's agent saw: its health checks cross the same link, so a
# long enough cut takes every backend down there; coming back, it withdraws
# and keeps failing open until every backend is re-probed (HealthConvergence).
sleep 1
meta victim_agent_saw "$(tail -n +"$((log_lines + 1))" "$LAB_STATE_DIR/agent-lb$victim.log" |
	grep -oE 'every backend is down|a backend is back after every one was down|health checks converged' | uniq | paste -sd '>' -)"
meta route_after "$(ecmp_nodes 4)"
long_wait
meta retrans2 "$(client_retrans)"
snapshot_stats "$SC/stats2.json"
analyze
