// A/B of two builds of the package in ONE page: W1, W2, O and L (cases.js) alternate between the two
// builds round by round, and each round's before/after pair is compared, so a loaded machine
// (whose load swings single run.mjs figures by ±40 %) hits both alike. For a change too small for
// run.mjs's side-by-side medians to show.
//
//   node bench/ab.mjs <before pkg dir> <after pkg dir> [--rounds 25] [--engine firefox]
//                     [--cases W1,W2,O,L] (default W1,W2; --w1-only is --cases W1) [--records N]
//
// Prints per case the medians, the median of the paired speed-ups (before ms / after ms) and in
// how many rounds the after build was faster, then every time. O opens a store of N records
// (default 10,000 × 1 KiB, written once by the before build) and reads one key; its floor line
// is plain getAll of that store's records and packs stores in the same rounds.
import { createServer } from "node:http";
import { readFile } from "node:fs/promises";
import { join, extname, dirname, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import puppeteer from "puppeteer-core";

const HERE = dirname(fileURLToPath(import.meta.url));
const args = process.argv.slice(2);
const option = (name, fallback) => (args.includes(name) ? args[args.indexOf(name) + 1] : fallback);
const [before, after] = args.filter((a, i) => !a.startsWith("--") && !["--rounds", "--engine", "--cases", "--records"].includes(args[i - 1]));
if (!before || !after) throw new Error("usage: node bench/ab.mjs <before pkg dir> <after pkg dir> [--rounds N] [--engine chromium|firefox] [--cases W1,W2,O,L] [--records N] [--w1-only]");
const rounds = Number(option("--rounds", "25"));
const engine = option("--engine", "chromium");
const cases = args.includes("--w1-only") ? "W1" : option("--cases", "W1,W2");
const roots = { before: resolve(before), after: resolve(after) };
const types = { ".js": "text/javascript", ".wasm": "application/wasm", ".html": "text/html" };

const server = createServer(async (req, res) => {
  const path = new URL(req.url, "http://x").pathname;
  const [, top, ...rest] = path.split("/");
  const file = path === "/ab.html" ? join(HERE, "ab.html") : roots[top] && join(roots[top], ...rest);
  try {
    if (!file || rest.some((p) => p === "..")) throw new Error("not served");
    const body = await readFile(file);
    res.writeHead(200, { "content-type": types[extname(path)] ?? "application/octet-stream" });
    res.end(body);
  } catch {
    res.writeHead(404);
    res.end();
  }
});
await new Promise((ok) => server.listen(0, "127.0.0.1", ok));
const url = `http://127.0.0.1:${server.address().port}/ab.html?cases=${cases}&records=${option("--records", "10000")}`;
const browser =
  engine === "firefox"
    ? await puppeteer.launch({ browser: "firefox", executablePath: process.env.FIREFOX ?? "/usr/bin/firefox-esr", headless: true, extraPrefsFirefox: { "permissions.default.persistent-storage": 1 } })
    : await puppeteer.launch({ executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium", headless: true, args: ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-background-networking", "--disable-component-update", "--disable-sync", "--no-first-run"] });
try {
  const page = await browser.newPage();
  page.on("pageerror", (e) => console.error("page error:", e));
  await page.goto(url);
  await page.waitForFunction("window.ready === true", { timeout: 60_000 });
  const out = await page.evaluate((r) => window.runAb(r), rounds);
  const median = (xs) => {
    const s = [...xs].sort((a, b) => a - b);
    return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
  };
  for (const [c, n] of [["W1", 1000], ["W2", 10000], ["O", 1], ["L", 2000]]) {
    if (!out[c]) continue;
    const { before: b, after: a } = out[c];
    const ratios = b.map((x, i) => x / a[i]);
    const rate = (ms) => Math.round((n / ms) * 1000).toLocaleString("en");
    console.log(`${c} (${engine}, ${rounds} paired rounds): before median ${median(b).toFixed(1)} ms (${rate(median(b))}/s), after ${median(a).toFixed(1)} ms (${rate(median(a))}/s); median paired speed-up ${median(ratios).toFixed(2)}x, after faster in ${ratios.filter((x) => x > 1).length}/${rounds}`);
    console.log(`  before ms: ${b.map((x) => x.toFixed(1)).join(" ")}`);
    console.log(`  after ms:  ${a.map((x) => x.toFixed(1)).join(" ")}`);
  }
  if (out.lockFloor) console.log(`L floor, raw navigator.locks.request: median ${median(out.lockFloor).toFixed(1)} ms (${Math.round((2000 / median(out.lockFloor)) * 1000).toLocaleString("en")}/s)`);
  if (out.floor) console.log(`O floor, getAll of the store's records and packs (${out.layout}): median ${median(out.floor).toFixed(1)} ms`);
} finally {
  await browser.close();
  server.close();
}
