#!/usr/bin/env python3
"""Time to fail open, for tests/e2e/nodelocal.bats and tests/bench.

  failopen_probe.py SERVER PID WANT [LIMIT_S]
      asks SERVER:53 for whoami.test A every 2 ms from one UDP socket,
      sends SIGKILL to PID once the first answer is in, and prints
      "failopen_ms=M unanswered=U" where M is the time from the kill to
      the first answer carrying the address WANT (what only the fallback,
      CoreDNS, answers) and U the queries sent after the kill that had no
      answer by then. Exit 1 if no such answer came within LIMIT_S
      (default 5) seconds.

A 2 ms pace (not one dig after the other, whose shortest timeout is 1 s)
makes the figure the kernel's and the rules', not a client's retry timer.
"""
import os
import select
import signal
import socket
import struct
import sys
import time


def query(qid):
    qname = b"".join(bytes([len(l)]) + l for l in (b"whoami", b"test")) + b"\0"
    return struct.pack("!6H", qid, 0x0100, 1, 0, 0, 0) + qname + struct.pack("!2H", 1, 1)


def skip_name(msg, off):
    while True:
        n = msg[off]
        if n >= 0xC0:
            return off + 2
        if n == 0:
            return off + 1
        off += 1 + n


def a_records(msg):
    """The IPv4 addresses in the answer section (empty on anything odd)."""
    try:
        qd, an = struct.unpack("!2H", msg[4:8])
        off = 12
        for _ in range(qd):
            off = skip_name(msg, off) + 4
        out = []
        for _ in range(an):
            off = skip_name(msg, off)
            rtype, _, _, rdlen = struct.unpack("!2HIH", msg[off:off + 10])
            off += 10
            if rtype == 1 and rdlen == 4:
                out.append(socket.inet_ntoa(msg[off:off + 4]))
            off += rdlen
        return out
    except (IndexError, struct.error):
        return []


def main():
    server, pid, want = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    limit = float(sys.argv[4]) if len(sys.argv) > 4 else 5.0
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.connect((server, 53))
    s.setblocking(False)
    qid = 0
    sent_after = {}
    answered = set()
    t_kill = None
    start = time.monotonic()
    next_send = start
    while True:
        now = time.monotonic()
        if t_kill is not None and now - t_kill > limit:
            print("failopen_ms=none unanswered=%d" % (len(sent_after) - len(answered)))
            return 1
        if t_kill is None and now - start > limit:
            print("no answer before the kill")
            return 1
        if now >= next_send:
            qid = (qid + 1) & 0xFFFF
            try:
                s.send(query(qid))
            except OSError:
                pass  # ICMP unreachable reported on a connected socket
            if t_kill is not None:
                sent_after[qid] = now
            next_send = now + 0.002
        r, _, _ = select.select([s], [], [], max(0.0, next_send - time.monotonic()))
        if not r:
            continue
        try:
            msg = s.recv(4096)
        except OSError:
            continue
        if len(msg) < 12:
            continue
        rid = struct.unpack("!H", msg[:2])[0]
        if t_kill is None:
            os.kill(pid, signal.SIGKILL)
            t_kill = time.monotonic()
            continue
        answered.add(rid)
        if want in a_records(msg):
            ms = (time.monotonic() - t_kill) * 1000
            lost = sum(1 for q, t in sent_after.items() if q not in answered)
            print("failopen_ms=%.1f unanswered=%d" % (ms, lost))
            return 0


if __name__ == "__main__":
    sys.exit(main())
