// A swamp-shaped datastore over clientdata: `{ type, name, description, configSchema,
// createProvider(config) }`, whose provider offers createLock, createVerifier,
// resolveDatastorePath, createSyncService and resolveCachePath.
//
//   import init from "clientdata";
//   import { datastore } from "clientdata/swamp.js";
//   await init();
//   const provider = datastore.createProvider({ name: "supervisor", server: "https://sync.example", token: "..." });
//   await provider.createSyncService().pullChanged();
//
// The provider opens its ClientData on first use (swamp creates providers synchronously).
import { ClientData, createLock } from "./clientdata.js";

const URL_RE = /^https?:\/\/[^\s/?#]+(\/[^\s?#]*)?$/;

function issue(path, message) {
  return { path: [path], message };
}

/** A zod-like schema: `safeParse(config)` → `{ success: true, data }` or `{ success: false, error }`. */
export const configSchema = {
  safeParse(config) {
    const issues = [];
    if (config === null || typeof config !== "object" || Array.isArray(config)) {
      issues.push(issue("", "config must be an object"));
    } else {
      const known = new Set(["name", "server", "token", "autoSync", "engine"]);
      for (const key of Object.keys(config)) if (!known.has(key)) issues.push(issue(key, `unknown option ${key}`));
      const { name, server, token, autoSync, engine } = config;
      // Control characters are exactly what this rejects.
      // eslint-disable-next-line no-control-regex
      if (typeof name !== "string" || name.length === 0 || name.length > 256 || /[\u0000-\u001f\u007f]/.test(name)) {
        issues.push(issue("name", "name must be 1 to 256 characters without control characters"));
      }
      if (server !== undefined && (typeof server !== "string" || !URL_RE.test(server))) {
        issues.push(issue("server", "server must be an http:// or https:// URL"));
      }
      if (token !== undefined && typeof token !== "string" && typeof token !== "function") {
        issues.push(issue("token", "token must be a string or a function returning one"));
      }
      if (token !== undefined && server === undefined) issues.push(issue("token", "token needs a server"));
      const auto = autoSync;
      const autoOk = auto === undefined || typeof auto === "boolean" ||
        (auto !== null && typeof auto === "object" && Object.values(auto).every((v) => Number.isInteger(v) && v >= 0));
      if (!autoOk) issues.push(issue("autoSync", "autoSync must be a boolean or { intervalMs, debounceMs }"));
      if (auto !== undefined && auto !== false && server === undefined) issues.push(issue("autoSync", "autoSync needs a server"));
      if (engine !== undefined && !["auto", "indexeddb", "localstorage", "memory"].includes(engine)) {
        issues.push(issue("engine", 'engine must be "auto", "indexeddb", "localstorage" or "memory"'));
      }
    }
    if (issues.length > 0) {
      return { success: false, error: { issues, message: issues.map((i) => `${i.path.join(".") || "config"}: ${i.message}`).join("; ") } };
    }
    return { success: true, data: { ...config } };
  },
};

/** Options of `ClientData.open` for a checked config. */
function openOptions(config) {
  const { name, server, token, autoSync, engine } = config;
  const options = { name };
  if (engine !== undefined) options.engine = engine;
  if (server !== undefined) options.server = server;
  if (typeof token === "string") options.token = () => token;
  else if (typeof token === "function") options.token = token;
  if (autoSync !== undefined) options.autoSync = autoSync;
  return options;
}

/** The provider of one checked config. `open()` resolves to its ClientData (opened once). */
export function createProvider(config) {
  const parsed = configSchema.safeParse(config);
  if (!parsed.success) {
    const error = new Error(`invalid clientdata datastore config: ${parsed.error.message}`);
    error.name = "InvalidOptionsError";
    error.code = "invalid_options";
    error.issues = parsed.error.issues;
    throw error;
  }
  const checked = parsed.data;
  let opened = null;
  const open = () => (opened ??= ClientData.open(openOptions(checked)).catch((e) => {
    opened = null; // a failed open may be retried
    throw e;
  }));
  const service = async () => (await open()).createSyncService();
  return {
    open,
    async close() {
      if (opened) await (await opened).close();
      opened = null;
    },
    createLock: (path, options) => createLock(checked.name, path, options),
    createVerifier: () => ({ verify: async () => (await open()).createVerifier().verify() }),
    resolveDatastorePath: () => `indexeddb://${checked.name}`,
    resolveCachePath: () => `indexeddb://${checked.name}/cache`,
    createSyncService: () => ({
      pullChanged: async (options) => (await service()).pullChanged(options),
      pushChanged: async (options) => (await service()).pushChanged(options),
      markDirty: async (options) => (await service()).markDirty(options),
      capabilities: () => ({ scopedSync: true, lazyHydration: true }),
      hydrateFile: async (relPath, options) => (await service()).hydrateFile(relPath, options),
    }),
  };
}

export const datastore = {
  type: "@clientdata/indexeddb",
  name: "clientdata",
  description: "Per-plugin key/value storage in the browser (IndexedDB with a localStorage journal), synced across devices through a clientdata server",
  configSchema,
  createProvider,
};

export default datastore;
