function withTimeout(timeoutMs, signal, run) {
  const ctl = new AbortController();
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    ctl.abort();
  }, timeoutMs);
  const onAbort = () => ctl.abort();
  if (signal) {
    if (signal.aborted) ctl.abort();
    else signal.addEventListener("abort", onAbort, { once: true });
  }
  return run(ctl.signal)
    .catch((e) => ({
      failed: signal && signal.aborted ? "aborted" : timedOut ? "timeout" : "network",
      message: String((e && e.message) || e),
    }))
    .finally(() => {
      clearTimeout(timer);
      if (signal) signal.removeEventListener("abort", onAbort);
    });
}

export function fetchText(method, url, body, token, timeoutMs, maxBytes, signal) {
  return withTimeout(timeoutMs, signal, async (s) => {
    const headers = {};
    if (body !== undefined) headers["content-type"] = "application/json";
    if (token !== undefined) headers.authorization = "Bearer " + token;
    const res = await fetch(url, { method, headers, body, signal: s, credentials: "omit", cache: "no-store" });
    const declared = Number(res.headers.get("content-length"));
    if (declared > maxBytes) {
      if (res.body) res.body.cancel().catch(() => {});
      return { status: res.status, tooLarge: declared };
    }
    const buf = await res.arrayBuffer();
    if (buf.byteLength > maxBytes) return { status: res.status, tooLarge: buf.byteLength };
    return { status: res.status, text: new TextDecoder().decode(buf) };
  });
}

export function callTokenProvider(provider) {
  try {
    return Promise.resolve(provider()).then(
      (t) => (typeof t === "string"
        ? { token: t }
        : { failed: "it returned " + (t === null ? "null" : typeof t) + ", not a string" }),
      (e) => ({ failed: String((e && e.message) || e) }));
  } catch (e) {
    return Promise.resolve({ failed: String((e && e.message) || e) });
  }
}
