#!/usr/bin/env bash
# Scenario 5, agent restart: while long-lived connections and a steady stream
# of short ones run, the agent of every LB node in turn is SIGKILLed and
# started again (it adopts the pinned program and maps: same program id).
# The node's BGP daemon runs next to the agent, the announcements are kernel
# routes the new agent adopts, and the grace time (30 s) is longer than a
# restart: the router's BGP routes must not change at all.
# Goals: 0 broken or failed connections, 0 packets dropped by the LB nodes
# (drop_* counters), 0 changes of the router's VIP routes while the agents
# restart (route history); client TCP retransmissions are reported alongside.
set -o errexit -o nounset -o pipefail
. "$(dirname "$0")/../scenario.sh" agent_restart

prog_id() { status_json "$1" | python3 -c "import json,sys; d=json.load(sys.stdin)['node']; print(d['program_id'] if 'program_id' in d else d['programId'])"; }
up_mode() { status_json "$1" | python3 -c "import json,sys; d=json.load(sys.stdin)['node']; print(d.get('up_mode', d.get('upMode')))"; }

secs=$((LB_NODES * 3 + 2 * PHASE))
long_start long "$secs"
snapshot_stats "$SC/stats0.json"
meta retrans0 "$(client_retrans)"
short_steady "$secs"          # short connections over the same time
phase "$PHASE"
meta route_before "$(ecmp_nodes 4)"
meta t_restarts "$(now)"
for i in $(up_nodes); do
	before=$(prog_id "$i")
	t0=$(now)
	kill_agent "$i"
	start_agent "$i"
	meta "restart_seconds_$i" "$(elapsed "$t0" "$(now)")"
	meta "prog_before_$i" "$before"
	meta "prog_after_$i" "$(prog_id "$i")"
	meta "up_mode_$i" "$(up_mode "$i")"
	sleep 1
done
meta t_restarts_end "$(now)"
meta route_after "$(ecmp_nodes 4)"
with_progress "$SC_NAME: short connections" wait "$SHORT_PID" || warn "short traffic exited with $?"
long_wait
meta retrans1 "$(client_retrans)"
snapshot_stats "$SC/stats1.json"
analyze
