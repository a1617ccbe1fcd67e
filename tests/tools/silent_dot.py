#!/usr/bin/python3
"""A DoT server for one test: it answers every A query with 203.0.113.1,
except names whose first label starts with "drop", which it reads and
never answers, keeping the connection open. unbound cannot stand in here:
its "deny" closes the TCP connection instead of staying silent.

usage: silent_dot.py ADDR PORT CERT KEY
"""
import asyncio
import ssl
import struct
import sys


def answer(query):
    """The answer to query, or None for a name to leave unanswered."""
    if len(query) < 12:
        return None
    qid = struct.unpack(">H", query[:2])[0]
    i = 12
    while i < len(query) and query[i] != 0:
        i += 1 + query[i]
    end = i + 5
    if end > len(query) or query[13:13 + query[12]].lower().startswith(b"drop"):
        return None
    return (struct.pack(">HHHHHH", qid, 0x8180, 1, 1, 0, 0) + query[12:end] +
            b"\xc0\x0c\x00\x01\x00\x01\x00\x00\x00\x3c\x00\x04" +
            bytes([203, 0, 113, 1]))


async def serve(reader, writer):
    try:
        while True:
            n = struct.unpack(">H", await reader.readexactly(2))[0]
            a = answer(await reader.readexactly(n))
            if a is not None:
                writer.write(struct.pack(">H", len(a)) + a)
                await writer.drain()
    except (asyncio.IncompleteReadError, ConnectionError, ssl.SSLError):
        pass
    finally:
        writer.close()


async def main():
    addr, port, cert, key = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert, key)
    server = await asyncio.start_server(serve, addr, port, ssl=ctx)
    async with server:
        await server.serve_forever()


asyncio.run(main())
