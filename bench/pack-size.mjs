// Where a pack starts to pay (src/store/engine/indexeddb.rs PACK_MIN): one transaction of N
// records-store rows `{p, k, h, v: 1 KiB JSON text}` against one transaction putting them as one
// `{rows}` pack, until complete, for N from 4 to 256, alternating, median of --rounds (20).
//
//   node bench/pack-size.mjs [--engine firefox] [--rounds 20]
import { createServer } from "node:http";
import puppeteer from "puppeteer-core";

const args = process.argv.slice(2);
const option = (name, fallback) => (args.includes(name) ? args[args.indexOf(name) + 1] : fallback);
const engine = option("--engine", "chromium");
const rounds = Number(option("--rounds", "20"));
const server = createServer((_, res) => res.writeHead(200, { "content-type": "text/html" }).end("<!doctype html>"));
await new Promise((ok) => server.listen(0, "127.0.0.1", ok));
const browser = engine === "firefox"
  ? await puppeteer.launch({ headless: true, browser: "firefox", executablePath: "/usr/bin/firefox-esr", extraPrefsFirefox: { "privacy.reduceTimerPrecision": false } })
  : await puppeteer.launch({ headless: true, browser: "chrome", executablePath: "/usr/bin/chromium", args: ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"] });
const page = await browser.newPage();
await page.goto(`http://127.0.0.1:${server.address().port}/`);
const out = await page.evaluate(async (rounds) => {
  const req = (r) => new Promise((ok, fail) => { r.onsuccess = () => ok(r.result); r.onerror = () => fail(r.error); });
  const done = (tx) => new Promise((ok, fail) => { tx.oncomplete = ok; tx.onabort = () => fail(tx.error); });
  const open = indexedDB.open(`pack-size-${Math.random()}`, 1);
  open.onupgradeneeded = () => { open.result.createObjectStore("records", { keyPath: ["p", "k"] }); open.result.createObjectStore("packs"); };
  const db = await req(open);
  const v = JSON.stringify("x".repeat(1010));
  const h = "0190f2a1b2c3-0000-00000000000000a7";
  let next = 0;
  const rows = (n) => Array.from({ length: n }, () => ({ p: "bench", k: `k${next++}`, h, v }));
  const median = (xs) => xs.sort((a, b) => a - b)[xs.length >> 1];
  const result = [];
  for (const n of [4, 8, 16, 32, 64, 128, 256]) {
    const t = { rows: [], pack: [] };
    for (let i = 0; i < rounds; i++) {
      for (const shape of i % 2 ? ["pack", "rows"] : ["rows", "pack"]) {
        const batch = rows(n);
        const start = performance.now();
        const tx = db.transaction(shape === "rows" ? "records" : "packs", "readwrite");
        if (shape === "rows") for (const row of batch) tx.objectStore("records").put(row);
        else tx.objectStore("packs").put({ rows: batch }, `p${next}`);
        await done(tx);
        t[shape].push(performance.now() - start);
      }
    }
    result.push({ n, rows: median(t.rows), pack: median(t.pack) });
  }
  return result;
}, rounds);
console.log(`pack-size (${engine}, ${rounds} alternating rounds, median ms per transaction)`);
for (const { n, rows, pack } of out) console.log(`N=${n}: rows ${rows.toFixed(2)} ms, one pack ${pack.toFixed(2)} ms, ${(rows / pack).toFixed(2)}x`);
await browser.close();
server.close();
