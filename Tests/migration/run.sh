#!/usr/bin/env bash
# Migration tests: pins left by an earlier release's layout (ABI 4) are taken
# over by `xdplb run` of this one (ABI 6), not refused.
#  * The previous release's data plane is its own bpf/ from git (commit $PREV,
#    the last ABI 4 commit; override with XDPLB_PREV_RELEASE), built here with
#    clang, loaded, filled and attached by Tests/migration/abi4_state.c
#    (libbpf, built against that release's ABI header) the way its agent did:
#    one TCP VIP, 8 backends, ring 65537, pinned maps and a pinned XDP link.
#  * 10,000 flows' SYNs run through the attached ABI 4 program
#    (BPF_PROG_TEST_RUN): their backends are recorded and their conntrack
#    entries written by that program.
#  * `xdplb run` of this build on the same bpffs and interface: it logs the
#    migration, the status says "migrated", the pins are the new layout
#    (2-byte ring slots, 4,096 VIP slots, conntrack rehomed into ABI 6's
#    bucket hash), the link now holds the new program.
#  * The same 10,000 flows' ACKs (conntrack hits) and SYNs (the new ring) get
#    exactly the backends the old program gave; conntrack holds the same
#    entries (key, backend id, generation) as before; counters were carried
#    over; a reload afterwards is an ordinary one.
# Topology (created here, deleted on exit): xt-mg-lb-PID (lb0 10.0.9.1/24, the
# node) and xt-mg-pe-PID (pe0: the backends 10.0.9.2-9). Traffic is test runs
# inside the node's namespace only.
# Usage: Tests/migration/run.sh PATH/TO/xdplb
set -o errexit -o nounset -o pipefail
XDPLB=$(readlink -f "$1")
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
PREV=${XDPLB_PREV_RELEASE:-1ef436d}
tmp=$(mktemp -d /tmp/xdplb-mig.XXXXXX)
lb="xt-mg-lb-$$" pe="xt-mg-pe-$$"
bpffs="/sys/fs/bpf/xdplb-mig-test-$$"
sock="$tmp/admin.sock"
agent_pid=""
pass=0 fail=0
t0=$SECONDS
backends="10.0.9.2 10.0.9.3 10.0.9.4 10.0.9.5 10.0.9.6 10.0.9.7 10.0.9.8 10.0.9.9"

cleanup() {
	[ -n "$agent_pid" ] && kill -9 "$agent_pid" 2>/dev/null || true
	wait 2>/dev/null || true
	"$XDPLB" down --bpffs "$bpffs" >/dev/null 2>&1 || true
	ip netns del "$lb" 2>/dev/null || true
	ip netns del "$pe" 2>/dev/null || true
	rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 1' INT TERM

. "$here/../lib.sh"
inlb() { nsenter --net="/run/netns/$lb" "$@"; }   # nsenter keeps /sys/fs/bpf visible
state() { inlb "$tmp/abi4_state" "$@"; }

# The previous release's data plane, from git.
if ! git -C "$root" cat-file -e "$PREV^{commit}" 2>/dev/null; then
	git -C "$root" fetch -q origin "$PREV" 2>/dev/null || true
fi
if ! git -C "$root" cat-file -e "$PREV^{commit}" 2>/dev/null; then
	bad "the previous release ($PREV) is not in this clone's history (a shallow clone?): fetch it or set XDPLB_PREV_RELEASE"
	echo "migration: $pass passed, $fail failed"
	exit 1
fi
mkdir -p "$tmp/prev"
git -C "$root" archive "$PREV" bpf | tar -x -C "$tmp/prev"
check "the previous release's bpf/ ($PREV) builds and is ABI 4" sh -c \
	"sh '$tmp/prev/bpf/build-objects.sh' '$tmp/prev/out' '$tmp/prev/out/objects.swift' && grep -q 'define XDPLB_ABI_VERSION 4' '$tmp/prev/bpf/xdplb_abi.h'"
CC=${CC:-$(command -v cc || command -v clang || echo /opt/swift/usr/bin/clang)}
check "the ABI 4 state writer builds (libbpf, the previous release's header)" \
	"$CC" -O2 -Wall -Werror -I"$tmp/prev/bpf" -o "$tmp/abi4_state" "$here/abi4_state.c" -lbpf

# shellcheck disable=SC2086
lb_pe_up "$lb" "$pe" $backends 10.0.9.10
# shellcheck disable=SC2086
check "ABI 4 state pinned: maps, ring, VIP and an XDP link on lb0" \
	state make "$tmp/prev/out/balancer.bpf.o" "$bpffs" lb0 10.100.0.1 80 65537 0x5eed 10.0.9.1 262144 $backends
check "the pinned ring is ABI 4's: u32 slots" sh -c "bpftool map show pinned '$bpffs/xdplb_vips' | grep -q 'max_entries 512'"
old_prog=$(inlb bpftool link show pinned "$bpffs/link" | grep -oE 'prog [0-9]+' | grep -oE '[0-9]+')
old_ct=$(bpftool map show pinned "$bpffs/xdplb_ct" | grep -oE "^[0-9]+")

state pick "$bpffs" SYN 10.0.9.10 10.100.0.1 80 20000 10000 >"$tmp/old-syn.txt"
check "the ABI 4 program forwards 10,000 SYNs to the 8 backends" python3 - "$tmp/old-syn.txt" <<'PY'
import sys, collections
rows = [l.split() for l in open(sys.argv[1])]
c = collections.Counter(b for _, b in rows)
assert len(rows) == 10000 and "-" not in c and len(c) == 8, c
print(dict(c))
PY
state ct "$bpffs" | sort >"$tmp/ct-before.txt"
check "the ABI 4 program wrote 10,000 conntrack entries" test "$(grep -c ' 10.100.0.1 80 6 ' "$tmp/ct-before.txt")" -eq 10000

# This release's agent on the same pins.
{ node_yaml "$bpffs"; cat <<YAML; } >"$tmp/node.yaml"
  - address: 10.100.0.1
    port: 80
    protocol: tcp
    ring_size: 65537
    backends:
YAML
for b in $backends; do echo "      - { address: $b }" >>"$tmp/node.yaml"; done
sed -i 's/lru_size: 65536/lru_size: 1000000/' "$tmp/node.yaml"   # 262,144 buckets: 10,000 flows never fill one
nsenter --net="/run/netns/$lb" "$XDPLB" run --config "$tmp/node.yaml" >"$tmp/agent.log" 2>&1 &
agent_pid=$!
if wait_until 60 sh -c "'$XDPLB' status --admin '$sock' --json 2>/dev/null | grep -q '\"up_mode\" *: *\"migrated\"'" >/dev/null; then
	ok "xdplb run took the ABI 4 pins over: status up_mode migrated"
else
	bad "xdplb run took the ABI 4 pins over: status up_mode migrated"; sed 's/^/    /' "$tmp/agent.log"
fi
check "the agent logged the migration and its end" sh -c "grep -q 'pins of another layout found: migrating' '$tmp/agent.log' && grep -q 'migration finished' '$tmp/agent.log'"
new_prog=$(inlb bpftool link show pinned "$bpffs/link" | grep -oE 'prog [0-9]+' | grep -oE '[0-9]+')
check "the pinned link holds a new program (was $old_prog, now $new_prog)" test "$old_prog" != "$new_prog"
check "the pins are the new layout: 4,096 VIP slots, 16,384 backend ids" sh -c \
	"bpftool map show pinned '$bpffs/xdplb_vips' | grep -q 'max_entries 4096' && bpftool map show pinned '$bpffs/xdplb_backends' | grep -q 'max_entries 16384'"
check "conntrack is a new map of the configured size (262,144 buckets), not the old pin" sh -c \
	"bpftool map show pinned '$bpffs/xdplb_ct' | grep -q 'max_entries 262144' && test \"\$(bpftool map show pinned '$bpffs/xdplb_ct' | grep -oE '^[0-9]+')\" != '$old_ct'"
check "the agent logged the rehoming: 10,000 flows moved, none dropped" \
	grep -q 'dropped=0 flows=10000 .*conntrack rehomed into the new bucket hash' "$tmp/agent.log"

state pick "$bpffs" ACK 10.0.9.10 10.100.0.1 80 20000 10000 >"$tmp/new-ack.txt"
check "10,000 established flows' ACKs: the same backend as under the old program" cmp "$tmp/old-syn.txt" "$tmp/new-ack.txt"
state pick "$bpffs" SYN 10.0.9.10 10.100.0.1 80 20000 10000 >"$tmp/new-syn.txt"
check "the same 10,000 flows' SYNs through the new ring: the same backends (the ring moved, not its contents)" cmp "$tmp/old-syn.txt" "$tmp/new-syn.txt"
state ct "$bpffs" | sort >"$tmp/ct-after.txt"
check "conntrack holds the same 10,000 entries (key, backend id, generation)" cmp "$tmp/ct-before.txt" "$tmp/ct-after.txt"
"$XDPLB" stats --admin "$sock" --json >"$tmp/stats.json" || true
check "counters were carried over: new_flow counts the old program's 10,000 SYNs and the new one's, ct_hit the 10,000 ACKs" python3 - "$tmp/stats.json" <<'PY'
import json, sys
c = json.load(open(sys.argv[1]))["counters"]
got = {k: c[k]["packets"] for k in ("ct_hit", "new_flow", "ct_miss")}
assert got["ct_hit"] == 10000 and got["new_flow"] == 20000 and got["ct_miss"] == 0, got
print(got)
PY
check "a reload after the migration changes nothing and the agent keeps running" sh -c \
	"kill -HUP $agent_pid && sleep 1 && kill -0 $agent_pid && ! grep -qi 'reload failed' '$tmp/agent.log'"

echo "migration: $pass passed, $fail failed ($((SECONDS - t0)) s)"
[ "$fail" -eq 0 ]
