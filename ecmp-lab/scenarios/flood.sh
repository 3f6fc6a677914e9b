#!/usr/bin/env bash
# Scenario flood (issue 14), a real SYN flood: the attacker namespace xl-atk
# sends spoofed SYNs to $VIP4:$HTTP_PORT (ecmp-lab/flood.py: raw socket,
# sources ONLY from the lab-only $FLOOD_SPOOF4 inside $FLOOD_PREFIX4, which the
# router blackholes, so the backends' SYN-ACKs die there), bounded in packets
# (rate x seconds) and seconds, and at the same time one non-spoofed abusive
# source ($ABUSE_SRC4, an address of the attacker's own, also in the lab-only
# prefix) sends SYNs to $VIP4:$ECHO_PORT with hping3 (-c N, under timeout).
# Meanwhile FLOOD_LONG_CONNS real long-lived connections from the client keep
# sending (traffic.py long: each checks every echo), short connections from
# the client keep opening, and mid-flood backend M+1 joins every VIP (one
# `xdplb cluster push`); it leaves again after the round (a push), so the lab
# is as before. Runs before backend_added (which keeps M+1 for good).
#
# The same round twice:
#   off  protection off (the lab's default);
#   on   per-source limits in every LB node's node file (protection: section,
#        PROT_* of config.sh; xdplb reload), turned off again at the end.
# Reported per round: the flood's pps offered (flood.py's sent / seconds) and
# seen at the LB nodes (rx and the VIP's new flows, summed over nodes), real
# connections broken (goal 0), conntrack occupancy (established, embryonic,
# free of the ways) per node mid-flood and after, drops per reason, what
# reached the attacker (goal 0: the blackhole), CPU (see flood_cpu), and for
# the abusive source: sent, delivered (its VIP's new flows) and dropped, vs
# the limit (nodes x (rate x seconds + burst): the limits are per LB node).
set -o errexit -o nounset -o pipefail
. "$(dirname "$0")/../scenario.sh" flood

n=$(active_backends)
new=$((n + 1))
[ "$new" -le $((BACKENDS + 1)) ] || die "flood: the VIPs already list every backend ($n); run it before backend_added"
lab_ns "$NS_ATTACKER" || die "flood: no attacker namespace $NS_ATTACKER (the lab's topology makes it)"
command -v hping3 >/dev/null || die "flood: hping3 is missing (tools/install-deps hping3)"
nodes=$(up_nodes)
LONG_CONNS=$FLOOD_LONG_CONNS
abuse_count=$((ABUSE_RATE * FLOOD_SECONDS))
abuse_interval_us=$((1000000 / ABUSE_RATE))
meta lb_nodes "$(wc -w <<<"$nodes")"
meta nodes "$nodes"
meta backends_before "$n"
meta new_backend "be$new"
meta long_conns "$LONG_CONNS"
meta flood_seconds "$FLOOD_SECONDS"
meta flood_rate "$FLOOD_RATE"
meta flood_count "$((FLOOD_RATE * FLOOD_SECONDS))"
meta flood_target "$VIP4:$HTTP_PORT"
meta flood_sources "$FLOOD_SPOOF4"
meta lab_prefix "$FLOOD_PREFIX4"
meta abuse_src "$ABUSE_SRC4"
meta abuse_target "$VIP4:$ECHO_PORT"
meta abuse_vip "$VIP4:$ECHO_PORT/tcp"
meta flood_vip "$VIP4:$HTTP_PORT/tcp"
meta abuse_rate "$ABUSE_RATE"
meta abuse_count "$abuse_count"
meta prot_new_flows "$PROT_NEW_FLOWS"
meta prot_new_flow_burst "$PROT_NEW_FLOW_BURST"
meta prot_pps "$PROT_PPS"
meta prot_pps_burst "$PROT_PPS_BURST"
meta prot_flood_alert "$PROT_FLOOD_ALERT"
meta short_conns "$SHORT_CONNS"

# attacker_check: the attacker's namespace is ours and holds the abusive
# source: traffic starts there or nowhere (never in the machine's own
# namespace). Each generator is started right after it, directly (ip netns
# exec execs timeout), so $! is the generator's timeout and its command line
# names the state directory (cleanup stops it by PID: ours()).
attacker_check() {
	lab_ns "$NS_ATTACKER" || die "flood: '$NS_ATTACKER' is not a lab namespace"
	ip -n "$NS_ATTACKER" -4 -o addr show to "$ABUSE_SRC4/32" | grep -q . ||
		die "flood: $NS_ATTACKER has no address $ABUSE_SRC4"
}

# flood_cpu OUT: CPU counters now, for the round's deltas: the machine's
# /proc/stat cpu line (jiffies: user nice system idle iowait irq softirq
# steal; every namespace shares the kernel, so softirq is the packet work of
# all of them: XDP on the LB nodes' veths, the router's forwarding, the
# backends' TCP), and utime+stime of each LB node's agent (xdplb run: its
# control plane, not the XDP program).
flood_cpu() {
	local i pid
	{
		printf '{"t": %s, "clk_tck": %s, "cpus": %s, "stat": [%s], "agents": {' "$(now)" "$(getconf CLK_TCK)" "$(nproc)" \
			"$(awk '$1 == "cpu" { printf "%s", $2; for (k = 3; k <= 9; k++) printf ", %s", $k; exit }' /proc/stat)"
		local first=1
		for i in $nodes; do
			pid=$(pid_of "agent$i")
			[ -n "$pid" ] && ours "$pid" || continue
			[ "$first" = 1 ] || printf ', '
			first=0
			printf '"%s": %s' "$i" "$(awk '{ print $14 + $15 }' "/proc/$pid/stat")"
		done
		printf '}}\n'
	} >"$1"
}

# attacker_rx / attacker_tcp_in: packets the attacker's interface received,
# TCP segments its stack took in (the blackhole's goal: no SYN-ACK gets there).
attacker_rx() { ns_exec "$NS_ATTACKER" cat "/sys/class/net/$IF_ATK/statistics/rx_packets"; }
attacker_tcp_in() { ns_exec "$NS_ATTACKER" awk '$1 == "Tcp:" && $11 ~ /^[0-9]+$/ { print $11 }' /proc/net/snmp; }

# round TAG: one flood with the protection as it is now.
round() {
	local tag=$1 flood_pid abuse_pid short_pid t i
	long_start "long_$tag" $((FLOOD_SECONDS + 8))
	for i in $nodes; do meta "${tag}_log_lines_$i" "$(wc -l <"$LAB_STATE_DIR/agent-lb$i.log")"; done
	snapshot_stats "$SC/${tag}_stats0.json"
	flood_cpu "$SC/${tag}_cpu0.json"
	meta "${tag}_attacker_rx0" "$(attacker_rx)"
	meta "${tag}_attacker_tcp_in0" "$(attacker_tcp_in)"
	meta "t_${tag}_flood" "$(now)"
	# The flood and the abusive source, both bounded in packets and seconds.
	attacker_check
	ip netns exec "$NS_ATTACKER" timeout $((FLOOD_SECONDS + 10)) python3 "$LAB_DIR/flood.py" --dst "$VIP4" --port "$HTTP_PORT" \
		--sources "$FLOOD_SPOOF4" --lab-prefix "$FLOOD_PREFIX4" --count $((FLOOD_RATE * FLOOD_SECONDS)) \
		--seconds "$FLOOD_SECONDS" --rate "$FLOOD_RATE" --out "$SC/flood_$tag.json" >"$SC/flood_$tag.log" 2>&1 7>&- 8>&- 9>&- &
	flood_pid=$!
	record_pid "flood-$SC_NAME" "$flood_pid"
	SC_PIDS+=("$flood_pid")
	attacker_check
	ip netns exec "$NS_ATTACKER" timeout -s INT $((FLOOD_SECONDS + 1)) sh -c 'exec hping3 "$@"' "$SC/hping3" \
		-I "$IF_ATK" -S -p "$ECHO_PORT" -a "$ABUSE_SRC4" -i "u$abuse_interval_us" -c "$abuse_count" -q "$VIP4" >"$SC/abuse_$tag.log" 2>&1 7>&- 8>&- 9>&- &
	abuse_pid=$!
	record_pid "hping3-$SC_NAME" "$abuse_pid"
	SC_PIDS+=("$abuse_pid")
	# The other clients: short connections from the client at a steady rate over the flood.
	short_steady "$FLOOD_SECONDS" "$tag"   # short_TAG.json
	short_pid=$SHORT_PID
	meta "t_${tag}_abuse_start" "$(now)"
	# Mid-flood: backend M+1 joins every VIP.
	sleep "$(python3 -c "print($FLOOD_SECONDS / 2)")"
	echo "$new" >"$LAB_STATE_DIR/active_backends"
	write_shared "$SC/${tag}_add.yaml" "$new"
	meta "t_${tag}_add" "$(now)"
	lab_push "$SC/${tag}_add.yaml" --wait 30 --json >"$SC/${tag}_push_add.json" 2>"$SC/${tag}_push_add.err" ||
		warn "push of be$new ($tag): exit $? ($(cat "$SC/${tag}_push_add.err"))"
	snapshot_stats "$SC/${tag}_stats_mid.json"
	with_progress "$SC_NAME: flood ($tag)" wait "$flood_pid" || warn "flood.py ($tag) exited with $? (see $SC/flood_$tag.log)"
	wait "$abuse_pid" || true           # hping3 exits 1: no replies (the blackhole)
	meta "t_${tag}_flood_end" "$(now)"
	snapshot_stats "$SC/${tag}_stats1.json"
	flood_cpu "$SC/${tag}_cpu1.json"
	meta "${tag}_attacker_rx1" "$(attacker_rx)"
	meta "${tag}_attacker_tcp_in1" "$(attacker_tcp_in)"
	sed 's/^/    /' "$SC/flood_$tag.log" || true
	grep 'packets transmitted' "$SC/abuse_$tag.log" | sed 's/^/    hping3: /' || true
	t=$(wait_until 30 all_healthy) || t=-1
	meta "${tag}_added_healthy_s" "$t"
	with_progress "$SC_NAME: short connections ($tag)" wait "$short_pid" || warn "short connections ($tag) exited with $?"
	sed 's/^/    /' "$SC/short_$tag.log" || true
	with_progress "$SC_NAME: long-lived connections ($tag)" wait "$LONG_PID" || warn "long-lived traffic ($tag) exited with $?"
	sed 's/^/    /' "$SC/long_$tag.log" || true
	snapshot_stats "$SC/${tag}_stats2.json"
	snapshot_status "$SC/${tag}_status.json"
	# The agents' flood alerts (protection's flood_alert_new_flows_per_second; on only).
	for i in $nodes; do
		meta "${tag}_flood_alerts_$i" "$(tail -n +"$(($(sed -n "s/^${tag}_log_lines_$i\t//p" "$SC/meta.tsv") + 1))" \
			"$LAB_STATE_DIR/agent-lb$i.log" | grep -c 'flood alert: new-flow rate above' || true)"
	done
	# Back as it was: be$new out of the VIPs again.
	echo "$n" >"$LAB_STATE_DIR/active_backends"
	meta "t_${tag}_remove" "$(now)"
	push_current >"$SC/${tag}_push_remove.json" 2>&1 || warn "push back to $n backends ($tag) failed"
	wait_until 30 all_healthy >/dev/null || die "flood: not healthy with $n backends after round $tag"
}

# Whatever happens: protection off again, be$new out of the VIPs.
SC_UNDO+=("echo $n >'$LAB_STATE_DIR/active_backends'; push_current >/dev/null 2>&1" "protection_off >/dev/null 2>&1")
protection_is "${nodes%% *}" off || protection_off || die "flood: could not turn protection off before the first round"
round off
meta t_protection_on "$(now)"
protection_on || die "flood: could not turn the per-source limits on"
snapshot_status "$SC/on_status_limits.json"
round on
meta t_protection_off "$(now)"
protection_off || die "flood: could not turn protection off again"
meta protection_after "$(lbx "${nodes%% *}" status | grep '^protection:')"
SC_UNDO=()
analyze
