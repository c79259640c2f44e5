#!/usr/bin/env python3
"""Measures how the reference server holds against hostile clients (issue 14), against any build
of the server binary, so the same numbers can be taken before and after a change:

    python3 scripts/measure-hostile.py target/server/clientdata-server [PART...]

PART is 1..4 (default all):

  1. /health latency while 1,100 idle connections are open (server under prlimit --nofile=1024);
  2. SIGTERM-to-exit time with 10 slow clients (headers sent, body stalled after 13 of 100 bytes);
  3. the server's peak RSS (VmHWM) under 100 concurrent 8 MB bodies, and how they were answered;
  4. a seeded set of malformed requests: how many got a 4xx with a JSON `{code, message}` body
     whose code docs/ERRORS.md lists (and nothing stored). A random mutation that still yields a
     valid request (by the rough check in `still_valid`) is not counted as a bad input.
"""
import json
import os
import random
import re
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TOKEN = "token-alice-0123456789"
NODE = "00000000000000a1"


def start(binary, workdir, nofile=1024, extra=()):
    tokens = os.path.join(workdir, "tokens")
    with open(tokens, "w") as f:
        f.write(f"{TOKEN} alice\n")
    args = ["prlimit", f"--nofile={nofile}:{nofile}", "--", binary, "--listen", "127.0.0.1:0",
            "--database", os.path.join(workdir, "db.sqlite"), "--tokens", tokens, "--log", "warn", *extra]
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    line = proc.stdout.readline()
    m = re.match(r"listening on http://([\d.]+):(\d+)", line)
    if not m:
        proc.kill()
        raise SystemExit(f"server did not start: {line!r}")
    return proc, (m.group(1), int(m.group(2)))


def request(addr, raw, timeout=10.0):
    """Sends raw bytes on a new connection; returns (status, headers, body) or None on no answer."""
    s = socket.create_connection(addr, timeout=timeout)
    try:
        try:
            s.sendall(raw)
        except OSError:
            pass
        data = b""
        deadline = time.time() + timeout
        while time.time() < deadline:
            try:
                chunk = s.recv(65536)
            except socket.timeout:
                break
            except OSError:
                break
            if not chunk:
                break
            data += chunk
            head, sep, body = data.partition(b"\r\n\r\n")
            if sep:
                m = re.search(rb"(?i)\r\ncontent-length:\s*(\d+)", head)
                if m and len(body) >= int(m.group(1)):
                    break
        if not data:
            return None
        head, _, body = data.partition(b"\r\n\r\n")
        status = int(head.split(b" ")[1])
        return status, head.decode("latin-1").lower(), body
    finally:
        s.close()


def post(addr, body, extra_headers=b"", timeout=30.0):
    head = (b"POST /sync/exchange HTTP/1.1\r\nhost: x\r\nconnection: close\r\n"
            b"authorization: Bearer " + TOKEN.encode() + b"\r\ncontent-type: application/json\r\n"
            + extra_headers + b"content-length: " + str(len(body)).encode() + b"\r\n\r\n")
    return request(addr, head + body, timeout)


def health(addr, timeout):
    started = time.time()
    got = request(addr, b"GET /health HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n", timeout)
    return (got[0] if got else None), time.time() - started


def now_ms():
    return int(time.time() * 1000)


def hlc(wall, node=NODE, counter=0):
    return f"{wall:012x}-{counter:04x}-{node}"


def measure_idle_connections(binary):
    with tempfile.TemporaryDirectory() as d:
        proc, addr = start(binary, d)
        conns = []
        for _ in range(1100):
            try:
                conns.append(socket.create_connection(addr, timeout=3))
            except OSError:
                break
        time.sleep(1.0)
        fds = len(os.listdir(f"/proc/{proc.pid}/fd"))
        status, took = health(addr, 45.0)
        for s in conns:
            s.close()
        proc.kill()
        proc.wait()
        print(f"1. {len(conns)} idle connections made (server nofile=1024, {fds} fds open in the server): "
              f"/health -> {status} in {took:.2f} s")


def measure_sigterm(binary):
    with tempfile.TemporaryDirectory() as d:
        proc, addr = start(binary, d)
        slow = []
        for _ in range(10):
            s = socket.create_connection(addr)
            s.sendall(b"POST /sync/exchange HTTP/1.1\r\nhost: x\r\nauthorization: Bearer " + TOKEN.encode()
                      + b"\r\ncontent-type: application/json\r\ncontent-length: 100\r\n\r\n{\"version\":1,")
            slow.append(s)
        time.sleep(0.5)
        started = time.time()
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=60)
            took = f"{time.time() - started:.2f} s"
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            took = "> 60 s (killed)"
        for s in slow:
            s.close()
        print(f"2. SIGTERM with 10 slow clients: exit after {took}")


def vm_hwm(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    return 0


def big_seen_body(limit=8 * 1000 * 1000):
    wall = now_ms() - 60_000
    parts, size, i = [], 0, 1
    while size < limit - 200:
        entry = f'"{i:016x}":"{hlc(wall, f"{i:016x}")}"'
        parts.append(entry)
        size += len(entry) + 1
        i += 1
    return ('{"version":2,"node":"%s","limit":1,"seen":{"p":{%s}}}' % (NODE, ",".join(parts))).encode()


def measure_memory(binary):
    body = big_seen_body()
    with tempfile.TemporaryDirectory() as d:
        proc, addr = start(binary, d, nofile=4096)
        time.sleep(0.3)
        base = vm_hwm(proc.pid)
        answers = {}
        lock = threading.Lock()

        def one():
            got = post(addr, body, timeout=120)
            key = got[0] if got else "none"
            with lock:
                answers[key] = answers.get(key, 0) + 1

        threads = [threading.Thread(target=one) for _ in range(100)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        peak = vm_hwm(proc.pid)
        proc.kill()
        proc.wait()
        print(f"3. 100 concurrent {len(body) / 1e6:.1f} MB bodies: VmHWM {base / 2**20:.0f} MiB at start -> "
              f"{peak / 2**20:.0f} MiB peak; answers {dict(sorted(answers.items(), key=str))}")


def documented_codes():
    with open(os.path.join(ROOT, "docs", "ERRORS.md")) as f:
        rows = [line.split("|")[1:3] for line in f if line.startswith("|")]
    return {code for cells in rows for code in re.findall(r"`([a-z_]+)`", "".join(cells))}


def bad_inputs(rng):
    """(what, raw request bytes) pairs: transport-level and body-level breakage."""
    auth = b"authorization: Bearer " + TOKEN.encode() + b"\r\n"
    jtype = b"content-type: application/json\r\n"

    def exchange(body, extra=b""):
        return (b"POST /sync/exchange HTTP/1.1\r\nhost: x\r\nconnection: close\r\n" + auth + jtype + extra
                + b"content-length: " + str(len(body)).encode() + b"\r\n\r\n" + body)

    def record(**over):
        r = {"plugin": "notes", "key": "k", "hlc": hlc(now_ms() - 1000), "value": {"json": "1"}}
        r.update(over)
        return r

    def req(**over):
        r = {"version": 2, "node": NODE, "push": [record()], "limit": 10}
        r.update(over)
        return json.dumps(r).encode()

    cases = [
        ("json value not JSON", exchange(req(push=[record(value={"json": "{not json"})]))),
        ("json value empty", exchange(req(push=[record(value={"json": ""})]))),
        ("json value trailing junk", exchange(req(push=[record(value={"json": "1 2"})]))),
        ("unknown field in record", exchange(req(push=[dict(record(), extra=1)]))),
        ("unknown field in value", exchange(req(push=[record(value={"json": "1", "bytes": ""})]))),
        ("unknown top-level field", exchange(req(extra=True))),
        ("header too large", b"GET /health HTTP/1.1\r\nhost: x\r\nx-big: " + b"a" * 200_000 + b"\r\n\r\n"),
        ("too many headers", b"GET /health HTTP/1.1\r\nhost: x\r\n" + b"".join(b"x-h%d: 1\r\n" % i for i in range(200)) + b"\r\n"),
        ("bad content-length", b"POST /sync/exchange HTTP/1.1\r\nhost: x\r\n" + auth + jtype + b"content-length: abc\r\n\r\n{}"),
        ("two content-lengths", b"POST /sync/exchange HTTP/1.1\r\nhost: x\r\n" + auth + jtype + b"content-length: 2\r\ncontent-length: 3\r\n\r\n{}"),
        ("negative content-length", b"POST /sync/exchange HTTP/1.1\r\nhost: x\r\n" + auth + jtype + b"content-length: -1\r\n\r\n"),
        ("bad chunk size", b"POST /sync/exchange HTTP/1.1\r\nhost: x\r\nconnection: close\r\n" + auth + jtype + b"transfer-encoding: chunked\r\n\r\nzz\r\n{}\r\n0\r\n\r\n"),
        ("garbage request line", b"\x00\x01\x02 garbage\r\n\r\n"),
        ("bad method token", b"G(T /health HTTP/1.1\r\nhost: x\r\n\r\n"),
        ("HTTP/2.0 version", b"GET /health HTTP/2.0\r\nhost: x\r\n\r\n"),
        ("header without colon", b"GET /health HTTP/1.1\r\nhost x\r\n\r\n"),
        ("header with NUL", b"GET /health HTTP/1.1\r\nhost: x\r\nx-a: a\x00b\r\n\r\n"),
        ("unknown path", b"GET /nope HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n"),
        ("wrong method", b"DELETE /health HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n"),
        ("text/plain body", b"POST /sync/exchange HTTP/1.1\r\nhost: x\r\nconnection: close\r\n" + auth + b"content-type: text/plain\r\ncontent-length: 2\r\n\r\n{}"),
        ("no token", b"POST /sync/exchange HTTP/1.1\r\nhost: x\r\nconnection: close\r\n" + jtype + b"content-length: 2\r\n\r\n{}"),
        ("declared 9 MB", b"POST /sync/exchange HTTP/1.1\r\nhost: x\r\n" + auth + jtype + b"content-length: 9000000\r\n\r\n"),
        ("truncated JSON", exchange(b'{"version":2,')),
        ("not JSON", exchange(b"hello")),
    ]
    valid = req()
    for i in range(40):
        b = bytearray(valid)
        for _ in range(rng.randrange(1, 4)):
            b[rng.randrange(len(b))] = rng.randrange(256)
        if not still_valid(bytes(b)):
            cases.append((f"mutated body #{i}", exchange(bytes(b))))
    for i in range(20):
        junk = bytes(rng.randrange(256) for _ in range(rng.randrange(1, 300)))
        cases.append((f"random bytes #{i}", junk + b"\r\n\r\n"))
    return cases


def still_valid(body):
    """A rough protocol check: whether a mutated body may still be a valid request."""
    try:
        r = json.loads(body)
        ok = set(r) <= {"version", "node", "plugins", "seen", "push", "limit"} and r["version"] == 2
        ok = ok and re.fullmatch(r"[0-9a-f]{16}", r["node"]) and r["node"] != "0" * 16
        ok = ok and isinstance(r["limit"], int) and 1 <= r["limit"] <= 1000
        for rec in r.get("push", []):
            ok = ok and set(rec) <= {"plugin", "key", "hlc", "value"}
            ok = ok and re.fullmatch(r"[a-z0-9][a-z0-9._-]{0,63}", rec["plugin"]) and rec["key"]
            ok = ok and re.fullmatch(r"[0-9a-f]{12}-[0-9a-f]{4}-[0-9a-f]{16}", rec["hlc"])
            v = rec.get("value", {"json": "0"})
            ok = ok and list(v) in (["json"], ["bytes"])
            if ok and "json" in v:
                json.loads(v["json"])
        return bool(ok)
    except Exception:
        return False


def measure_bad_inputs(binary):
    rng = random.Random(14)
    codes = documented_codes()
    with tempfile.TemporaryDirectory() as d:
        proc, addr = start(binary, d)
        cases = bad_inputs(rng)
        handled, failures = 0, []
        for what, raw in cases:
            got = request(addr, raw, timeout=10)
            if got is None:
                failures.append(f"{what}: no answer")
                continue
            status, _, body = got
            try:
                code = json.loads(body)["code"]
            except Exception:
                code = None
            if 400 <= status < 500 and code in codes:
                handled += 1
            else:
                failures.append(f"{what}: {status} code={code!r} body={body[:60]!r}")
        # Nothing may have been stored: a fresh device pulls nothing.
        got = post(addr, json.dumps({"version": 2, "node": "00000000000000b2", "limit": 1000}).encode())
        stored = len(json.loads(got[2])["records"]) if got and got[0] == 200 else "?"
        proc.kill()
        proc.wait()
        print(f"4. bad inputs: {handled} of {len(cases)} handled with a typed 4xx JSON error; records stored: {stored}")
        for f in failures:
            print(f"     not handled: {f}")


def main():
    if len(sys.argv) < 2:
        raise SystemExit(__doc__)
    binary = os.path.abspath(sys.argv[1])
    parts = sys.argv[2:] or ["1", "2", "3", "4"]
    steps = {"1": measure_idle_connections, "2": measure_sigterm, "3": measure_memory, "4": measure_bad_inputs}
    for part in parts:
        steps[part](binary)


if __name__ == "__main__":
    main()
