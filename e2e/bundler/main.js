// A consumer as a bundler sees it: the package imported by name, its wasm resolved by
// `new URL("clientdata_bg.wasm", import.meta.url)`, which Vite emits as a hashed asset.
import init, { ClientData } from "clientdata";
import { keyValueStore } from "clientdata/wasi-keyvalue.js";

const out = document.getElementById("out");

async function run() {
  await init();
  const cd = await ClientData.open({ name: "bundled-" + Date.now() });
  try {
    const kv = cd.plugin("bundled-app");
    kv.set("greeting", { text: "hello from a bundle", n: 42 });
    const value = kv.get("greeting");
    // The entry's JS read path survives bundling: a value only the read-cache map holds (put
    // there by hand, white-box) comes back, so `get` asked the map and not wasm.
    kv.set("theme", "dark");
    kv.__readCache().set("probe", "from the map");
    const reads = [kv.get("theme"), kv.get("probe")];

    const bucket = keyValueStore(cd).open("bundled-bucket");
    bucket.set("blob", new Uint8Array([1, 2, 3, 255]));
    const bytes = bucket.get("blob");
    const listed = bucket.listKeys();

    return {
      value,
      reads,
      bytes: bytes && [...bytes],
      bytesType: bytes?.constructor.name,
      exists: [bucket.exists("blob"), bucket.exists("missing")],
      keys: listed.keys,
      engine: cd.metadata().engine,
    };
  } finally {
    await cd.close();
  }
}

run().then(
  (result) => {
    window.result = result;
    out.textContent = JSON.stringify(result, null, 2);
  },
  (error) => {
    window.failure = { name: error?.name ?? "Error", message: error?.message ?? String(error), stack: error?.stack };
    out.textContent = `${window.failure.name}: ${window.failure.message}`;
  },
);
