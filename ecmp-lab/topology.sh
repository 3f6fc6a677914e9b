# ecmp-lab/topology.sh — build the lab's namespaces, links, routes (sourced by run).
#
# Needs config.sh and lib.sh. Every namespace is recorded in the state file as
# soon as it exists, so cleanup removes a half-built lab too. Nothing here
# sends traffic; no lab namespace has a link to the machine's own namespace.

# sysctls NS KEY=VALUE...: set sysctls inside NS (per-namespace /proc/sys/net).
sysctls() {
	local ns=$1
	shift
	ns_exec "$ns" sysctl -qw "$@" >/dev/null
}

mac_of() { ns_exec "$1" cat "/sys/class/net/$2/address"; }

# add_ns NS: create a namespace with lo up, no DAD, no router advertisements,
# IPv6 addresses kept while a link is down (the BGP sessions come back with it).
add_ns() {
	local ns=$1
	[ ${#ns} -le $MAX_NAMELEN ] || die "namespace name '$ns' is longer than $MAX_NAMELEN characters"
	ip netns add "$ns"
	record "ns $ns"
	ip -n "$ns" link set lo up
	sysctls "$ns" net.ipv6.conf.all.accept_dad=0 net.ipv6.conf.default.accept_dad=0 \
		net.ipv6.conf.all.accept_ra=0 net.ipv6.conf.default.accept_ra=0 \
		net.ipv6.conf.all.keep_addr_on_down=1 net.ipv6.conf.default.keep_addr_on_down=1 \
		net.ipv4.conf.all.rp_filter=0 net.ipv4.conf.default.rp_filter=0
}

# add_link NS_A IF_A NS_B IF_B MTU: a veth pair between two namespaces, up.
add_link() {
	local nsa=$1 ifa=$2 nsb=$3 ifb=$4 mtu=$5
	[ ${#ifa} -le $MAX_NAMELEN ] && [ ${#ifb} -le $MAX_NAMELEN ] || die "interface name $ifa/$ifb too long"
	ip -n "$nsa" link add "$ifa" mtu "$mtu" type veth peer name "$ifb" netns "$nsb" mtu "$mtu"
	ip -n "$nsa" link set "$ifa" up
	ip -n "$nsb" link set "$ifb" up
}

# neigh NS IF ADDR MAC: a permanent neighbour (no ARP/ND on lab links).
neigh() { ip -n "$1" neigh replace "$3" lladdr "$4" dev "$2" nud permanent; }

# router_link NS IF RIF ADDR4 ADDR6 RTR4 RTR6: a core link (MTU_CORE) from NS to
# the router with one v4/v6 address on each side, static neighbours both ways,
# loose rp_filter on the router's side and NS's default routes via the router.
router_link() {
	local ns=$1 ifn=$2 rif=$3 a4=$4 a6=$5 r4=$6 r6=$7
	add_link "$ns" "$ifn" "$NS_ROUTER" "$rif" "$MTU_CORE"
	ip -n "$ns" addr add "$a4/24" dev "$ifn"
	ip -n "$ns" addr add "$a6/64" dev "$ifn" nodad
	ip -n "$NS_ROUTER" addr add "$r4/24" dev "$rif"
	ip -n "$NS_ROUTER" addr add "$r6/64" dev "$rif" nodad
	sysctls "$NS_ROUTER" "net.ipv4.conf.$rif.rp_filter=0"
	neigh "$ns" "$ifn" "$r4" "$(mac_of "$NS_ROUTER" "$rif")"
	neigh "$ns" "$ifn" "$r6" "$(mac_of "$NS_ROUTER" "$rif")"
	neigh "$NS_ROUTER" "$rif" "$a4" "$(mac_of "$ns" "$ifn")"
	neigh "$NS_ROUTER" "$rif" "$a6" "$(mac_of "$ns" "$ifn")"
	ip -n "$ns" route add default via "$r4"
	ip -n "$ns" -6 route add default via "$r6"
}

# topo_up: the whole topology (see config.sh), without agents or servers.
topo_up() {
	local i k all_be=$((BACKENDS + 1))
	add_ns "$NS_CLIENT"
	add_ns "$NS_ROUTER"
	for ((i = 1; i <= LB_NODES; i++)); do add_ns "$(ns_lb "$i")"; done
	for ((i = 1; i <= all_be; i++)); do add_ns "$(ns_be "$i")"; done
	for ((i = 1; i <= ETCD_MEMBERS; i++)); do add_ns "$(ns_etcd "$i")"; done
	add_ns "$NS_ATTACKER"

	# Router: forwards; ECMP over L3+L4 (policy 3, fields 0x0037: addresses,
	# protocol, ports — policy 1 is not deterministic for local TCP); loose
	# reverse path (DSR replies come in from backends); a nexthop whose link
	# is down is skipped — set before any link can go down.
	sysctls "$NS_ROUTER" net.ipv4.ip_forward=1 net.ipv6.conf.all.forwarding=1 \
		net.ipv4.fib_multipath_hash_policy=3 net.ipv4.fib_multipath_hash_fields=0x0037 \
		net.ipv6.fib_multipath_hash_policy=3 net.ipv6.fib_multipath_hash_fields=0x0037 \
		net.ipv4.conf.all.ignore_routes_with_linkdown=1 net.ipv4.conf.default.ignore_routes_with_linkdown=1 \
		net.ipv6.conf.all.ignore_routes_with_linkdown=1 net.ipv6.conf.default.ignore_routes_with_linkdown=1

	# Client link (MTU 1500): client .2 … , router .1.
	add_link "$NS_CLIENT" "$IF_CLIENT" "$NS_ROUTER" "$IF_RTR_CLIENT" "$MTU_CLIENT"
	ip -n "$NS_ROUTER" addr add "$RTR_CLIENT4/24" dev "$IF_RTR_CLIENT"
	ip -n "$NS_ROUTER" addr add "$RTR_CLIENT6/64" dev "$IF_RTR_CLIENT" nodad
	for ((k = 1; k <= CLIENT_ADDRS; k++)); do
		ip -n "$NS_CLIENT" addr add "$(client4 "$k")/24" dev "$IF_CLIENT"
		ip -n "$NS_CLIENT" addr add "$(client6 "$k")/64" dev "$IF_CLIENT" nodad
		neigh "$NS_ROUTER" "$IF_RTR_CLIENT" "$(client4 "$k")" "$(mac_of "$NS_CLIENT" "$IF_CLIENT")"
		neigh "$NS_ROUTER" "$IF_RTR_CLIENT" "$(client6 "$k")" "$(mac_of "$NS_CLIENT" "$IF_CLIENT")"
	done
	neigh "$NS_CLIENT" "$IF_CLIENT" "$RTR_CLIENT4" "$(mac_of "$NS_ROUTER" "$IF_RTR_CLIENT")"
	neigh "$NS_CLIENT" "$IF_CLIENT" "$RTR_CLIENT6" "$(mac_of "$NS_ROUTER" "$IF_RTR_CLIENT")"
	# The client reaches the VIPs only (no default route: nothing else to talk to).
	ip -n "$NS_CLIENT" route add "$VIP4/32" via "$RTR_CLIENT4"
	ip -n "$NS_CLIENT" -6 route add "$VIP6/128" via "$RTR_CLIENT6"

	# LB nodes (MTU 1600): XDP_PASS + tx checksum off on the router's side
	# (XDP_TX on a veth needs an XDP program on the peer; a partial checksum
	# from the router's side is lost by native XDP).
	for ((i = 1; i <= LB_NODES; i++)); do
		local ns lif rif
		ns=$(ns_lb "$i") lif=$(if_lb "$i") rif=$(if_rtr_lb "$i")
		router_link "$ns" "$lif" "$rif" "$(lb4 "$i")" "$(lb6 "$i")" "$(rtr_lb4 "$i")" "$(rtr_lb6 "$i")"
		# Forwarding on the node: the bpf_fib_lookup fallback needs it, and
		# the kernel forwards GRE the program hands it (pass_no_neigh).
		sysctls "$ns" net.ipv4.ip_forward=1 net.ipv6.conf.all.forwarding=1 "net.ipv4.conf.$lif.rp_filter=0"
		ns_exec "$NS_ROUTER" ethtool -K "$rif" tx off >/dev/null
		ip -n "$NS_ROUTER" link set dev "$rif" xdpdrv obj "$LAB_STATE_DIR/xdp_pass.bpf.o" sec xdp
	done
	# No VIP route here: the router learns them from the LB nodes (router_bird_up).

	# Backends (MTU 1600): default route via the router (DSR replies).
	for ((i = 1; i <= all_be; i++)); do
		local ns bif rif
		ns=$(ns_be "$i") bif=$(if_be "$i") rif=$(if_rtr_be "$i")
		router_link "$ns" "$bif" "$rif" "$(be4 "$i")" "$(be6 "$i")" "$(rtr_be4 "$i")" "$(rtr_be6 "$i")"
	done

	attacker_up

	# etcd members (cluster.sh starts them): each on its own router link; the
	# LB nodes, the other members and the operator reach them through the router.
	for ((i = 1; i <= ETCD_MEMBERS; i++)); do
		router_link "$(ns_etcd "$i")" "$(if_etcd "$i")" "$(if_rtr_etcd "$i")" "$(etcd4 "$i")" "$(etcd6 "$i")" \
			"$(rtr_etcd4 "$i")" "$(rtr_etcd6 "$i")"
	done
}

# attacker_up: the flood scenario's attacker $NS_ATTACKER (its namespace made
# by topo_up): a link to the router (MTU 1500, like the client's), its own
# address $ATK4 and the abusive source $ABUSE_SRC4 on it, a route to $VIP4
# only. The router blackholes the lab-only prefix $FLOOD_PREFIX4, so what the
# backends answer the flood's sources dies there (no SYN-ACK or RST leaves the
# router for them, none reaches the attacker).
attacker_up() {
	lab_ns "$NS_ATTACKER" || die "attacker_up: no namespace $NS_ATTACKER"
	add_link "$NS_ATTACKER" "$IF_ATK" "$NS_ROUTER" "$IF_RTR_ATK" "$MTU_CLIENT"
	ip -n "$NS_ROUTER" addr add "$RTR_ATK4/24" dev "$IF_RTR_ATK"
	ip -n "$NS_ATTACKER" addr add "$ATK4/24" dev "$IF_ATK"
	ip -n "$NS_ATTACKER" addr add "$ABUSE_SRC4/32" dev "$IF_ATK"
	sysctls "$NS_ROUTER" "net.ipv4.conf.$IF_RTR_ATK.rp_filter=0"
	neigh "$NS_ATTACKER" "$IF_ATK" "$RTR_ATK4" "$(mac_of "$NS_ROUTER" "$IF_RTR_ATK")"
	neigh "$NS_ROUTER" "$IF_RTR_ATK" "$ATK4" "$(mac_of "$NS_ATTACKER" "$IF_ATK")"
	ip -n "$NS_ATTACKER" route add "$VIP4/32" via "$RTR_ATK4" src "$ABUSE_SRC4"
	ip -n "$NS_ROUTER" route add blackhole "$FLOOD_PREFIX4"
}

# ---- BGP ---------------------------------------------------------------------

# router_bird_conf: the router's bird2 config (also the README's router sample).
# One eBGP session per family per LB node, BFD on each, every VIP route
# imported and merged into one ECMP route in the main kernel table. Routes
# from different LB nodes merge because they are equal in everything bird
# compares (same neighbour AS, AS path length, origin, no MED).
router_bird_conf() {
	local i
	cat <<EOF
# bird2 on the lab's router (ecmp-lab/topology.sh): eBGP with every LB node,
# BFD, ECMP multipath of the VIP routes into the main kernel table.
router id $RTR_ID;
log "$LAB_STATE_DIR/bird-rtr.log" all;
timeformat protocol iso long;

protocol device { scan time 10; }

# Routes from several peers, equal in everything bird compares, become one
# multipath route in the kernel (fib_multipath_hash_policy picks per flow).
protocol kernel kernel4 { merge paths on; ipv4 { import none; export where source = RTS_BGP; }; }
protocol kernel kernel6 { merge paths on; ipv6 { import none; export where source = RTS_BGP; }; }

protocol bfd {
	interface "*" { min rx interval $BFD_INTERVAL_MS ms; min tx interval $BFD_INTERVAL_MS ms; multiplier $BFD_MULTIPLIER; };
}

# A node that comes back is taken back within a second or two: connect at
# once, retry every second, restart 1 s after an error (2 s at most; an error
# sequence is forgotten after 10 s). A production ToR may want longer error
# waits (flap damping). BFD takes a silent node out in 3 x 100 ms.
template bgp lbnode {
	local as $RTR_ASN;
	hold time 9;
	keepalive time 3;
	connect delay time 1;
	connect retry time 1;
	error wait time 1, 2;
	error forget time 10;
	bfd on;
}
EOF
	for ((i = 1; i <= LB_NODES; i++)); do
		cat <<EOF

# LB node $i ($(ns_lb "$i")): IPv4 VIPs on the IPv4 session, IPv6 VIPs on the IPv6 one.
protocol bgp lb${i}_4 from lbnode { neighbor $(lb4 "$i") as $LB_ASN; ipv4 { import all; export none; }; }
protocol bgp lb${i}_6 from lbnode { neighbor $(lb6 "$i") as $LB_ASN; ipv6 { import all; export none; }; }
EOF
	done
}

# route_monitor_up: the router's route history (ip -ts monitor route) into
# $LAB_STATE_DIR/routes.log for the whole run, started before any route exists.
route_monitor_up() {
	lab_ns "$NS_ROUTER" || die "no router namespace"
	# Through env with a marker: $! is the monitor (env execs ip) and its
	# environment names the state directory (ours() in cleanup: ip's command
	# line cannot).
	ip netns exec "$NS_ROUTER" env XDPLB_LAB="$LAB_STATE_DIR" ip -ts monitor route \
		>"$LAB_STATE_DIR/routes.log" 2>&1 7>&- 8>&- 9>&- &
	record_pid route-monitor $!
	disown $!
}

# router_bird_up: bird2 on the router, in the foreground, recorded for cleanup.
router_bird_up() {
	local conf=$LAB_STATE_DIR/bird-rtr.conf
	router_bird_conf >"$conf"
	bird -p -c "$conf" || die "bird refused $conf"
	lab_ns "$NS_ROUTER" || die "no router namespace"
	ip netns exec "$NS_ROUTER" bird -f -c "$conf" -s "$LAB_STATE_DIR/bird-rtr.ctl" -P "$LAB_STATE_DIR/bird-rtr.pid" \
		>>"$LAB_STATE_DIR/bird-rtr.out" 2>&1 7>&- 8>&- 9>&- &
	record_pid bird-rtr $!
	disown $!
	wait_until 10 test -S "$LAB_STATE_DIR/bird-rtr.ctl" >/dev/null || die "bird on the router did not start (see $LAB_STATE_DIR/bird-rtr.out)"
}

# rtr_birdc CMD...: ask the router's bird.
rtr_birdc() { ns_exec "$NS_ROUTER" birdc -s "$LAB_STATE_DIR/bird-rtr.ctl" "$@"; }

# cut_node I / uncut_node I: the "dead host" of node_failure: every frame
# between the router and LB node I dropped both ways while the link's carrier
# stays up (XDP drop on the router's side for what the node sends, tc egress
# drop for what the router sends it; ecmp-lab/cut.bpf.c). Only BFD notices.
cut_node() {
	local rif
	rif=$(if_rtr_lb "$1")
	ip -force -n "$NS_ROUTER" link set dev "$rif" xdpdrv obj "$LAB_STATE_DIR/cut.bpf.o" sec xdp
	ns_exec "$NS_ROUTER" tc qdisc add dev "$rif" clsact
	ns_exec "$NS_ROUTER" tc filter add dev "$rif" egress bpf direct-action obj "$LAB_STATE_DIR/cut.bpf.o" sec tc
}
uncut_node() {
	local rif
	rif=$(if_rtr_lb "$1")
	ns_exec "$NS_ROUTER" tc qdisc del dev "$rif" clsact 2>/dev/null || true
	ip -force -n "$NS_ROUTER" link set dev "$rif" xdpdrv obj "$LAB_STATE_DIR/xdp_pass.bpf.o" sec xdp
}

# probe_cut I / probe_uncut I: LB node I's own packets to backend
# $PROBE_CUT_BACKEND's addresses dropped on its interface's tc egress
# (ecmp-lab/probe_cut.bpf.c): its health probes there fail, while the GRE its
# balancer sends with XDP_TX (which skips tc egress) still gets through.
# The filter has its own preference, so removing it leaves any other tc
# program on the interface alone; probe_uncut can run twice.
PROBE_CUT_PREF=49000
probe_cut() {
	local ns lif
	ns=$(ns_lb "$1") lif=$(if_lb "$1")
	ns_exec "$ns" tc qdisc show dev "$lif" | grep -q '^qdisc clsact' || ns_exec "$ns" tc qdisc add dev "$lif" clsact
	ns_exec "$ns" tc filter add dev "$lif" egress pref "$PROBE_CUT_PREF" bpf direct-action \
		obj "$LAB_STATE_DIR/probe_cut.bpf.o" sec tc
}
probe_uncut() {
	local ns lif
	ns=$(ns_lb "$1") lif=$(if_lb "$1")
	lab_ns "$ns" || return 0
	ns_exec "$ns" tc filter del dev "$lif" egress pref "$PROBE_CUT_PREF" 2>/dev/null || true
}

# vip_off I / vip_on I: remove the VIPs from backend I's lo (its decap and
# servers keep running, its own addresses still answer: what a plain check
# sees) and put them back. vip_on can run twice.
vip_off() {
	ip -n "$(ns_be "$1")" addr del "$VIP4/32" dev lo
	ip -n "$(ns_be "$1")" -6 addr del "$VIP6/128" dev lo
}
vip_on() {
	local ns
	ns=$(ns_be "$1")
	lab_ns "$ns" || return 0
	[ -n "$(ip -n "$ns" -o addr show dev lo to "$VIP4/32")" ] || ip -n "$ns" addr add "$VIP4/32" dev lo
	[ -n "$(ip -n "$ns" -6 -o addr show dev lo to "$VIP6/128")" ] || ip -n "$ns" -6 addr add "$VIP6/128" dev lo nodad
}

# ecmp_nodes [4|6]: LB node indexes in the router's IPv4 (IPv6) VIP route now
# (next hops the kernel ignores because their link is down not counted).
ecmp_nodes() {
	local fam=${1:-4} vip=$VIP4/32
	[ "$fam" = 4 ] || vip=$VIP6/128
	ip -n "$NS_ROUTER" "-$fam" route show "$vip" | grep -v linkdown |
		sed -n 's/.*dev xl-rtr-lb\([0-9]*\).*/\1/p' | sort -n | tr '\n' ' ' | sed 's/ $//'
}

# ecmp_is NODES...: both VIP routes go over exactly these LB nodes ("" = no route).
ecmp_is() {
	local want="$*"
	[ "$(ecmp_nodes 4)" = "$want" ] && [ "$(ecmp_nodes 6)" = "$want" ]
}

# backend_up I: GRE decap (tools/gre-decap) and the servers of backend I.
# The other backends are its peers: a packet whose GRE key names one of them
# as the second hop (second chance) can be handed on to it.
backend_decap_up() {
	local i=$1 j peers=()
	for ((j = 1; j <= BACKENDS + 1; j++)); do [ "$j" = "$i" ] || peers+=(--peer "$(be6 "$j")"); done
	backend_decap "$i" up --vip "$VIP4" --vip "$VIP6" --mode "${LAB_DECAP_MODE:-auto}" "${peers[@]}" >/dev/null
}

# backend_decap I VERB [ARG...]: tools/gre-decap VERB on backend I's interface,
# in its namespace, with the lab's decap state and BPF object.
backend_decap() {
	local i=$1 verb=$2
	shift 2
	ns_exec "$(ns_be "$i")" env XDPLB_DECAP_STATE_DIR="$LAB_STATE_DIR/decap" XDPLB_DECAP_OBJ="$LAB_STATE_DIR/decap.bpf.o" \
		"$REPO/tools/gre-decap" "$verb" --interface "$(if_be "$i")" "$@"
}
