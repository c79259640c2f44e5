// One device panel of the demo: a real ClientData instance on its own database, syncing with
// the reference server that serves this page. ?device=A|B picks the database, ?tab=N the tab.
import init, { ClientData } from "/pkg/index.js";

const params = new URLSearchParams(location.search);
const device = params.get("device") ?? "A";
const tab = params.get("tab") ?? "1";
const $ = (id) => document.getElementById(id);

function log(text, isError = false) {
  const li = document.createElement("li");
  li.textContent = `${new Date().toLocaleTimeString()} ${text}`;
  if (isError) li.className = "error";
  $("log").prepend(li);
}
const describe = (e) => `${e?.name ?? "Error"}${e?.code ? ` [${e.code}]` : ""}: ${e?.message ?? e}`;
async function guarded(what, fn) {
  try {
    return await fn();
  } catch (e) {
    log(`${what} failed: ${describe(e)}`, true);
  }
}

await init();
$("title").textContent = `device ${device}, tab ${tab}`;
// In the demo every device belongs to the user "demo" (the server's dev-mode token). Each
// simulated device is its own local database, so they name one server dataset to share it.
const cd = await ClientData.open({
  name: `clientdata-demo-${device}`,
  server: location.origin,
  token: async () => "dev-token-demo",
  sync: { dataset: "clientdata-demo" },
});
window.clientdata = cd; // for the console and the end-to-end tests

function showMeta() {
  const m = cd.metadata();
  const leader = m.leader === undefined ? "" : ` · sync leader: ${m.leader}`;
  $("meta").textContent = `db ${m.name} · engine ${m.engine} · node ${m.nodeId} · slot ${m.slot}${leader} · pending ${m.pendingBytes} B`;
}

const kv = () => cd.plugin($("plugin").value);
function showEntries() {
  const store = kv();
  const body = $("entries").querySelector("tbody");
  body.replaceChildren(
    ...store.keys({ limit: 200 }).map((key) => {
      const row = document.createElement("tr");
      const value = store.get(key);
      for (const text of [key, value instanceof Uint8Array ? `bytes(${value.length})` : JSON.stringify(value)]) {
        const cell = document.createElement("td");
        cell.textContent = text;
        row.append(cell);
      }
      row.onclick = () => {
        $("key").value = key;
        $("value").value = JSON.stringify(value);
      };
      return row;
    }),
  );
  showMeta();
}

for (const type of ["local-change-recorded", "remote-update-available", "local-data-synced", "write-failed"]) {
  cd.on(type, (event) => {
    log(`${type} ${JSON.stringify(event)}`, type === "write-failed");
    showEntries();
  });
}

$("plugin").onchange = showEntries;
$("set").onclick = () =>
  guarded("set", () => {
    let value;
    try {
      value = JSON.parse($("value").value);
    } catch {
      throw new SyntaxError("the value must be JSON, e.g. \"hi\", 42 or {\"a\": 1}");
    }
    kv().set($("key").value, value);
    log(`set ${$("plugin").value}/${$("key").value} (durable on return)`);
    showEntries();
  });
$("delete").onclick = () =>
  guarded("delete", () => {
    kv().delete($("key").value);
    log(`delete ${$("plugin").value}/${$("key").value}`);
    showEntries();
  });

async function syncNow() {
  const started = performance.now();
  const result = await guarded("sync", () => cd.sync());
  if (result) {
    $("sync-status").textContent = `last sync: ${JSON.stringify(result)} in ${Math.round(performance.now() - started)} ms`;
    showEntries();
  }
}
$("sync").onclick = syncNow;
let timer = null;
$("auto").onchange = () => {
  clearInterval(timer);
  timer = $("auto").checked ? setInterval(syncNow, 2000) : null;
};

const lock = () => cd.createLock($("lock-path").value, { ttlMs: 15_000, retryIntervalMs: 500, maxWaitMs: 30_000 });
$("hold").onclick = () =>
  guarded("lock", async () => {
    log(`waiting for lock ${$("lock-path").value}`);
    await lock().withLock(async (grant) => {
      log(`holding lock, epoch ${grant.epoch}`);
      $("lock-info").textContent = JSON.stringify(await lock().inspect(), null, 1);
      await new Promise((r) => setTimeout(r, 10_000));
    });
    log("lock released");
  });
$("inspect").onclick = () =>
  guarded("inspect", async () => {
    const info = await lock().inspect();
    $("lock-info").textContent = info ? JSON.stringify(info, null, 1) : "free";
  });
$("force").onclick = () =>
  guarded("force release", async () => {
    const info = await lock().inspect();
    if (!info) return log("lock is free; nothing to release");
    log(`force release of nonce ${info.nonce}: ${await lock().forceRelease(info.nonce)}`);
  });

$("verify").onclick = () =>
  guarded("verify", async () => {
    const report = await cd.createVerifier().verify();
    $("health").textContent = JSON.stringify(report, null, 1);
  });

showEntries();
log(`opened ${cd.metadata().name}`);
