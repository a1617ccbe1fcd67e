#!/usr/bin/env python3
"""hostile_dot: a DNS-over-TLS (or, with --plain, DNS-over-TCP) server for
the tests that misbehaves on purpose, chosen per query name.

    hostile_dot.py --listen ADDR:PORT [--listen ...] [--cert PEM --key KEY]
                   [--plain] [--rules FILE] [--rule 'NAME ACTION [ARG]']...
                   [--handshake-alert N] [--rcvbuf BYTES] [--log FILE]

Rules, one per line ("#" starts a comment), first match wins:
    NAME ACTION [ARG]
NAME is a query name without the trailing dot, "*.SUFFIX" for the names
under SUFFIX, or "*" for every name; case is ignored. A name no rule
matches gets "answer".

Actions (the answer is A ARG-or-203.0.113.7 for type A, empty NOERROR for
other types; the question is echoed, no compression surprises):
    answer [ADDR]      the answer
    delay MS           the answer after MS milliseconds
    rcode N            the question echoed with RCODE N, no records
    noq N              a bare header, QDCOUNT 0, RCODE N (legal for
                       FORMERR, NOTIMP and REFUSED)
    wrong-id           an answer whose ID was never sent; nothing else
    wrong-id-then      an answer with a wrong ID, then the right answer
    wrong-question     the right ID, another question; nothing else
    wrong-question-then  the right ID and another question, then the answer
    duplicate          the answer twice
    unasked            an answer to a question never asked (its own ID),
                       then the right answer
    big-prefix         a length prefix 64 bytes larger than the answer that
                       follows; afterwards nothing more is written on this
                       connection (reading goes on)
    drip MS            the framed answer one byte per write, MS apart
    close-mid          half of the framed answer, then a clean TLS close
    reset-mid          half of the framed answer, then a TCP reset
    tls-alert          a fatal TLS alert record (internal_error) written
                       under the TLS layer, then a reset
    stop-reading       never read from this connection again, never answer
    deaf-drain MS      stop reading now; MS milliseconds later answer this
                       query with an EDNS edns-tcp-keepalive of 0 (RFC 7828:
                       the client is to close the connection); then never
                       read again
    drop               no answer (the connection stays)
    close              close the connection without answering

--handshake-alert N: the first N TLS connections get a plaintext fatal
handshake_failure alert in reply to their ClientHello and are closed.
--rcvbuf sets SO_RCVBUF on the listeners (so that stop-reading fills the
window quickly).

Logs one line per event to --log (default stderr): "listening ...",
"conn=N open peer=...", "conn=N query id=... name=... type=... action=...",
"conn=N closed how=...". Ends cleanly on SIGTERM. Python 3 standard
library only; a test tool, never part of the product.
"""
import argparse
import asyncio
import fnmatch
import os
import signal
import socket
import ssl
import struct
import sys

LOG = sys.stderr
DEFAULT_ADDR = "203.0.113.7"


def log(msg):
    LOG.write(msg + "\n")
    LOG.flush()


def parse_rules(lines):
    rules = []
    for raw in lines:
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        words = line.split()
        if len(words) < 2:
            raise SystemExit("hostile_dot: bad rule: %r" % raw)
        rules.append((words[0].lower().rstrip("."), words[1], words[2:]))
    return rules


def match(rules, name):
    name = name.lower().rstrip(".")
    for pat, action, args in rules:
        if pat == "*" or pat == name:
            return action, args
        if pat.startswith("*.") and (name.endswith(pat[1:]) or
                                     fnmatch.fnmatchcase(name, pat)):
            return action, args
    return "answer", []


def parse_query(msg):
    """(id, flags, question bytes, name text, qtype) or None."""
    if len(msg) < 12:
        return None
    qid, flags, qd = struct.unpack(">HHH", msg[:6])
    if qd < 1:
        return qid, flags, b"", "", 0
    off, labels = 12, []
    while True:
        if off >= len(msg):
            return None
        n = msg[off]
        if n == 0:
            off += 1
            break
        if n > 63 or off + 1 + n > len(msg):
            return None
        labels.append(msg[off + 1:off + 1 + n].decode("ascii", "replace"))
        off += 1 + n
    if off + 4 > len(msg):
        return None
    qtype = struct.unpack(">H", msg[off:off + 2])[0]
    return qid, flags, msg[12:off + 4], ".".join(labels), qtype


def wire_name(text):
    out = b""
    for label in text.rstrip(".").split("."):
        if label:
            out += bytes([len(label)]) + label.encode()
    return out + b"\0"


def build(qid, flags, question, qtype, rcode=0, addr=DEFAULT_ADDR):
    """An answer: QR, RA, RD copied, the question, an A record if fitting."""
    hflags = 0x8080 | (flags & 0x0100) | (rcode & 0xF)
    rrs = b""
    an = 0
    if rcode == 0 and qtype == 1 and question:
        rrs = b"\xc0\x0c" + struct.pack(">HHIH", 1, 1, 60, 4) + \
            socket.inet_aton(addr)
        an = 1
    qd = 1 if question else 0
    return struct.pack(">HHHHHH", qid, hflags, qd, an, 0, 0) + question + rrs


def with_keepalive0(msg):
    """msg with an OPT record carrying edns-tcp-keepalive, timeout 0."""
    opt = b"\x00" + struct.pack(">HHIH", 41, 1232, 0, 6) + \
        struct.pack(">HHH", 11, 2, 0)
    ar = struct.unpack(">H", msg[10:12])[0] + 1
    return msg[:10] + struct.pack(">H", ar) + msg[12:] + opt


def frame(msg):
    return struct.pack(">H", len(msg)) + msg


class Conn:
    count = 0

    def __init__(self, srv, reader, writer):
        Conn.count += 1
        self.n = Conn.count
        self.srv = srv
        self.reader = reader
        self.writer = writer
        self.lock = asyncio.Lock()
        self.poisoned = False
        self.closed = False
        self.tasks = set()

    def spawn(self, coro):
        t = asyncio.ensure_future(coro)
        self.tasks.add(t)
        t.add_done_callback(self.tasks.discard)

    async def send(self, data):
        if self.closed or self.poisoned:
            return
        async with self.lock:
            if self.closed or self.poisoned:
                return
            self.writer.write(data)
            try:
                await self.writer.drain()
            except (ConnectionError, ssl.SSLError, OSError):
                self.closed = True

    def close(self, how):
        if self.closed:
            return
        self.closed = True
        log("conn=%d closed how=%s" % (self.n, how))
        if how == "reset":
            sock = self.writer.get_extra_info("socket")
            if sock is not None:
                try:
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                                    struct.pack("ii", 1, 0))
                except OSError:
                    pass
            self.writer.transport.abort()
        else:
            self.writer.close()

    def stop_reading(self):
        """Stops reading the socket itself: under TLS, pausing the stream
        would only stop delivery while asyncio's TLS layer went on reading
        (and buffering) what the peer sends."""
        t = self.writer.transport
        ssl_proto = getattr(t, "_ssl_protocol", None)
        raw = getattr(ssl_proto, "_transport", None) if ssl_proto else None
        t.pause_reading()
        if raw is not None:
            raw.pause_reading()
        self.stopped = True

    async def act(self, action, args, qid, flags, question, qtype):
        answer = build(qid, flags, question, qtype,
                       addr=args[0] if action == "answer" and args
                       else DEFAULT_ADDR)
        if action == "answer":
            await self.send(frame(answer))
        elif action == "delay":
            await asyncio.sleep(int(args[0]) / 1000)
            await self.send(frame(answer))
        elif action == "rcode":
            await self.send(frame(build(qid, flags, question, qtype,
                                        rcode=int(args[0]))))
        elif action == "noq":
            await self.send(frame(build(qid, flags, b"", qtype,
                                        rcode=int(args[0]))))
        elif action in ("wrong-id", "wrong-id-then"):
            await self.send(frame(build(qid ^ 0x5a5a, flags, question,
                                        qtype)))
            if action == "wrong-id-then":
                await self.send(frame(answer))
        elif action in ("wrong-question", "wrong-question-then"):
            other = wire_name("not-what-was-asked.invalid") + question[-4:]
            await self.send(frame(build(qid, flags, other, qtype)))
            if action == "wrong-question-then":
                await self.send(frame(answer))
        elif action == "duplicate":
            await self.send(frame(answer) + frame(answer))
        elif action == "unasked":
            other = wire_name("never-asked.invalid") + b"\x00\x01\x00\x01"
            await self.send(frame(build(qid ^ 0x1234, 0x0100, other, 1)))
            await self.send(frame(answer))
        elif action == "big-prefix":
            await self.send(struct.pack(">H", len(answer) + 64) + answer)
            self.poisoned = True
        elif action == "drip":
            ms = int(args[0]) if args else 20
            async with self.lock:
                for b in frame(answer):
                    if self.closed:
                        return
                    self.writer.write(bytes([b]))
                    try:
                        await self.writer.drain()
                    except (ConnectionError, ssl.SSLError, OSError):
                        self.closed = True
                        return
                    await asyncio.sleep(ms / 1000)
        elif action in ("close-mid", "reset-mid"):
            data = frame(answer)
            async with self.lock:
                if self.closed:
                    return
                self.writer.write(data[:len(data) // 2])
                try:
                    await self.writer.drain()
                except (ConnectionError, ssl.SSLError, OSError):
                    pass
                self.close("clean" if action == "close-mid" else "reset")
        elif action == "tls-alert":
            async with self.lock:
                if self.closed:
                    return
                sock = self.writer.get_extra_info("socket")
                # Record type 21 (alert), TLS 1.2 record version, length
                # 2: fatal (2), internal_error (80).
                if sock is not None:
                    try:
                        os.write(sock.fileno(),
                                 b"\x15\x03\x03\x00\x02\x02\x50")
                    except OSError:
                        pass
                self.close("reset")
        elif action == "stop-reading":
            self.stop_reading()
        elif action == "deaf-drain":
            self.stop_reading()
            self.stopped = True
            await asyncio.sleep(int(args[0]) / 1000 if args else 0.5)
            await self.send(frame(with_keepalive0(answer)))
        elif action == "drop":
            pass
        elif action == "close":
            self.close("clean")
        else:
            log("conn=%d unknown action %s: answering" % (self.n, action))
            await self.send(frame(answer))

    async def run(self):
        peer = self.writer.get_extra_info("peername")
        log("conn=%d open peer=%s" % (self.n, peer[0] if peer else "?"))
        self.stopped = False
        try:
            while not self.closed:
                hdr = await self.reader.readexactly(2)
                n = struct.unpack(">H", hdr)[0]
                msg = await self.reader.readexactly(n) if n else b""
                q = parse_query(msg)
                if q is None:
                    log("conn=%d unparsable query len=%d" % (self.n, n))
                    continue
                qid, flags, question, name, qtype = q
                action, args = match(self.srv.rules, name)
                log("conn=%d query id=%04x name=%s type=%d action=%s" %
                    (self.n, qid, name, qtype, action))
                self.spawn(self.act(action, args, qid, flags, question,
                                    qtype))
                if action in ("stop-reading", "deaf-drain"):
                    # Never read again; hold the connection open.
                    await asyncio.Event().wait()
        except (asyncio.IncompleteReadError, ConnectionError, ssl.SSLError,
                OSError):
            pass
        # Let pending answers (delay, drip) finish before closing.
        if self.tasks:
            await asyncio.gather(*list(self.tasks), return_exceptions=True)
        if not self.closed:
            log("conn=%d closed how=eof" % self.n)
            self.closed = True
            try:
                self.writer.close()
            except Exception:
                pass


class Server:
    def __init__(self, opts):
        self.opts = opts
        self.rules = []
        self.alerts_left = opts.handshake_alert
        self.ctx = None
        if not opts.plain:
            self.ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            self.ctx.load_cert_chain(opts.cert, opts.key)

    async def on_client(self, reader, writer):
        if self.ctx is not None:
            if self.alerts_left > 0:
                self.alerts_left -= 1
                Conn.count += 1
                n = Conn.count
                try:
                    await asyncio.wait_for(reader.read(4096), 2)
                    # Plaintext fatal handshake_failure (40).
                    writer.write(b"\x15\x03\x01\x00\x02\x02\x28")
                    await writer.drain()
                except (asyncio.TimeoutError, ConnectionError, OSError):
                    pass
                log("conn=%d closed how=handshake-alert" % n)
                writer.close()
                return
            try:
                await writer.start_tls(self.ctx)
            except (ssl.SSLError, ConnectionError, OSError) as e:
                Conn.count += 1
                log("conn=%d closed how=handshake-failed err=%s" %
                    (Conn.count, e))
                writer.close()
                return
        await Conn(self, reader, writer).run()


async def main():
    ap = argparse.ArgumentParser(description="a misbehaving DoT server")
    ap.add_argument("--listen", action="append", required=True)
    ap.add_argument("--cert")
    ap.add_argument("--key")
    ap.add_argument("--plain", action="store_true")
    ap.add_argument("--rules")
    ap.add_argument("--rule", action="append", default=[])
    ap.add_argument("--handshake-alert", type=int, default=0)
    ap.add_argument("--rcvbuf", type=int, default=0)
    ap.add_argument("--log")
    opts = ap.parse_args()
    global LOG
    if opts.log:
        LOG = open(opts.log, "a", buffering=1)
    if not opts.plain and not (opts.cert and opts.key):
        raise SystemExit("hostile_dot: --cert and --key, or --plain")
    srv = Server(opts)
    lines = list(opts.rule)
    if opts.rules:
        with open(opts.rules) as f:
            lines = f.read().splitlines() + lines
    srv.rules = parse_rules(lines)
    servers = []
    for spec in opts.listen:
        host, _, port = spec.rpartition(":")
        host = host.strip("[]")
        fam = socket.AF_INET6 if ":" in host else socket.AF_INET
        sock = socket.socket(fam, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if opts.rcvbuf:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, opts.rcvbuf)
        if fam == socket.AF_INET6:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        sock.bind((host, int(port)))
        sock.listen(128)
        servers.append(await asyncio.start_server(srv.on_client, sock=sock))
    log("listening on %s (%s), %d rules" %
        (" ".join(opts.listen), "tcp" if opts.plain else "tls",
         len(srv.rules)))
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    loop.add_signal_handler(signal.SIGINT, stop.set)
    await stop.wait()
    for s in servers:
        s.close()
    log("stopped")


if __name__ == "__main__":
    asyncio.run(main())
