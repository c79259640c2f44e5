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
