#!/usr/bin/env bash
# Agent tests in network namespaces: `xdplb run` attached to a real veth,
# health flips against real HTTP servers, drain keeping LRU flows, reload
# refusing a bad file, SIGKILL + restart without losing a packet, `xdplb down`.
#
# Topology (all created here, all deleted on exit):
#   xt-ag-lb-PID: lb0 10.0.9.1/24        -- the LB node, agent + XDP (generic)
#   xt-ag-pe-PID: pe0 10.0.9.2,.4 (backends, HTTP :8080) and .10 (client)
# The client sends UDP to VIP 10.100.0.1:53 via the LB; the LB encapsulates
# and sends GRE back out lb0 to the backend addresses, where a raw socket
# counts it per flow and backend.
# The admin API is a unix socket under /run/xdplb-agent-test-PID (mode 0660,
# group daemon); near the end the agent restarts on TCP 127.0.0.1:9180 in the
# LB namespace with a bearer token for writes.
# Usage: Tests/agent/run.sh PATH/TO/xdplb
set -o errexit -o nounset -o pipefail
XDPLB=$(readlink -f "$1")
here=$(cd "$(dirname "$0")" && pwd)
tmp=$(mktemp -d /tmp/xdplb-agent.XXXXXX)
lb="xt-ag-lb-$$" pe="xt-ag-pe-$$"
bpffs="/sys/fs/bpf/xdplb-agent-test-$$"
cfg="$tmp/node.yaml"
sockdir="/run/xdplb-agent-test-$$" sock="/run/xdplb-agent-test-$$/admin.sock"
agent_pid="" pids=()
pass=0 fail=0

cleanup() {
	[ -n "$agent_pid" ] && kill -9 "$agent_pid" 2>/dev/null || true
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
	"$XDPLB" down --bpffs "$bpffs" >/dev/null 2>&1 || true
	ip netns del "$lb" 2>/dev/null || true
	ip netns del "$pe" 2>/dev/null || true
	rm -rf "$tmp" "$sockdir"
}
trap cleanup EXIT
trap 'exit 1' INT TERM

. "$here/../lib.sh"
inlb() { nsenter --net="/run/netns/$lb" "$@"; }   # nsenter keeps /sys/fs/bpf visible
inpe() { ip netns exec "$pe" "$@"; }
x() { inlb "$XDPLB" "$@"; }
adm() { inlb "$XDPLB" "$@" --admin "$admin"; }   # a command that talks to the agent
admin=$sock
status_json() { adm status --json; }

# ---- topology ---------------------------------------------------------------
lb_pe_up "$lb" "$pe" 10.0.9.2 10.0.9.4 10.0.9.10

start_server() { # start_server ADDR: an HTTP server for health checks
	# Started directly (not through a shell function) so $! is the server itself.
	ip netns exec "$pe" python3 -m http.server 8080 --bind "$1" --directory "$tmp" >/dev/null 2>&1 &
	pids+=($!)
	eval "server_$(echo "$1" | tr . _)=$!"
}
start_server 10.0.9.2
start_server 10.0.9.4

write_config() { # write_config WEIGHT_OF_10.0.9.2 [RING]
	cat >"$cfg" <<YAML
node:
  interface: lb0
  xdp_mode: generic
  encap_source: { ipv4: 10.0.9.1 }
  path_mtu: 1500
  hash_seed: 0x5eed
  lru_size: 65536
  bpffs: $bpffs
  state_dir: $tmp/state
  admin: ${admin_line:-$sock}
${admin_extra:-  admin_group: daemon}
vips:
  - address: 10.100.0.1
    port: 53
    protocol: udp
    ring_size: ${2:-65537}
    health: { type: http, path: /, port: 8080, interval: 200ms, timeout: 150ms, rise: 2, fall: 3 }
    backends:
      - { address: 10.0.9.2, weight: $1 }
      - { address: 10.0.9.4, weight: 100 }
${protection_block:-}
YAML
}
write_config 100

start_agent() {
	nsenter --net="/run/netns/$lb" "$XDPLB" run --config "$cfg" >>"$tmp/agent.log" 2>&1 &
	agent_pid=$!
	wait_until 20 adm status >/dev/null || { cat "$tmp/agent.log"; return 1; }
}

# ---- start --------------------------------------------------------------------
check "agent starts and answers on its admin API" start_agent
both_up() { [ "$(adm status | grep -c '10.0.9.[24] .* up ')" = 2 ]; }
# Servers may still be starting when the first probes run: wait for the steady state.
check "human-readable status lists both backends up" wait_until 10 both_up
check "xdp attached to lb0" sh -c "ip -n $lb link show lb0 | grep -q xdp"
check "maps, program link pinned under $bpffs" test -e "$bpffs/link" -a -e "$bpffs/xdplb_vips" -a -e "$bpffs/xdplb_ct"
slots() { status_json | json "{b['address']: b['slots'] for b in d['vips'][0]['backends']}['$1']"; }
healthy() { status_json | json "{b['address']: b['healthy'] for b in d['vips'][0]['backends']}['$1']"; }
check "both backends in the ring, slots sum to 65537" test "$(( $(slots 10.0.9.2) + $(slots 10.0.9.4) ))" = 65537
digest=$(status_json | json "d['vips'][0]['digest']")
check "status digest equals 'xdplb maglev' for the same backends" test "$digest" = "$("$XDPLB" maglev --backends 10.0.9.2,10.0.9.4 --weights 100,100 --json | json "d['digest']")"
prog_id=$(status_json | json "d['node']['program_id']")

# ---- the admin socket: root and node.admin_group only (finding 17) -----------
weights() { status_json | json "[(b['address'], b['weight'], b['slots']) for b in d['vips'][0]['backends']] + [d['vips'][0]['digest']]"; }
check "the admin socket is a socket, mode 0660, owner root, group daemon (node.admin_group)" \
	test "$(stat -c '%F %a %U %G' "$sock")" = "socket 660 root daemon"
w_before=$(weights)
as_nobody() { inlb setpriv --reuid=nobody --regid=nogroup --clear-groups "$XDPLB" "$@" --admin "$sock"; }
if as_nobody status >"$tmp/nobody.out" 2>&1; then bad "user nobody cannot read status on the admin socket"; else
	check "user nobody cannot connect to the admin socket: Permission denied, said plainly" \
		grep -qF "cannot connect to the admin socket $sock: Permission denied" "$tmp/nobody.out"
fi
if as_nobody drain 10.0.9.2 >"$tmp/nobody.out" 2>&1; then bad "user nobody cannot drain"; else ok "user nobody cannot drain (exit $?)"; fi
if as_nobody weight 10.0.9.2 1 >"$tmp/nobody.out" 2>&1; then bad "user nobody cannot set a weight"; else ok "user nobody cannot set a weight"; fi
check "nothing changed: weights, slots and the data plane's ring digest as before" test "$(weights)" = "$w_before"
check "a member of node.admin_group (nobody + group daemon) can use the socket" \
	inlb setpriv --reuid=nobody --regid=nogroup --groups=daemon "$XDPLB" status --admin "$sock"
check "status on the socket shows the hash seed and paths" \
	test "$(status_json | json "(d['node']['hash_seed'], d['node']['bpffs'], 'redacted' in d['node'])")" = "(24301, '$bpffs', False)"
if timeout 20 nsenter --net="/run/netns/$lb" "$XDPLB" run --config "$cfg" >"$tmp/second.out" 2>&1; then bad "a second agent on the same socket is refused"; else
	check "a second agent on the same socket is refused, saying so" grep -qF "node.admin: another agent answers on $sock" "$tmp/second.out"
fi
check "the first agent still answers on its socket" adm status
sed 's/admin_group: daemon/admin_group: xdplb-no-such-group/' "$cfg" >"$tmp/nogroup.yaml"
if timeout 20 nsenter --net="/run/netns/$lb" "$XDPLB" run --config "$tmp/nogroup.yaml" >"$tmp/nogroup.out" 2>&1; then bad "an unknown node.admin_group is refused"; else
	check "an agent whose node.admin_group does not exist refuses to start, saying so" \
		grep -qF "node.admin_group: group 'xdplb-no-such-group' does not exist" "$tmp/nogroup.out"
fi

sed "s|admin: $sock|admin: /tmp/xdplb-agent-test-$$.sock|" "$cfg" >"$tmp/tmpdir.yaml"
if timeout 20 nsenter --net="/run/netns/$lb" "$XDPLB" run --config "$tmp/tmpdir.yaml" >"$tmp/tmpdir.out" 2>&1; then bad "a socket in a directory others can write is refused"; else
	check "a socket in a directory others can write (/tmp) is refused, saying so" \
		grep -qF "node.admin: the socket's directory /tmp is writable by users other than root" "$tmp/tmpdir.out"
fi

# ---- connection cap and idle timeout (finding 18) ----------------------------
if python3 "$here/admin_conns.py" "$sock" 64 25 >"$tmp/conns.json" 2>"$tmp/conns.err"; then
	ok "64 idle/half-sent admin connections held; the 65th answered 503 and closed; the idle timeout closed all 64 ($(json "d['seconds']" <"$tmp/conns.json") s after the 65th)"
else bad "connection cap and idle timeout"; sed 's/^/    /' "$tmp/conns.err"; fi
check "the refused connection is told why" grep -qF "too many admin connections (at most 64 open)" "$tmp/conns.json"
check "after the cap and the timeouts a normal request works" adm status

# ---- health flips -------------------------------------------------------------
kill "$server_10_0_9_4"
out_of_ring() { [ "$(slots 10.0.9.4)" = 0 ]; }
in_ring() { [ "$(slots 10.0.9.4)" != 0 ]; }
if t=$(wait_until 5 out_of_ring); then
	ok "backend down: out of the ring after ${t}s (fall 3 x interval 0.2s = 0.6s + probe timeout)"
	echo "$t" >"$tmp/t_down"
else bad "backend down: still in the ring after 5s"; fi
check "status shows it DOWN" test "$(healthy 10.0.9.4)" = False
start_server 10.0.9.4
if t=$(wait_until 5 in_ring); then
	ok "backend back: in the ring after ${t}s (rise 2 x 0.2s)"
	echo "$t" >"$tmp/t_up"
else bad "backend back: not in the ring after 5s"; fi

# ---- every backend down: fail open --------------------------------------------
kill "$server_10_0_9_2" "$server_10_0_9_4"
fail_open() { [ "$(status_json | json "d['vips'][0]['fail_open']")" = True ]; }
check "all backends down: the VIP fails open (policy) and says so" wait_until 10 fail_open
check "fail-open keeps every backend in the ring" test "$(( $(slots 10.0.9.2) + $(slots 10.0.9.4) ))" = 65537
inlb curl -sf --unix-socket "$sock" http://localhost/metrics >"$tmp/metrics.failopen"
check "fail-open is visible in metrics and counted" sh -c \
	"grep -q '^xdplb_vip_fail_open{vip=\"10.100.0.1:53/udp\"} 1' '$tmp/metrics.failopen' && grep -q '^xdplb_agent_events_total{event=\"all_down\"} 1' '$tmp/metrics.failopen'"
check "fail-open is logged" grep -q "all backends down: failing open" "$tmp/agent.log"
start_server 10.0.9.2
start_server 10.0.9.4
not_fail_open() { ! fail_open && in_ring && [ "$(slots 10.0.9.2)" != 0 ]; }
check "backends back: fail-open ends" wait_until 10 not_fail_open

# ---- drain keeps LRU flows ----------------------------------------------------
owner=$("$XDPLB" pick --config "$cfg" --flow '10.0.9.10:6000 -> 10.100.0.1:53/udp' | awk '{print $1}')
ip netns exec "$pe" python3 "$here/traffic.py" recv --seconds 4 --out "$tmp/drain.json" &
recv_pid=$!
sleep 0.3
inpe python3 "$here/traffic.py" send 10.0.9.10 10.100.0.1 53 --sports 6000 --count 50 --interval 0.002 >/dev/null
check "drain via the CLI" adm drain "$owner"
check "drained backend has no slots" test "$(slots "$owner")" = 0
inpe python3 "$here/traffic.py" send 10.0.9.10 10.100.0.1 53 --sports 6000 --count 50 --interval 0.002 >/dev/null
inpe python3 "$here/traffic.py" send 10.0.9.10 10.100.0.1 53 --sports "$(seq -s, 6001 6020)" --count 5 --interval 0.002 >/dev/null
wait "$recv_pid"
check "established flow kept its drained backend: 100/100 packets to $owner" \
	python3 -c "import json; d=json.load(open('$tmp/drain.json')); assert d['6000'] == {'$owner': 100}, d['6000']"
check "20 new flows (100 packets) all avoided the drained backend" \
	python3 -c "
import json; d=json.load(open('$tmp/drain.json'))
new = {p: v for p, v in d.items() if p != '6000'}
assert len(new) == 20 and all('$owner' not in v for v in new.values()) and sum(sum(v.values()) for v in new.values()) == 100, new"
check "undrain via the CLI" adm undrain "$owner"
check "undrained backend has its slots back" test "$(slots "$owner")" != 0

# ---- reload -------------------------------------------------------------------
cp "$cfg" "$tmp/good.yaml"
inlb bpftool map dump pinned "$bpffs/xdplb_vips" >"$tmp/vips.before"
write_config 100 65536
if adm reload >"$tmp/reload.out" 2>&1; then bad "reload of an invalid file is refused"; else
	check "reload of an invalid file is refused with file, key and reason" grep -qF "$cfg: vips[0].ring_size: 65536 is not prime (try 65537)" "$tmp/reload.out"
fi
inlb bpftool map dump pinned "$bpffs/xdplb_vips" >"$tmp/vips.after"
check "maps unchanged after the refused reload" cmp "$tmp/vips.before" "$tmp/vips.after"
check "ring digest unchanged after the refused reload" test "$(status_json | json "d['vips'][0]['digest']")" = "$digest"
write_config 300
kill -HUP "$agent_pid"
three_quarters() { local s; s=$(slots 10.0.9.2); [ "$s" -gt 48953 ] && [ "$s" -lt 49353 ]; }
check "SIGHUP reload applies a new weight (10.0.9.2 gets 3/4 of the ring)" wait_until 5 three_quarters

# ---- protection: runtime deny list, per-source limits (issue 14) --------------
deliver() { # deliver NAME SPORT COUNT: how many of COUNT packets from 10.0.9.10:SPORT the backends got
	ip netns exec "$pe" python3 "$here/traffic.py" recv --seconds 1.5 --out "$tmp/$1.json" &
	local r=$!
	sleep 0.3
	inpe python3 "$here/traffic.py" send 10.0.9.10 10.100.0.1 53 --sports "$2" --count "$3" --interval 0.002 >/dev/null
	wait "$r"
	python3 -c "import json; d=json.load(open('$tmp/$1.json')); print(sum(d.get('$2', {}).values()))"
}
vip_flow() { adm stats --json --interval 0.1 | json "d['vip_flows']['10.100.0.1:53/udp']['$1']"; }
prefixes_in_trie() { inlb bpftool map dump pinned "$bpffs/xdplb_prefixes" | grep -c '"action"' || true; }
check "no lists, no limits: status says protection is off" says 'protection: off' adm status
check "deny list: nothing in force" says 'no deny or allow prefixes' adm deny list
check "a deny with host bits set is refused, saying why" \
	refuses 'host bits set: 10.0.9.10/24 (the /24 prefix is 10.0.9.0/24)' adm deny add 10.0.9.10/24
check "a deny for an unknown VIP is refused, naming the VIPs" \
	refuses "no VIP '10.100.0.9:53/udp' (VIPs: 10.100.0.1:53/udp)" adm deny add 10.0.9.10 --vip 10.100.0.9:53/udp
check "refused denies changed nothing: the trie is empty" test "$(prefixes_in_trie)" = 0
check "xdplb deny add 10.0.9.8/30 --vip 10.100.0.1:53/udp" adm deny add 10.0.9.8/30 --vip 10.100.0.1:53/udp
listed() { adm deny list | grep -qE '^10\.0\.9\.8/30 +deny +runtime +10\.100\.0\.1:53/udp$'; }
check "deny list shows it: deny, runtime, the VIP" listed
check "status: protection on, 1 deny prefix at run time" says 'protection: on, 1 deny prefixes (1 at run time), 0 allow prefixes' adm status
check "the prefix is in the data plane's trie (1 entry)" test "$(prefixes_in_trie)" = 1
got=$(deliver deny 6100 40)
check "a denied client's 40 packets: none delivered ($got)" test "$got" = 0
check "…each counted as drop_deny for the VIP" test "$(vip_flow drop_deny)" = 40
check "runtime denies are kept in state_dir for a restarted agent" grep -qF '10.0.9.8/30' "$tmp/state/runtime-deny.json"
check "xdplb deny del removes it" adm deny del 10.0.9.8/30 --vip 10.100.0.1:53/udp
check "deleting it again is refused: it is not denied" \
	refuses 'is not denied for VIP 10.100.0.1:53/udp at run time' adm deny del 10.0.9.8/30 --vip 10.100.0.1:53/udp
got=$(deliver undeny 6101 40)
check "after deny del the client's 40 packets are all delivered ($got)" test "$got" = 40
check "the trie is empty again" test "$(prefixes_in_trie)" = 0
check "…and protection off" says 'protection: off' adm status
# A packet limit from the config file: 10 packets/s per source, burst 10.
protection_block="protection: { packets_per_second: 10, packet_burst: 10 }"
write_config 300
check "reload with a per-source packet limit" adm reload
check "status shows the limit" says '10.100.0.1:53/udp: per source /32 and /64: 10 packets/s (burst 10)' adm status
pps0=$(vip_flow drop_rate_src_pps)
got=$(deliver limit 6102 50)
pps1=$(vip_flow drop_rate_src_pps)
check "50 packets in 0.1 s at 10/s, burst 10: the burst and a packet or two delivered ($got)" test "$got" -ge 10 -a "$got" -le 13
check "…every other one counted as drop_rate_src_pps ($((pps1 - pps0)))" test "$((pps1 - pps0 + got))" = 50
protection_block=""
write_config 300
check "reload without it" adm reload
check "protection off again" says 'protection: off' adm status
got=$(deliver nolimit 6103 50)
check "no limit: all 50 delivered ($got)" test "$got" = 50
# The flood signal: 100 new flows in ~0.3 s against an alert at 20 new flows/s.
protection_block="protection: { flood_alert_new_flows_per_second: 20 }"
write_config 300
check "reload with a flood alert at 20 new flows/s" adm reload
inpe python3 "$here/traffic.py" send 10.0.9.10 10.100.0.1 53 --sports "$(seq -s, 6200 6299)" --count 1 --interval 0.002 >/dev/null
alerted() { grep -F 'flood alert: new-flow rate above its alert' "$tmp/agent.log" | grep -qF '10.100.0.1:53/udp'; }
check "100 new flows: the agent logs a flood alert for the VIP" wait_until 5 alerted
check "…counts it (xdplb_agent_events_total{event=\"flood_alert\"} 1)" \
	says 'xdplb_agent_events_total{event="flood_alert"} 1' inlb curl -sf --unix-socket "$sock" http://localhost/metrics
check "…and logs its end once the rate is below the alert again" wait_until 5 grep -qF 'flood alert over' "$tmp/agent.log"
protection_block=""
write_config 300
check "reload without protection" adm reload

# ---- SIGKILL + restart under traffic -----------------------------------------
ip netns exec "$pe" python3 "$here/traffic.py" recv --seconds 6 --out "$tmp/kill.json" &
recv_pid=$!
sleep 0.3
ip netns exec "$pe" python3 "$here/traffic.py" send 10.0.9.10 10.100.0.1 53 --sports 7000,7001,7002,7003 --count 600 --interval 0.005 >"$tmp/sent" &
send_pid=$!
sleep 1
kill -9 "$agent_pid"
wait "$agent_pid" 2>/dev/null || true
agent_pid=""
check "after SIGKILL the program stays attached" sh -c "ip -n $lb link show lb0 | grep -q xdp"
check "SIGKILL left a stale admin socket behind" test -S "$sock"
check "a new agent adopts the pinned state (and replaces the stale socket nobody answers on)" start_agent
wait "$send_pid"
wait "$recv_pid"
sent=$(cat "$tmp/sent")
got=$(python3 -c "import json; d=json.load(open('$tmp/kill.json')); print(sum(sum(v.values()) for p, v in d.items() if p.startswith('700')))")
check "no packet lost across SIGKILL + restart: $got of $sent delivered" test "$got" = "$sent"
check "each running flow kept one backend across the restart" \
	python3 -c "import json; d=json.load(open('$tmp/kill.json')); assert all(len(d[str(p)]) == 1 for p in range(7000, 7004)), d"
check "the restarted agent kept the same program (adopted, id $prog_id)" \
	test "$(status_json | json "d['node']['up_mode'] + ' ' + str(d['node']['program_id'])")" = "adopted $prog_id"
status_json | json "d['vips'][0]['digest']" >"$tmp/digest.kill"

# ---- upgrade: a different program replaces the attached one atomically --------
clang -O2 -g -target bpf -mcpu=v4 -I"/usr/include/$(uname -m)-linux-gnu" -I"$here/../../bpf" \
	-c "$here/../../bpf/balancer.bpf.c" -o "$tmp/variant.bpf.o"
ip netns exec "$pe" python3 "$here/traffic.py" recv --seconds 6 --out "$tmp/upgrade.json" &
recv_pid=$!
sleep 0.3
ip netns exec "$pe" python3 "$here/traffic.py" send 10.0.9.10 10.100.0.1 53 --sports 7000,7001,7002,7003 --count 600 --interval 0.005 >"$tmp/sent" &
send_pid=$!
sleep 1
kill -TERM "$agent_pid"
wait "$agent_pid" 2>/dev/null || true
nsenter --net="/run/netns/$lb" "$XDPLB" run --config "$cfg" --object "$tmp/variant.bpf.o" >>"$tmp/agent.log" 2>&1 &
agent_pid=$!
check "the agent with a new program comes up" wait_until 20 adm status
wait "$send_pid"
wait "$recv_pid"
sent=$(cat "$tmp/sent")
got=$(python3 -c "import json; d=json.load(open('$tmp/upgrade.json')); print(sum(sum(v.values()) for p, v in d.items() if p.startswith('700')))")
check "upgraded with bpf_link_update: a new program id, not $prog_id" \
	python3 -c "import json,subprocess; d=json.loads(subprocess.run(['nsenter','--net=/run/netns/$lb','$XDPLB','status','--json','--admin','$sock'],capture_output=True,text=True).stdout)['node']; assert d['up_mode']=='upgraded' and d['program_id']!=$prog_id, d"
check "no packet lost across the upgrade: $got of $sent delivered" test "$got" = "$sent"
check "flows kept their backends across the upgrade (LRU and rings kept)" \
	python3 -c "import json; a=json.load(open('$tmp/kill.json')); b=json.load(open('$tmp/upgrade.json')); assert all(a[str(p)].keys() == b[str(p)].keys() for p in range(7000, 7004)), (a, b)"
check "ring digest unchanged across the upgrade" test "$(status_json | json "d['vips'][0]['digest']")" = "$(cat "$tmp/digest.kill")"

# ---- metrics ------------------------------------------------------------------
inlb curl -sf --unix-socket "$sock" http://localhost/metrics >"$tmp/metrics" 2>/dev/null || adm status >/dev/null
check "Prometheus /metrics has packet counters and backend health" sh -c \
	"grep -q '^xdplb_packets_total{counter=\"fwd_tx\",kind=\"outcome\"}' '$tmp/metrics' && grep -q '^xdplb_backend_healthy{' '$tmp/metrics'"
# This agent (started on the upgrade's pins, with no summary of the old agent's rings) built its one VIP's ring.
ring_tables_agree() {
	local m s
	m=$(inlb curl -sf --unix-socket "$sock" http://localhost/metrics | sed -nE 's/^xdplb_ring_tables_total\{source="([a-z_]+)"\} ([0-9]+).*/\1=\2/p' | sort | tr '\n' ' ')
	s=$(status_json | json "' '.join(f'{k}={v}' for k, v in sorted(d['node']['ring_tables'].items())) + ' '")
	echo "metrics: $m; status: $s"
	[ "$m" = "$s" ] && status_json | json "d['node']['ring_tables']['maglev_build'] >= 1 and d['node']['ring_tables']['shared_build'] == 0" | grep -qx True &&
		adm status | grep -Eq '^ring tables written: [1-9][0-9]* built, [0-9]+ handed over, 0 shared with a VIP of the same backends$'
}
check "ring tables by source: status JSON, /metrics and xdplb status agree, at least one Maglev build, none shared (one VIP)" wait_until 5 ring_tables_agree

# ---- TCP admin: opt-in, writes need the token, status redacted (findings 17, 19)
kill -TERM "$agent_pid"
wait "$agent_pid" 2>/dev/null || true
agent_pid=""
check "SIGTERM removed the admin socket" test ! -e "$sock"
token_file="$tmp/admin.token"
python3 -c "import secrets; print(secrets.token_hex(32))" >"$token_file"
chmod 644 "$token_file"
admin_line=127.0.0.1:9180 admin_extra="  admin_token_file: $token_file" write_config 300
if timeout 20 nsenter --net="/run/netns/$lb" "$XDPLB" run --config "$cfg" >"$tmp/token.out" 2>&1; then bad "a world-readable token file is refused"; else
	check "a world-readable token file is refused at start, saying so" \
		grep -qF "node.admin_token_file $token_file: mode 644 lets other users read or write it" "$tmp/token.out"
fi
chmod 600 "$token_file"
admin=127.0.0.1:9180
check "the agent starts with node.admin on TCP and a token file" start_agent
status_json >"$tmp/redacted.json"
check "TCP status without the token leaves out the hash seed and paths" \
	json "'hash_seed' not in d['node'] and 'bpffs' not in d['node'] and 'config_file' not in d['node'] and d['node']['redacted'] is True" <"$tmp/redacted.json"
check "... not even as text (no 24301, no bpffs or config path)" sh -c "! grep -qE '24301|$bpffs|$cfg' '$tmp/redacted.json'"
check "TCP status with the token (--admin-token-file) shows the seed" \
	test "$(adm status --json --admin-token-file "$token_file" | json "d['node']['hash_seed']")" = 24301
w_before=$(weights)
inlb bpftool map dump pinned "$bpffs/xdplb_backends" >"$tmp/backends.before"
if adm drain 10.0.9.2 >"$tmp/w.out" 2>&1; then bad "TCP drain without the token is refused"; else
	check "TCP drain without the token is refused: it needs the admin token" grep -qF "this write needs the admin token" "$tmp/w.out"
fi
code() { inlb curl -s -o /dev/null -w '%{http_code}' -X POST "$@"; }
check "POST /weight without a token: 401" test "$(code 'http://127.0.0.1:9180/weight?backend=10.0.9.2&weight=1')" = 401
check "POST /reload with a wrong token: 403" test "$(code -H 'Authorization: Bearer 0123456789abcdef0123' http://127.0.0.1:9180/reload)" = 403
check "POST /node/drain and /undrain without a token: 401" \
	test "$(code http://127.0.0.1:9180/node/drain) $(code 'http://127.0.0.1:9180/undrain?backend=10.0.9.2')" = "401 401"
check "nothing changed: weights, slots and the data plane's ring digest as before" test "$(weights)" = "$w_before"
inlb bpftool map dump pinned "$bpffs/xdplb_backends" >"$tmp/backends.after"
check "nothing changed: the backends map is byte for byte the same" cmp "$tmp/backends.before" "$tmp/backends.after"
check "TCP drain with the token (--admin-token-file) works" adm drain 10.0.9.2 --admin-token-file "$token_file"
check "drained over TCP: 10.0.9.2 has no slots" test "$(slots 10.0.9.2)" = 0
check "TCP undrain with the token from \$XDPLB_ADMIN_TOKEN_FILE works" \
	inlb env XDPLB_ADMIN_TOKEN_FILE="$token_file" "$XDPLB" undrain 10.0.9.2 --admin 127.0.0.1:9180
check "undrained over TCP: 10.0.9.2 has slots again" test "$(slots 10.0.9.2)" != 0
check "TCP /metrics and /stats stay readable without the token" sh -c \
	"nsenter --net=/run/netns/$lb curl -sf http://127.0.0.1:9180/metrics -o /dev/null && nsenter --net=/run/netns/$lb curl -sf http://127.0.0.1:9180/stats -o /dev/null"

# ---- down ---------------------------------------------------------------------
kill -TERM "$agent_pid"
wait "$agent_pid" 2>/dev/null || true
agent_pid=""
check "after SIGTERM the data plane keeps running" sh -c "ip -n $lb link show lb0 | grep -q xdp"
check "xdplb down" x down --bpffs "$bpffs"
check "xdplb down leaves nothing attached" sh -c "! ip -n $lb link show lb0 | grep -q xdp"
check "xdplb down leaves nothing pinned" test ! -e "$bpffs"

echo
[ -f "$tmp/t_down" ] && echo "measured: backend removal after $(cat "$tmp/t_down")s, return after $(cat "$tmp/t_up" 2>/dev/null)s"
echo "agent: $pass passed, $fail failed"
[ "$fail" = 0 ]
