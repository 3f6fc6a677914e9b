#!/usr/bin/env bash
# Scenario 11, through-tunnel check: backend 2 loses the VIPs from its lo
# (vip_off: its decap and servers keep running, its own addresses still
# answer). Two rounds, the same fault:
#   tunnel  the HTTP VIPs' checks go through GRE to VIP:80
#           (health.through_tunnel, pushed to etcd); the echo VIPs' checks
#           stay plain. Measured: the time until every LB node takes be2 out
#           of the HTTP VIPs' rings (goal: within the removal bound), that it
#           stays in the echo VIPs' rings (the plain check still passes), and
#           short HTTP connections while it is out (goal: 0 failed, none to
#           be2); then the VIPs come back and so does be2.
#   plain   the lab's normal config (plain checks everywhere): after the
#           same bound be2 is still healthy in every ring on every node, and
#           the share of short HTTP connections ECMP/Maglev send to it fail:
#           what a plain check cannot see.
# Afterwards the lab runs its normal config again, with the VIPs back on be2.
set -o errexit -o nounset -o pipefail
. "$(dirname "$0")/../scenario.sh" tunnel_check

be=2
n=$(active_backends)
meta backend "be$be"
meta backend_v4 "$(be4 $be)"
meta backend_v6 "$(be6 $be)"
meta backends "$n"
meta http_port "$HTTP_PORT"
meta echo_port "$ECHO_PORT"
bound=$(python3 -c "print($HC_FALL * $HC_INTERVAL_MS / 1000 + $HC_TIMEOUT_MS / 1000 + $HC_SLACK_S + $HC_CONSENSUS_S)")
meta bound_s "$bound"
SC_UNDO+=("vip_on $be" "push_current >/dev/null")

# 1. Through the tunnel: push it, wait until every check has passed through GRE.
write_shared "$SC/tunnel.yaml" "$n" http_through_tunnel
lab_push "$SC/tunnel.yaml" --wait 60 --json >"$SC/push_tunnel.json" 2>"$SC/push_tunnel.err" ||
	die "tunnel_check: push of the through-tunnel config failed: $(cat "$SC/push_tunnel.err")"
t=$(wait_until 30 all_healthy) || die "tunnel_check: not every backend healthy through the tunnel 30 s after the push"
meta tunnel_healthy_s "$t"
snapshot_status "$SC/status_tunnel0.json"
snapshot_stats "$SC/stats_tunnel0.json"

watch_backend removed tunnel_down --port "$HTTP_PORT" "$(be4 $be)" "$(be6 $be)"
now >"$SC/tunnel_down.t"
vip_off "$be"
watch_wait
snapshot_status "$SC/status_tunnel_down.json"
snapshot_stats "$SC/stats_tunnel1.json"
meta tunnel_status_rc "$(cluster_status_json "$SC/tunnel-cluster.json")"
short_conns "$SC/short_tunnel.json" "$SHORT_CONNS" >"$SC/short_tunnel.log"
watch_backend present tunnel_up --port "$HTTP_PORT" "$(be4 $be)" "$(be6 $be)"
now >"$SC/tunnel_up.t"
vip_on "$be"
watch_wait

# 2. Plain checks (the lab's normal config): the same fault goes unseen.
push_current >"$SC/push_plain.json" 2>"$SC/push_plain.err" ||
	die "tunnel_check: push of the plain config failed: $(cat "$SC/push_plain.err")"
t=$(wait_until 30 all_healthy) || die "tunnel_check: not every backend healthy 30 s after the plain push"
now >"$SC/plain_off.t"
vip_off "$be"
phase "$bound" "plain checks, VIPs off be$be"
snapshot_status "$SC/status_plain_off.json"
meta plain_waited_s "$(elapsed "$(cat "$SC/plain_off.t")" "$(now)")"
# Fewer and with a shorter timeout: a quarter of them wait it out.
short_conns "$SC/short_plain.json" $((SHORT_CONNS / 3)) --timeout 2 >"$SC/short_plain.log"
vip_on "$be"
SC_UNDO=()
analyze
