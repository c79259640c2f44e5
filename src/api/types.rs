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
  /** Ask the browser for persistent storage (default true). */
  persist?: boolean;
  /** Largest accepted lead of a remote clock over the local one (default 60000). */
  maxDriftMs?: number;
}
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
  /** The writer slot, or null (memory engine, no Web Locks). */
  slot: number | null;
  persisted: boolean;
  /** The origin's storage quota in bytes, if the browser reports it. */
  quota: number | null;
  /** Bytes written but not yet durable anywhere (over the journal budget, or no journal). */
  pendingBytes: number;
  /** Bytes the localStorage journal holds. */
  journalBytes: number;
}
/** Payload of `local-change-recorded`. */
export interface LocalChangeRecorded { plugin: string; keys: string[]; fromThisInstance: boolean; }
/** Event types of `ClientData.on`. */
export type ClientDataEventType = "local-change-recorded" | "write-failed" | "remote-update-available" | "local-data-synced";
"#;
