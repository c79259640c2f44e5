import type { ClientData, DistributedLock, LockOptions, SyncServiceOptions, SyncCapabilities, VerifyResult } from "./clientdata.js";

/** What `createProvider` accepts (JSON-friendly: the token may be a string). */
export interface ClientDataDatastoreConfig {
  name: string;
  server?: string;
  token?: string | (() => string | Promise<string>);
  autoSync?: boolean | { intervalMs?: number; debounceMs?: number };
  engine?: "auto" | "indexeddb" | "localstorage" | "memory";
}
export interface ConfigIssue { path: string[]; message: string; }
export type SafeParseResult =
  | { success: true; data: ClientDataDatastoreConfig }
  | { success: false; error: { issues: ConfigIssue[]; message: string } };
export interface DatastoreSyncService {
  pullChanged(options?: SyncServiceOptions): Promise<number>;
  pushChanged(options?: SyncServiceOptions): Promise<number>;
  markDirty(options?: { relPath?: string }): Promise<void>;
  capabilities(): SyncCapabilities;
  hydrateFile(relPath: string, options?: SyncServiceOptions): Promise<void>;
}
export interface DatastoreProvider {
  open(): Promise<ClientData>;
  close(): Promise<void>;
  createLock(path: string, options?: LockOptions): DistributedLock;
  createVerifier(): { verify(): Promise<VerifyResult> };
  resolveDatastorePath(...args: unknown[]): string;
  resolveCachePath(...args: unknown[]): string;
  createSyncService(): DatastoreSyncService;
}
export declare const configSchema: { safeParse(config: unknown): SafeParseResult };
export declare function createProvider(config: ClientDataDatastoreConfig): DatastoreProvider;
export declare const datastore: {
  type: "@clientdata/indexeddb";
  name: string;
  description: string;
  configSchema: typeof configSchema;
  createProvider: typeof createProvider;
};
export default datastore;
