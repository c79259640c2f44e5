/**
 * A swamp-shaped datastore over clientdata (`clientdata/swamp.js`): `{ type, name, description,
 * configSchema, createProvider(config) }`. The provider opens its ClientData on first use.
 * @module swamp
 */
import type { ClientData, DistributedLock, LockOptions, SyncServiceOptions, SyncCapabilities, VerifyResult } from "./clientdata.js";

/** What `createProvider` accepts (JSON-friendly: the token may be a string). */
export interface ClientDataDatastoreConfig {
  name: string;
  server?: string;
  token?: string | (() => string | Promise<string>);
  autoSync?: boolean | { intervalMs?: number; debounceMs?: number };
  engine?: "auto" | "indexeddb" | "localstorage" | "memory";
}
/** One problem `configSchema.safeParse` found: where (`path`) and what. */
export interface ConfigIssue { path: string[]; message: string; }
/** What `configSchema.safeParse` answers (zod's shape). */
export type SafeParseResult =
  | { success: true; data: ClientDataDatastoreConfig }
  | { success: false; error: { issues: ConfigIssue[]; message: string } };
/** The provider's sync service: the ClientData `SyncService` behind a lazily opened store. */
export interface DatastoreSyncService {
  /**
   * Pulls what changed on the server; resolves to the number of records applied.
   * @example
   * ```js
   * const applied = await provider.createSyncService().pullChanged();
   * ```
   */
  pullChanged(options?: SyncServiceOptions): Promise<number>;
  /**
   * Pushes local changes; resolves to the number of records sent.
   * @example
   * ```js
   * const sent = await provider.createSyncService().pushChanged();
   * ```
   */
  pushChanged(options?: SyncServiceOptions): Promise<number>;
  /**
   * Marks data as changed so the next push includes it.
   * @example
   * ```js
   * await provider.createSyncService().markDirty({ relPath: "notes-app" });
   * ```
   */
  markDirty(options?: { relPath?: string }): Promise<void>;
  /**
   * What this service can do.
   * @example
   * ```js
   * const { scopedSync, lazyHydration } = provider.createSyncService().capabilities();
   * ```
   */
  capabilities(): SyncCapabilities;
  /**
   * Makes sure the data at `relPath` is local (pulls it if needed).
   * @example
   * ```js
   * await provider.createSyncService().hydrateFile("notes-app");
   * ```
   */
  hydrateFile(relPath: string, options?: SyncServiceOptions): Promise<void>;
}
/** What `createProvider` returns. */
export interface DatastoreProvider {
  /**
   * The provider's ClientData, opened on first use.
   * @example
   * ```js
   * const cd = await provider.open();
   * ```
   */
  open(): Promise<ClientData>;
  /**
   * Closes the ClientData if it was opened.
   * @example
   * ```js
   * await provider.close();
   * ```
   */
  close(): Promise<void>;
  /**
   * A lock on `path` (see `DistributedLock`).
   * @example
   * ```js
   * await provider.createLock("notes/export", { ttlMs: 30_000 }).withLock(async () => exportNotes());
   * ```
   */
  createLock(path: string, options?: LockOptions): DistributedLock;
  /**
   * A verifier of the store and its server.
   * @example
   * ```js
   * const { healthy } = await provider.createVerifier().verify();
   * ```
   */
  createVerifier(): { verify(): Promise<VerifyResult> };
  /**
   * Where the data lives: `indexeddb://<name>`.
   * @example
   * ```js
   * provider.resolveDatastorePath(); // "indexeddb://supervisor"
   * ```
   */
  resolveDatastorePath(...args: unknown[]): string;
  /**
   * Where the cache lives: `indexeddb://<name>/cache`.
   * @example
   * ```js
   * provider.resolveCachePath(); // "indexeddb://supervisor/cache"
   * ```
   */
  resolveCachePath(...args: unknown[]): string;
  /**
   * The sync service (needs `server` in the config).
   * @example
   * ```js
   * await provider.createSyncService().pullChanged();
   * ```
   */
  createSyncService(): DatastoreSyncService;
}
/**
 * A zod-like schema of `ClientDataDatastoreConfig`.
 * @example
 * ```js
 * const parsed = configSchema.safeParse({ name: "supervisor" });
 * if (!parsed.success) console.error(parsed.error.issues);
 * ```
 */
export declare const configSchema: { safeParse(config: unknown): SafeParseResult };
/**
 * A provider for `config` (checked with `configSchema`; throws on a bad config).
 * @example
 * ```js
 * const provider = createProvider({ name: "supervisor", server: "https://sync.example", token: "..." });
 * ```
 */
export declare function createProvider(config: ClientDataDatastoreConfig): DatastoreProvider;
/**
 * The datastore descriptor swamp loads.
 * @example
 * ```js
 * import init from "clientdata";
 * import { datastore } from "clientdata/swamp.js";
 * await init();
 * const provider = datastore.createProvider({ name: "supervisor" });
 * ```
 */
export declare const datastore: {
  type: "@clientdata/indexeddb";
  name: string;
  description: string;
  configSchema: typeof configSchema;
  createProvider: typeof createProvider;
};
export default datastore;
