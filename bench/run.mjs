// Runs the browser benchmarks side by side in one headless browser (Debian's Chromium over CDP,
// or with --engine firefox Debian's firefox-esr over WebDriver BiDi, both driven by
// puppeteer-core) and prints case | clientdata | peer | ratio | goal. Peers run interleaved with
// clientdata in the same page (run i of every library before run i+1 of any), so ratios hold on
// a noisy machine. A case with clientdata alone gets one row with "—" for peer and ratio.
//
// For the sync cases (S, N) it also starts, and stops at the end, the reference sync server
// (target/server/clientdata-server, dev mode, a temp SQLite database, CORS for the bench page's
// origin) and a TinyBase WsServer on a free loopback port (server-side MergeableStores saved
// with the file persister in a temp directory); the page gets both URLs in its query string.
//
//   node bench/run.mjs            full run: warm-up + 5 runs per pair, medians, goals checked,
//                                 results appended to bench/RESULTS.md
//   node bench/run.mjs --smoke    one small run per pair, no goals: keeps the harness from rotting
//   --case W1,R                   only these cases (full runs with --case append nothing); X is
//                                 the server's ingest example, run natively
//                                 P: whole server processes, SQLite vs PostgreSQL, one vs two
//                                 processes on one PostgreSQL (server/examples/scaleout.rs)
//                                 (X and P need no browser: Chromium runs only)
//                                 M: memory held after open (JS heap over CDP in Chromium, from
//                                 the memory reporters in Firefox; + wasm memory)
//   --profile                     also CPU-profile every library's timed runs (100 µs sampling)
//                                 and print each case's top functions by self time, per library
//                                 (Chromium only: see PROFILE_REASON for Firefox)
//   --engine chromium|firefox     the browser (default chromium; CHROMIUM / FIREFOX override the
//                                 binaries). Firefox runs every case and peer; M's JS heap is
//                                 read from its memory reporters (about:memory) over BiDi, and
//                                 --profile is replaced by a printed reason (PROFILE_REASON).
import { createServer } from "node:http";
import { readFile, appendFile, readdir, stat } from "node:fs/promises";
import { mkdtempSync, rmSync, existsSync } from "node:fs";
import { execFileSync } from "node:child_process";
import { gzipSync } from "node:zlib";
import { cpus, loadavg, tmpdir } from "node:os";
import { join, normalize, extname, dirname } from "node:path";
import { fileURLToPath } from "node:url";
import puppeteer from "puppeteer-core";
import { startServer, SERVER_BIN } from "../e2e/lib/server.mjs";
import { WebSocketServer } from "ws";
import { createWsServer } from "tinybase/synchronizers/synchronizer-ws-server";
import { createMergeableStore } from "tinybase/mergeable-store";
import { createFilePersister } from "tinybase/persisters/persister-file";

const ROOT = join(dirname(fileURLToPath(import.meta.url)), "..");
const SMOKE = process.argv.includes("--smoke");
const ONLY = process.argv.includes("--case") ? process.argv[process.argv.indexOf("--case") + 1].split(",") : null;
const MODE = SMOKE ? "smoke" : "full";
const RUNS = SMOKE ? 1 : 5;
const PROFILE = process.argv.includes("--profile");
const CHROMIUM = process.env.CHROMIUM || "/usr/bin/chromium";
const FIREFOX = process.env.FIREFOX || "/usr/bin/firefox-esr";
const ENGINE = process.argv.includes("--engine") ? process.argv[process.argv.indexOf("--engine") + 1] : "chromium";
if (!["chromium", "firefox"].includes(ENGINE)) throw new Error(`bench: --engine ${ENGINE}: chromium or firefox`);
// What Firefox cannot give over WebDriver BiDi, said in the log instead of a number.
const PROFILE_REASON =
  "--profile n/a in Firefox: its sampling profiler (console.profile, about:profiling) cannot be started or read over WebDriver BiDi; profile there by hand with the Firefox Profiler";

// Goals from the benchmark issue: ratio = clientdata throughput / peer throughput (or, for
// lowerIsBetter cases, clientdata time / peer time).
const GOALS = {
  "W1|idb-keyval": { atLeast: 20 },
  "W2|raw IndexedDB, one transaction": { atLeast: 0.8 },
  "R|TinyBase getValue": { atLeast: 1 }, // raised from 0.5 by the performance issue
  "O|raw IndexedDB open + getAll": { atMost: 1.3 },
  "L|raw navigator.locks.request": { atLeast: 0.8 },
  "S|TinyBase MergeableStore over WebSocket + IndexedDB save": { atMost: 0.8 },
  "S|raw floor: fetch + JSON.parse + one IndexedDB transaction per page": { atMost: 1.2 },
};
// Absolute goals on clientdata's own median (ms), printed as an extra row under the case.
const ABSOLUTE_GOALS = {
  S: { atMostMs: 1000 },
};
const SIZE_GOAL_BYTES = 80 * 1024;
// X: the reference server's ingest on SQLite, records/s (native, no browser).
const INGEST_GOAL = 50_000;
const INGEST_BIN = join(ROOT, "target", "server", "examples", "ingest");
const SCALEOUT_BIN = join(ROOT, "target", "server", "examples", "scaleout");

const TYPES = { ".html": "text/html", ".js": "text/javascript", ".mjs": "text/javascript", ".wasm": "application/wasm", ".json": "application/json" };

const TMP = mkdtempSync(join(tmpdir(), "clientdata-bench-"));
// Server-side file of a TinyBase path: its pathId made file-name safe.
const tinybaseFile = (pathId) => join(TMP, `tinybase-${pathId.replace(/[^A-Za-z0-9._-]/g, "_")}.json`);

// How many values the TinyBase server has saved for a path (the seeding page polls this before
// it disconnects, so the timed pull starts from what the server holds on disk).
async function tinybaseSavedValues(pathId) {
  try {
    const content = JSON.parse(await readFile(tinybaseFile(pathId), "utf8"));
    return Object.keys(content?.[1]?.[0] ?? {}).length;
  } catch {
    return 0;
  }
}

function serveStatic() {
  const server = createServer(async (req, res) => {
    const path = normalize(decodeURIComponent(new URL(req.url, "http://x").pathname));
    if (path.startsWith("/tinybase-count/")) {
      const count = await tinybaseSavedValues(path.slice("/tinybase-count/".length));
      res.writeHead(200, { "content-type": "application/json", "cache-control": "no-store" }).end(JSON.stringify({ count }));
      return;
    }
    const allowed = path.startsWith("/pkg/") || path.startsWith("/bench/");
    if (!allowed || path.includes("..")) {
      res.writeHead(404).end();
      return;
    }
    try {
      const body = await readFile(join(ROOT, path));
      res.writeHead(200, { "content-type": TYPES[extname(path)] || "application/octet-stream" }).end(body);
    } catch {
      res.writeHead(404).end();
    }
  });
  return new Promise((resolve) => server.listen(0, "127.0.0.1", () => resolve(server)));
}

// The reference sync server on a free loopback port with a fresh SQLite database; null (and the
// sync cases' clientdata rows say n/a) when the binary is not built.
async function startSyncServer(origin) {
  if (!existsSync(SERVER_BIN)) {
    console.error(`bench: ${SERVER_BIN} missing, sync cases run without clientdata`);
    return null;
  }
  return startServer({ quiet: false, extraArgs: ["--allow-origin", origin, "--log", "error"] });
}

// A TinyBase WsServer over a `ws` WebSocketServer on a free loopback port. Each path gets a
// server-side MergeableStore persisted to a file, so it holds the data between clients.
async function startTinyBaseServer() {
  const http = createServer((req, res) => res.writeHead(426).end());
  await new Promise((resolve) => http.listen(0, "127.0.0.1", resolve));
  const wss = new WebSocketServer({ server: http });
  // Ignored errors, except the expected one per path start: the server-side synchronizer's
  // GetContentHashes request (message 1, to every client) that times out while the path starts.
  const errors = [];
  const expected = /^tinybase:3:\.[^.]+\.[^.]+\.1$/;
  const wsServer = createWsServer(wss, (pathId) => createFilePersister(createMergeableStore(), tinybaseFile(pathId)), (e) => expected.test(e?.message) || errors.push(e));
  return {
    url: `ws://127.0.0.1:${http.address().port}`,
    errors,
    async stop() {
      await wsServer.destroy().catch(() => {});
      await new Promise((resolve) => http.close(resolve));
    },
  };
}

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const fmt = (x) => (x >= 100 ? Math.round(x).toLocaleString("en-US") : x.toPrecision(3));

async function pkgSize() {
  try {
    // Everything shipped that runs: the wasm, the glue, js/'s modules and the snippets
    // wasm-bindgen copies from src/browser/*.js (scripts/size-check.sh counts the same).
    const files = (await readdir(join(ROOT, "pkg"), { recursive: true })).filter((f) => f.endsWith(".wasm") || f.endsWith(".js")).sort();
    const bytes = Buffer.concat(await Promise.all(files.map((f) => readFile(join(ROOT, "pkg", f)))));
    return gzipSync(bytes, { level: 9 }).length;
  } catch {
    return null;
  }
}

async function main() {
  const server = await serveStatic();
  const origin = `http://127.0.0.1:${server.address().port}`;
  let syncServer = null;
  let tinybaseServer = null;
  try {
    syncServer = await startSyncServer(origin);
    tinybaseServer = await startTinyBaseServer();
    await runAll(origin, syncServer, tinybaseServer);
  } finally {
    await syncServer?.stop();
    await tinybaseServer?.stop();
    server.close();
    rmSync(TMP, { recursive: true, force: true });
  }
}

// The engine's browser: stock Debian binaries, never a downloaded build. Firefox keeps its default
// preferences but one (clientdata's open() does not wait on the persistent-storage prompt). A case's
// evaluate may run for minutes on a loaded machine, so no protocol timeout cuts it short.
function launch() {
  const common = { headless: true, protocolTimeout: 0 };
  // Firefox clamps performance.now() to 1 ms by default (Chromium: 0.1 ms), too coarse for R's
  // few-millisecond loops; the pref changes the clock's resolution, not the engine's speed.
  // -remote-allow-system-access lets BiDi evaluate in the browser's own (chrome) window, where
  // case M reads Firefox's memory reporters.
  if (ENGINE === "firefox")
    return puppeteer.launch({ ...common, browser: "firefox", executablePath: FIREFOX, args: ["-remote-allow-system-access"], extraPrefsFirefox: { "privacy.reduceTimerPrecision": false } });
  return puppeteer.launch({
    ...common,
    browser: "chrome",
    executablePath: CHROMIUM,
    args: ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-background-networking", "--disable-component-update", "--disable-sync", "--disable-quic", "--no-first-run"],
  });
}

// A page of the bench, ready to run cases, with its errors logged.
async function benchPage(target, origin, query, tag = null) {
  const page = await target.newPage();
  page.on("pageerror", (e) => console.error("page error:", e));
  page.on("error", (e) => console.error("page crashed:", e));
  page.on("console", (m) => m.type() === "error" && console.error("console:", m.text()));
  await page.goto(`${origin}/bench/page.html?${query}${tag ? `&m=${tag}` : ""}`);
  await page.waitForFunction(() => window.benchReady === true);
  return page;
}

async function runAll(origin, syncServer, tinybaseServer) {
  const browser = await launch();
  const query = new URLSearchParams({ tinybase: tinybaseServer.url });
  if (syncServer) query.set("server", syncServer.url);
  const page = await benchPage(browser, origin, query);
  const plan = await page.evaluate(() => window.bench.describe());
  if (PROFILE && ENGINE === "firefox") console.log(PROFILE_REASON);
  const profiles = PROFILE && ENGINE === "chromium" ? await startProfiling(page) : null;

  const rows = [];
  for (const [name, { libraries, lowerIsBetter }] of Object.entries(plan)) {
    if (ONLY && !ONLY.includes(name)) continue;
    const samples = Object.fromEntries(libraries.map((l) => [l, []]));
    const profiled = Object.fromEntries(libraries.map((l) => [l, []]));
    // Warm-up (full mode): one untimed round of every library.
    if (!SMOKE) for (const lib of libraries) await page.evaluate(([c, l, m]) => window.bench.run(c, l, m), [name, lib, "smoke"]);
    for (let i = 0; i < RUNS; i++) {
      for (const lib of libraries) {
        const r = await page.evaluate(([c, l, m, p]) => window.bench.run(c, l, m, p), [name, lib, MODE, PROFILE]);
        samples[lib].push(r);
        if (profiles) profiled[lib].push(...(await profiles.take()));
      }
    }
    const score = (lib) => {
      if (samples[lib].some((r) => r === null)) return null;
      return lowerIsBetter ? median(samples[lib].map((r) => r.ms)) : median(samples[lib].map((r) => (r.ops / r.ms) * 1000));
    };
    const ours = score("clientdata");
    const unit = lowerIsBetter ? " ms" : "/s";
    const oursText = ours === null ? "n/a" : fmt(ours) + unit;
    // Extra numbers a case reports ({ label: number } in `extra`), as medians in the goal column.
    const extras = (() => {
      const runs = samples.clientdata?.filter((r) => r && r.extra) ?? [];
      if (!runs.length) return "";
      return Object.keys(runs[0].extra)
        .map((label) => `${label}: ${fmt(median(runs.map((r) => r.extra[label])))}`)
        .join(", ");
    })();
    const peers = libraries.filter((l) => l !== "clientdata");
    if (!peers.length) rows.push([name, oursText, "—", "—", extras]);
    for (const peer of peers) {
      const theirs = score(peer);
      const ratio = ours === null || theirs === null ? null : ours / theirs;
      const goal = GOALS[`${name}|${peer}`];
      let verdict = "";
      if (goal && ratio !== null && !SMOKE) verdict = goal.atLeast ? (ratio >= goal.atLeast ? `met (≥ ${goal.atLeast}x)` : `MISSED (≥ ${goal.atLeast}x)`) : ratio <= goal.atMost ? `met (≤ ${goal.atMost}x)` : `MISSED (≤ ${goal.atMost}x)`;
      if (extras) verdict = verdict ? `${verdict}; ${extras}` : extras;
      rows.push([name, oursText, `${peer}: ${theirs === null ? "n/a" : fmt(theirs) + unit}`, ratio === null ? "n/a" : `${ratio.toFixed(2)}x`, verdict]);
    }
    if (profiles) for (const lib of libraries) printProfile(name, lib, profiled[lib]);
    const absolute = ABSOLUTE_GOALS[name];
    if (absolute) {
      const verdict = ours === null || SMOKE ? "" : ours <= absolute.atMostMs ? "met" : "MISSED";
      rows.push([`${name} (absolute)`, oursText, `goal: ≤ ${fmt(absolute.atMostMs)} ms`, ours === null ? "n/a" : `${(ours / absolute.atMostMs).toFixed(2)}x of budget`, verdict]);
    }
  }

  rows.push(...(await memoryRows(browser, origin, query)));
  // X and P run natively, without a browser: once, in the default engine's run.
  if (ENGINE === "chromium") {
    rows.push(...serverIngestRows());
    rows.push(...serverScaleoutRows());
  }

  const size = await pkgSize();
  rows.push(["B", size === null ? "n/a (no pkg/)" : `${(size / 1024).toFixed(1)} KiB gz`, `goal: ≤ ${SIZE_GOAL_BYTES / 1024} KiB`, size === null ? "n/a" : `${(size / SIZE_GOAL_BYTES).toFixed(2)}x of budget`, size === null || SMOKE ? "" : size <= SIZE_GOAL_BYTES ? "met" : "MISSED"]);

  const version = (await browser.version()).replace(/^(Headless)?Chrome\//, "Chromium ").replace(/^firefox\//, "Firefox ");
  await browser.close();
  if (tinybaseServer.errors.length) console.error(`TinyBase WsServer reported ${tinybaseServer.errors.length} ignored error(s), first: ${tinybaseServer.errors[0]}`);

  const header = ["case", "clientdata", "peer", "ratio", "goal"];
  const table = [header, header.map(() => "---"), ...rows].map((r) => `| ${r.join(" | ")} |`).join("\n");
  console.log(`\nclientdata benchmarks (${MODE}, ${RUNS} run(s) per pair, median) in ${version}\n`);
  console.log(table);

  if (!SMOKE && !ONLY) {
    const cpu = cpus()[0]?.model ?? "unknown CPU";
    const commit = (() => {
      try {
        return execFileSync("git", ["rev-parse", "--short", "HEAD"], { cwd: ROOT }).toString().trim();
      } catch {
        return "unknown";
      }
    })();
    const load = loadavg().map((x) => x.toFixed(1)).join(" ");
    const command = `node bench/run.mjs${ENGINE === "chromium" ? "" : ` --engine ${ENGINE}`}`;
    const entry = `\n## ${new Date().toISOString()} — commit ${commit}, ${ENGINE}\n\n${version}; ${cpus().length} cores, ${cpu}; load average at the end ${load}; \`${command}\`\n\n${table}\n`;
    await appendFile(join(ROOT, "bench", "RESULTS.md"), entry);
    console.log("\nappended to bench/RESULTS.md");
  }
  const missing = rows.filter((r) => r[1] === "n/a" && !r[0].endsWith("(absolute)"));
  if (missing.length) console.log(`\n${missing.length} row(s) n/a: clientdata lacks the feature in this build`);
  console.log(`\nbench: ${rows.length} rows, ${SMOKE ? "smoke" : "full"} run complete`);
}

// M: what each library holds once a store of n × 1 KiB records is open and readable, in a fresh
// page (seeded from another page of the same context): the JS heap after a forced collection
// (Chromium: over the DevTools protocol; Firefox: its memory reporters), plus clientdata's wasm memory growth, each against the same page's
// baseline with the library loaded. Then wasm memory over open → sync → close cycles, with a
// forced collection after each (a closed store the collector would free is not held), and over
// open → close cycles without one (close() frees eagerly); each should stay flat.
const MEMORY_GOAL = 1.5;
const MEMORY_PEER = "raw IndexedDB getAll held in a Map";
async function memoryRows(browser, origin, query) {
  if (ONLY && !ONLY.includes("M")) return [];
  const n = SMOKE ? 200 : 10_000;
  const cycleCount = SMOKE ? 3 : 10;
  const context = await browser.createBrowserContext();
  const fresh = (tag) => benchPage(context, origin, query, tag);
  const samples = { clientdata: [], raw: [] };
  const parts = { heap: [], wasm: [] };
  try {
    for (let i = 0; i < RUNS; i++) {
      for (const lib of ["clientdata", "raw"]) {
        const name = `bench-m-${lib}-${Date.now()}-${i}`;
        const seeder = await fresh();
        await seeder.evaluate(([l, nm, k]) => window.bench.memory.seed(l, nm, k), [lib, name, n]);
        await seeder.close();
        const page = await fresh(name);
        const cdp = ENGINE === "chromium" ? await page.createCDPSession() : null;
        const heap = () => (cdp ? chromiumHeap(cdp) : firefoxPageHeap(browser, name));
        const wasm0 = await page.evaluate((l) => window.bench.memory.prepare(l), lib);
        const heap0 = await heap();
        const wasm1 = await page.evaluate(([l, nm, k]) => window.bench.memory.load(l, nm, k), [lib, name, n]);
        const heap1 = await heap();
        samples[lib].push(heap1 - heap0 + (wasm1 - wasm0));
        if (lib === "clientdata") {
          parts.heap.push(heap1 - heap0);
          parts.wasm.push(wasm1 - wasm0);
        }
        await page.evaluate((nm) => window.bench.memory.cleanup(nm), name);
        await cdp?.detach();
        await page.close();
      }
    }
    // Wasm memory over cycles, without and with a sync round in each (the first cycle's sync
    // pushes the n records, later ones find nothing to do).
    const server = new URLSearchParams(query.toString()).get("server");
    const mib = (b) => `${(b / 1048576).toFixed(1)} MiB`;
    const cycleRows = [];
    // Last, open → close with no forced collection: close() frees the store's wasm side itself,
    // so the memory stays flat even when the collector never runs between cycles.
    const plans = [[null, true], ...(server ? [[server, true]] : []), [null, false]];
    for (const [srv, collect] of plans) {
      const page = await fresh();
      const name = `bench-m-cycles-${Date.now()}`;
      await page.evaluate(([nm, k]) => window.bench.memory.seed("clientdata", nm, k), [name, n]);
      const user = `bench-m-${Date.now()}`;
      const cdp = ENGINE === "chromium" ? await page.createCDPSession() : null;
      const sizes = [];
      for (let i = 0; i < cycleCount; i++) {
        sizes.push(await page.evaluate(([nm, k, s, u]) => window.bench.memory.cycle(nm, k, s, u), [name, n, srv, user]));
        if (collect) await (cdp ? chromiumHeap(cdp) : firefoxCollect(browser));
      }
      await cdp?.detach();
      await page.evaluate((nm) => window.bench.memory.cleanup(nm), name);
      await page.close();
      cycleRows.push([`M (${srv ? "open → sync → close" : "open → close"}${collect ? "" : ", no forced collection"})`, `wasm ${mib(sizes[sizes.length - 1])} after ${cycleCount}`, "—", "—", leakVerdict(sizes, mib)]);
    }
    const ours = median(samples.clientdata);
    const theirs = median(samples.raw);
    const ratio = ours / theirs;
    let verdict = SMOKE ? "" : ratio <= MEMORY_GOAL ? `met (≤ ${MEMORY_GOAL}x)` : `MISSED (≤ ${MEMORY_GOAL}x)`;
    const heapName = ENGINE === "chromium" ? "JS heap" : "JS heap (about:memory, the page's JS zones and realms)";
    const extras = `${n.toLocaleString("en-US")} records; ${heapName} ${mib(median(parts.heap))}, wasm memory growth ${mib(median(parts.wasm))}`;
    verdict = verdict ? `${verdict}; ${extras}` : extras;
    return [["M", mib(ours), `${MEMORY_PEER}: ${mib(theirs)}`, `${ratio.toFixed(2)}x`, verdict], ...cycleRows];
  } finally {
    await context.close();
  }
}

// Chromium's JS heap after a forced collection, over CDP.
async function chromiumHeap(cdp) {
  await cdp.send("HeapProfiler.collectGarbage");
  return (await cdp.send("Runtime.getHeapUsage")).usedSize;
}

// Firefox: "minimize memory usage" (about:memory's button: collections in every process), run in
// the browser's chrome window over BiDi.
const FIREFOX_COLLECT = `(() => {
  const reporters = Cc["@mozilla.org/memory-reporter-manager;1"].getService(Ci.nsIMemoryReporterManager);
  return new Promise((done) => reporters.minimizeMemoryUsage(done));
})()`;
async function firefoxChrome(browser, expression) {
  const { result: tree } = await browser.connection.send("browsingContext.getTree", { "moz:scope": "chrome" });
  const { result } = await browser.connection.send("script.evaluate", { expression, target: { context: tree.contexts[0].context }, awaitPromise: true });
  if (result.type !== "success") throw new Error(`bench M: Firefox chrome window: ${JSON.stringify(result.exceptionDetails ?? result)}`);
  return result.result.value;
}
const firefoxCollect = (browser) => firefoxChrome(browser, FIREFOX_COLLECT);

// Firefox's equivalent, from the memory reporters behind about:memory, read in the browser's
// chrome window over BiDi: after "minimize memory usage" (collections in every process), the
// bytes of the JS zones and realms of the one page whose URL carries `tag`. Like CDP's
// usedSize, this is the JS heap alone: wasm linear memory (reported in the realm as an
// ArrayBuffer's non-heap/elements/wasm) is left out here and added from its byteLength, as in
// Chromium.
async function firefoxPageHeap(browser, tag) {
  await firefoxCollect(browser);
  const expression = `(async () => {
    const reporters = Cc["@mozilla.org/memory-reporter-manager;1"].getService(Ci.nsIMemoryReporterManager);
    let bytes = 0, reports = 0;
    const add = (process, path, kind, units, amount) => {
      if (units === Ci.nsIMemoryReporter.UNITS_BYTES && path.startsWith("explicit/window-objects/top(") && path.includes(${JSON.stringify(`m=${tag}`)}) && (path.includes("/js-zone(") || path.includes("/js-realm(")) && !path.endsWith("/non-heap/elements/wasm")) { bytes += amount; reports++; }
    };
    await new Promise((done) => reporters.getReports(add, null, done, null, false));
    return JSON.stringify({ bytes, reports });
  })()`;
  const { bytes, reports } = JSON.parse(await firefoxChrome(browser, expression));
  if (!reports) throw new Error(`bench M: Firefox reported nothing for the page tagged ${tag}`);
  return bytes;
}

// Wasm memory only grows (in 64 KiB pages), so the first cycles may still reach the allocator's
// working size; a leak keeps growing to the end. The verdict looks at the second half of the
// cycles: flat there is no leak.
function leakVerdict(sizes, mib) {
  const half = Math.floor(sizes.length / 2);
  const late = sizes[sizes.length - 1] - sizes[half - 1];
  const early = sizes[half - 1] - sizes[0];
  const verdict = late === 0 ? `no leak: flat over the last ${sizes.length - half} cycles` : `LEAK: grows by ${mib(late)} over the last ${sizes.length - half} cycles`;
  return `after each: ${sizes.map(mib).join(", ")}; ${verdict}${early ? ` (${mib(early)} before that)` : ""}`;
}

// X: the server's `ingest` example (server/examples/ingest.rs: pushes of 1000 records x 1 KiB
// into a file database in WAL mode, through the store alone and over HTTP on loopback), RUNS
// times, median per level and size. Built by `cargo build --profile server -p clientdata-server
// --examples`; rows say n/a without it.
function serverIngestRows() {
  if (ONLY && !ONLY.includes("X")) return [];
  const sizes = SMOKE ? [2000] : [10_000, 100_000];
  if (!existsSync(INGEST_BIN)) return sizes.map((n) => [`X (${fmt(n)})`, "n/a", `goal: ≥ ${fmt(INGEST_GOAL)}/s`, "n/a", "ingest example not built"]);
  const rates = new Map();
  for (let i = 0; i < RUNS; i++) {
    const out = execFileSync(INGEST_BIN, ["store", "http", ...sizes.map(String)], { encoding: "utf8", timeout: 600_000 });
    // e.g. "store ingest    10000 records   0.126 s     79402 records/s   cpu   0.21 s"
    for (const [, level, n, rate] of out.matchAll(/^(store|http)\s+ingest\s+(\d+) records\s+[\d.]+ s\s+(\d+) records\/s/gm)) {
      const label = `X ${level === "http" ? "HTTP" : "store"} ingest (${fmt(Number(n))})`;
      rates.set(label, [...(rates.get(label) ?? []), Number(rate)]);
    }
  }
  if (rates.size !== sizes.length * 2) throw new Error(`bench X: expected ${sizes.length * 2} ingest lines from ${INGEST_BIN}, parsed ${rates.size}`);
  return [...rates].map(([label, xs]) => {
    const rate = median(xs);
    const verdict = SMOKE ? "" : rate >= INGEST_GOAL ? "met" : "MISSED";
    return [label, `${fmt(rate)}/s`, `goal: ≥ ${fmt(INGEST_GOAL)}/s`, `${(rate / INGEST_GOAL).toFixed(2)}x of goal`, verdict];
  });
}

// Scale-out: `scaleout` (server/examples/scaleout.rs) starts real server processes on one
// database and has 4 users push (pushes of 1000 x 1 KiB) and then pull their records at once,
// each user through its own process (user i through process i mod N, pulled back through the
// next). Configurations: SQLite with 1 process, PostgreSQL with 1 and with 2 processes, RUNS
// times interleaved, median per row. PostgreSQL is the cluster at CLIENTDATA_TEST_PG (what
// scripts/test.sh starts), else a throwaway one from scripts/pg.sh; rows say n/a without it.
function serverScaleoutRows() {
  if (ONLY && !ONLY.includes("P")) return [];
  const records = SMOKE ? 500 : 10_000;
  const configs = [["sqlite", 1], ["postgres", 1], ["postgres", 2]];
  const label = (kind, n, what) => `P ${what}, 4 users (${kind}, ${n} process${n > 1 ? "es" : ""})`;
  const na = (why) => configs.flatMap(([k, n]) => ["ingest", "answer"].map((w) => [label(k, n, w), "n/a", "—", "—", why]));
  if (!existsSync(SCALEOUT_BIN)) return na("scaleout example not built");
  let pg = process.env.CLIENTDATA_TEST_PG;
  let cluster = null;
  if (!pg) {
    cluster = mkdtempSync(join(tmpdir(), "clientdata-bench-pg-"));
    try {
      pg = execFileSync("bash", [join(ROOT, "scripts", "pg.sh"), "start", cluster], { encoding: "utf8" }).trim();
    } catch (e) {
      rmSync(cluster, { recursive: true, force: true });
      return na(`no PostgreSQL: ${String(e.message).split("\n")[0]}`);
    }
  }
  const rates = new Map();
  try {
    for (let i = 0; i < RUNS; i++) {
      for (const [kind, n] of configs) {
        const database = kind === "sqlite" ? "sqlite" : pg;
        const out = execFileSync(SCALEOUT_BIN, ["--database", database, "--processes", String(n), "--users", "4", "--records", String(records)], { encoding: "utf8", timeout: 600_000 });
        // e.g. "scaleout postgres 2 processes ingest 40000 records 1.234 s 32414 records/s"
        for (const [, k, p, what, rate] of out.matchAll(/^scaleout (\w+) (\d+) process(?:es)? (ingest|answer) \d+ records [\d.]+ s (\d+) records\/s/gm)) {
          const key = label(k, Number(p), what);
          rates.set(key, [...(rates.get(key) ?? []), Number(rate)]);
        }
      }
    }
  } finally {
    if (cluster) {
      execFileSync("bash", [join(ROOT, "scripts", "pg.sh"), "stop", cluster]);
      rmSync(cluster, { recursive: true, force: true });
    }
  }
  if (rates.size !== configs.length * 2) throw new Error(`bench P: expected ${configs.length * 2} lines from ${SCALEOUT_BIN}, parsed ${rates.size}`);
  const rate = (k, n, w) => median(rates.get(label(k, n, w)));
  return configs.flatMap(([kind, n]) =>
    ["ingest", "answer"].map((what) => {
      const r = rate(kind, n, what);
      // The peer column: PostgreSQL against SQLite; two processes against one.
      const [peerName, peer] = kind === "sqlite" ? [null, null] : n === 1 ? ["SQLite", rate("sqlite", 1, what)] : ["1 process", rate("postgres", 1, what)];
      return [label(kind, n, what), `${fmt(r)}/s`, peer ? `${peerName}: ${fmt(peer)}/s` : "—", peer ? `${(r / peer).toFixed(2)}x` : "—", ""];
    }),
  );
}

// Collects the console profiles the page records around each timed part; take() returns those
// finished since the last call (the event may trail the run's result by a moment).
async function startProfiling(page) {
  const cdp = await page.createCDPSession();
  const profiles = [];
  cdp.on("Profiler.consoleProfileFinished", (e) => profiles.push(e.profile));
  await cdp.send("Profiler.enable");
  await cdp.send("Profiler.setSamplingInterval", { interval: 100 });
  return {
    async take() {
      await new Promise((r) => setTimeout(r, 50));
      return profiles.splice(0);
    },
  };
}

// Self time per function over all of a case's profiles of one library, top 15 (wasm functions
// appear by index: pkg/ is built without names).
function printProfile(name, lib, profiles) {
  const self = new Map();
  let total = 0;
  for (const p of profiles) {
    const byId = new Map(p.nodes.map((n) => [n.id, n]));
    p.samples.forEach((id, i) => {
      const { functionName, url, lineNumber } = byId.get(id).callFrame;
      const label = `${functionName || "(anonymous)"} ${url ? `${url.split("/").pop()}:${lineNumber + 1}` : ""}`.trim();
      const dt = (p.timeDeltas[i] ?? 0) / 1000;
      self.set(label, (self.get(label) ?? 0) + dt);
      total += dt;
    });
  }
  console.log(`\nprofile ${name} (${lib}, ${profiles.length} run(s), ${fmt(total)} ms sampled), top self time:`);
  for (const [label, ms] of [...self].sort((a, b) => b[1] - a[1]).slice(0, 15)) {
    console.log(`  ${((ms / total) * 100).toFixed(1).padStart(5)}%  ${fmt(ms).padStart(7)} ms  ${label}`);
  }
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
