#![cfg(target_arch = "wasm32")]
use wasm_bindgen::prelude::*;
use wasm_bindgen_test::*;
wasm_bindgen_test_configure!(run_in_browser);

#[wasm_bindgen(inline_js = r#"
const variants = {
  raw: (i) => navigator.locks.request("m", async () => i),
  signal: (i) => { const c = new AbortController(); return navigator.locks.request("m", { signal: c.signal }, async () => i); },
  timer: (i) => { const h = setTimeout(() => {}, 1000); return navigator.locks.request("m", async () => { clearTimeout(h); return i; }); },
  interval: (i) => navigator.locks.request("m", async () => { const h = setInterval(() => {}, 10000); clearInterval(h); return i; }),
  storage: (i) => navigator.locks.request("m", async () => { localStorage.getItem("e"); JSON.parse(localStorage.getItem("a") ?? "{}"); localStorage.setItem("a", JSON.stringify({i, x: "y".repeat(250)})); JSON.parse(localStorage.getItem("a")); localStorage.setItem("a", JSON.stringify({i, x: "z".repeat(250)})); return i; }),
  heldPromise: (i) => navigator.locks.request("m", () => { let r; const p = new Promise(res => r = res); Promise.resolve().then(() => Promise.resolve()).then(r); return p; }),
};
export async function micro() {
  const best = {};
  for (let round = 0; round < 5; round++) {
    for (const [k, f] of Object.entries(variants)) {
      const n = 400; const t = performance.now();
      for (let i = 0; i < n; i++) await f(i);
      const r = Math.round(n / ((performance.now() - t) / 1000));
      best[k] = Math.max(best[k] ?? 0, r);
    }
  }
  return JSON.stringify(best);
}
"#)]
extern "C" {
    async fn micro() -> JsValue;
}

#[wasm_bindgen_test]
async fn micro_bench() {
    let r = micro().await;
    console_log!("MICRO {}", r.as_string().unwrap());
}
