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

# add_ns NS: create a namespace with lo up, no DAD, no router advertisements.
add_ns() {
	local ns=$1
	[ ${#ns} -le $MAX_NAMELEN ] || die "namespace name '$ns' is longer than $MAX_NAMELEN characters"
	ip netns add "$ns"
	record "ns $ns"
	ip -n "$ns" link set lo up
	sysctls "$ns" net.ipv6.conf.all.accept_dad=0 net.ipv6.conf.default.accept_dad=0 \
		net.ipv6.conf.all.accept_ra=0 net.ipv6.conf.default.accept_ra=0 \
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
	local i k all_be=$((BACKENDS + 1)) lbs=() nh4=() nh6=()
	add_ns "$NS_CLIENT"
	add_ns "$NS_ROUTER"
	for ((i = 1; i <= LB_NODES; i++)); do add_ns "$(ns_lb "$i")"; done
	for ((i = 1; i <= all_be; i++)); do add_ns "$(ns_be "$i")"; done

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
		nh4+=(nexthop via "$(lb4 "$i")" dev "$rif")
		nh6+=(nexthop via "$(lb6 "$i")" dev "$rif")
	done
	ip -n "$NS_ROUTER" route add "$VIP4/32" "${nh4[@]}"
	ip -n "$NS_ROUTER" -6 route add "$VIP6/128" "${nh6[@]}"

	# Backends (MTU 1600): default route via the router (DSR replies).
	for ((i = 1; i <= all_be; i++)); do
		local ns bif rif
		ns=$(ns_be "$i") bif=$(if_be "$i") rif=$(if_rtr_be "$i")
		router_link "$ns" "$bif" "$rif" "$(be4 "$i")" "$(be6 "$i")" "$(rtr_be4 "$i")" "$(rtr_be6 "$i")"
	done
}

# ecmp_route_set NODE...: the router's VIP routes over exactly these LB nodes.
ecmp_route_set() {
	local i nh4=() nh6=()
	for i in "$@"; do
		nh4+=(nexthop via "$(lb4 "$i")" dev "$(if_rtr_lb "$i")")
		nh6+=(nexthop via "$(lb6 "$i")" dev "$(if_rtr_lb "$i")")
	done
	ip -n "$NS_ROUTER" route replace "$VIP4/32" "${nh4[@]}"
	ip -n "$NS_ROUTER" -6 route replace "$VIP6/128" "${nh6[@]}"
}

# ecmp_nodes: LB node indexes in the router's IPv4 VIP route now.
ecmp_nodes() {
	ip -n "$NS_ROUTER" route show "$VIP4/32" | sed -n 's/.*dev xl-rtr-lb\([0-9]*\).*/\1/p' | sort -n | tr '\n' ' '
}

# backend_up I: GRE decap (tools/gre-decap) and the servers of backend I.
backend_decap_up() {
	local i=$1
	ns_exec "$(ns_be "$i")" env XDPLB_DECAP_STATE_DIR="$LAB_STATE_DIR/decap" XDPLB_DECAP_OBJ="$LAB_STATE_DIR/decap.bpf.o" \
		"$REPO/tools/gre-decap" up --interface "$(if_be "$i")" --vip "$VIP4" --vip "$VIP6" >/dev/null
}
