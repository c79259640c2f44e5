#!/usr/bin/env python3
"""The first unscoped reply of a user with many plugins (issue 14), against any build of the
server binary: seeds N plugins of one record each (1,000 plugins per scoped push, the per-user
plugins cap raised), then times one unscoped round of a fresh device and prints the reply's size,
its coverage and `coverageNext`:

    python3 scripts/measure-coverage.py target/server/clientdata-server 400000

Before coverage paged (a server without `coverageNext`): 400,000 plugins gave a 27.2 MB reply.
(A server that predates the per-user caps refuses `--max-plugins-per-user`: drop it there.)
"""
import json, os, subprocess, sys, tempfile, time, urllib.request, random
binary, n = sys.argv[1], int(sys.argv[2]) if len(sys.argv) > 2 else 400000
d = tempfile.mkdtemp()
open(f"{d}/tokens", "w").write("token-alice-0123456789 alice\n")
p = subprocess.Popen([binary, "--listen", "127.0.0.1:0", "--database", f"{d}/db.sqlite", "--tokens", f"{d}/tokens", "--max-plugins-per-user", "1000000"], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
base = p.stdout.readline().split()[-1]
def post(body):
    r = urllib.request.Request(base + "/sync/exchange", data=json.dumps(body).encode(), headers={"authorization": "Bearer token-alice-0123456789", "content-type": "application/json"})
    with urllib.request.urlopen(r, timeout=600) as resp:
        return resp.read()
node = "%016x" % random.getrandbits(63)
start = int(time.time() * 1000) - 60000
t = time.time()
for c in range(0, n, 1000):
    ids = ["p%06d" % i for i in range(c, min(n, c + 1000))]
    push = [{"plugin": pl, "key": "k", "hlc": "%012x-%04x-%s" % (start + c // 1000, i, node), "value": {"json": "1"}} for i, pl in enumerate(ids)]
    post({"version": 2, "node": node, "plugins": ids, "seen": {}, "push": push, "limit": 1000})
seeded = time.time() - t
reader = "%016x" % random.getrandbits(63)
t = time.time()
body = post({"version": 2, "node": reader, "seen": {}, "push": [], "limit": 1000})
took = time.time() - t
reply = json.loads(body)
print(f"{n} plugins: seeded in {seeded:.1f} s; unscoped reply {len(body)} B in {took:.2f} s, {len(reply['records'])} records, coverage of {len(reply['coverage'])} plugins, coverageNext {reply.get('coverageNext')}")
p.terminate(); p.wait()
import shutil; shutil.rmtree(d)
