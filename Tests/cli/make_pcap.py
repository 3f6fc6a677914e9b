#!/usr/bin/env python3
"""Writes a small Ethernet pcap for the replay tests (stdlib only).

Usage: make_pcap.py OUT.pcap [--hostile]
Packets, in order: v4 TCP SYN to 10.100.0.1:80, the same flow's ACK, a
non-VIP v4 TCP SYN, an ARP request, a v6 TCP SYN to [fd00:100::1]:443,
a VIP packet whose TCP header is cut short (IP length consistent).
With --hostile: a v4 SYN to the VIP, a 10-byte frame, a 3520-byte v4 SYN to
the VIP (the most a test run passes whole on 4 KiB pages), a 4000-byte one,
and the first SYN again.
"""
import socket
import struct
import sys

NODE = bytes.fromhex("0200000000a1")
ROUTER = bytes.fromhex("020000000001")


def csum(data):
    if len(data) % 2:
        data += b"\0"
    s = sum(struct.unpack("!%dH" % (len(data) // 2), data))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return (~s) & 0xFFFF


def tcp(src, dst, sport, dport, flags, v6=False):
    hdr = struct.pack("!HHIIBBHHH", sport, dport, 1, 0, 0x50, flags, 65535, 0, 0)
    if v6:
        pseudo = src + dst + struct.pack("!IxxxB", len(hdr), 6)
    else:
        pseudo = src + dst + struct.pack("!xBH", 6, len(hdr))
    c = csum(pseudo + hdr)
    return hdr[:16] + struct.pack("!H", c) + hdr[18:]


def ipv4(src, dst, payload, proto=6):
    h = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(payload), 0, 0x4000, 64, proto, 0, src, dst)
    h = h[:10] + struct.pack("!H", csum(h)) + h[12:]
    return h + payload


def ipv6(src, dst, payload, nh=6):
    return struct.pack("!IHBB", 6 << 28, len(payload), nh, 64) + src + dst + payload


def eth(etype, payload, dst=NODE):
    return dst + ROUTER + struct.pack("!H", etype) + payload


def a4(s):
    return socket.inet_pton(socket.AF_INET, s)


def a6(s):
    return socket.inet_pton(socket.AF_INET6, s)


client, vip = a4("192.0.2.10"), a4("10.100.0.1")
c6, v6 = a6("2001:db8::10"), a6("fd00:100::1")
frames = [
    eth(0x0800, ipv4(client, vip, tcp(client, vip, 40000, 80, 0x02))),
    eth(0x0800, ipv4(client, vip, tcp(client, vip, 40000, 80, 0x10))),
    eth(0x0800, ipv4(client, a4("10.9.9.9"), tcp(client, a4("10.9.9.9"), 40000, 80, 0x02))),
    eth(0x0806, bytes.fromhex("0001080006040001") + ROUTER + a4("10.0.1.1") + bytes(6) + a4("10.0.1.2"), dst=b"\xff" * 6),
    eth(0x86DD, ipv6(c6, v6, tcp(c6, v6, 40000, 443, 0x02, v6=True))),
    eth(0x0800, ipv4(client, vip, tcp(client, vip, 40001, 80, 0x02)[:10])),
]
if sys.argv[2:] == ["--hostile"]:
    def syn_of(total):
        seg = tcp(client, vip, 40002, 80, 0x02)
        return eth(0x0800, ipv4(client, vip, seg + b"x" * (total - 14 - 20 - len(seg))))
    frames = [frames[0], b"\x02" * 10, syn_of(3520), syn_of(4000), frames[0]]
with open(sys.argv[1], "wb") as f:
    f.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1))
    for i, fr in enumerate(frames):
        f.write(struct.pack("<IIII", 1700000000 + i, 0, len(fr), len(fr)))
        f.write(fr)
