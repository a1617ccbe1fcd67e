#!/usr/bin/env python3
"""DNS load shapes for tests/e2e/hardening.bats.

  dns_flood.py frozen ADDR PORT SECONDS
      binds a UDP socket on ADDR:PORT and never reads or answers: a
      resolver that has stopped (for SECONDS).
  dns_flood.py udp ADDR PORT COUNT SUFFIX WAIT
      sends COUNT queries for q<i>.SUFFIX A from one socket, then reads
      answers for WAIT seconds; prints "sent N answered M servfail S".
  dns_flood.py refuse ADDR PORT SECONDS
      a UDP resolver that answers every query REFUSED with no question
      (QDCOUNT 0, legal for an error answer).
"""
import socket
import struct
import sys
import time


def query(qid, name):
    q = struct.pack(">HHHHHH", qid, 0x0100, 1, 0, 0, 0)
    for label in name.rstrip(".").split("."):
        q += bytes([len(label)]) + label.encode()
    return q + b"\x00" + struct.pack(">HH", 1, 1)


def frozen(addr, port, seconds):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind((addr, port))
    print("frozen", flush=True)
    time.sleep(seconds)


def udp(addr, port, count, suffix, wait):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 22)
    for i in range(count):
        s.sendto(query(i & 0xFFFF, "q%d.%s" % (i, suffix)), (addr, port))
    answered = servfail = 0
    end = time.monotonic() + wait
    while True:
        left = end - time.monotonic()
        if left <= 0:
            break
        s.settimeout(left)
        try:
            b = s.recv(65536)
        except socket.timeout:
            break
        answered += 1
        if len(b) >= 4 and (b[3] & 0xF) == 2:
            servfail += 1
    print("sent %d answered %d servfail %d" % (count, answered, servfail))


def refuse(addr, port, seconds):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind((addr, port))
    print("refusing", flush=True)
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        s.settimeout(max(0.01, end - time.monotonic()))
        try:
            q, peer = s.recvfrom(65536)
        except socket.timeout:
            break
        if len(q) < 12:
            continue
        s.sendto(q[:2] + struct.pack(">HHHHH", 0x8005, 0, 0, 0, 0), peer)


if __name__ == "__main__":
    if sys.argv[1] == "frozen":
        frozen(sys.argv[2], int(sys.argv[3]), float(sys.argv[4]))
    elif sys.argv[1] == "refuse":
        refuse(sys.argv[2], int(sys.argv[3]), float(sys.argv[4]))
    elif sys.argv[1] == "udp":
        udp(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), sys.argv[5],
            float(sys.argv[6]))
    else:
        sys.exit(2)
