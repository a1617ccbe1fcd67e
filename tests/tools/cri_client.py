#!/usr/bin/env python3
"""cri_client: a small CRI v1 client that does what the kubelet does for a
pod, for tests/e2e/cri.bats. It speaks gRPC (Debian's python3-grpcio) to a
container runtime's socket; the few CRI messages it needs are encoded and
decoded by hand below (protobuf wire format), field numbers as in
k8s.io/cri-api pkg/apis/runtime/v1/api.proto, so that neither protoc nor
the .proto file is needed.

  cri_client.py SOCKET version
  cri_client.py SOCKET status                     the runtime's info map (JSON)
  cri_client.py SOCKET runp POD.json              prints the sandbox id
  cri_client.py SOCKET create SANDBOX-ID CTR.json POD.json   prints the id
  cri_client.py SOCKET start CONTAINER-ID
  cri_client.py SOCKET exec CONTAINER-ID TIMEOUT CMD...   ExecSync; stdout
                                                  and stderr passed through,
                                                  exits with its exit code
  cri_client.py SOCKET inspectp SANDBOX-ID        status as JSON (id, state,
                                                  ip, info with pid)
  cri_client.py SOCKET stopp SANDBOX-ID
  cri_client.py SOCKET rmp SANDBOX-ID
  cri_client.py SOCKET pods                       sandbox ids, one a line

POD.json: {"name", "uid", "namespace", "hostname", "log_directory",
"annotations": {}, "labels": {}, "dns": {"servers", "searches", "options"},
"cgroup_parent"}. CTR.json: {"name", "image", "command": [], "args": [],
"envs": {}, "mounts": [{"host_path", "container_path", "readonly"}],
"log_path", "run_as_user", "run_as_group", "readonly_rootfs"}.
Exit status: 0 ok; 1 the call failed (the gRPC status on stderr); 2 usage.
"""

import json
import sys

import grpc

SERVICE = "/runtime.v1.RuntimeService/"
DEADLINE = 120

# ---- protobuf wire format: just enough for these messages ----


def varint(n):
    if n < 0:
        n += 1 << 64
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def f_len(num, data):
    return varint(num << 3 | 2) + varint(len(data)) + data


def f_str(num, s):
    # proto3: an empty string is the default and is not sent.
    if not s:
        return b""
    return f_len(num, s.encode() if isinstance(s, str) else s)


def f_int(num, n):
    if not n:
        return b""
    return varint(num << 3) + varint(n)


def f_msg(num, data):
    # A present sub-message is sent even when empty.
    return f_len(num, data)


def f_map(num, d):
    return b"".join(f_msg(num, f_str(1, k) + f_str(2, v))
                    for k, v in sorted((d or {}).items()))


def f_strs(num, xs):
    return b"".join(f_len(num, x.encode()) for x in xs or [])


def parse(data):
    """Returns {field number: [values]}; varints as int, the rest as bytes."""
    out = {}
    i = 0
    while i < len(data):
        key, i = read_varint(data, i)
        num, wt = key >> 3, key & 7
        if wt == 0:
            v, i = read_varint(data, i)
        elif wt == 2:
            n, i = read_varint(data, i)
            v = data[i:i + n]
            i += n
        elif wt == 1:
            v = data[i:i + 8]
            i += 8
        elif wt == 5:
            v = data[i:i + 4]
            i += 4
        else:
            raise ValueError("wire type %d" % wt)
        out.setdefault(num, []).append(v)
    return out


def read_varint(data, i):
    n = shift = 0
    while True:
        b = data[i]
        i += 1
        n |= (b & 0x7F) << shift
        shift += 7
        if not b & 0x80:
            return n, i


def one(fields, num, default=b""):
    return fields.get(num, [default])[-1]


def text(fields, num):
    return one(fields, num).decode()


def pmap(fields, num):
    d = {}
    for entry in fields.get(num, []):
        e = parse(entry)
        d[text(e, 1)] = text(e, 2)
    return d

# ---- CRI messages ----


def pod_config(p):
    meta = (f_str(1, p["name"]) + f_str(2, p.get("uid", "")) +
            f_str(3, p.get("namespace", "default")) +
            f_int(4, p.get("attempt", 0)))
    dns = p.get("dns") or {}
    dnsconf = (f_strs(1, dns.get("servers")) + f_strs(2, dns.get("searches")) +
               f_strs(3, dns.get("options")))
    # LinuxPodSandboxConfig: cgroup_parent 1, security_context 2
    # (LinuxSandboxSecurityContext: namespace_options 1, all POD = 0).
    linux = (f_str(1, p.get("cgroup_parent", "")) +
             f_msg(2, f_msg(1, b"")))
    return (f_msg(1, meta) + f_str(2, p.get("hostname", p["name"])) +
            f_str(3, p.get("log_directory", "")) + f_msg(4, dnsconf) +
            f_map(6, p.get("labels")) + f_map(7, p.get("annotations")) +
            f_msg(8, linux))


def container_config(c):
    meta = f_str(1, c["name"]) + f_int(2, c.get("attempt", 0))
    envs = b"".join(f_msg(6, f_str(1, k) + f_str(2, v))
                    for k, v in sorted((c.get("envs") or {}).items()))
    mounts = b"".join(
        f_msg(7, f_str(1, m["container_path"]) + f_str(2, m["host_path"]) +
              f_int(3, 1 if m.get("readonly") else 0))
        for m in c.get("mounts") or [])
    # LinuxContainerSecurityContext: run_as_user 5 and run_as_group 12
    # (Int64Value), readonly_rootfs 7, no_new_privs 11; capabilities 1
    # (Capability: drop 2).
    sec = b""
    if c.get("drop_capabilities"):
        sec += f_msg(1, f_strs(2, c["drop_capabilities"]))
    if "run_as_user" in c:
        sec += f_msg(5, f_int(1, c["run_as_user"]))
    if "run_as_group" in c:
        sec += f_msg(12, f_int(1, c["run_as_group"]))
    sec += f_int(7, 1 if c.get("readonly_rootfs") else 0)
    sec += f_int(11, 1 if c.get("no_new_privs") else 0)
    return (f_msg(1, meta) + f_msg(2, f_str(1, c["image"])) +
            f_strs(3, c.get("command")) + f_strs(4, c.get("args")) +
            envs + mounts + f_map(9, c.get("labels")) +
            f_map(10, c.get("annotations")) + f_str(11, c.get("log_path", "")) +
            f_msg(15, f_msg(2, sec)))


STATES = {0: "SANDBOX_READY", 1: "SANDBOX_NOTREADY"}


class Client:
    def __init__(self, socket):
        self.ch = grpc.insecure_channel("unix://" + socket)

    def call(self, method, req, timeout=DEADLINE):
        fn = self.ch.unary_unary(SERVICE + method,
                                 request_serializer=lambda b: b,
                                 response_deserializer=lambda b: b)
        return parse(fn(req, timeout=timeout))


def main(argv):
    if len(argv) < 3:
        print(__doc__, file=sys.stderr)
        return 2
    cli = Client(argv[1])
    cmd, args = argv[2], argv[3:]
    if cmd == "version":
        r = cli.call("Version", f_str(1, "v1"))
        print(json.dumps({"version": text(r, 1), "runtime_name": text(r, 2),
                          "runtime_version": text(r, 3),
                          "runtime_api_version": text(r, 4)}))
    elif cmd == "status":
        r = cli.call("Status", f_int(1, 1))
        print(json.dumps(pmap(r, 2)))
    elif cmd == "runp" and len(args) == 1:
        with open(args[0]) as f:
            p = json.load(f)
        r = cli.call("RunPodSandbox", f_msg(1, pod_config(p)))
        print(text(r, 1))
    elif cmd == "create" and len(args) == 3:
        with open(args[1]) as f:
            c = json.load(f)
        with open(args[2]) as f:
            p = json.load(f)
        r = cli.call("CreateContainer", f_str(1, args[0]) +
                     f_msg(2, container_config(c)) + f_msg(3, pod_config(p)))
        print(text(r, 1))
    elif cmd == "start" and len(args) == 1:
        cli.call("StartContainer", f_str(1, args[0]))
    elif cmd == "exec" and len(args) >= 3:
        t = int(args[1])
        r = cli.call("ExecSync", f_str(1, args[0]) + f_strs(2, args[2:]) +
                     f_int(3, t), timeout=t + 30)
        sys.stdout.buffer.write(one(r, 1))
        sys.stderr.buffer.write(one(r, 2))
        code = one(r, 3, 0) & 0xFF
        return code if code or not one(r, 3, 0) else 1
    elif cmd == "inspectp" and len(args) == 1:
        r = cli.call("PodSandboxStatus", f_str(1, args[0]) + f_int(2, 1))
        st = parse(one(r, 1))
        net = parse(one(st, 5))
        info = {}
        for k, v in pmap(r, 2).items():
            try:
                info[k] = json.loads(v)
            except ValueError:
                info[k] = v
        print(json.dumps({"id": text(st, 1),
                          "state": STATES.get(one(st, 3, 0), "?"),
                          "ip": text(net, 1),
                          "annotations": pmap(st, 8), "info": info}))
    elif cmd == "stopp" and len(args) == 1:
        cli.call("StopPodSandbox", f_str(1, args[0]))
    elif cmd == "rmp" and len(args) == 1:
        cli.call("RemovePodSandbox", f_str(1, args[0]))
    elif cmd == "pods" and not args:
        r = cli.call("ListPodSandbox", b"")
        for item in r.get(1, []):
            print(text(parse(item), 1))
    else:
        print(__doc__, file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main(sys.argv))
    except grpc.RpcError as e:
        print("cri_client: %s: %s: %s" % (sys.argv[2], e.code().name,
                                          e.details()), file=sys.stderr)
        sys.exit(1)
