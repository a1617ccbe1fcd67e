#!/usr/bin/env python3
"""Hostile HTTP clients for the operations endpoint (tests/e2e/hardening.bats).

  http_hostile.py raw HOST PORT HEX WAIT
      connects, sends the bytes HEX, reads until the peer closes or WAIT
      seconds pass; prints "<elapsed ms> <bytes read>" then the bytes read
      (as text, on the next lines).
  http_hostile.py flood HOST PORT SECONDS
      for SECONDS, keeps opening connections that send nothing (at most 200
      held at once, the oldest closed first); prints how many it opened.
  http_hostile.py hold HOST PORT N SECONDS
      opens N TCP connections that send nothing and holds them for
      SECONDS; prints how many connected (any TCP listener will do).
"""
import socket
import sys
import time


def raw(host, port, data, wait):
    s = socket.create_connection((host, port), timeout=wait)
    t0 = time.monotonic()
    s.sendall(data)
    got = b""
    try:
        while True:
            b = s.recv(65536)
            if not b:
                break
            got += b
    except socket.timeout:
        pass
    ms = int((time.monotonic() - t0) * 1000)
    print(ms, len(got))
    sys.stdout.write(got.decode("latin-1"))


def flood(host, port, seconds):
    held = []
    n = 0
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        try:
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.setblocking(False)
            s.connect_ex((host, port))
            held.append(s)
            n += 1
        except OSError:
            time.sleep(0.001)
        if len(held) > 200:
            held.pop(0).close()
    for s in held:
        s.close()
    print(n)


def hold(host, port, count, seconds):
    held = []
    for _ in range(count):
        try:
            held.append(socket.create_connection((host, port), timeout=2))
        except OSError:
            break
    print(len(held), flush=True)
    time.sleep(seconds)
    for s in held:
        s.close()


if __name__ == "__main__":
    if sys.argv[1] == "raw":
        raw(sys.argv[2], int(sys.argv[3]), bytes.fromhex(sys.argv[4]),
            float(sys.argv[5]))
    elif sys.argv[1] == "hold":
        hold(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]),
             float(sys.argv[5]))
    elif sys.argv[1] == "flood":
        flood(sys.argv[2], int(sys.argv[3]), float(sys.argv[4]))
    else:
        sys.exit(2)
