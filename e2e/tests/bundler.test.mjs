// The package as a bundler consumer meets it: e2e/bundler/ is a tiny Vite app that imports
// "clientdata" and "clientdata/wasi-keyvalue.js" by name (pkg/ linked in with `file:../../pkg`).
// `vite build` must turn the web target's `new URL("clientdata_bg.wasm", import.meta.url)` into
// an emitted asset, and the built app, served statically, must open a store and round-trip values.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { createServer } from "node:http";
import { existsSync, mkdtempSync, readFileSync, readdirSync, realpathSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, extname, normalize, sep } from "node:path";
import { ROOT } from "../lib/server.mjs";
import { launch } from "../lib/browser.mjs";

const APP = join(ROOT, "e2e", "bundler");
// A build directory of this run's own: the suite runs in several engines side by side.
const DIST = mkdtempSync(join(tmpdir(), "clientdata-vite-"));
const VITE = join(APP, "node_modules", "vite", "bin", "vite.js");
const PKG = join(ROOT, "pkg");

const MIME = {
  ".html": "text/html; charset=utf-8",
  ".js": "text/javascript; charset=utf-8",
  ".mjs": "text/javascript; charset=utf-8",
  ".css": "text/css; charset=utf-8",
  ".json": "application/json",
  ".wasm": "application/wasm",
  ".svg": "image/svg+xml",
  ".ico": "image/x-icon",
};

/** Every file under `dir`, as paths relative to it. */
function walk(dir, prefix = "") {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? walk(join(dir, e.name), `${prefix}${e.name}/`) : [`${prefix}${e.name}`],
  );
}

/** Runs `vite build` in the app directory; resolves with its output, rejects with it on failure. */
function viteBuild() {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [VITE, "build", "--logLevel", "info", "--outDir", DIST, "--emptyOutDir"], {
      cwd: APP,
      env: { ...process.env, NO_COLOR: "1", FORCE_COLOR: "0" },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let out = "";
    child.stdout.on("data", (c) => (out += c));
    child.stderr.on("data", (c) => (out += c));
    child.on("error", reject);
    child.on("exit", (code) => (code === 0 ? resolve(out) : reject(new Error(`vite build exited with ${code}:\n${out}`))));
  });
}

/** A static server for dist/ on a free loopback port, logging every request and its MIME type. */
function serve(root) {
  const requests = [];
  const server = createServer((req, res) => {
    const path = decodeURIComponent(new URL(req.url, "http://x").pathname);
    let file = normalize(join(root, path === "/" ? "index.html" : path));
    if (file !== root && !file.startsWith(root + sep)) {
      res.writeHead(403).end();
      return;
    }
    if (existsSync(file) && statSync(file).isDirectory()) file = join(file, "index.html");
    if (!existsSync(file)) {
      requests.push({ path, status: 404 });
      res.writeHead(404, { "content-type": "text/plain" }).end("not found");
      return;
    }
    const type = MIME[extname(file)] ?? "application/octet-stream";
    requests.push({ path, status: 200, type });
    res.writeHead(200, { "content-type": type, "cache-control": "no-store" }).end(readFileSync(file));
  });
  return new Promise((resolve) => {
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address();
      resolve({ url: `http://127.0.0.1:${port}`, requests, stop: () => new Promise((r) => server.close(r)) });
    });
  });
}

let server;
let browser;
let buildLog;
before(async () => {
  assert.ok(
    existsSync(join(APP, "node_modules")) && existsSync(VITE),
    "e2e/bundler/node_modules is missing: run `npm ci` in e2e/bundler (scripts/setup.sh installs it)",
  );
  assert.ok(existsSync(join(PKG, "clientdata_bg.wasm")), "pkg/ is not built: run wasm-pack build --target web first");
  buildLog = await viteBuild();
  server = await serve(DIST);
  browser = await launch();
});
after(async () => {
  await browser?.close();
  await server?.stop();
  rmSync(DIST, { recursive: true, force: true });
});

test("the bundler app links the current pkg/ (a rebuilt pkg is picked up)", () => {
  const linked = join(APP, "node_modules", "clientdata");
  assert.equal(realpathSync(linked), realpathSync(PKG), "node_modules/clientdata must be a link to pkg/, not a copy");
});

test("vite build emits the wasm as an asset, byte-identical to pkg/clientdata_bg.wasm", () => {
  const files = walk(DIST);
  const wasm = files.filter((f) => f.endsWith(".wasm"));
  assert.equal(wasm.length, 1, `one emitted .wasm asset in dist/, got ${JSON.stringify(files)}\n${buildLog}`);
  assert.match(wasm[0], /^assets\/clientdata_bg-[\w-]+\.wasm$/);
  assert.ok(readFileSync(join(DIST, wasm[0])).equals(readFileSync(join(PKG, "clientdata_bg.wasm"))), "the emitted wasm is the current pkg's");
  const js = files.filter((f) => f.endsWith(".js"));
  assert.ok(js.length >= 1, "a bundled JS chunk");
  const name = wasm[0].split("/").pop();
  assert.ok(js.some((f) => readFileSync(join(DIST, f), "utf8").includes(name)), `a JS chunk references ${name}`);
  assert.ok(readFileSync(join(DIST, "index.html"), "utf8").includes("/assets/"), "index.html loads the bundled chunk");
});

test("the built app runs in the browser: init(), open, plugin set/get and a wasi bucket round-trip", async () => {
  const context = await browser.newContext();
  const page = await context.newPage();
  const problems = [];
  page.on("pageerror", (e) => problems.push(`page error: ${e.message}`));
  page.on("console", (m) => {
    if (m.type() === "error" || m.type() === "warning") problems.push(`console ${m.type()}: ${m.text()}`);
  });
  await page.goto(`${server.url}/`);
  await page.waitForFunction(() => window.result !== undefined || window.failure !== undefined, null, { timeout: 30_000 });
  const { result, failure } = await page.evaluate(() => ({ result: window.result, failure: window.failure }));
  assert.equal(failure, undefined, `the app failed: ${JSON.stringify(failure)}\n${problems.join("\n")}`);
  assert.deepEqual(result.value, { text: "hello from a bundle", n: 42 });
  assert.deepEqual(result.reads, ["dark", "from the map"], "the package entry's read path is installed in the bundle");
  assert.deepEqual(result.bytes, [1, 2, 3, 255]);
  assert.equal(result.bytesType, "Uint8Array");
  assert.deepEqual(result.exists, [true, false]);
  assert.deepEqual(result.keys, ["blob"]);
  assert.equal(typeof result.engine, "string");

  const wasmRequests = server.requests.filter((r) => r.path.endsWith(".wasm"));
  assert.deepEqual(wasmRequests.map((r) => [r.status, r.type]), [[200, "application/wasm"]], "the wasm asset was fetched once, as application/wasm");
  assert.deepEqual(server.requests.filter((r) => r.status !== 200), [], "no missing files");
  // With the right MIME type instantiateStreaming works; the glue warns when it has to fall back.
  // (WebKit's classic WebDriver reports no console or page errors, so there this list stays
  // empty and the MIME type check above is what holds; Chromium and Firefox report both.)
  assert.deepEqual(problems, [], "no page errors or console warnings");
  await context.close();
});
