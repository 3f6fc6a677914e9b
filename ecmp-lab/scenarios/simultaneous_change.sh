#!/usr/bin/env bash
# Scenario simultaneous_change, the case of the Maglev paper's §3.3 that
# consistent hashing cannot save: while long-lived connections run, a backend
# joins every VIP (one `xdplb cluster push`) and at once (as soon as every
# node runs it) the last LB node is drained (`xdplb node drain`: the router takes it out of its ECMP
# set). Its flows move to nodes whose conntrack never saw them and whose new
# rings send about 1/(M+1) of them to the new backend. Then the same with a
# drain instead (backend 1's weight 0: its flows' new backend is another
# one). Each change twice:
#   on   second chance (the default): those packets carry their old backend
#        as second hop in the GRE key, the new backend has no socket for them
#        and hands them on, the old one answers. Goal: 0 broken.
#   off  the same with `second_chance: off` pushed first: the new backend
#        resets them. Reported: how many break.
# Reported too: the packets sent with a second hop per LB node and the
# packets handed on per backend. After each round the node is undrained and
# the backend removed again (a push), so the lab is as before.
# SC_LONG_CONNS (default 500) sets the long-lived connections per round.
set -o errexit -o nounset -o pipefail
. "$(dirname "$0")/../scenario.sh" simultaneous_change

pick_victim simultaneous_change
n=$(active_backends)
new=$((n + 1))
[ "$new" -le $((BACKENDS + 1)) ] || die "simultaneous_change: the VIPs already list every backend ($n); run it before backend_added"
LONG_CONNS=${SC_LONG_CONNS:-500}
meta backends_before "$n"
meta new_backend "be$new"
meta long_conns "$LONG_CONNS"
meta lb_nodes "$(wc -w <<<"$nodes")"

# decap_counters OUT: every backend's decap counters {beI: {name: packets}}.
decap_counters() {
	local i first=1
	{
		printf '{'
		for ((i = 1; i <= BACKENDS + 1; i++)); do
			[ "$first" = 1 ] || printf ','
			first=0
			printf '"be%s": {' "$i"
			backend_decap "$i" status 2>/dev/null | awk '/^  [a-z0-9_]+ +[0-9]+ packets/ { printf "%s\"%s\": %s", s, $1, $2; s = ", " }'
			printf '}'
		done
		printf '}\n'
	} >"$1"
}

# round TAG add|drain [second_chance_off]
round() {
	local tag=$1 change=$2 opt=${3:-} t
	write_shared "$SC/${tag}_before.yaml" "$n" $opt
	lab_push "$SC/${tag}_before.yaml" --wait 30 --json >"$SC/${tag}_push0.json" 2>&1 || warn "push before $tag failed"
	wait_until 30 all_healthy >/dev/null || die "simultaneous_change: not healthy before round $tag"
	long_start "long_$tag" $((2 * PHASE + 6))
	snapshot_stats "$SC/${tag}_stats0.json"
	decap_counters "$SC/${tag}_decap0.json"
	# The two changes at once: the push of be$new, and as soon as every node
	# runs it, the drain of the last node (its flows reach nodes that never saw
	# them and already hash with the new rings: the §3.3 case; a drain before
	# the rings change would let them learn the flows first).
	if [ "$change" = add ]; then write_shared "$SC/${tag}_after.yaml" "$new" $opt
	else write_shared "$SC/${tag}_after.yaml" "$n" 1=0 $opt; fi
	meta "t_${tag}_change" "$(now)"
	lab_push "$SC/${tag}_after.yaml" --wait 30 --json >"$SC/${tag}_push1.json" 2>&1 ||
		warn "push of the $change ($tag) failed: $(cat "$SC/${tag}_push1.json")"
	route_event "${tag}_drain" $others
	lbx "$victim" node drain >"$SC/${tag}_drain.out"
	t=$(wait_until 10 ecmp_is $others) || t=-1
	meta "${tag}_drain_poll_s" "$t"
	with_progress "$SC_NAME: long-lived connections" wait "$LONG_PID" || warn "long-lived traffic exited with $? (see $SC)"
	sed 's/^/    /' "$SC/long_$tag.log" || true
	snapshot_stats "$SC/${tag}_stats1.json"
	decap_counters "$SC/${tag}_decap1.json"
	# Back as it was: the node undrained, be$new out of the VIPs again.
	route_event "${tag}_undrain" $nodes
	lbx "$victim" node undrain >"$SC/${tag}_undrain.out"
	wait_until 30 ecmp_is $nodes >/dev/null || warn "node $victim not back in the router's ECMP set"
	push_current >/dev/null 2>&1 || warn "push back after $tag failed"
}

SC_UNDO+=("lbx $victim node undrain >/dev/null 2>&1" "push_current >/dev/null 2>&1")
round on add
round off add second_chance_off
round drain_on drain
round drain_off drain second_chance_off
SC_UNDO=()
analyze
