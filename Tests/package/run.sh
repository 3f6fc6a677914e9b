#!/usr/bin/env bash
# Tests/package/run.sh — the Debian package, installed, run and purged for real.
#
# Builds the package from the debug build (tools/package --debug), checks it
# with lintian (no errors) and its contents, installs it with apt-get on this
# machine (dependencies resolved by apt), and runs the installed units' own
# command lines the way systemd would (no systemd runs here): ExecStartPre and
# ExecStart of xdplb.service under the unit's CapabilityBoundingSet (setpriv),
# with a notify socket and a watchdog (Type=notify), in a namespace the test
# creates; ExecReload (SIGHUP) after a config change; stop (KillSignal:
# forwarding goes on from the pins); an upgrade to a newer package while
# traffic flows, restarted with RestartKillSignal (0 packets lost); the
# gre-decap template unit's ExecStart/ExecStop on a backend interface; then
# `xdplb down` and `apt-get purge`, after which nothing of the package is left.
#
# Topology (created here, deleted on exit):
#   xt-pk-lb-PID: lb0 10.0.9.1/24         the LB node (generic XDP)
#   xt-pk-pe-PID: pe0 10.0.9.2,.4 (backends, HTTP :8080), .10 (client)
# Needs root, apt. Refuses to run when a package named xdplb is installed (other than
# this test's own, left by a killed run: that one is purged, see sweep_stale_runs).
# Usage: Tests/package/run.sh
set -o errexit -o nounset -o pipefail
umask 022
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
tmp=$(mktemp -d /tmp/xdplb-package-test.XXXXXX)
lb="xt-pk-lb-$$" pe="xt-pk-pe-$$"
bpffs="/sys/fs/bpf/xdplb-package-test-$$"
rundir="/run/xdplb-package-test-$$"
sock="$rundir/admin.sock"
agent_pid="" pids=() installed=0
pass=0 fail=0
. "$root/Tests/lib.sh"

cleanup() {
	[ -n "$agent_pid" ] && kill -9 "$agent_pid" 2>/dev/null || true
	for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
	"$root/.build/debug/xdplb" down --force --bpffs "$bpffs" >/dev/null 2>&1 || true
	if [ "$installed" = 1 ]; then
		[ ! -x /usr/sbin/xdplb-gre-decap ] || ip netns exec "$pe" /usr/sbin/xdplb-gre-decap down --interface pe0 >/dev/null 2>&1 || true
		DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=300 purge -y -qq xdplb >/dev/null 2>&1 || true
	fi
	ip netns del "$lb" 2>/dev/null || true
	ip netns del "$pe" 2>/dev/null || true
	rm -rf "$tmp" "$rundir"
}
trap cleanup EXIT
trap 'exit 1' INT TERM

# What an earlier run of this test left behind when it was killed (SIGKILL, a machine
# shut down mid-run): its namespaces, pins and run directory, named by that run's PID,
# and its own package, whose version ends in ~pkgtestN (no other package has that
# version). Swept only when that PID is no longer running; a run still going is left
# alone and this one refuses below.
sweep_stale_runs() {
	local ns path pid live=0
	for ns in $(ip netns list | awk '/^xt-pk-(lb|pe)-[0-9]+/ {print $1}'); do
		pid=${ns##*-}
		if kill -0 "$pid" 2>/dev/null; then live=1; continue; fi
		echo "note: removing what a killed run ($pid) of this test left: $ns"
		ip netns del "$ns" 2>/dev/null || true
	done
	for path in /sys/fs/bpf/xdplb-package-test-* /run/xdplb-package-test-*; do
		[ -e "$path" ] || continue
		pid=${path##*-}
		kill -0 "$pid" 2>/dev/null && { live=1; continue; }
		echo "note: removing what a killed run ($pid) of this test left: $path"
		case $path in
		/sys/fs/bpf/*) "$root/.build/debug/xdplb" down --force --bpffs "$path" >/dev/null 2>&1 || true; rm -rf "$path" ;;
		*) rm -rf "$path" ;;
		esac
	done
	local version
	version=$(dpkg-query -W -f='${Status} ${Version}' xdplb 2>/dev/null || true)
	if [ "$live" = 0 ] && [[ $version == "install ok installed "*"~pkgtest"[0-9] ]]; then
		echo "note: purging this test's own package left by a killed run (${version##* })"
		DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=300 purge -y -qq xdplb >/dev/null 2>&1 || true
	fi
}
sweep_stale_runs
if dpkg-query -W -f='${Status}' xdplb 2>/dev/null | grep -q 'install ok installed'; then
	echo "FAIL a package named xdplb ($(dpkg-query -W -f='${Version}' xdplb)) is installed on this machine, or another"
	echo "     run of this test is going on; this test installs and purges its own package"
	echo "package: 0 passed, 1 failed"
	exit 1
fi
"$root/tools/install-deps" lintian help2man dpkg-dev binutils systemd man-db >/dev/null   # systemd-analyze, man

# ---- build and lint ---------------------------------------------------------------
v1="$("$root/.build/debug/xdplb" --version)~pkgtest1" v2="$("$root/.build/debug/xdplb" --version)~pkgtest2"
if ! deb1=$("$root/tools/package" --debug --version "$v1" --out "$tmp/v1" 2>"$tmp/package.log" | tail -1); then
	cat "$tmp/package.log"
	bad "tools/package --debug builds a package"
	echo "package: $pass passed, $fail failed"
	exit 1
fi
ok "tools/package --debug builds $(basename "$deb1") ($(du -h "$deb1" | cut -f1))"
# The newer package: the same build under a higher version (what an upgrade installs).
dpkg-deb -R "$deb1" "$tmp/v2root"
sed -i "s/^Version: .*/Version: $v2/" "$tmp/v2root/DEBIAN/control"
mkdir -p "$tmp/v2"
deb2=$tmp/v2/xdplb_${v2}_$(dpkg --print-architecture).deb
dpkg-deb --root-owner-group -Zgzip -z1 --build "$tmp/v2root" "$deb2" >/dev/null
check "dpkg compares the versions: $v2 is newer than $v1" dpkg --compare-versions "$v2" gt "$v1"

lintian --tag-display-limit 0 "$deb1" >"$tmp/lintian.txt" 2>&1 || true
check "lintian: no errors ($(grep -c '^W: ' "$tmp/lintian.txt" || true) warnings)" sh -c "! grep '^E: ' '$tmp/lintian.txt'"
dpkg-deb -c "$deb1" | awk '{print $6}' | sed 's|^\./|/|' >"$tmp/contents"
has() { grep -qx -- "$1" "$tmp/contents"; }
for f in /usr/sbin/xdplb /usr/sbin/xdplb-gre-decap /usr/lib/xdplb/decap.bpf.o /lib/systemd/system/xdplb.service \
	/lib/systemd/system/xdplb-bgp.service /lib/systemd/system/xdplb-gre-decap@.service /etc/xdplb/node.yaml \
	/usr/share/man/man8/xdplb.8.gz /usr/share/man/man8/xdplb.run.8.gz /usr/share/man/man8/xdplb-gre-decap.8.gz \
	/usr/share/bash-completion/completions/xdplb /usr/share/zsh/vendor-completions/_xdplb \
	/usr/share/fish/vendor_completions.d/xdplb.fish /usr/share/doc/xdplb/copyright /usr/share/doc/xdplb/changelog.gz; do
	check "the package holds $f" has "$f"
done
# One man page per subcommand: every name in `xdplb help` output has a page.
subs=$("$root/.build/debug/xdplb" --help | sed -n '/^SUBCOMMANDS:/,/^$/p' | grep -E '^  [a-z][a-z-]*( |$)' | awk '{print $1}' | grep -v '^help$' || true)
missing=""; for s in $subs; do has "/usr/share/man/man8/xdplb.$s.8.gz" || missing="$missing $s"; done
check "a man page for every subcommand ($(echo $subs | wc -w))${missing:+; missing:$missing}" test -z "$missing"
check "conffiles: /etc/xdplb/node.yaml" sh -c "dpkg-deb -I '$deb1' conffiles | grep -qx /etc/xdplb/node.yaml"
deps=$(dpkg-deb -f "$deb1" Depends)
declares() { for p in libbpf1 libpcap0.8 libc6 zlib1g iproute2; do grep -qw -- "$p" <<<"$deps" || return 1; done; }
check "Depends declares the runtime libraries: $deps" declares
check "the binary links no Swift toolchain library" sh -c "dpkg-deb --fsys-tarfile '$deb1' | tar -xO ./usr/sbin/xdplb >'$tmp/xdplb.bin' && chmod +x '$tmp/xdplb.bin' && ! ldd '$tmp/xdplb.bin' | grep -q /swift/"

# ---- install -------------------------------------------------------------------
export DEBIAN_FRONTEND=noninteractive
installed=1
check "apt-get install ./$(basename "$deb1") (dependencies from Debian)" apt-get -o DPkg::Lock::Timeout=300 install -y -qq "$deb1"
check "dpkg: xdplb $v1 installed" test "$(dpkg-query -W -f='${Version}' xdplb)" = "$v1"
check "xdplb --version from /usr/sbin: $(/usr/sbin/xdplb --version 2>&1)" test -n "$(/usr/sbin/xdplb --version)"
check "the example /etc/xdplb/node.yaml passes config check" /usr/sbin/xdplb config check /etc/xdplb/node.yaml
man_run() { MANWIDTH=80 man -P cat xdplb.run 2>/dev/null | grep -q -- '--config'; }
check "man xdplb.run renders (with its --config option)" man_run
check "bash completion offers the subcommands" bash -c ". /usr/share/bash-completion/completions/xdplb && COMP_WORDS=(xdplb st) COMP_CWORD=1 && _xdplb && printf '%s\n' \"\${COMPREPLY[@]}\" | grep -qx status"
systemd-analyze verify --man=no /lib/systemd/system/xdplb.service /lib/systemd/system/xdplb-bgp.service >"$tmp/verify.txt" 2>&1 || true
check "systemd-analyze verify: the units are clean" sh -c "! grep -v -e 'bird' '$tmp/verify.txt' | grep -q ."

unit_value() { # unit_value UNIT KEY: the value of KEY= in the installed unit (first one)
	sed -n "s/^$2=//p" "/lib/systemd/system/$1" | head -1
}
exec_start=$(unit_value xdplb.service ExecStart)
exec_pre=$(unit_value xdplb.service ExecStartPre)
caps=$(unit_value xdplb.service CapabilityBoundingSet)
check "xdplb.service: Type=notify, ExecReload=SIGHUP, RestartKillSignal=SIGUSR2, Restart=always, LimitMEMLOCK" sh -c "
	test '$(unit_value xdplb.service Type)' = notify && test '$(unit_value xdplb.service ExecReload)' = '/bin/kill -HUP \$MAINPID' &&
	test '$(unit_value xdplb.service RestartKillSignal)' = SIGUSR2 && test '$(unit_value xdplb.service Restart)' = always &&
	test '$(unit_value xdplb.service LimitMEMLOCK)' = infinity"
# setpriv's form of the unit's bounding set: CAP_BPF CAP_NET_ADMIN … -> -all,+bpf,+net_admin,…
bounding="-all$(for c in $caps; do c=${c#CAP_}; printf ',+%s' "${c,,}"; done)"

# ---- topology: an LB node and a backend/client namespace ---------------------------
lb_pe_up "$lb" "$pe" 10.0.9.2 10.0.9.4 10.0.9.10
for a in 10.0.9.2 10.0.9.4; do
	ip netns exec "$pe" python3 -m http.server 8080 --bind "$a" --directory "$tmp" >/dev/null 2>&1 &
	pids+=($!)
done
mkdir -p -m 0755 "$rundir"

node_config() { # node_config BACKEND...: the test's /etc/xdplb/node.yaml
	echo "# written by Tests/package/run.sh"
	node_yaml "$bpffs"
	vip_yaml 53 "$@"
}
node_config 10.0.9.2 >/etc/xdplb/node.yaml

# systemd's side of Type=notify: a datagram socket the agent reports to.
python3 - "$rundir/notify.sock" "$tmp/notify.log" <<'PY' &
import socket, sys, time
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(sys.argv[1])
s.settimeout(1)
end = time.time() + 600
with open(sys.argv[2], "a", buffering=1) as log:
    while time.time() < end:
        try:
            msg = s.recv(4096).decode()
        except socket.timeout:
            continue
        log.write(" ".join(msg.split("\n")) + "\n")
PY
pids+=($!)
wait_until 5 test -S "$rundir/notify.sock" >/dev/null

adm() { nsenter --net="/run/netns/$lb" /usr/sbin/xdplb "$@" --admin "$sock"; }
status_json() { adm status --json; }
notified() { grep -c -- "$1" "$tmp/notify.log" 2>/dev/null || true; }
start_unit() { # systemd's start of xdplb.service: ExecStartPre, then ExecStart as the main process
	# shellcheck disable=SC2086 # the unit's command lines, split as systemd splits them
	nsenter --net="/run/netns/$lb" setpriv --bounding-set "$bounding" -- $exec_pre >>"$tmp/agent.log" 2>&1 || return 1
	# shellcheck disable=SC2086
	NOTIFY_SOCKET="$rundir/notify.sock" WATCHDOG_USEC=30000000 nsenter --net="/run/netns/$lb" \
		setpriv --bounding-set "$bounding" -- $exec_start >>"$tmp/agent.log" 2>&1 &
	agent_pid=$!   # nsenter and setpriv exec: this is the agent's pid
}
ready_count() { [ "$(notified READY=1)" -ge "$1" ]; }

# ---- start ---------------------------------------------------------------------
start_unit
check "start: the unit's ExecStartPre (config check) and ExecStart under CapabilityBoundingSet=$caps" kill -0 "$agent_pid"
check "... READY=1 reaches the notify socket" wait_until 30 ready_count 1
check "... with a STATUS line: $(grep -o 'STATUS=[^M]*' "$tmp/notify.log" | head -1)" grep -q "READY=1 STATUS=forwarding 1 VIPs on lb0 (fresh)" "$tmp/notify.log"
check "... MAINPID is the agent" grep -q "MAINPID=$agent_pid" "$tmp/notify.log"
check "... the watchdog is fed (WATCHDOG=1)" wait_until 5 grep -q "WATCHDOG=1" "$tmp/notify.log"
capbnd=$(awk '/^CapBnd/ {print $2}' "/proc/$agent_pid/status")
want=$(python3 -c "
import sys
bits = {'CAP_CHOWN': 0, 'CAP_NET_BIND_SERVICE': 10, 'CAP_NET_RAW': 13, 'CAP_NET_ADMIN': 12, 'CAP_SYS_ADMIN': 21,
        'CAP_SYS_RESOURCE': 24, 'CAP_PERFMON': 38, 'CAP_BPF': 39}
print('%016x' % sum(1 << bits[c] for c in sys.argv[1:]))" $caps)
check "... the agent runs with exactly the unit's bounding set (CapBnd $capbnd)" test "$capbnd" = "$want"
all_up() { [ "$(status_json | json "sum(b['healthy'] for v in d['vips'] for b in v['backends'])")" = "$1" ]; }
check "... the backend is healthy through the installed agent" wait_until 10 all_up 1

flows() { # flows OUT SPORTS COUNT INTERVAL SECONDS: send UDP flows through the VIP, count them at the backends
	ip netns exec "$pe" python3 "$root/Tests/agent/traffic.py" recv --seconds "$5" --out "$1" &
	local recv=$!
	sleep 0.3
	ip netns exec "$pe" python3 "$root/Tests/agent/traffic.py" send 10.0.9.10 10.100.0.1 53 --sports "$2" --count "$3" --interval "$4" >"$1.sent"
	wait "$recv"
}
delivered() { python3 -c "import json; d=json.load(open('$1')); print(sum(sum(v.values()) for v in d.values()))"; }
flows "$tmp/start.json" 7000,7001 20 0.005 2
check "traffic: 40 of 40 packets forwarded to the backend" test "$(delivered "$tmp/start.json")" = 40

# ---- reload (ExecReload: SIGHUP) --------------------------------------------------
node_config 10.0.9.2 10.0.9.4 >/etc/xdplb/node.yaml
kill -HUP "$agent_pid"
check "reload: RELOADING=1, then READY=1 again" wait_until 10 sh -c "grep -q RELOADING=1 '$tmp/notify.log' && [ \$(grep -c READY=1 '$tmp/notify.log') -ge 2 ]"
check "... the new backend is in the running config" wait_until 10 all_up 2

# ---- stop (KillSignal=SIGTERM): forwarding goes on from the pins --------------------
kill -TERM "$agent_pid"
wait "$agent_pid" 2>/dev/null && rc=0 || rc=$?
agent_pid=""
check "stop: the agent exits 0 (exit $rc)" test "$rc" = 0
check "... after STOPPING=1" grep -q "STOPPING=1" "$tmp/notify.log"
check "... the program stays attached and pinned" sh -c "ip -n $lb link show lb0 | grep -q xdp && test -e $bpffs/link"
flows "$tmp/stopped.json" 7100,7101 20 0.005 2
check "... and forwards with no agent: 40 of 40 packets" test "$(delivered "$tmp/stopped.json")" = 40

# ---- upgrade while traffic flows: the newer package, restarted (RestartKillSignal) ---
start_unit
check "start again: READY=1 (adopted the pins)" wait_until 30 ready_count 3
check "... up_mode adopted" test "$(status_json | json "d['node']['up_mode']")" = adopted
old_pid=$agent_pid
ip netns exec "$pe" python3 "$root/Tests/agent/traffic.py" recv --seconds 8 --out "$tmp/upgrade.json" &
recv_pid=$!
sleep 0.3
ip netns exec "$pe" python3 "$root/Tests/agent/traffic.py" send 10.0.9.10 10.100.0.1 53 --sports 7200,7201,7202,7203 \
	--count 300 --interval 0.02 >"$tmp/upgrade.sent" &
send_pid=$!
sleep 0.5
check "apt-get install ./$(basename "$deb2") (an upgrade; the changed conffile kept)" \
	apt-get -o DPkg::Lock::Timeout=300 install -y -qq -o Dpkg::Options::=--force-confold "$deb2"
check "dpkg: xdplb $v2 installed" test "$(dpkg-query -W -f='${Version}' xdplb)" = "$v2"
check "... /etc/xdplb/node.yaml is still the test's" grep -q "written by Tests/package/run.sh" /etc/xdplb/node.yaml
# What `deb-systemd-invoke try-restart` makes systemd do: RestartKillSignal, then ExecStart.
kill -USR2 "$old_pid"
wait "$old_pid" 2>/dev/null || true
agent_pid=""
start_unit
check "... restarted onto the new package's binary: READY=1" wait_until 30 ready_count 4
check "... a new agent process (pid $old_pid -> $agent_pid), data plane adopted" \
	test "$agent_pid" != "$old_pid" -a "$(status_json | json "d['node']['up_mode']")" = adopted
wait "$send_pid"
wait "$recv_pid"
sent=$(( $(cat "$tmp/upgrade.sent" 2>/dev/null || echo 1200) ))
check "no packet lost across the upgrade: $(delivered "$tmp/upgrade.json") of $sent delivered" test "$(delivered "$tmp/upgrade.json")" = "$sent"
check "... each flow stayed on one backend" \
	python3 -c "import json; d=json.load(open('$tmp/upgrade.json')); assert all(len(v) == 1 for v in d.values()) and len(d) == 4, d"

# ---- the backend side: xdplb-gre-decap@pe0 ----------------------------------------
cp /usr/share/doc/xdplb/examples/gre-decap-eth0.env /etc/xdplb/gre-decap-pe0.env
sed -i 's/^XDPLB_DECAP_ARGS=.*/XDPLB_DECAP_ARGS="--vip 10.100.0.1 --mode bpf"/' /etc/xdplb/gre-decap-pe0.env
decap_start=$(unit_value xdplb-gre-decap@.service ExecStart | sed 's/%I/pe0/g')
decap_stop=$(unit_value xdplb-gre-decap@.service ExecStop | sed 's/%I/pe0/g')
# EnvironmentFile= then ExecStart with $XDPLB_DECAP_ARGS split into words, as systemd does.
decap_run() { ( set -a; . /etc/xdplb/gre-decap-pe0.env; set +a; eval "ip netns exec $pe $1" ); }
check "xdplb-gre-decap@pe0 ExecStart: $decap_start" decap_run "$decap_start"
check "... the tc program from /usr/lib/xdplb/decap.bpf.o is on pe0" sh -c "ip netns exec $pe tc filter show dev pe0 ingress | grep -q xdplb_decap"
check "... the VIP is on lo" sh -c "ip -n $pe addr show dev lo | grep -q '10.100.0.1/32'"
check "xdplb-gre-decap@pe0 ExecStop: $decap_stop" decap_run "$decap_stop"
check "... nothing of it is left" sh -c "! ip netns exec $pe tc filter show dev pe0 ingress | grep -q xdplb_decap && ! ip -n $pe addr show dev lo | grep -q 10.100.0.1"

# ---- stop, detach, purge: nothing left -----------------------------------------------
kill -TERM "$agent_pid"
wait "$agent_pid" 2>/dev/null || true
agent_pid=""
check "xdplb down detaches and unpins (the only way to)" nsenter --net="/run/netns/$lb" /usr/sbin/xdplb down --bpffs "$bpffs"
dpkg -L xdplb | sort >"$tmp/files"
check "apt-get purge xdplb" apt-get -o DPkg::Lock::Timeout=300 purge -y -qq xdplb
installed=0
left=$(while read -r f; do if [ -f "$f" ]; then echo "$f"; fi; done <"$tmp/files" | head -5)
check "purged: no file of the package is left${left:+ ($left)}" test -z "$left"
check "... no /etc/xdplb, no /var/lib/xdplb" test ! -e /etc/xdplb -a ! -e /var/lib/xdplb
check "... dpkg no longer knows it" sh -c "! dpkg-query -W -f='\${Status}' xdplb 2>/dev/null | grep -q installed"
check "... no pin left" test ! -e "$bpffs"

echo
echo "package: $pass passed, $fail failed"
[ "$fail" = 0 ]
