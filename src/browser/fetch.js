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

// `Retry-After` in milliseconds: delta-seconds or an HTTP date; undefined if absent or unusable.
function retryAfterMs(header) {
  if (header === null) return undefined;
  const text = header.trim();
  if (/^\d{1,10}$/.test(text)) return Number(text) * 1000;
  const at = Date.parse(text);
  return Number.isFinite(at) ? Math.max(0, at - Date.now()) : undefined;
}

// The body read as a stream: once more than maxBytes arrived, the reader is cancelled (the
// connection is dropped) and { tooLarge: bytes read } returned, so an endless or oversized
// reply costs at most maxBytes plus one chunk, declared length or not. Else { bytes }.
async function readCapped(res, maxBytes) {
  const declared = Number(res.headers.get("content-length"));
  if (declared > maxBytes) {
    if (res.body) res.body.cancel().catch(() => {});
    return { tooLarge: declared };
  }
  if (!res.body) return { bytes: new Uint8Array(0) };
  const reader = res.body.getReader();
  const chunks = [];
  let size = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    size += value.byteLength;
    if (size > maxBytes) {
      reader.cancel().catch(() => {});
      return { tooLarge: size };
    }
    chunks.push(value);
  }
  if (chunks.length === 1) return { bytes: chunks[0] };
  const bytes = new Uint8Array(size);
  let at = 0;
  for (const chunk of chunks) {
    bytes.set(chunk, at);
    at += chunk.byteLength;
  }
  return { bytes };
}

// A JSON request; the answer's body capped as readCapped says. `asBytes`: a 2xx body comes back
// as `bytes` (UTF-8, for wasm to read: one copy into its memory, no decoding here), any other
// as `text` (the server's { code, message }).
function fetchJson(method, url, body, token, timeoutMs, maxBytes, signal, asBytes) {
  return withTimeout(timeoutMs, signal, async (s) => {
    const headers = {};
    if (body !== undefined) headers["content-type"] = "application/json";
    if (token !== undefined) headers.authorization = "Bearer " + token;
    const res = await fetch(url, { method, headers, body, signal: s, credentials: "omit", cache: "no-store" });
    const base = { status: res.status, retryAfterMs: retryAfterMs(res.headers.get("retry-after")) };
    const got = await readCapped(res, maxBytes);
    if (got.tooLarge !== undefined) return { ...base, tooLarge: got.tooLarge };
    if (asBytes && res.ok) return { ...base, bytes: got.bytes };
    return { ...base, text: new TextDecoder().decode(got.bytes) };
  });
}

export function fetchText(method, url, body, token, timeoutMs, maxBytes, signal) {
  return fetchJson(method, url, body, token, timeoutMs, maxBytes, signal, false);
}

// As fetchText, but a 2xx body as `bytes`: sync replies, which wasm reads (core::wire).
export function fetchReply(method, url, body, token, timeoutMs, maxBytes, signal) {
  return fetchJson(method, url, body, token, timeoutMs, maxBytes, signal, true);
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

// Content of values synced by reference (src/sync/hydrate.rs): `body` a Uint8Array to PUT, or
// undefined to GET. A 2xx answer's body comes back as `bytes` (read up to maxBytes, else
// { tooLarge }); any other answer's as `text`, for its { code, message }.
export function fetchBytes(method, url, body, token, timeoutMs, maxBytes, signal) {
  return withTimeout(timeoutMs, signal, async (s) => {
    const headers = {};
    if (body !== undefined) headers["content-type"] = "application/octet-stream";
    if (token !== undefined) headers.authorization = "Bearer " + token;
    const res = await fetch(url, { method, headers, body, signal: s, credentials: "omit", cache: "no-store" });
    const base = { status: res.status, retryAfterMs: retryAfterMs(res.headers.get("retry-after")) };
    if (!res.ok) return { ...base, text: await res.text() };
    const declared = Number(res.headers.get("content-length"));
    if (declared > maxBytes) {
      if (res.body) res.body.cancel().catch(() => {});
      return { ...base, tooLarge: declared };
    }
    const bytes = new Uint8Array(await res.arrayBuffer());
    if (bytes.byteLength > maxBytes) return { ...base, tooLarge: bytes.byteLength };
    return { ...base, bytes };
  });
}

// SHA-256 of bytes as 64 lowercase hex digits (WebCrypto: no hash code in the wasm bundle).
export async function sha256Hex(bytes) {
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", bytes));
  let hex = "";
  for (const b of digest) hex += b.toString(16).padStart(2, "0");
  return hex;
}
