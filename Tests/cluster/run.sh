#!/usr/bin/env bash
# Cluster tests (issue 10): three LB agents share one config and one health view
# through a real three-member etcd cluster (Debian's etcd-server), in network
# namespaces. Asserts: `xdplb cluster push --wait` converges every node on equal
# table digests (equal to the offline `xdplb maglev` digest); an invalid push
# writes nothing; --if-revision refuses a stale base; a bad value written
# straight into etcd is refused by every agent, which keep forwarding the old
# config; one node's view of a backend cannot split the cluster (majority rule);
# a lost etcd member changes nothing; with every member down the nodes keep
# forwarding, and a restarted agent starts from its cache ("stale since");
# etcd back → converged again; a stopped agent's lease is revoked at once.
#
# Topology (all created here, all deleted on exit), one L2 segment (a bridge in
# xt-cl-sw-PID):
#   xt-cl-e{1,2,3}-PID  10.0.9.21-23   etcd members (client :2379, peer :2380)
#   xt-cl-lb{1,2,3}-PID 10.0.9.1-3     LB agents, XDP (generic), own bpffs each
#   xt-cl-be-PID        10.0.9.31-33   backends (HTTP :8080 health), and
#                       10.0.9.40      the client and the operator (xdplb cluster …, etcdctl)
# Usage: Tests/cluster/run.sh PATH/TO/xdplb
set -o errexit -o nounset -o pipefail
XDPLB=$(readlink -f "$1")
here=$(cd "$(dirname "$0")" && pwd)
tmp=$(mktemp -d /tmp/xdplb-cluster.XXXXXX)
sw="xt-cl-sw-$$" be="xt-cl-be-$$"
prefix=/xdplb-test/
endpoints=http://10.0.9.21:2379,http://10.0.9.22:2379,http://10.0.9.23:2379
declare -A agent_pid=() etcd_pid=()
pids=()
pass=0 fail=0

nsname() { echo "xt-cl-$1-$$"; }
cleanup() {
	for n in "${!agent_pid[@]}"; do kill -9 "${agent_pid[$n]}" 2>/dev/null || true; done
	for n in "${!etcd_pid[@]}"; do kill -9 "${etcd_pid[$n]}" 2>/dev/null || true; done
	for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null || true; done
	# What runs inside the namespaces (the backends' http.server is a child of a background
	# subshell whose PID is all `pids` holds): killed by namespace, or it outlives the test.
	for ns in "$be" "$sw" $(for n in e1 e2 e3 e4 lb1 lb2 lb3; do nsname $n; done); do
		ip netns pids "$ns" 2>/dev/null | xargs -r kill -9 2>/dev/null || true
	done
	wait 2>/dev/null || true
	for i in 1 2 3; do "$XDPLB" down --force --bpffs "/sys/fs/bpf/xdplb-cluster-test-$$-$i" >/dev/null 2>&1 || true; done
	for n in e1 e2 e3 e4 lb1 lb2 lb3; do ip netns del "$(nsname $n)" 2>/dev/null || true; done
	ip netns del "$be" 2>/dev/null || true
	ip netns del "$sw" 2>/dev/null || true
	[ -n "${XDPLB_TEST_KEEP:-}" ] && cp -r "$tmp" "$XDPLB_TEST_KEEP"   # logs, for debugging
	rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 1' INT TERM

. "$here/../lib.sh"
inns() { local n=$1; shift; nsenter --net="/run/netns/$(nsname "$n")" "$@"; }   # nsenter keeps /sys/fs/bpf visible
inbe() { ip netns exec "$be" "$@"; }
cl() { inbe "$XDPLB" cluster "$@" --endpoints "$endpoints" --prefix "$prefix"; }   # the operator's commands
etcdctl_() { inbe env ETCDCTL_API=3 etcdctl --endpoints "$endpoints" --command-timeout=3s "$@"; }
adm() { local n=$1; shift; inns "lb$n" "$XDPLB" "$@" --admin "$tmp/lb$n.sock"; }
st() { adm "$1" status --json; }   # st N: node N's status JSON

# ---- topology ---------------------------------------------------------------
switch_up "$sw"
plug_v4() { # plug_v4 NS SHORT ADDR...: a veth from NS (eth0) to the bridge, IPv4 addresses only
	local ns=$1 short=$2; shift 2
	ip link add eth0 netns "$ns" type veth peer name "v-$short" netns "$sw"
	ip -n "$sw" link set "v-$short" master br0 up
	ip -n "$ns" link set lo up
	ip -n "$ns" link set eth0 up
	for a in "$@"; do ip -n "$ns" addr add "$a/24" dev eth0; done
}
for i in 1 2 3; do ip netns add "$(nsname "e$i")"; plug_v4 "$(nsname "e$i")" "e$i" "10.0.9.2$i"; done
for i in 1 2 3; do ip netns add "$(nsname "lb$i")"; plug_v4 "$(nsname "lb$i")" "lb$i" "10.0.9.$i"; done
ip netns add "$be"
plug_v4 "$be" be 10.0.9.31 10.0.9.32 10.0.9.33 10.0.9.40
inbe sysctl -qw net.ipv4.conf.all.rp_filter=0 net.ipv4.conf.eth0.rp_filter=0
# The LB nodes encapsulate toward the backends' MAC: give them a permanent neighbour.
bemac=$(inbe cat /sys/class/net/eth0/address)
for i in 1 2 3; do for a in 10.0.9.31 10.0.9.32 10.0.9.33 10.0.9.40; do
	ip -n "$(nsname "lb$i")" neigh replace "$a" lladdr "$bemac" dev eth0 nud permanent
done; done
for a in 10.0.9.31 10.0.9.32 10.0.9.33; do
	inbe python3 -m http.server 8080 --bind "$a" --directory "$tmp" >/dev/null 2>&1 &
	pids+=($!)
done

# ---- etcd: three members -----------------------------------------------------
initial=e1=http://10.0.9.21:2380,e2=http://10.0.9.22:2380,e3=http://10.0.9.23:2380
start_etcd() { # start_etcd N (same data dir on a restart: it rejoins)
	local i=$1 a="10.0.9.2$1"
	ip netns exec "$(nsname "e$i")" etcd --name "e$i" --data-dir "$tmp/etcd-e$i" \
		--listen-client-urls "http://$a:2379" --advertise-client-urls "http://$a:2379" \
		--listen-peer-urls "http://$a:2380" --initial-advertise-peer-urls "http://$a:2380" \
		--initial-cluster "$initial" --initial-cluster-state new --initial-cluster-token "xt-cl-$$" \
		--heartbeat-interval 50 --election-timeout 500 >"$tmp/etcd-e$i.log" 2>&1 &
	etcd_pid[e$i]=$!
}
stop_etcd() { kill -9 "${etcd_pid[e$1]}" 2>/dev/null || true; wait "${etcd_pid[e$1]}" 2>/dev/null || true; unset "etcd_pid[e$1]"; }
for i in 1 2 3; do start_etcd "$i"; done
healthy_etcd() { etcdctl_ endpoint health >/dev/null 2>&1; }
if t=$(wait_until 20 healthy_etcd); then ok "a three-member etcd cluster is up (${t}s)"; else
	bad "etcd did not come up"; tail -5 "$tmp"/etcd-e*.log; exit 1
fi

# ---- three agents -----------------------------------------------------------------
node_yaml() { # node_yaml N
	cat <<YAML
node:
  interface: eth0
  xdp_mode: generic
  encap_source: { ipv4: 10.0.9.$1 }
  path_mtu: 1500
  lru_size: 65536
  bpffs: /sys/fs/bpf/xdplb-cluster-test-$$-$1
  admin: $tmp/lb$1.sock
cluster:
  endpoints: [http://10.0.9.21:2379, http://10.0.9.22:2379, http://10.0.9.23:2379]
  prefix: $prefix
  node_name: lb$1
  lease_ttl: 3s
  fallback_after: 5s
  request_timeout: 1s
  cache_file: $tmp/lb$1-cache.json
YAML
}
start_agent() { # start_agent N
	node_yaml "$1" >"$tmp/lb$1.yaml"
	# nsenter itself in the background (not a function): $! is the agent's pid, so signals reach it.
	nsenter --net="/run/netns/$(nsname "lb$1")" "$XDPLB" run --config "$tmp/lb$1.yaml" >>"$tmp/lb$1.log" 2>&1 &
	agent_pid[lb$1]=$!
	wait_until 20 adm "$1" status >/dev/null
}
stop_agent() { # stop_agent N SIGNAL
	kill "-$2" "${agent_pid[lb$1]}" 2>/dev/null || true
	wait "${agent_pid[lb$1]}" 2>/dev/null || true
	unset "agent_pid[lb$1]"
}
for i in 1 2 3; do
	if start_agent "$i"; then ok "agent lb$i starts in the cluster (no config pushed yet: no VIPs)"; else
		bad "agent lb$i did not start"; tail -20 "$tmp/lb$i.log"; exit 1
	fi
done

shared_yaml() { # shared_yaml WEIGHT_OF_33 [RING]
	cat <<YAML
hash_seed: 0x5eed
vips:
  - address: 10.100.0.1
    port: 53
    protocol: udp
    ring_size: ${2:-1009}
    health: { type: http, path: /, port: 8080, interval: 300ms, timeout: 250ms, rise: 1, fall: 2 }
    backends:
      - { address: 10.0.9.31, weight: 100 }
      - { address: 10.0.9.32, weight: 100 }
      - { address: 10.0.9.33, weight: $1 }
YAML
}
V=10.100.0.1:53/udp
digest() { st "$1" | json "[v['digest'] for v in d['vips'] if v['name'] == '$V'][0]"; }
revision() { st "$1" | json "d['cluster']['revision']"; }
field() { st "$1" | json "d['cluster'].get('$2')"; }   # field N KEY: node N's cluster status
backend() { st "$1" | json "[b for v in d['vips'] if v['name'] == '$V' for b in v['backends'] if b['address'] == '$2'][0]['$3']"; }
all_digests() { echo "$(digest 1) $(digest 2) $(digest 3)"; }
stored_revision() { cl get --raw >/dev/null 2>&1 && etcdctl_ get "${prefix}config" -w json | json "d['kvs'][0]['mod_revision']"; }

# ---- push: every node converges -------------------------------------------------
shared_yaml 100 >"$tmp/shared1.yaml"
if cl push "$tmp/shared1.yaml" --wait 20 --json >"$tmp/push1.json" 2>"$tmp/push1.err"; then
	ok "push --wait: every node runs the pushed revision in $(json "round(d['converge_ms'])" <"$tmp/push1.json") ms"
else bad "push --wait did not converge"; cat "$tmp/push1.json" "$tmp/push1.err"; fi
rev1=$(json "d['revision']" <"$tmp/push1.json")
check "every node runs revision $rev1" test "$(revision 1) $(revision 2) $(revision 3)" = "$rev1 $rev1 $rev1"
all_up() { [ "$(st "$1" | json "sum(b['agreed_healthy'] for v in d['vips'] for b in v['backends'])")" = 3 ]; }
for i in 1 2 3; do wait_until 10 all_up "$i" >/dev/null || true; done
want=$(inbe "$XDPLB" maglev --backends 10.0.9.31,10.0.9.32,10.0.9.33 --weights 100,100,100 --size 1009 --json | json "d['digest']")
digests_are() { [ "$(all_digests)" = "$1 $1 $1" ]; }
check "every node's table digest equals the offline Maglev digest ($want)" wait_until 10 digests_are "$want"
agreed() { cl status >/dev/null 2>&1; }
check "cluster status: every node agrees (exit 0)" wait_until 5 agreed
cl status >"$tmp/status.txt" 2>&1 || true
check "cluster status shows the three nodes side by side with the digest" \
	sh -c "grep -cE '^lb[123] +live +$rev1 +$want' '$tmp/status.txt' | grep -qx 3"
three_live() { [ "$(st 1 | json "d['cluster']['health_consensus'], d['cluster']['etcd_reachable'], len(d['cluster']['live_nodes'])")" = "True True 3" ]; }
check "the agent's status: consensus health, etcd reachable, three live nodes" wait_until 5 three_live
check "the cache file holds the running config" python3 -c "
import json; c=json.load(open('$tmp/lb1-cache.json')); assert c['revision'] == $rev1 and '10.0.9.33' in c['yaml'], c"

# ---- refused pushes change nothing ----------------------------------------------
shared_yaml 100 1000 >"$tmp/bad.yaml"
set +e; cl push "$tmp/bad.yaml" >"$tmp/bad.out" 2>&1; rc=$?; set -e
check "an invalid push exits 2, names the key, and says nothing was written" \
	sh -c "test $rc = 2 && grep -q 'vips\[0\].ring_size' '$tmp/bad.out' && grep -q 'nothing was written' '$tmp/bad.out'"
check "... and etcd still holds revision $rev1" test "$(stored_revision)" = "$rev1"
shared_yaml 50 >"$tmp/shared2.yaml"
cl push "$tmp/shared2.yaml" --if-revision "$rev1" --json >"$tmp/push2.json"
rev2=$(json "d['revision']" <"$tmp/push2.json")
set +e; cl push "$tmp/shared1.yaml" --if-revision "$rev1" >"$tmp/conflict.out" 2>&1; rc=$?; set -e
check "--if-revision $rev1 after someone pushed $rev2: refused (exit 1), says so" \
	sh -c "test $rc = 1 && grep -q 'written after revision $rev1' '$tmp/conflict.out'"
check "... and etcd still holds revision $rev2" test "$(stored_revision)" = "$rev2"
at_rev() { [ "$(revision 1) $(revision 2) $(revision 3)" = "$1 $1 $1" ]; }
wait_until 10 at_rev "$rev2" >/dev/null || true
want2=$(inbe "$XDPLB" maglev --backends 10.0.9.31,10.0.9.32,10.0.9.33 --weights 100,100,50 --size 1009 --json | json "d['digest']")
check "the watch applied revision $rev2 on every node (digest $want2)" wait_until 10 digests_are "$want2"

# ---- a bad value written around the CLI: every agent refuses it ---------------------
shared_yaml 100 1000 | etcdctl_ put "${prefix}config" >/dev/null
bad_rev=$(etcdctl_ get "${prefix}config" -w json | json "d['kvs'][0]['mod_revision']")
refused_all() { for i in 1 2 3; do [ "$(field "$i" refused_revision)" = "$bad_rev" ] || return 1; done; }
check "a bad value put with etcdctl (revision $bad_rev) is refused by every agent" wait_until 10 refused_all
check "... each keeps running revision $rev2 with its old digest" \
	test "$(revision 1) $(revision 2) $(revision 3) $(all_digests)" = "$rev2 $rev2 $rev2 $want2 $want2 $want2"
check "... the refusal names the problem" sh -c "echo '$(field 1 refused_error)' | grep -q ring_size"
check "... is logged" grep -q "refused the shared config from etcd" "$tmp/lb1.log"
set +e; cl status >"$tmp/status.txt" 2>&1; rc=$?; set -e
check "... and cluster status flags it (exit 1)" sh -c "test $rc = 1 && grep -q '! lb1: refused revision $bad_rev' '$tmp/status.txt'"
cl push "$tmp/shared1.yaml" --wait 20 --json >"$tmp/push3.json" 2>&1 || true
check "a good push after it converges every node" test "$(json "d['converged']" <"$tmp/push3.json")" = True
rev3=$(json "d['revision']" <"$tmp/push3.json")
check "... and clears the refusal" test "$(field 2 refused_revision)" = "None"

# ---- health consensus: one node's view cannot split the cluster ------------------------
for i in 1 2 3; do wait_until 10 all_up "$i" >/dev/null || true; done
ip -n "$(nsname lb1)" route add blackhole 10.0.9.33/32
down_locally() { [ "$(backend "$1" 10.0.9.33 healthy)" = False ]; }   # healthy: the node's own probe
wait_until 5 down_locally 1 >/dev/null || true
sleep 1   # several health intervals: a split would show by now
check "lb1 cannot reach 10.0.9.33: its own probe says down" down_locally 1
majority_up() {
	echo "agreed: $(backend 1 10.0.9.33 agreed_healthy) $(backend 2 10.0.9.33 agreed_healthy) $(backend 3 10.0.9.33 agreed_healthy), slots on lb1: $(backend 1 10.0.9.33 slots)"
	[ "$(backend 1 10.0.9.33 agreed_healthy) $(backend 2 10.0.9.33 agreed_healthy) $(backend 3 10.0.9.33 agreed_healthy)" = "True True True" ] && [ "$(backend 1 10.0.9.33 slots)" -gt 0 ]
}
check "... but the majority says up: 10.0.9.33 keeps its slots on every node" majority_up
check "... every digest still equal ($want)" test "$(all_digests)" = "$want $want $want"
ip -n "$(nsname lb2)" route add blackhole 10.0.9.33/32
# A down backend's slots are handed over in the table of all three: the offline twin is --down.
want_2=$(inbe "$XDPLB" maglev --backends 10.0.9.31,10.0.9.32,10.0.9.33 --weights 100,100,100 --down 10.0.9.33 --size 1009 --json | json "d['digest']")
gone() { [ "$(all_digests)" = "$want_2 $want_2 $want_2" ]; }
if t=$(wait_until 10 gone); then ok "lb1 and lb2 lose it: every node drops 10.0.9.33 (${t}s), digests equal ($want_2)"; else
	bad "lb1 and lb2 lose 10.0.9.33: not dropped everywhere ($(all_digests))"; fi
check "... lb3 still reaches it, yet follows the majority" test "$(backend 3 10.0.9.33 healthy) $(backend 3 10.0.9.33 agreed_healthy) $(backend 3 10.0.9.33 slots)" = "True False 0"
ip -n "$(nsname lb1)" route del blackhole 10.0.9.33/32
ip -n "$(nsname lb2)" route del blackhole 10.0.9.33/32
back() { [ "$(all_digests)" = "$want $want $want" ]; }
check "routes back: every node takes 10.0.9.33 again" wait_until 10 back

# ---- etcd member loss ------------------------------------------------------------------
stop_etcd 1
cl push "$tmp/shared2.yaml" --wait 20 --json >"$tmp/push4.json" 2>"$tmp/push4.err" || true
if [ "$(json "d['converged']" <"$tmp/push4.json" 2>/dev/null)" = True ]; then
	ok "etcd member e1 down: a push still converges every node ($(json "round(d['converge_ms'])" <"$tmp/push4.json") ms)"
else bad "etcd member e1 down: the push did not converge"; cat "$tmp/push4.json" "$tmp/push4.err"; fi
rev4=$(json "d['revision']" <"$tmp/push4.json" 2>/dev/null || echo 0)

# ---- every etcd member down: the nodes keep forwarding ------------------------------------
stop_etcd 2
stop_etcd 3
unreachable_all() { for i in 1 2 3; do [ "$(field "$i" etcd_reachable)" = False ] || return 1; done; }
if t=$(wait_until 15 unreachable_all); then ok "etcd down: every agent says unreachable (${t}s)"; else bad "etcd down: not every agent noticed"; fi
check "... each keeps revision $rev4 and digest $want2" \
	test "$(revision 1) $(revision 2) $(revision 3) $(all_digests)" = "$rev4 $rev4 $rev4 $want2 $want2 $want2"
stop_agent 3 TERM
if start_agent 3; then ok "lb3's agent restarts while etcd is down"; else bad "lb3's agent did not restart"; tail -20 "$tmp/lb3.log"; fi
check "... from its cache: revision $rev4, digest $want2" test "$(revision 3) $(digest 3)" = "$rev4 $want2"
st 3 | json "d['cluster']" >"$tmp/lb3-cluster.txt"
stale_cached() { grep -q "'stale_since'" "$tmp/lb3-cluster.txt" || { cat "$tmp/lb3-cluster.txt"; return 1; }; }
check "... and status says stale since …" stale_cached
adm 3 status >"$tmp/lb3.status" 2>&1 || true
check "... also in the text status" grep -qi "stale since" "$tmp/lb3.status"
# Traffic through lb3 reaches the backends (the data plane never depended on etcd).
inbe ip route replace 10.100.0.1/32 via 10.0.9.3 src 10.0.9.40
inbe python3 "$here/../agent/traffic.py" recv --seconds 2.5 --out "$tmp/fwd.json" &
recv_pid=$!
sleep 0.3
inbe python3 "$here/../agent/traffic.py" send 10.0.9.40 10.100.0.1 53 --sports "$(seq -s, 7001 7050)" --count 2 --interval 0.002 >/dev/null
wait "$recv_pid" || true
check "... and forwards: 50 flows, 100 packets encapsulated to the backends" python3 -c "
import json; d=json.load(open('$tmp/fwd.json'))
assert len(d) == 50 and sum(sum(v.values()) for v in d.values()) == 100, d
assert set(b for v in d.values() for b in v) <= {'10.0.9.31', '10.0.9.32', '10.0.9.33'}, d"

# ---- etcd back ---------------------------------------------------------------------------
for i in 1 2 3; do start_etcd "$i"; done
wait_until 20 healthy_etcd >/dev/null || true
reachable_all() { for i in 1 2 3; do [ "$(field "$i" etcd_reachable)" = True ] || return 1; done; }
if t=$(wait_until 20 reachable_all); then ok "etcd back: every agent reconnects (${t}s)"; else bad "etcd back: not every agent reconnected"; fi
not_stale() { [ "$(field 3 stale_since)" = None ]; }
check "... lb3 is no longer stale" wait_until 10 not_stale
check "... and cluster status agrees again" wait_until 15 agreed

# ---- a stopped agent's lease is revoked -----------------------------------------------------
stop_agent 2 TERM
set +e; cl status >"$tmp/status.txt" 2>&1; rc=$?; set -e
check "SIGTERM on lb2: its lease is revoked at once, cluster status flags it expired (exit 1)" \
	sh -c "test $rc = 1 && grep -qE '^lb2 +expired' '$tmp/status.txt' || { cat '$tmp/status.txt'; exit 1; }"
check "... the other nodes are still live and agree" sh -c "grep -cE '^lb[13] +live +$rev4 +$want2' '$tmp/status.txt' | grep -qx 2"
start_agent 2 >/dev/null || true
check "lb2 back: it rejoins with the cluster's config" wait_until 15 agreed

# ---- history and diff -------------------------------------------------------------------------
cl history --json >"$tmp/history.json" 2>&1 || true
check "history lists the pushes newest first, the raw etcdctl write among them" python3 -c "
import json; h=json.load(open('$tmp/history.json')); revs=[e['revision'] for e in h]
assert revs[:4] == [$rev4, $rev3, $bad_rev, $rev2], revs"
check "diff of the running file: no difference (exit 0)" cl diff "$tmp/shared2.yaml"
set +e; cl diff "$tmp/shared1.yaml" >"$tmp/diff.out" 2>&1; rc=$?; set -e
check "diff of another file: exit 1, names the changed backend" sh -c "test $rc = 1 && grep -q '10.0.9.33' '$tmp/diff.out'"

# ---- protection from the shared config: a VIP's deny list reaches every node ------------------
{ shared_yaml 50; echo "    protection: { deny: [ 10.0.9.40 ] }"; } >"$tmp/shared-deny.yaml"
cl diff "$tmp/shared-deny.yaml" >"$tmp/diff-deny.out" 2>&1 || true
check "diff names the VIP's new protection section" grep -qF "~ vip $V: protection: 1 deny, 0 allow prefixes" "$tmp/diff-deny.out"
cl push "$tmp/shared-deny.yaml" --wait 20 --json >"$tmp/push-deny.json" 2>&1 || true
check "push of a VIP deny list converges every node" test "$(json "d['converged']" <"$tmp/push-deny.json")" = True
denied_everywhere() { for i in 1 2 3; do adm "$i" status | grep -qF 'protection: on, 1 deny prefixes (0 at run time)' || return 1; done; }
check "... every node's status: protection on, 1 deny prefix" wait_until 10 denied_everywhere
vip_drops() { adm 3 stats --json --interval 0.1 | json "d['vip_flows']['$V']['drop_deny']"; }
send_via_lb3() { # send_via_lb3 NAME SPORT: 20 packets from 10.0.9.40 through lb3; prints how many reached a backend
	inbe ip route replace 10.100.0.1/32 via 10.0.9.3 src 10.0.9.40
	inbe python3 "$here/../agent/traffic.py" recv --seconds 1.5 --out "$tmp/$1.json" &
	local r=$!
	sleep 0.3
	inbe python3 "$here/../agent/traffic.py" send 10.0.9.40 10.100.0.1 53 --sports "$2" --count 20 --interval 0.002 >/dev/null
	wait "$r" || true
	python3 -c "import json; d=json.load(open('$tmp/$1.json')); print(sum(d.get('$2', {}).values()))"
}
d0=$(vip_drops)
got=$(send_via_lb3 denied 7101)
check "... a denied client's 20 packets through lb3: none reach a backend ($got)" test "$got" = 0
check "... lb3 counts them as drop_deny for the VIP" test "$(( $(vip_drops) - d0 ))" = 20
cl push "$tmp/shared2.yaml" --wait 20 --json >"$tmp/push-undeny.json" 2>&1 || true
off_everywhere() { for i in 1 2 3; do adm "$i" status | grep -qF 'protection: off' || return 1; done; }
check "pushing the file without it turns protection off on every node" wait_until 10 off_everywhere
got=$(send_via_lb3 undenied 7102)
check "... and the client's 20 packets reach the backends again ($got)" test "$got" = 20

# ---- TLS and auth: a fourth etcd (its own cluster) with client certificates and users ----------
pki=$tmp/pki
mkdir -p "$pki"
mkcert() { # mkcert NAME SUBJECT EXTS: a P-256 key and a certificate signed by the test CA
	openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "$2" -keyout "$pki/$1.key" -out "$pki/$1.csr" 2>/dev/null
	printf '%s\n' "$3" >"$pki/$1.ext"
	openssl x509 -req -in "$pki/$1.csr" -CA "$pki/ca.pem" -CAkey "$pki/ca.key" -CAcreateserial -days 1 -extfile "$pki/$1.ext" -out "$pki/$1.pem" 2>/dev/null
}
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 -subj /CN=xt-cluster-ca -keyout "$pki/ca.key" -out "$pki/ca.pem" 2>/dev/null
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 -subj /CN=xt-other-ca -keyout "$pki/other.key" -out "$pki/other.pem" 2>/dev/null
# etcd's gateway talks to its own gRPC side with the server certificate (so: clientAuth too), and
# refuses a client certificate with a CommonName when --client-cert-auth is on (CVE-2018-16886):
# the agents' certificate has none; they are authorized as an etcd user (password).
mkcert server /CN=e4 $'subjectAltName=IP:10.0.9.24\nextendedKeyUsage=serverAuth,clientAuth'
mkcert client /O=xdplb-agents 'extendedKeyUsage=clientAuth'
chmod 600 "$pki"/*.key
ip netns add "$(nsname e4)"
plug_v4 "$(nsname e4)" e4 10.0.9.24
ip netns exec "$(nsname e4)" etcd --name e4 --data-dir "$tmp/etcd-e4" \
	--listen-client-urls https://10.0.9.24:2379 --advertise-client-urls https://10.0.9.24:2379 \
	--cert-file "$pki/server.pem" --key-file "$pki/server.key" --trusted-ca-file "$pki/ca.pem" --client-cert-auth \
	--listen-peer-urls http://10.0.9.24:2380 --initial-advertise-peer-urls http://10.0.9.24:2380 \
	--initial-cluster e4=http://10.0.9.24:2380 --initial-cluster-token "xt-cl-tls-$$" >"$tmp/etcd-e4.log" 2>&1 &
etcd_pid[e4]=$!
e4ctl() { inbe env ETCDCTL_API=3 etcdctl --endpoints https://10.0.9.24:2379 --cacert "$pki/ca.pem" --cert "$pki/client.pem" --key "$pki/client.key" --command-timeout=3s "$@"; }
wait_until 20 e4ctl endpoint health >/dev/null || { bad "the TLS etcd did not come up"; tail -5 "$tmp/etcd-e4.log"; }
{
	e4ctl user add root:root-pw-$$
	e4ctl user grant-role root root
	e4ctl role add xdplb
	e4ctl role grant-permission xdplb --prefix=true readwrite /xdplb-tls/
	e4ctl user add "xdplb:pw-$$"
	e4ctl user grant-role xdplb xdplb
	e4ctl auth enable
} >"$tmp/auth.log" 2>&1 || { bad "etcd auth setup failed"; cat "$tmp/auth.log"; }
printf 'pw-%s\n' "$$" >"$tmp/etcd.password"
printf 'wrong\n' >"$tmp/wrong.password"
chmod 600 "$tmp"/*.password
tls_node() { # tls_node N CA PASSWORD_FILE
	node_yaml "$1" | sed -n '/^cluster:/q;p'
	cat <<YAML
cluster:
  endpoints: [https://10.0.9.24:2379]
  prefix: /xdplb-tls/
  node_name: lb$1
  ca_file: $2
  cert_file: $pki/client.pem
  key_file: $pki/client.key
  username: xdplb
  password_file: $3
  lease_ttl: 3s
  request_timeout: 1s
  cache_file: $tmp/lb$1-tls-cache.json
YAML
}
tls_node 1 "$pki/ca.pem" "$tmp/etcd.password" >"$tmp/tls1.yaml"
tls_node 1 "$pki/ca.pem" "$tmp/wrong.password" >"$tmp/tls-badpw.yaml"
tls_node 1 "$pki/other.pem" "$tmp/etcd.password" >"$tmp/tls-badca.yaml"
tcl() { inbe "$XDPLB" cluster "$@"; }
check "TLS + client certificate + user auth: push works" tcl push "$tmp/shared1.yaml" --config "$tmp/tls1.yaml"
tcl get --raw --config "$tmp/tls1.yaml" >"$tmp/tls-get.yaml" 2>&1 || true
check "... and get returns exactly what was pushed" cmp "$tmp/tls-get.yaml" "$tmp/shared1.yaml"
set +e; tcl get --config "$tmp/tls-badpw.yaml" >"$tmp/badpw.out" 2>&1; rc_pw=$?; tcl get --config "$tmp/tls-badca.yaml" >"$tmp/badca.out" 2>&1; rc_ca=$?; set -e
check "a wrong password: exit 1, says authentication failed" sh -c "test $rc_pw = 1 && grep -qi 'authentication failed' '$tmp/badpw.out' || { cat '$tmp/badpw.out'; exit 1; }"
check "a server certificate from another CA: exit 1, says so" sh -c "test $rc_ca = 1 && grep -qiE 'certificate|tls|handshake' '$tmp/badca.out' || { cat '$tmp/badca.out'; exit 1; }"
# lb1's agent joins the TLS cluster: applies its config and publishes under its lease.
stop_agent 1 TERM
cp "$tmp/tls1.yaml" "$tmp/lb1.yaml"
nsenter --net="/run/netns/$(nsname lb1)" "$XDPLB" run --config "$tmp/lb1.yaml" >>"$tmp/lb1.log" 2>&1 &
agent_pid[lb1]=$!
wait_until 20 adm 1 status >/dev/null || true
tls_agreed() { tcl status --config "$tmp/tls1.yaml" >/dev/null 2>&1; }
check "an agent over TLS with auth runs the pushed config and reports it (cluster status agrees)" wait_until 15 tls_agreed
check "... with the offline digest ($want)" test "$(digest 1)" = "$want"

for i in 1 2 3; do [ -n "${agent_pid[lb$i]:-}" ] && stop_agent "$i" TERM; done
echo
echo "cluster: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
