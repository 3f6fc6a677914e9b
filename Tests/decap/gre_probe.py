#!/usr/bin/env python3
"""GRE traffic for Tests/decap/run.sh (python3 stdlib only).

  probe  (sender namespace) wrap client -> VIP packets in Ethernet + outer
         IPv4/IPv6 + GRE by hand, send them with a packet socket and count the
         replies that come back DIRECTLY (plain IP, source = VIP):
           udp: one datagram at a time, the echo must come back to the
                client's UDP socket from VIP:port with the same payload;
           tcp: one SYN at a time, the backend's SYN-ACK (from VIP:port, acking
                our sequence number) is picked up by a packet socket.
         Prints "sent N replies M" and exits 0 (the caller judges the numbers).
  serve  (backend namespace) UDP echo on VIP:port and a TCP listener on
         VIP:port for each --vip, until --lifetime seconds have passed.

Refuses to run in the root network namespace: lab traffic starts only inside
a namespace the test created. Every receive has a timeout; every loop is
bounded by a count and a deadline.
"""
import argparse
import os
import select
import socket
import struct
import sys
import time

ETH_P_IP = 0x0800
ETH_P_IPV6 = 0x86DD
ETH_P_ALL = 0x0003
IPPROTO_GRE = 47
PACKET_OUTGOING = 4
MAX_COUNT = 1000


def refuse_root_netns():
    """Run only inside a named namespace (what `ip netns identify` checks)."""
    me = os.stat("/proc/self/ns/net")
    try:
        names = os.listdir("/run/netns")
    except OSError:
        names = []
    for name in names:
        try:
            st = os.stat(os.path.join("/run/netns", name))
        except OSError:
            continue
        if (st.st_dev, st.st_ino) == (me.st_dev, me.st_ino):
            return
    sys.exit("gre_probe.py: refusing to run outside a named network namespace (ip netns)")


def checksum(data):
    if len(data) % 2:
        data += b"\0"
    total = sum(struct.unpack("!%dH" % (len(data) // 2), data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def family_of(addr):
    return socket.AF_INET6 if ":" in addr else socket.AF_INET


def pton(addr):
    return socket.inet_pton(family_of(addr), addr)


def l4_checksum(src, dst, proto, segment):
    """TCP/UDP checksum over the pseudo-header of either family."""
    if family_of(src) == socket.AF_INET:
        pseudo = pton(src) + pton(dst) + struct.pack("!BBH", 0, proto, len(segment))
    else:
        pseudo = pton(src) + pton(dst) + struct.pack("!IxxxB", len(segment), proto)
    return checksum(pseudo + segment)


def ip_packet(src, dst, proto, payload, ident=0):
    """An IPv4 (DF, ttl 64) or IPv6 (hop limit 64) packet around payload."""
    if family_of(src) == socket.AF_INET:
        hdr = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(payload), ident & 0xFFFF,
                          0x4000, 64, proto, 0, pton(src), pton(dst))
        hdr = hdr[:10] + struct.pack("!H", checksum(hdr)) + hdr[12:]
        return hdr + payload
    return struct.pack("!IHBB16s16s", 6 << 28, len(payload), proto, 64,
                       pton(src), pton(dst)) + payload


def udp_packet(src, dst, sport, dport, payload, ident):
    seg = struct.pack("!HHHH", sport, dport, 8 + len(payload), 0) + payload
    csum = l4_checksum(src, dst, socket.IPPROTO_UDP, seg) or 0xFFFF
    seg = seg[:6] + struct.pack("!H", csum) + seg[8:]
    return ip_packet(src, dst, socket.IPPROTO_UDP, seg, ident)


def tcp_syn(src, dst, sport, dport, seq, ident):
    # SYN with an MSS option (1400).
    seg = struct.pack("!HHIIBBHHH", sport, dport, seq, 0, (6 << 4), 0x02, 65535, 0, 0)
    seg += struct.pack("!BBH", 2, 4, 1400)
    csum = l4_checksum(src, dst, socket.IPPROTO_TCP, seg)
    seg = seg[:16] + struct.pack("!H", csum) + seg[18:]
    return ip_packet(src, dst, socket.IPPROTO_TCP, seg, ident)


def gre_frame(args, inner):
    """Ethernet + outer IP + GRE (+ optional 4-byte key when K is set) + inner."""
    inner_proto = ETH_P_IPV6 if (inner[0] >> 4) == 6 else ETH_P_IP
    gre = struct.pack("!HH", args.gre_flags, inner_proto)
    if args.gre_flags & 0x2000:
        gre += struct.pack("!I", args.gre_key)
    outer = ip_packet(args.outer_src, args.outer_dst, IPPROTO_GRE, gre + inner)
    outer_type = ETH_P_IPV6 if family_of(args.outer_src) == socket.AF_INET6 else ETH_P_IP
    mac = lambda m: bytes.fromhex(m.replace(":", ""))
    return mac(args.dst_mac) + mac(args.src_mac) + struct.pack("!H", outer_type) + outer


def parse_tcp_reply(frame):
    """(src, dst, sport, dport, flags, ack) of an Ethernet/IP/TCP frame, or None."""
    if len(frame) < 14:
        return None
    etype = struct.unpack("!H", frame[12:14])[0]
    pkt = frame[14:]
    if etype == ETH_P_IP and len(pkt) >= 20:
        ihl = (pkt[0] & 0xF) * 4
        if pkt[9] != socket.IPPROTO_TCP or len(pkt) < ihl + 20:
            return None
        src = socket.inet_ntop(socket.AF_INET, pkt[12:16])
        dst = socket.inet_ntop(socket.AF_INET, pkt[16:20])
        tcp = pkt[ihl:]
    elif etype == ETH_P_IPV6 and len(pkt) >= 60:
        if pkt[6] != socket.IPPROTO_TCP:
            return None
        src = socket.inet_ntop(socket.AF_INET6, pkt[8:24])
        dst = socket.inet_ntop(socket.AF_INET6, pkt[24:40])
        tcp = pkt[40:]
    else:
        return None
    sport, dport, _seq, ack, _off, flags = struct.unpack("!HHIIBB", tcp[:14])
    return src, dst, sport, dport, flags, ack


def same_addr(a, b):
    return pton(a) == pton(b)


def probe_udp(args, tx):
    fam = family_of(args.client)
    sock = socket.socket(fam, socket.SOCK_DGRAM)
    sock.bind((args.client, 0))
    cport = sock.getsockname()[1]
    sock.settimeout(args.timeout)
    replies = 0
    for i in range(args.count):
        payload = b"xdplb-decap %d %d" % (os.getpid(), i)
        tx.send(gre_frame(args, udp_packet(args.client, args.vip, cport, args.port, payload, i)))
        deadline = time.monotonic() + args.timeout
        for _ in range(16):  # skip strays, bounded
            left = deadline - time.monotonic()
            if left <= 0:
                break
            sock.settimeout(left)
            try:
                data, peer = sock.recvfrom(2048)
            except socket.timeout:
                break
            # DSR: straight from the VIP, not from the backend's own address.
            if data == payload and same_addr(peer[0], args.vip) and peer[1] == args.port:
                replies += 1
                break
    return replies


def probe_tcp(args, tx):
    rx = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
    rx.bind((args.ifname, 0))
    replies = 0
    for i in range(args.count):
        sport = 40000 + (os.getpid() + i * 7) % 20000
        seq = 0x10000000 + i * 1000
        tx.send(gre_frame(args, tcp_syn(args.client, args.vip, sport, args.port, seq, i)))
        deadline = time.monotonic() + args.timeout
        for _ in range(256):  # frames seen while waiting, bounded
            left = deadline - time.monotonic()
            if left <= 0:
                break
            ready, _, _ = select.select([rx], [], [], left)
            if not ready:
                break
            frame, addr = rx.recvfrom(65535)
            if addr[2] == PACKET_OUTGOING:
                continue
            r = parse_tcp_reply(frame)
            if r is None:
                continue
            src, dst, rsport, rdport, flags, ack = r
            if (same_addr(src, args.vip) and same_addr(dst, args.client) and rsport == args.port
                    and rdport == sport and flags & 0x12 == 0x12 and ack == seq + 1):
                replies += 1
                break
    return replies


def cmd_probe(args):
    if not 0 < args.count <= MAX_COUNT:
        sys.exit("gre_probe.py: --count must be 1..%d" % MAX_COUNT)
    tx = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
    tx.bind((args.ifname, 0))
    replies = probe_udp(args, tx) if args.proto == "udp" else probe_tcp(args, tx)
    print("sent %d replies %d" % (args.count, replies))


def cmd_serve(args):
    socks = []
    for vip in args.vip:
        fam = family_of(vip)
        u = socket.socket(fam, socket.SOCK_DGRAM)
        u.bind((vip, args.port))
        t = socket.socket(fam, socket.SOCK_STREAM)
        t.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        t.bind((vip, args.port))
        t.listen(128)
        socks += [u, t]
    with open(args.ready, "w") as f:
        f.write("ready\n")
    deadline = time.monotonic() + args.lifetime
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            break
        ready, _, _ = select.select(socks, [], [], min(left, 1.0))
        for s in ready:
            if s.type == socket.SOCK_DGRAM:
                data, peer = s.recvfrom(2048)
                s.sendto(data, peer)  # from the socket bound to the VIP
            else:
                conn, _ = s.accept()
                conn.close()


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("probe")
    p.add_argument("--ifname", required=True)
    p.add_argument("--src-mac", required=True)
    p.add_argument("--dst-mac", required=True)
    p.add_argument("--outer-src", required=True)
    p.add_argument("--outer-dst", required=True)
    p.add_argument("--client", required=True)
    p.add_argument("--vip", required=True)
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--proto", choices=["udp", "tcp"], default="udp")
    p.add_argument("--count", type=int, default=10)
    p.add_argument("--timeout", type=float, default=2.0, help="seconds to wait for each reply")
    p.add_argument("--gre-flags", type=lambda v: int(v, 0), default=0)
    p.add_argument("--gre-key", type=lambda v: int(v, 0), default=0x5EED,
                   help="with K in --gre-flags: the key (xdplb: the second hop; 0xffffffff handed on)")
    s = sub.add_parser("serve")
    s.add_argument("--vip", action="append", required=True)
    s.add_argument("--port", type=int, required=True)
    s.add_argument("--ready", required=True, help="file written once the sockets are bound")
    s.add_argument("--lifetime", type=float, default=120.0)
    args = ap.parse_args()
    refuse_root_netns()
    if args.cmd == "probe":
        cmd_probe(args)
    else:
        cmd_serve(args)


if __name__ == "__main__":
    main()
