#!/usr/bin/env bash
# Migration tests: pins left by earlier releases' layouts (ABI 4 and ABI 5)
# are taken over by `xdplb run` of this one (ABI 6), not refused. Each of the
# two runs below:
#  * builds that release's data plane from its own bpf/ in git (ABI 4: commit
#    1ef436d, 0.9; ABI 5: commit 5de980e, 0.11; override with
#    XDPLB_PREV_ABI4 / XDPLB_PREV_ABI5), then loads, fills and attaches it with
#    Tests/migration/prev_state.c (libbpf, built against that release's ABI
#    header) the way its agent did: one TCP VIP, 8 backends, ring 65537,
#    pinned maps and a pinned XDP link;
#  * runs 10,000 flows' SYNs through the attached old program
#    (BPF_PROG_TEST_RUN): their backends are recorded and their conntrack
#    entries written by that program;
#  * starts `xdplb run` of this build on the same bpffs and interface: it logs
#    the migration, the status says "migrated", the pins are the new layout
#    (2-byte ring slots, 4,096 VIP slots; conntrack rehomed into ABI 6's
#    bucket hash: 10,000 flows moved, none dropped), the link holds the new
#    program;
#  * checks that the same 10,000 flows' ACKs (conntrack hits) and SYNs (the
#    new ring) get exactly the backends the old program gave, conntrack holds
#    the same entries (key, backend id, generation) as before, counters were
#    carried over, and a reload afterwards is an ordinary one.
# Topology (created here, deleted on exit): xt-mg-lb-PID (lb0 10.0.9.1/24, the
# node) and xt-mg-pe-PID (pe0: the backends 10.0.9.2-9). Traffic is test runs
# inside the node's namespace only.
# Usage: Tests/migration/run.sh PATH/TO/xdplb
set -o errexit -o nounset -o pipefail
XDPLB=$(readlink -f "$1")
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
tmp=$(mktemp -d /tmp/xdplb-mig.XXXXXX)
lb="xt-mg-lb-$$" pe="xt-mg-pe-$$"
bpffs="" work="" sock=""
agent_pid=""
pass=0 fail=0
t0=$SECONDS
backends="10.0.9.2 10.0.9.3 10.0.9.4 10.0.9.5 10.0.9.6 10.0.9.7 10.0.9.8 10.0.9.9"
# prev_state pins before any agent runs (an agent mounts bpffs itself; tools/test does too).
mount | grep -q ' /sys/fs/bpf type bpf' || mount -t bpf bpf /sys/fs/bpf

# Stops this run's agent and removes its pins and link.
end_run() {
	[ -n "$agent_pid" ] && kill -9 "$agent_pid" 2>/dev/null || true
	wait 2>/dev/null || true
	agent_pid=""
	[ -n "$bpffs" ] && "$XDPLB" down --bpffs "$bpffs" >/dev/null 2>&1 || true
	[ -n "$bpffs" ] && rm -rf "$bpffs" 2>/dev/null || true
}
cleanup() {
	end_run
	ip netns del "$lb" 2>/dev/null || true
	ip netns del "$pe" 2>/dev/null || true
	rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 1' INT TERM

. "$here/../lib.sh"
inlb() { nsenter --net="/run/netns/$lb" "$@"; }   # nsenter keeps /sys/fs/bpf visible
state() { inlb "$work/prev_state" "$@"; }
# ring_value_size BPFFS: "value NB" of the ring in slot 0 of the pinned ring table (its value is the ring map's id).
ring_value_size() {
	local id
	id=$(bpftool map lookup pinned "$1/xdplb_rings" key 0 0 0 0 -j |
		python3 -c 'import json, sys; print(int.from_bytes(bytes(int(x, 16) for x in json.load(sys.stdin)["value"]), "little"))')
	bpftool map show id "$id" | grep -oE 'value [0-9]+B'
}
export -f ring_value_size

# migrate_from PREV ABI: one run, from the pins of release PREV (ABI ABI).
migrate_from() {
local prev=$1 abi=$2
work="$tmp/abi$abi"
bpffs="/sys/fs/bpf/xdplb-mig-test-$$-abi$abi"
sock="$work/admin.sock"
mkdir -p "$work"
echo "-- from ABI $abi ($prev)"
# The previous release's data plane, from git.
if ! git -C "$root" cat-file -e "$prev^{commit}" 2>/dev/null; then
	git -C "$root" fetch -q origin "$prev" 2>/dev/null || true
fi
if ! git -C "$root" cat-file -e "$prev^{commit}" 2>/dev/null; then
	bad "the previous release ($prev) is not in this clone's history (a shallow clone?): fetch it or set XDPLB_PREV_ABI$abi"
	return
fi
mkdir -p "$work/prev"
git -C "$root" archive "$prev" bpf | tar -x -C "$work/prev"
check "the previous release's bpf/ ($prev) builds and is ABI $abi" sh -c \
	"sh '$work/prev/bpf/build-objects.sh' '$work/prev/out' '$work/prev/out/objects.swift' && grep -q 'define XDPLB_ABI_VERSION $abi' '$work/prev/bpf/xdplb_abi.h'"
check "the ABI $abi state writer builds (libbpf, the previous release's header)" \
	"$CC" -O2 -Wall -Werror -I"$work/prev/bpf" -o "$work/prev_state" "$here/prev_state.c" -lbpf

# shellcheck disable=SC2086
check "ABI $abi state pinned: maps, ring, VIP and an XDP link on lb0" \
	state make "$work/prev/out/balancer.bpf.o" "$bpffs" lb0 10.100.0.1 80 65537 0x5eed 10.0.9.1 262144 $backends
if [ "$abi" = 4 ]; then
	check "the pinned state is ABI 4's: 512 VIP slots, a ring of u32 slots" bash -c \
		"bpftool map show pinned '$bpffs/xdplb_vips' | grep -q 'max_entries 512' && test \"\$(ring_value_size '$bpffs')\" = 'value 4B'"
else
	check "the pinned state is ABI $abi's: 4,096 VIP slots, a ring of 8-byte elements" bash -c \
		"bpftool map show pinned '$bpffs/xdplb_vips' | grep -q 'max_entries 4096' && test \"\$(ring_value_size '$bpffs')\" = 'value 8B'"
fi
old_prog=$(inlb bpftool link show pinned "$bpffs/link" | grep -oE 'prog [0-9]+' | grep -oE '[0-9]+')
old_ct=$(bpftool map show pinned "$bpffs/xdplb_ct" | grep -oE "^[0-9]+")

state pick "$bpffs" SYN 10.0.9.10 10.100.0.1 80 20000 10000 >"$work/old-syn.txt"
check "the ABI $abi program forwards 10,000 SYNs to the 8 backends" python3 - "$work/old-syn.txt" <<'PY'
import sys, collections
rows = [l.split() for l in open(sys.argv[1])]
c = collections.Counter(b for _, b in rows)
assert len(rows) == 10000 and "-" not in c and len(c) == 8, c
print(dict(c))
PY
state ct "$bpffs" | sort >"$work/ct-before.txt"
check "the ABI $abi program wrote 10,000 conntrack entries" test "$(grep -c ' 10.100.0.1 80 6 ' "$work/ct-before.txt")" -eq 10000

# This release's agent on the same pins.
{ node_yaml "$bpffs"; cat <<YAML; } >"$work/node.yaml"
  - address: 10.100.0.1
    port: 80
    protocol: tcp
    ring_size: 65537
    backends:
YAML
for b in $backends; do echo "      - { address: $b }" >>"$work/node.yaml"; done
sed -i 's/lru_size: 65536/lru_size: 1000000/' "$work/node.yaml"   # 262,144 buckets: 10,000 flows never fill one
nsenter --net="/run/netns/$lb" "$XDPLB" run --config "$work/node.yaml" >"$work/agent.log" 2>&1 &
agent_pid=$!
if wait_until 60 sh -c "'$XDPLB' status --admin '$sock' --json 2>/dev/null | grep -q '\"up_mode\" *: *\"migrated\"'" >/dev/null; then
	ok "xdplb run took the ABI $abi pins over: status up_mode migrated"
else
	bad "xdplb run took the ABI $abi pins over: status up_mode migrated"; sed 's/^/    /' "$work/agent.log"
fi
check "the agent logged the migration and its end" sh -c "grep -q 'pins of another layout found: migrating' '$work/agent.log' && grep -q 'migration finished' '$work/agent.log'"
new_prog=$(inlb bpftool link show pinned "$bpffs/link" | grep -oE 'prog [0-9]+' | grep -oE '[0-9]+')
check "the pinned link holds a new program (was $old_prog, now $new_prog)" test "$old_prog" != "$new_prog"
check "the pins are the new layout: 4,096 VIP slots, 16,384 backend ids" sh -c \
	"bpftool map show pinned '$bpffs/xdplb_vips' | grep -q 'max_entries 4096' && bpftool map show pinned '$bpffs/xdplb_backends' | grep -q 'max_entries 16384'"
check "conntrack is a new map of the configured size (262,144 buckets), not the old pin" sh -c \
	"bpftool map show pinned '$bpffs/xdplb_ct' | grep -q 'max_entries 262144' && test \"\$(bpftool map show pinned '$bpffs/xdplb_ct' | grep -oE '^[0-9]+')\" != '$old_ct'"
check "the agent logged the rehoming: 10,000 flows moved, none dropped" \
	grep -q 'dropped=0 flows=10000 .*conntrack rehomed into the new bucket hash' "$work/agent.log"

state pick "$bpffs" ACK 10.0.9.10 10.100.0.1 80 20000 10000 >"$work/new-ack.txt"
check "10,000 established flows' ACKs: the same backend as under the old program" cmp "$work/old-syn.txt" "$work/new-ack.txt"
state pick "$bpffs" SYN 10.0.9.10 10.100.0.1 80 20000 10000 >"$work/new-syn.txt"
check "the same 10,000 flows' SYNs through the new ring: the same backends (the ring moved, not its contents)" cmp "$work/old-syn.txt" "$work/new-syn.txt"
state ct "$bpffs" | sort >"$work/ct-after.txt"
check "conntrack holds the same 10,000 entries (key, backend id, generation)" cmp "$work/ct-before.txt" "$work/ct-after.txt"
"$XDPLB" stats --admin "$sock" --json >"$work/stats.json" || true
check "counters were carried over: new_flow counts the old program's 10,000 SYNs and the new one's, ct_hit the 10,000 ACKs" python3 - "$work/stats.json" <<'PY'
import json, sys
c = json.load(open(sys.argv[1]))["counters"]
got = {k: c[k]["packets"] for k in ("ct_hit", "new_flow", "ct_miss")}
assert got["ct_hit"] == 10000 and got["new_flow"] == 20000 and got["ct_miss"] == 0, got
print(got)
PY
check "a reload after the migration changes nothing and the agent keeps running" sh -c \
	"kill -HUP $agent_pid && sleep 1 && kill -0 $agent_pid && ! grep -qi 'reload failed' '$work/agent.log'"
end_run
}

CC=${CC:-$(command -v cc || command -v clang || echo /opt/swift/usr/bin/clang)}
# shellcheck disable=SC2086
lb_pe_up "$lb" "$pe" $backends 10.0.9.10
migrate_from "${XDPLB_PREV_ABI4:-1ef436d}" 4
migrate_from "${XDPLB_PREV_ABI5:-5de980e}" 5

echo "migration: $pass passed, $fail failed ($((SECONDS - t0)) s)"
[ "$fail" -eq 0 ]
