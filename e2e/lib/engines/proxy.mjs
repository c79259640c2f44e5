// Playwright's `context.route()` for engines without it (Firefox over BiDi, WebKit over classic
// WebDriver): each browser context sends its plain-HTTP requests through a loopback forward
// proxy of its own (set as the context's proxy, loopback included), and the routes run there.
// Pages keep their real origins. A route can watch, hold, fail, answer or rewrite a request with
// the same calls as playwright's Route (fallback, continue, fetch, fulfill, abort).
import http from "node:http";

/** `**`-style URL glob (as playwright's) to a RegExp over the whole URL. */
function globToRegExp(glob) {
  const parts = glob.split(/(\*\*\/?|\*)/).map((part) => {
    if (part === "**/" || part === "**") return ".*";
    if (part === "*") return "[^/]*";
    return part.replace(/[.+?^${}()|[\]\\]/g, "\\$&");
  });
  return new RegExp(`^${parts.join("")}$`);
}

// Hop-by-hop headers are the proxy's own business on each side.
const HOP = new Set(["connection", "keep-alive", "transfer-encoding", "content-length", "proxy-connection", "upgrade"]);
const endToEnd = (headers) => Object.fromEntries(Object.entries(headers).filter(([k]) => !HOP.has(k.toLowerCase())));

/**
 * One request to `upstream` (an origin); resolves to the upstream's IncomingMessage. When the
 * browser hangs up (`client` closes) first, the upstream connection is dropped too, as it would
 * be without the proxy: servers under test watch for that.
 */
function send(upstream, { method, path, headers, body }, client) {
  const url = new URL(upstream);
  return new Promise((resolve, reject) => {
    const req = http.request({ host: url.hostname, port: url.port, method, path, headers: { ...endToEnd(headers), "content-length": body.length }, agent: false }, resolve);
    client.on("close", () => req.destroy());
    req.on("error", reject);
    req.end(body);
  });
}

async function readAll(stream) {
  const chunks = [];
  for await (const chunk of stream) chunks.push(chunk);
  return Buffer.concat(chunks);
}

/** A fetched answer, shaped as playwright's APIResponse (the calls the tests use). */
function fetched(res, body) {
  return {
    status: () => res.statusCode,
    headers: () => ({ ...res.headers }),
    text: async () => body.toString("utf8"),
    json: async () => JSON.parse(body.toString("utf8")),
    body: async () => body,
  };
}

/** The routes of one browser context and its proxy; `await listen()` gives "127.0.0.1:port". */
export class ContextRoutes {
  constructor() {
    this.routes = []; // { regexp, glob, handler }, newest last
    this.listeners = []; // context.on("request") listeners
    this.server = null;
  }

  /** playwright's `context.on("request", listener)`: every request the context's pages send. */
  onRequest(listener) {
    this.listeners.push(listener);
  }

  route(glob, handler) {
    this.routes.push({ regexp: globToRegExp(glob), glob, handler });
  }

  unroute(glob, handler) {
    this.routes = this.routes.filter((r) => !(r.glob === glob && (!handler || r.handler === handler)));
  }

  async listen() {
    this.server = http.createServer((req, res) => this.#serve(req, res).catch(() => res.destroy()));
    await new Promise((resolve) => this.server.listen(0, "127.0.0.1", resolve));
    return `127.0.0.1:${this.server.address().port}`;
  }

  async close() {
    if (!this.server) return;
    this.server.closeAllConnections();
    await new Promise((r) => this.server.close(r));
    this.server = null;
  }

  async #serve(req, res) {
    const body = await readAll(req);
    // A proxy is sent the absolute URL.
    const target = new URL(req.url);
    const upstream = target.origin;
    const upstreamUrl = target.href;
    const request = {
      url: () => upstreamUrl,
      method: () => req.method,
      headers: () => ({ ...req.headers }),
      postData: () => (body.length ? body.toString("utf8") : null),
      postDataJSON: () => (body.length ? JSON.parse(body.toString("utf8")) : null),
    };
    for (const listener of this.listeners) listener(request);
    const out = { method: req.method, path: `${target.pathname}${target.search}`, headers: req.headers, body };
    // Every answer closes its connection: a browser retries a request whose reused
    // keep-alive connection was reset, which would hide an abort() from the page.
    const answer = (status, headers, data) => {
      res.writeHead(status, { ...endToEnd(headers), "content-length": data.length, connection: "close" });
      res.end(data);
    };
    const pass = async () => {
      const up = await send(upstream, out, res);
      res.writeHead(up.statusCode, { ...endToEnd(up.headers), connection: "close" });
      up.pipe(res);
    };
    const matching = this.routes.filter((r) => r.regexp.test(upstreamUrl));
    // Newest route first; fallback() hands the request to the next older one (as playwright).
    const run = async (i) => {
      if (i < 0) return pass();
      let settled = false;
      const once = (fn) => async (...args) => {
        if (settled) throw new Error("route already handled");
        settled = true;
        return fn(...args);
      };
      const route = {
        request: () => request,
        fallback: once(() => run(i - 1)),
        continue: once(pass),
        abort: once(async () => res.destroy()),
        fetch: async () => {
          const up = await send(upstream, out, res);
          return fetched(up, await readAll(up));
        },
        fulfill: once(async ({ response, status, headers, contentType, body: data } = {}) => {
          const base = response ? { status: response.status(), headers: response.headers() } : { status: 200, headers: {} };
          const h = { ...(headers ?? base.headers) };
          if (contentType) h["content-type"] = contentType;
          const bytes = data === undefined ? (response ? await response.body() : Buffer.alloc(0)) : Buffer.from(data);
          answer(status ?? base.status, h, bytes);
        }),
      };
      await matching[i].handler(route, request);
    };
    await run(matching.length - 1);
  }
}
