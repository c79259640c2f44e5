//! TypeScript shapes shared by the exported classes (written here, so the `.d.ts` has no `any`).

use wasm_bindgen::prelude::*;

#[wasm_bindgen(typescript_custom_section)]
const TS_TYPES: &str = r#"
/** Anything `JSON.stringify` represents exactly. */
export type JsonValue = null | boolean | number | string | JsonValue[] | { [key: string]: JsonValue };
/** What a plugin store holds: JSON values and byte arrays, each read back with its type. */
export type StoredValue = JsonValue | Uint8Array;
/** Options of `ClientData.open`. */
export interface OpenOptions {
  /** Database name: the IndexedDB name and part of lock, channel and localStorage names. */
  name: string;
  /** Storage engine; "auto" (default) tries IndexedDB, then localStorage, then memory. */
  engine?: "auto" | "indexeddb" | "localstorage" | "memory";
  /** Per-plugin byte quotas (key + value bytes of live records). */
  quotas?: Record<string, number>;
  /** Byte budget of the localStorage journal (default 2 MiB). */
  journalBudgetBytes?: number;
  /**
   * Ask the browser for persistent storage (default true). Never holds up `open()`: the answer
   * arrives in `metadata().persisted` / `persistRequest` when the browser (or user) gives it.
   */
  persist?: boolean;
  /** Largest accepted lead of a remote clock over the local one (default 60000). */
  maxDriftMs?: number;
  /** Base URL of the sync server (`POST <server>/sync/exchange`); without it nothing syncs. */
  server?: string;
  /** Bearer token provider, asked before each round and once more after a 401. */
  token?: () => string | Promise<string>;
  /** Automatic sync in the leader tab (one per database, over Web Locks). */
  autoSync?: boolean | { intervalMs?: number; debounceMs?: number };
  /** Transport tuning. */
  sync?: {
    /** Per-request timeout (default 30000). */
    timeoutMs?: number;
    /** Retries after network errors and 5xx, with jittered backoff (default 2, at most 10). */
    retries?: number;
    /** Records per page in each direction, 1..1000 (default 1000). */
    pageLimit?: number;
    /**
     * The dataset on the server this database syncs with (default: the database's name), so
     * two databases of one user stay apart; name the same dataset to share it under other
     * local names. 1 to 256 bytes without control characters.
     */
    dataset?: string;
    /**
     * The app's id for this device, stable across storage wipes (it comes from the app's own
     * login or device registration), 1 to 128 characters without control characters. Rounds
     * carry it with the store epoch, so when the browser wipes IndexedDB and localStorage
     * alike (Safari's seven-day rule, "clear site data") the server, which last saw this device
     * with another epoch, tells the next sync: it reports `wiped: true`, emits `store-wiped`
     * and the verifier's `details.store` says so. Without it such a store is a new device.
     * Give each device its own id (and each local database sharing one dataset on a device):
     * two stores under one id look like wipes of each other.
     * @example
     * const cd = await ClientData.open({ name: "notes", server, token, sync: { device: session.deviceId } });
     */
    device?: string;
    /** Largest reply read, 1024..64 MiB (default 8 MiB); a longer one is abandoned mid-stream
     * with BodyTooLargeError. */
    maxReplyBytes?: number;
    /** Values larger than this many encoded bytes (default 32768, at most 1 MiB) sync by
     * reference: uploaded to the server's content endpoint, pulled as metadata, fetched on demand
     * (`getAsync`, `hydrateFile`). */
    lazyThreshold?: number;
    /** Plugins whose values synced by reference are fetched within the pull (true: all). A fetch
     * that fails holds back that record's writer in that plugin until the next sync
     * (`contentFailures` in the result). Default: none (lazy). */
    eagerHydration?: boolean | string[];
  };
  /**
   * End-to-end encryption (docs/THREAT-MODEL.md): every value and key name leaves the device
   * sealed (AES-GCM, names as HMAC-derived ids), plugin ids blinded too unless
   * `blindPluginIds: false`; HLCs and node ids stay clear. Needs `server`. Use it from a
   * dataset's first sync on.
   */
  encryption?: EncryptionOptions;
}

/** `open({ encryption })`: a key, or a passphrase stretched with the server's salt. */
export type EncryptionOptions = (
  | {
      /** A non-extractable AES-GCM key (encrypt and decrypt usages) that seals from now on. */
      key: CryptoKey;
      /**
       * Keys used before a rotation: they open records still sealed with them. The last one
       * (or `key` when there is none) names things: keep passing it after every rotation.
       */
      previousKeys?: CryptoKey[];
      passphrase?: never;
      previousPassphrases?: never;
    }
  | {
      /** Stretched by PBKDF2-HMAC-SHA256, 600,000 iterations, over the user's salt on the server. */
      passphrase: string;
      /** Passphrases used before a rotation (as `previousKeys`). */
      previousPassphrases?: string[];
      key?: never;
      previousKeys?: never;
    }
) & {
  /** Blind plugin ids too (default true); false sends them in the clear. */
  blindPluginIds?: boolean;
};
/** Options of `ClientData.plugin`. */
export interface PluginOptions {
  /** Byte quota of this plugin (replaces one given to `open`); null removes it. */
  quotaBytes?: number | null;
}
/** A lock grant a write is fenced by: what `DistributedLock.acquire()` resolves to. */
export interface FenceGrant { lockName: string; epoch: number; }
/** Options of `PluginStore.setAsync` and `setMany`. */
export interface WriteOptions {
  /** Write only while this lock grant is the newest; else `LockLostError`, nothing written. */
  fence?: FenceGrant;
}
/** Options of `PluginStore.keys`. */
export interface KeysOptions { prefix?: string; limit?: number; }
/** Options of `PluginStore.scan`. */
export interface ScanOptions { prefix?: string; pageSize?: number; }
/** What `ClientData.metadata()` reports. */
export interface Metadata {
  name: string;
  engine: "indexeddb" | "localstorage" | "memory";
  /** Why the engine is not IndexedDB, or null. */
  fallbackReason: string | null;
  nodeId: string;
  /** The store epoch: random, given to the local store when it was created. */
  storeEpoch: string;
  /** The store was wiped behind its back: found at open (IndexedDB evicted while localStorage kept its mirror of the epoch), or told by a sync (`sync.device`: the server last saw this device with another epoch). */
  wiped: boolean;
  /** The writer slot, or null (memory engine, no Web Locks). */
  slot: number | null;
  /** Whether the origin's storage is persistent: at open, or granted since. */
  persisted: boolean;
  /**
   * Where the request for persistent storage stands. `open()` asks (option `persist`, default
   * true) without waiting for the answer, which Firefox gets from a permission prompt the user
   * may never answer: "pending" until the browser decides.
   */
  persistRequest: "not-asked" | "pending" | "granted" | "denied";
  /** The origin's storage quota in bytes, if the browser reports it. */
  quota: number | null;
  /** Bytes written but not yet durable anywhere (over the journal budget, or no journal). */
  pendingBytes: number;
  /**
   * Whether `set()` is journaled synchronously in localStorage (durable when it returns). False
   * where there is no localStorage (a Worker) or nothing persists (memory): `set()` is then
   * durable when its batch commits (`await flush()`), and `pendingBytes` counts it until then.
   */
  journal: boolean;
  /** Bytes the localStorage journal holds. */
  journalBytes: number;
  /** The sync server, or null when opened without one. */
  server: string | null;
  /** Whether this instance runs the automatic sync of its database right now. */
  leader: boolean;
  /** Stored rows, journal entries and values that did not decode (kept aside, not loaded). */
  quarantined: number;
  /** The first 100 of them. */
  quarantinedItems: QuarantinedItem[];
  /** Plugins a sync round took past their quota (other devices' writes are applied, not
   * refused); local writes that grow them throw QuotaExceededError until deletes make room. */
  overQuota: OverQuota[];
}
/** A plugin over its quota. */
export interface OverQuota { plugin: string; usedBytes: number; quotaBytes: number; }
/** Something stored that did not decode: a journal entry (moved aside to `place`), a record
 * row (left at `place`), or a value (`place` is `plugin/key`; `get` throws CorruptValueError). */
export interface QuarantinedItem { kind: "journal" | "row" | "value"; place: string; reason: string; }
/**
 * `detail` of the `clientdata:storage-fallback` event: `ClientData.open` dispatches it on the
 * global scope (window or worker) when it falls back from IndexedDB, before the app holds the
 * store. The same reason is in `metadata().fallbackReason`.
 */
export interface StorageFallbackDetail {
  name: string;
  engine: "localstorage" | "memory";
  reason: string;
}
/**
 * `detail` of the `clientdata:versionchange` event, dispatched on the global scope when another
 * tab (a newer build) upgrades the database: this store closed its connection so the upgrade is
 * not blocked, and its writes fail from then on. Reload the app.
 */
export interface VersionChangeDetail {
  name: string;
}
/**
 * `detail` of the `clientdata:upgrade-blocked` event, dispatched on the global scope while
 * `ClientData.open` must upgrade the database but another tab holds an older version open and
 * has not closed it (a build from before stores closed on `versionchange`, or the app's own
 * connection): the upgrade, and `open()`, wait until that tab closes. Ask the user to close it.
 */
export interface UpgradeBlockedDetail {
  name: string;
  oldVersion: number;
  newVersion: number;
}
declare global {
  interface WindowEventMap {
    "clientdata:storage-fallback": CustomEvent<StorageFallbackDetail>;
    "clientdata:versionchange": CustomEvent<VersionChangeDetail>;
    "clientdata:upgrade-blocked": CustomEvent<UpgradeBlockedDetail>;
  }
}
/** Options of `ClientData.exchange`. */
export interface ExchangeOptions {
  signal?: AbortSignal;
  /** Only these plugins (scoped sync); default every plugin. */
  plugins?: string[];
  /** Records per page, 1..1000 (default `sync.pageLimit`). */
  limit?: number;
}
/** Which kind of round ran: `"partial"` moves what changed since the last round; `"full"` is a
 * full resync, run when the server collected deletions this store had not seen (it walks the
 * server's live set, removes what was deleted, keeps this store's unsynced writes). */
export type SyncKind = "full" | "partial";
/** What one round moved. */
export interface ExchangeResult {
  /** Remote records that changed local values. */
  applied: number;
  /** Local records shipped to the server. */
  shipped: number;
  /** Another round would move more. */
  hasMore: boolean;
  kind: SyncKind;
  /** Of `applied`, records with a value (new or changed values). */
  upserts: number;
  /** Deletions taken in: applied tombstones, and records removed because the server collected their deletion. */
  deletions: number;
}
/** Progress and result of `ClientData.sync`. */
export interface SyncResult {
  rounds: number; applied: number; shipped: number; hasMore: boolean;
  /** The first complete sync after the store was found wiped, at open or by this sync's server (`sync.device`); it pulled everything again. */
  wiped: boolean;
  /** `"full"` when a round of this sync was a full resync. */
  kind: SyncKind;
  /** Of `applied`, records with a value. */
  upserts: number;
  /** Deletions taken in (applied tombstones and records removed by a full resync). */
  deletions: number;
  /** Eager content fetches that failed; their records come again with the next sync. */
  contentFailures: number;
}
/** Options of `ClientData.sync`. */
export interface SyncCallOptions extends ExchangeOptions {
  onProgress?: (progress: SyncResult) => void;
}
/** Options of the sync service's methods (swamp's shape: `context.models` is the plugin scope). */
export interface SyncServiceOptions {
  signal?: AbortSignal;
  context?: { models?: string[] };
  limit?: number;
  /** `pullChanged` only: fetch no content (values synced by reference stay metadata). */
  metadataOnly?: boolean;
}
/** `SyncService.capabilities()`. */
export interface SyncCapabilities { scopedSync: true; lazyHydration: true; }
/** One probe of `Verifier.verify()`. */
export interface VerifyProbe { ok: boolean; latencyMs: number; error?: string; }
/** `Verifier.verify()`. */
export interface VerifyResult {
  healthy: boolean;
  /** "healthy (...)" or "unhealthy: " and the failed probes. */
  message: string;
  latencyMs: number;
  /** "clientdata-indexeddb" | "clientdata-localstorage" | "clientdata-memory". */
  datastoreType: string;
  details: {
    engine: "indexeddb" | "localstorage" | "memory";
    /** The store epoch; wiped: the store was found wiped (at open: IndexedDB evicted, localStorage kept; or by a sync: the server last saw `sync.device` with `previousEpoch`). */
    store: { epoch: string; wiped: boolean; previousEpoch: string | null };
    storage: VerifyProbe;
    localStorage: VerifyProbe;
    webLocks: VerifyProbe;
    quota: VerifyProbe & { persisted: boolean; quota: number | null };
    /** Present when opened with a server. */
    server?: VerifyProbe & { url: string; health?: { healthy: boolean; version?: string; database?: string; latencyMs?: number } };
  };
}
/** Payload of `remote-update-available`: keys a sync round changed. */
export interface RemoteUpdateAvailable { plugin: string; keys: string[]; fromThisInstance: boolean; }
/** Payload of `local-data-synced`, after each round (in every tab of the database). */
export interface LocalDataSynced {
  applied: number;
  shipped: number;
  hasMore: boolean;
  changes: RemoteUpdateAvailable[];
  fromThisInstance: boolean;
}
/** Payload of `local-change-recorded`. */
export interface LocalChangeRecorded { plugin: string; keys: string[]; fromThisInstance: boolean; }
/** Payload of `store-wiped`: the first complete sync after the store was found wiped (at open, or by the server: `sync.device`). */
export interface StoreWiped { epoch: string; previousEpoch: string; applied: number; }
/** Event types of `ClientData.on`. */
export type ClientDataEventType = "local-change-recorded" | "write-failed" | "data-quarantined" | "over-quota" | "remote-update-available" | "local-data-synced" | "sync-failed" | "store-wiped";
/** Payload of each event type. */
export type ClientDataEvent = LocalChangeRecorded | RemoteUpdateAvailable | LocalDataSynced | OverQuota | StoreWiped | Error;
"#;
