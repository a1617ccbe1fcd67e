#!/usr/bin/env python3
"""Writes the hand-made seeds of the config, resolv, plain and dotstream
fuzz targets into tests/fuzz/corpus/<target>/seed-*. The plain and
dotstream seeds reuse the real query/answer pairs of corpus/query and
corpus/answer (captured from dig/kdig against unbound). Run from the
repository root; existing files are overwritten, nothing is deleted."""
import base64
import hashlib
import os
import struct

ROOT = "tests/fuzz/corpus"


def put(target, name, data):
    d = os.path.join(ROOT, target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "seed-" + name), "wb") as f:
        f.write(data)


def nul(*words):
    return b"\0".join(w.encode() for w in words)


PIN = base64.b64encode(hashlib.sha256(b"spki").digest()).decode()

# config: first byte 0 = argv, 1 = envp, 2 = file text then argv
put("config", "argv-min", b"\0" + nul("--upstream", "192.0.2.1@853#dot.example"))
put("config", "argv-all", b"\0" + nul(
    "--listen", "127.0.0.1:5300", "--listen", "[::1]:5300",
    "--upstream", "2001:db8::1@853#dot.example^" + PIN,
    "--upstream", "192.0.2.2^" + PIN + "^" + PIN,
    "--ca-file", "/tmp/ca.pem", "--local-zone", "cluster.local",
    "--local-zone", "168.192.in-addr.arpa.", "--timeout", "100",
    "--idle-timeout", "600000", "--client-idle-timeout", "100",
    "--connections", "16", "--max-inflight", "4096",
    "--max-clients", "65536", "--max-pipeline", "1",
    "--shutdown-grace", "0", "--metrics", "127.0.0.1:9153",
    "--log-level", "debug", "--log-format", "json", "--log-queries",
    "--allow-root", "--transparent", "--resolv-conf", "/etc/resolv.conf"))
put("config", "argv-eq", b"\0" + nul("--timeout=250", "--upstream=192.0.2.1#a.example",
                                     "--metrics=off", "--log-queries=yes"))
put("config", "argv-help", b"\0" + nul("--help"))
put("config", "argv-version", b"\0" + nul("--version"))
put("config", "argv-bad", b"\0" + nul("--timeout", "99", "--bogus"))
put("config", "argv-nopin", b"\0" + nul("--upstream", "192.0.2.1@853"))
put("config", "env", b"\1" + nul(
    "DOTPROXY_UPSTREAM=192.0.2.1#a.example,198.51.100.1@8853#b.example",
    "DOTPROXY_LISTEN=127.0.0.1:53,[::1]:53", "DOTPROXY_TIMEOUT=500",
    "DOTPROXY_LOCAL_ZONE=svc.cluster.local,example", "DOTPROXY_TRANSPARENT=1",
    "PATH=/bin", "DOTPROXY_LOG_LEVEL=warn"))
put("config", "file", b"\2" + (
    "# dotproxy\nupstream 192.0.2.1#dot.example\n"
    "upstream 203.0.113.7@853^" + PIN + "\n"
    "listen 127.0.0.1:15353\n  timeout   2000  \nlocal-zone example\n"
    "log-format text\nmetrics [::1]:9100\n\n").encode() +
    b"\0" + nul("--timeout", "3000"))
put("config", "file-bad", b"\2" + b"upstream\nnonsense value\nlisten 1.2.3.4\n")

# resolv.conf
put("resolv", "k8s", b"search default.svc.cluster.local svc.cluster.local cluster.local\n"
    b"nameserver 10.96.0.10\noptions ndots:5\n")
put("resolv", "mixed", b"# comment\n; other\nnameserver 192.0.2.53\n"
    b"nameserver 2001:db8::53\nnameserver fe80::1%eth0\nnameserver 198.51.100.53\n"
    b"nameserver 203.0.113.53\ndomain example.org\noptions timeout:1 ndots:99 rotate\n")
put("resolv", "search-many", b"search a b c d e f g h i j k.\nsearch . x.example\n"
    b"options ndots:0\n")
put("resolv", "tabs-crlf", b"nameserver\t192.0.2.1\r\nsearch\texample.com\r\n")
put("resolv", "long", b"search " + b"a" * 70 + b".example " + (b"b" * 63 + b".") * 4 + b"\n")


def name(text):
    out = b""
    for label in text.rstrip(".").split("."):
        if label:
            out += bytes([len(label)]) + label.encode()
    return out + b"\0"


def read(target, fname):
    with open(os.path.join(ROOT, target, fname), "rb") as f:
        return f.read()


# plain: flags, 2-byte query length, client query, resolver bytes
pairs = []
for q in sorted(os.listdir(os.path.join(ROOT, "query"))):
    if not q.startswith("real-"):
        continue
    num = q.rsplit("-", 1)[1]
    ans = [a for a in os.listdir(os.path.join(ROOT, "answer"))
           if a.startswith("real-") and a.endswith("-%03d" % (int(num) + 1))]
    if ans:
        pairs.append((q, read("query", q), read("answer", ans[0])))
for i, (qn, qb, ab) in enumerate(pairs):
    ab = b"\x7e\x57" + ab[2:]
    put("plain", "udp-" + qn[5:], b"\x00" + struct.pack(">H", len(qb)) + qb + ab)
    if i % 3 == 0:
        put("plain", "tcp-" + qn[5:], b"\x01" + struct.pack(">H", len(qb)) + qb +
            struct.pack(">H", len(ab)) + ab)
        put("plain", "splice-" + qn[5:], b"\x02" + struct.pack(">H", len(qb)) + qb +
            ab[:12] + b"\xc0\x0c\x00\x01\x00\x01\x00\x00\x00\x3c\x00\x04\xc0\x00\x02\x01")
# error answers without a question (FORMERR/NOTIMP/REFUSED, QDCOUNT 0)
if pairs:
    qb = pairs[0][1]
    for rc in (1, 4, 5):
        hdr = struct.pack(">HHHHHH", 0x7E57, 0x8180 | rc, 0, 0, 0, 0)
        put("plain", "qd0-rcode%d" % rc, b"\x00" + struct.pack(">H", len(qb)) + qb + hdr)


# dotstream: queries outstanding, 4 seed bytes, stream
def answer(i, qtype=1, rcode=0, idv=None, qname=None, extra=b""):
    q = name(qname or ("q%d.example" % i)) + struct.pack(">HH", qtype, 1)
    rr = b"\xc0\x0c" + struct.pack(">HHIH", 1, 1, 60, 4) + bytes([192, 0, 2, i & 255])
    msg = struct.pack(">HHHHHH", 0x1000 + i if idv is None else idv, 0x8180 | rcode,
                      1, 1, 0, 0) + q + rr + extra
    return struct.pack(">H", len(msg)) + msg


put("dotstream", "three", b"\x03\x12\x34\x56\x78" + answer(0) + answer(1) + answer(2))
put("dotstream", "stray-dup", b"\x02\x00\x00\x00\x01" + answer(0) + answer(0) +
    answer(5, idv=0x2222) + answer(1))
put("dotstream", "wrong-q", b"\x02\x9a\xbc\xde\xf0" + answer(0, qname="other.example") +
    answer(1, qtype=28) + answer(0))
put("dotstream", "short", b"\x01\x00\x00\x00\x07" + b"\x00\x05hello" + answer(0))
put("dotstream", "zero", b"\x01\x00\x00\x00\x07" + answer(0) + b"\x00\x00" + answer(0))
put("dotstream", "prefix-too-big", b"\x01\x11\x11\x11\x11" + b"\xff\xff" + answer(0)[2:])
put("dotstream", "qd0-refused", b"\x01\x00\x00\x00\x03" +
    struct.pack(">HHHHHHH", 12, 0x1000, 0x8185, 0, 0, 0, 0) + answer(0))
put("dotstream", "sixteen", b"\x10\xde\xad\xbe\xef" + b"".join(answer(i) for i in range(16)))

# http: request heads as the operations endpoint gets them
for name, head in [
        ("get-metrics", b"GET /metrics HTTP/1.1\r\nHost: 127.0.0.1:9153\r\n"
                        b"User-Agent: Prometheus/2.45\r\nAccept: text/plain\r\n\r\n"),
        ("head-livez", b"HEAD /livez HTTP/1.0\r\n\r\n"),
        ("readyz-verbose", b"GET /readyz?verbose HTTP/1.1\n\n"),
        ("post", b"POST /metrics HTTP/1.1\r\nContent-Length: 3\r\n\r\nabc"),
        ("nul-before-end", b"GET /livez HTTP/1.1\r\nX: a\x00b\r\n\r\n"),
        ("partial", b"GET /metr"),
        ("no-version", b"GET /metrics\r\n\r\n"),
        ("no-slash", b"GET metrics HTTP/1.1\r\n\r\n"),
        ("lf-crlf", b"GET / HTTP/1.1\n\r\n"),
        ("tab-ctl", b"GET /\t HTTP/1.1\r\nA:\x01\r\n\r\n"),
        ("pipelined", b"GET /livez HTTP/1.1\r\n\r\nGET /readyz HTTP/1.1\r\n\r\n")]:
    put("http", name, head)


# nlreply: netlink replies (conntrack, sock_diag, errors)
def nlmsg(mtype, flags, payload):
    ln = 16 + len(payload)
    return struct.pack("=IHHII", ln, mtype, flags, 1, 0) + payload


def attr(atype, data, nested=False):
    ln = 4 + len(data)
    return struct.pack("=HH", ln, atype | (0x8000 if nested else 0)) + data + \
        b"\0" * ((4 - ln % 4) % 4)


def ct_reply(v6, src, dst, sport, dport, mtype=1):
    if v6:
        ips = attr(3, src) + attr(4, dst)
    else:
        ips = attr(1, src) + attr(2, dst)
    proto = attr(1, b"\x11") + attr(2, struct.pack(">H", sport)) + \
        attr(3, struct.pack(">H", dport))
    tup = attr(1, ips, True) + attr(2, proto, True)
    body = struct.pack("=BBH", 10 if v6 else 2, 0, 0) + attr(1, tup, True) + \
        attr(2, tup, True) + attr(8, struct.pack(">I", 1)) + attr(18, struct.pack(">H", 1))
    return nlmsg((1 << 8) | mtype, 0, body)


put("nlreply", "ct-v4", ct_reply(False, bytes([192, 0, 2, 2]), bytes([192, 0, 2, 53]),
                                 40000, 53))
put("nlreply", "ct-v4-new", ct_reply(False, bytes([198, 51, 100, 7]),
                                     bytes([203, 0, 113, 9]), 1234, 53, mtype=0))
put("nlreply", "ct-v6", ct_reply(True, bytes.fromhex("20010db8" + "00" * 11 + "02"),
                                 bytes.fromhex("20010db8" + "00" * 11 + "35"), 5353, 53))
put("nlreply", "err-enoent", nlmsg(2, 0, struct.pack("=i", -2) + nlmsg((1 << 8) | 1, 1, b"")))
put("nlreply", "err-ack", nlmsg(2, 0, struct.pack("=i", 0) + nlmsg(20, 1, b"")))
put("nlreply", "err-short", nlmsg(2, 0, b"\xfe\xff"))
diag = struct.pack("=BBBB", 2, 1, 0, 0) + struct.pack(">HH", 15353, 40000) + \
    bytes([127, 0, 0, 1]) + b"\0" * 12 + bytes([127, 0, 0, 1]) + b"\0" * 12 + \
    struct.pack("=I", 0) + struct.pack("=II", 0xffffffff, 0xffffffff) + \
    struct.pack("=IIIII", 0, 0, 0, 1000, 12345)
put("nlreply", "diag-uid1000", nlmsg(20, 0, diag))
put("nlreply", "diag-short", nlmsg(20, 0, diag[:40]))
put("nlreply", "done", nlmsg(3, 2, struct.pack("=i", 0)))
