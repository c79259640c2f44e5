export function onWake(callback) {
  const g = globalThis;
  if (typeof g.addEventListener !== "function") return () => {};
  const onOnline = () => callback();
  const onVisible = () => {
    if (g.document && g.document.visibilityState === "visible") callback();
  };
  g.addEventListener("online", onOnline);
  if (g.document) g.document.addEventListener("visibilitychange", onVisible);
  return () => {
    g.removeEventListener("online", onOnline);
    if (g.document) g.document.removeEventListener("visibilitychange", onVisible);
  };
}

// An event on the global scope (window or worker), for what happens before the app holds a
// store to listen on (e.g. `clientdata:storage-fallback` during open).
export function dispatchGlobal(type, detail) {
  const g = globalThis;
  if (typeof g.dispatchEvent !== "function" || typeof g.CustomEvent !== "function") return;
  try {
    g.dispatchEvent(new g.CustomEvent(type, { detail }));
  } catch {
    // a throwing listener must not fail open
  }
}
