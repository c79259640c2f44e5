// The client as a good citizen and a careful reader, end to end in Chromium: its device secret
// keeps a copied node id from writing as the original (real server); against a server that
// misbehaves (a loopback Node server answering 503s, or an endless reply) it backs off and
// stops reading. Figures are printed so a run shows them.
import assert from "node:assert/strict";
import http from "node:http";
import { harness } from "../lib/harness.mjs";
import { unique, devicePage, openInstance, withCd, sync, set, get, events } from "../lib/sync.mjs";

const h = harness();
const { scenario } = h;

scenario("a store whose node id was copied from another device gets NodeIdTakenError; nothing of its push is applied", async (context) => {
  const page = await devicePage(context, h.server.url);
  const user = unique("user");
  const a = await openInstance(page, "A", { name: unique("dbA"), user });
  await set(page, "A", "notes", "a", 1);
  await sync(page, "A"); // claims A's node id with A's secret
  const meta = await withCd(page, "A", (cd) => cd.metadata());
  assert.equal(meta.nodeId, a.nodeId);

  // Device B: its slot row (localStorage engine) says A's node id, without A's secret (a copied
  // profile, or storage edited by hand). Open gives it a secret of its own.
  const nameB = unique("dbB");
  await page.evaluate(([name, node]) => localStorage.setItem(`clientdata:${name}:slot:0`, `${node},0,0`), [nameB, a.nodeId]);
  const b = await openInstance(page, "B", { name: nameB, user, engine: "localstorage" });
  assert.equal(b.nodeId, a.nodeId, "B took over the copied node id");
  const stored = await page.evaluate((name) => localStorage.getItem(`clientdata:${name}:slot:0`), nameB);
  assert.match(stored, /^[0-9a-f]{16},\d+,\d+,[0-9a-f]{64}$/, "open stored a secret with the slot");
  await set(page, "B", "notes", "b", 2);
  await assert.rejects(sync(page, "B"), (e) => e.name === "NodeIdTakenError" && e.code === "node_id_taken", "B is refused");
  await sync(page, "A");
  assert.equal(await get(page, "A", "notes", "b"), undefined, "nothing of B's push reached the server");
  // A, the owner, keeps syncing.
  await set(page, "A", "notes", "a2", 3);
  await sync(page, "A");
});

/**
 * A misbehaving sync server on loopback (another origin than the page: CORS allowed, and
 * `Retry-After` exposed as a real server would). `answer(req, res)` handles each exchange;
 * `requests` lists their arrival times.
 */
async function hostileServer(answer) {
  const requests = [];
  const server = http.createServer((req, res) => {
    res.setHeader("access-control-allow-origin", "*");
    res.setHeader("access-control-allow-headers", "authorization, content-type");
    res.setHeader("access-control-allow-methods", "POST, GET");
    res.setHeader("access-control-expose-headers", "retry-after");
    if (req.method === "OPTIONS") return res.writeHead(204).end();
    requests.push(Date.now());
    req.resume();
    req.on("end", () => answer(req, res));
  });
  await new Promise((r) => server.listen(0, "127.0.0.1", r));
  return {
    url: `http://127.0.0.1:${server.address().port}`,
    requests,
    close: () => new Promise((r) => { server.closeAllConnections(); server.close(r); }),
  };
}

scenario("automatic sync against a server answering 503 + Retry-After backs off and honours it", async (context) => {
  const RETRY_AFTER_S = 2;
  const WINDOW_MS = 8_000;
  const server = await hostileServer((req, res) => {
    res.writeHead(503, { "content-type": "application/json", "retry-after": String(RETRY_AFTER_S) });
    res.end(JSON.stringify({ code: "overloaded", message: "busy" }));
  });
  try {
    const page = await devicePage(context, h.server.url);
    await openInstance(page, "A", { name: unique("db"), user: unique("user"), server: server.url, autoSync: { intervalMs: 60_000, debounceMs: 50 } });
    // A busy page: a local write every 100 ms for the whole window (each used to trigger a
    // round 50 ms later, however the last one failed).
    const started = Date.now();
    await withCd(page, "A", async (cd, ms) => {
      const kv = cd.plugin("notes");
      const end = Date.now() + ms;
      for (let i = 0; Date.now() < end; i++) {
        kv.set(`k${i % 20}`, i);
        await new Promise((r) => setTimeout(r, 100));
      }
    }, WINDOW_MS);
    const inWindow = server.requests.filter((t) => t - started <= WINDOW_MS);
    const gaps = inWindow.slice(1).map((t, i) => t - inWindow[i]);
    const failed = (await events(page, "A")).filter((e) => e.type === "sync-failed");
    console.log(`# 503 server, Retry-After ${RETRY_AFTER_S}s, writes every 100 ms: ${inWindow.length} exchanges in ${WINDOW_MS} ms; smallest gap ${Math.min(...gaps)} ms; ${failed.length} failed rounds`);
    assert.ok(failed.length >= 1, "rounds failed");
    assert.deepEqual(
      { name: failed[0].event.name, code: failed[0].event.code, status: failed[0].event.status, retryAfterMs: failed[0].event.retryAfterMs },
      { name: "SyncHttpError", code: "overloaded", status: 503, retryAfterMs: RETRY_AFTER_S * 1000 },
    );
    // Never sooner than Retry-After (timers fire late, never early; 50 ms for clock grain).
    assert.ok(gaps.every((g) => g >= RETRY_AFTER_S * 1000 - 50), `gaps ${gaps}`);
    assert.ok(inWindow.length <= WINDOW_MS / (RETRY_AFTER_S * 1000) + 1, `${inWindow.length} exchanges`);
  } finally {
    await server.close();
  }
});

scenario("an endless reply is abandoned past sync.maxReplyBytes: bounded bytes read, BodyTooLargeError", async (context) => {
  const CAP = 64 << 10;
  const CHUNK = 64 << 10;
  let written = 0;
  let closedAt = 0;
  const server = await hostileServer((req, res) => {
    // 200 OK, chunked (no length to check up front), 64 KiB every 10 ms, forever.
    res.writeHead(200, { "content-type": "application/json" });
    res.write('{"version":2,"records":[');
    const chunk = Buffer.alloc(CHUNK, " ");
    const timer = setInterval(() => {
      if (res.destroyed) return;
      written += CHUNK;
      res.write(chunk);
    }, 10);
    res.on("close", () => {
      clearInterval(timer);
      closedAt = Date.now();
    });
  });
  try {
    const page = await devicePage(context, h.server.url);
    await openInstance(page, "A", { name: unique("db"), user: unique("user"), server: server.url, sync: { maxReplyBytes: CAP, timeoutMs: 3_000, retries: 0 } });
    await set(page, "A", "notes", "k", 1);
    const started = Date.now();
    const error = await sync(page, "A").then(() => null, (e) => e);
    const failedAfter = Date.now() - started;
    await new Promise((r) => setTimeout(r, 200));
    console.log(`# endless reply, cap ${CAP} B: ${error?.name} after ${failedAfter} ms; server wrote ${written} B before the client hung up (${closedAt ? closedAt - started : "never"} ms)`);
    assert.equal(error?.name, "BodyTooLargeError", String(error?.message));
    assert.equal(error.code, "body_too_large");
    assert.ok(closedAt > 0, "the client dropped the connection");
    assert.ok(written <= CAP + 8 * CHUNK, `${written} bytes written`);
    assert.ok(failedAfter < 2_000, `${failedAfter} ms`);
  } finally {
    await server.close();
  }
});
