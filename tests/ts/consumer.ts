// Exercises the whole public API as a TypeScript user would; compiled with `tsc --noEmit
// --strict` by scripts/test.sh (never run). A wrong or `any`-typed declaration breaks it.
import init, { ClientData, createLock } from "clientdata";
import type { EncryptionOptions, ExchangeResult, LocalDataSynced, Metadata, OverQuota, QuarantinedItem, StorageFallbackDetail, StoredValue, StoreWiped, VersionChangeDetail, SyncResult, VerifyResult } from "clientdata";
import { datastore } from "clientdata/swamp.js";
import { keyValueStore } from "clientdata/wasi-keyvalue.js";
import { runLockConformance } from "clientdata/lock-conformance.js";

export async function everything(signal: AbortSignal): Promise<void> {
  await init();
  const cd: ClientData = await ClientData.open({
    name: "supervisor",
    server: "https://sync.example",
    token: async () => "token",
    autoSync: { intervalMs: 30_000, debounceMs: 500 },
    sync: { timeoutMs: 10_000, retries: 2, pageLimit: 500, dataset: "supervisor", device: "laptop-7f3a", maxReplyBytes: 1 << 20,
      lazyThreshold: 32_768, eagerHydration: ["notes-app"] },
    quotas: { "notes-app": 1_000_000 },
  });
  // End-to-end encryption: a non-extractable key (and the ones before a rotation), or a passphrase.
  const key: CryptoKey = await crypto.subtle.generateKey({ name: "AES-GCM", length: 256 }, false, ["encrypt", "decrypt"]);
  const sealedOptions: EncryptionOptions = { key, previousKeys: [key], blindPluginIds: false };
  await ClientData.open({ name: "sealed", server: "https://sync.example", encryption: sealedOptions });
  await ClientData.open({ name: "sealed2", server: "https://sync.example", encryption: { passphrase: "p", previousPassphrases: ["o"] } });
  // @ts-expect-error: a key or a passphrase, not both
  await ClientData.open({ name: "sealed3", server: "https://sync.example", encryption: { key, passphrase: "p" } });
  const kv = cd.plugin("notes-app");
  const quota = cd.plugin("other", { quotaBytes: 10_000 });
  kv.set("draft", { title: "hi", tags: ["a"], n: 1, ok: true, none: null });
  kv.set("bytes", new Uint8Array([1, 2, 3]));
  const value: StoredValue | undefined = kv.get("draft");
  const has: boolean = kv.has("draft");
  kv.delete("draft");
  const keys: string[] = kv.keys({ prefix: "d", limit: 100 });
  for await (const [key, v] of kv.scan({ prefix: "d", pageSize: 500 })) {
    const k: string = key;
    const stored: StoredValue = v;
    void k;
    void stored;
  }
  await kv.setAsync("big", "x".repeat(100_000));
  const hydrated: StoredValue | undefined = await kv.getAsync("big");
  void hydrated;
  await kv.setMany([["a", 1], ["b", { x: 2 }]]);
  await kv.flush();
  await quota.flush();

  const round: ExchangeResult = await cd.exchange({ signal, plugins: ["notes-app"], limit: 100 });
  const all: SyncResult = await cd.sync({ onProgress: (p: SyncResult) => void p.rounds });
  const n: number = round.applied + round.shipped + all.rounds + round.upserts + all.deletions;
  const kind: "full" | "partial" = all.kind;
  void kind;
  const off: () => void = cd.on("local-data-synced", (e) => {
    const synced = e as LocalDataSynced;
    void synced.changes;
  });
  off();
  const offWiped: () => void = cd.on("store-wiped", (e) => {
    const wiped = e as StoreWiped;
    void [wiped.epoch, wiped.previousEpoch, wiped.applied];
  });
  offWiped();
  const meta: Metadata = cd.metadata();
  const engine: "indexeddb" | "localstorage" | "memory" = meta.engine;
  const leader: boolean = meta.leader;
  const wipedAtOpen: boolean = meta.wiped && all.wiped && meta.storeEpoch.length === 16;
  const quarantined: number = meta.quarantined + meta.quarantinedItems.filter((q: QuarantinedItem) => q.kind === "value").length;
  const over: OverQuota[] = meta.overQuota;
  cd.on("over-quota", (e) => void (e as OverQuota).usedBytes)();
  cd.on("data-quarantined", (e) => void (e as Error).message)();
  const persist: "not-asked" | "pending" | "granted" | "denied" = meta.persistRequest;
  const persisted: boolean = meta.persisted;
  const journaled: boolean = meta.journal;
  globalThis.addEventListener("clientdata:storage-fallback", (e) => {
    const detail: StorageFallbackDetail = e.detail;
    const fellTo: "localstorage" | "memory" = detail.engine;
    void [detail.name, detail.reason, fellTo];
  });
  globalThis.addEventListener("clientdata:versionchange", (e) => {
    const detail: VersionChangeDetail = e.detail;
    void detail.name;
  });

  const lock = cd.createLock("notes-app/export", { ttlMs: 30_000, retryIntervalMs: 1_000, maxWaitMs: 60_000 });
  const result: unknown = await lock.withLock(async (grant) => kv.setMany([["exported", grant.epoch]], { fence: grant }));
  const info = await lock.inspect();
  if (info !== null) await lock.forceRelease(info.nonce);
  const free = createLock("supervisor", "other/lock");
  await free.acquire();
  await free.release();

  const report: VerifyResult = await cd.createVerifier().verify();
  const healthy: boolean = report.healthy && report.latencyMs >= 0;
  const svc = cd.createSyncService();
  const pulled: number = await svc.pullChanged({ signal, context: { models: ["notes-app"] } });
  const pushed: number = await svc.pushChanged();
  svc.markDirty({ relPath: "notes-app/draft" });
  svc.markDirty();
  const scoped: boolean = svc.capabilities().scopedSync && svc.capabilities().lazyHydration;
  const metadata: number = await svc.pullChanged({ metadataOnly: true });
  const failures: number = all.contentFailures + metadata;
  void failures;
  await svc.hydrateFile("notes-app/draft");

  const provider = datastore.createProvider({ name: "supervisor", server: "https://sync.example", token: "t" });
  const parsed = datastore.configSchema.safeParse({ name: "" });
  const ok: boolean = parsed.success;
  const path: string = provider.resolveDatastorePath();
  const moved: number = await provider.createSyncService().pullChanged();

  const bucket = keyValueStore(cd).open("wasi-bucket");
  bucket.set("k", new Uint8Array([1]));
  const got: Uint8Array | undefined = bucket.get("k");
  const page: { keys: string[]; cursor: string | undefined } = bucket.listKeys();
  const passed: string[] = await runLockConformance((p, o) => createLock("supervisor", p, o));

  void [value, has, keys, n, engine, leader, wipedAtOpen, quarantined, over, persist, persisted, journaled, result, healthy, pulled, pushed, scoped, ok, path, moved, got, page, passed];
  await cd.close();
}
