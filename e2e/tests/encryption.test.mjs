// End-to-end encryption (issue 20) in Debian's Chromium against the real reference server on a
// SQLite file this test owns: after a sync the file's bytes hold none of the plaintext values,
// keys or plugin ids; devices with the same key converge; a wrong key and a tampering server
// (ciphertexts swapped or replayed in the database between syncs) are typed errors that apply
// nothing; a rotated key re-encrypts everything and locks out the devices without it.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, existsSync, rmSync } from "node:fs";
import { execFileSync } from "node:child_process";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { startServer } from "../lib/server.mjs";
import { launch } from "../lib/browser.mjs";
import { unique, devicePage, openInstance, withCd, sync, set, del, dump, PageError } from "../lib/sync.mjs";

let browser;
let dir;
before(async () => {
  browser = await launch();
  dir = mkdtempSync(join(tmpdir(), "clientdata-e2e-sealed-"));
});
after(async () => {
  await browser?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

/** A server on a new SQLite file of this test's directory. */
async function server() {
  const database = join(dir, `${unique("db")}.sqlite`);
  const running = await startServer({ database });
  return { ...running, database };
}

/** Every byte the server's SQLite database holds (the main file, its WAL and shared memory). */
function databaseBytes(database) {
  return Buffer.concat(
    ["", "-wal", "-shm"].map((suffix) => database + suffix).filter(existsSync).map((f) => readFileSync(f)),
  );
}

function sql(database, statement) {
  return execFileSync("sqlite3", [database, statement], { encoding: "utf8" }).trim();
}

/**
 * Opens instance `id` with encryption. spec: { name, user, seed (an AES-GCM key made from this
 * text), previous: [seeds], passphrase, previousPassphrases, blind (blindPluginIds) }.
 */
async function openSealed(page, id, spec) {
  const out = await page.evaluate(
    async ({ id, spec }) => {
      const { ClientData } = await import("/pkg/index.js");
      const keyOf = async (seed) => {
        const raw = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(seed));
        return crypto.subtle.importKey("raw", raw, "AES-GCM", false, ["encrypt", "decrypt"]);
      };
      const encryption = {};
      if (spec.seed) encryption.key = await keyOf(spec.seed);
      if (spec.previous) encryption.previousKeys = await Promise.all(spec.previous.map(keyOf));
      if (spec.passphrase) encryption.passphrase = spec.passphrase;
      if (spec.previousPassphrases) encryption.previousPassphrases = spec.previousPassphrases;
      if (spec.blind !== undefined) encryption.blindPluginIds = spec.blind;
      try {
        const cd = await ClientData.open({
          name: spec.name,
          server: location.origin,
          token: async () => `dev-token-${spec.user}`,
          autoSync: false,
          sync: { dataset: "devices" },
          encryption,
        });
        window.__sync.cds[id] = cd;
        return { ok: true };
      } catch (e) {
        return { ok: false, error: { name: e?.name, code: e?.code, message: String(e?.message ?? e) } };
      }
    },
    { id, spec },
  );
  if (!out.ok) throw new PageError(out.error);
}

/** A device page on `srv` and a user of its own. */
async function devices(srv) {
  const context = await browser.newContext();
  const page = await devicePage(context, srv.url);
  return { context, page, user: unique("user") };
}

const plugins = ["notes-app", "secret-diary"];
const writes = [
  ["notes-app", "shopping-list-key", "milk-and-honey-value"],
  ["notes-app", "deleted-key-name", "deleted-value-text"],
  ["secret-diary", "dear-diary-key", { mood: "confidential-mood-value" }],
];

/** A writes `writes` (then deletes the second key) and syncs. */
async function writeAndSync(page) {
  for (const [p, k, v] of writes) await set(page, "A", p, k, v);
  await del(page, "A", "notes-app", "deleted-key-name");
  return (await sync(page, "A")).result;
}

const expected = {
  "notes-app": { "shopping-list-key": "milk-and-honey-value" },
  "secret-diary": { "dear-diary-key": { mood: "confidential-mood-value" } },
};

test("after a sync the server's SQLite file holds no plaintext value, key or plugin id; two devices with the same key converge", { timeout: 120_000 }, async () => {
  const srv = await server();
  const { context, page, user } = await devices(srv);
  try {
    await openSealed(page, "A", { name: unique("dbA"), user, seed: "key one" });
    await openSealed(page, "B", { name: unique("dbB"), user, seed: "key one" });
    const a = await writeAndSync(page);
    assert.equal(a.shipped, 3, "three keys (one a delete) shipped");
    await set(page, "B", "notes-app", "b-only-key", "b-only-value");
    const b = (await sync(page, "B")).result;
    assert.deepEqual([b.applied, b.shipped], [3, 1]);
    await sync(page, "A");
    const both = { ...expected, "notes-app": { ...expected["notes-app"], "b-only-key": "b-only-value" } };
    assert.deepEqual(await dump(page, "A", plugins), both);
    assert.deepEqual(await dump(page, "B", plugins), both);
    // LWW per key still works on blinded names: B overwrites A's key, A gets it, one row.
    await set(page, "B", "notes-app", "shopping-list-key", "bread-instead");
    await sync(page, "B");
    assert.equal((await sync(page, "A")).result.applied, 1);
    assert.equal((await dump(page, "A", ["notes-app"]))["notes-app"]["shopping-list-key"], "bread-instead");

    // A positive control: an unencrypted user's plaintext is found by the same grep.
    await openInstance(page, "clear", { name: unique("dbClear"), user: unique("clear-user") });
    await set(page, "clear", "clear-plugin-id", "clear-key-name", "clear-value-text");
    await sync(page, "clear");
    const bytes = databaseBytes(srv.database);
    for (const needle of ["clear-plugin-id", "clear-key-name", "clear-value-text"]) {
      assert.ok(bytes.includes(needle), `control: ${needle} is in the file`);
    }
    const rows = Number(sql(srv.database, "SELECT count(*) FROM records WHERE plugin LIKE 'b%' AND length(plugin) = 49"));
    assert.equal(rows, 4, "four sealed rows under blinded plugin ids");
    for (const needle of ["notes-app", "secret-diary", "shopping-list", "milk-and-honey", "deleted-key-name", "deleted-value",
      "dear-diary", "confidential-mood", "mood", "b-only", "bread-instead"]) {
      assert.ok(!bytes.includes(needle), `${needle} must not be in the server's database`);
    }
    assert.equal(sql(srv.database, "SELECT count(*) FROM records WHERE kind = 0"), "0", "deletes travel sealed, like writes");
  } finally {
    await context.close();
    await srv.stop();
  }
});

test("blindPluginIds: false sends plugin ids in the clear, keys and values still sealed", { timeout: 90_000 }, async () => {
  const srv = await server();
  const { context, page, user } = await devices(srv);
  try {
    await openSealed(page, "A", { name: unique("dbA"), user, seed: "k", blind: false });
    await openSealed(page, "B", { name: unique("dbB"), user, seed: "k", blind: false });
    await writeAndSync(page);
    await sync(page, "B");
    assert.deepEqual(await dump(page, "B", plugins), expected);
    const bytes = databaseBytes(srv.database);
    assert.ok(bytes.includes("notes-app") && bytes.includes("secret-diary"), "plugin ids in the clear");
    for (const needle of ["shopping-list", "milk-and-honey", "dear-diary", "confidential-mood"]) {
      assert.ok(!bytes.includes(needle), `${needle} must not be in the server's database`);
    }
  } finally {
    await context.close();
    await srv.stop();
  }
});

test("a device with a wrong key gets encryption_key_unknown, applies nothing and moves no watermark", { timeout: 90_000 }, async () => {
  const srv = await server();
  const { context, page, user } = await devices(srv);
  try {
    await openSealed(page, "A", { name: unique("dbA"), user, seed: "right key" });
    await openSealed(page, "W", { name: unique("dbW"), user, seed: "wrong key" });
    await writeAndSync(page);
    for (let attempt = 0; attempt < 2; attempt++) {
      await assert.rejects(sync(page, "W"), (e) => {
        assert.equal(e.code, "encryption_key_unknown");
        assert.equal(e.name, "EncryptionKeyUnknownError");
        assert.match(e.message, /key id [0-9a-f]{8}.*does not hold.*key id is [0-9a-f]{8}/);
        return true;
      });
    }
    assert.deepEqual(await dump(page, "W", plugins), { "notes-app": {}, "secret-diary": {} });
    // Its own writes still go out (sealed with its key), and A in turn refuses them.
    await set(page, "W", "notes-app", "w-key", "w-value");
    await assert.rejects(sync(page, "W"), { code: "encryption_key_unknown" });
    await assert.rejects(sync(page, "A"), { code: "encryption_key_unknown" });
    assert.equal((await dump(page, "A", ["notes-app"]))["notes-app"]["w-key"], undefined);
  } finally {
    await context.close();
    await srv.stop();
  }
});

/** Stops `srv`, runs `edit` on its database, starts a server on the same file (a new port). */
async function tamper(srv, edit) {
  await srv.stop();
  edit(srv.database);
  const again = await startServer({ database: srv.database });
  return { ...again, database: srv.database };
}

test("a server that swaps two ciphertexts between keys is detected: decryption_failed, nothing applied", { timeout: 120_000 }, async () => {
  let srv = await server();
  const user = unique("user");
  let { context, page } = await devices(srv);
  await openSealed(page, "A", { name: unique("dbA"), user, seed: "s" });
  await writeAndSync(page);
  await context.close();
  srv = await tamper(srv, (db) => {
    const [one, two] = sql(db, "SELECT rowid FROM records ORDER BY rowid LIMIT 2").split("\n");
    sql(db, `UPDATE records SET value = CASE rowid WHEN ${one} THEN (SELECT value FROM records WHERE rowid = ${two}) ELSE (SELECT value FROM records WHERE rowid = ${one}) END WHERE rowid IN (${one}, ${two})`);
  });
  ({ context, page } = await devices(srv));
  try {
    await openSealed(page, "B", { name: unique("dbB"), user, seed: "s" });
    await assert.rejects(sync(page, "B"), (e) => {
      assert.equal(e.code, "decryption_failed");
      assert.equal(e.name, "DecryptionFailedError");
      return true;
    });
    assert.deepEqual(await dump(page, "B", plugins), { "notes-app": {}, "secret-diary": {} });
  } finally {
    await context.close();
    await srv.stop();
  }
});

test("a server that replays an old ciphertext under a newer stamp is detected: decryption_failed, nothing applied", { timeout: 120_000 }, async () => {
  let srv = await server();
  const user = unique("user");
  let { context, page } = await devices(srv);
  await openSealed(page, "A", { name: unique("dbA"), user, seed: "s" });
  await set(page, "A", "notes-app", "balance", "old-balance-100");
  await sync(page, "A");
  const old = sql(srv.database, "SELECT hex(value) FROM records");
  await set(page, "A", "notes-app", "balance", "new-balance-0");
  await sync(page, "A");
  await context.close();
  srv = await tamper(srv, (db) => {
    assert.notEqual(sql(db, "SELECT hex(value) FROM records"), old, "the new value replaced the old row");
    sql(db, `UPDATE records SET value = X'${old}'`);
  });
  ({ context, page } = await devices(srv));
  try {
    await openSealed(page, "B", { name: unique("dbB"), user, seed: "s" });
    await assert.rejects(sync(page, "B"), { code: "decryption_failed" });
    assert.deepEqual(await dump(page, "B", ["notes-app"]), { "notes-app": {} });
  } finally {
    await context.close();
    await srv.stop();
  }
});

test("key rotation: the next sync re-encrypts everything under the new key; a device with only the old key gets encryption_key_unknown", { timeout: 150_000 }, async () => {
  const srv = await server();
  const { context, page, user } = await devices(srv);
  try {
    const nameA = unique("dbA");
    await openSealed(page, "A", { name: nameA, user, seed: "old" });
    await openSealed(page, "Old", { name: unique("dbOld"), user, seed: "old" });
    await writeAndSync(page);
    await sync(page, "Old");
    assert.deepEqual(await dump(page, "Old", plugins), expected);
    const keyIds = () => sql(srv.database, "SELECT DISTINCT substr(hex(value), 3, 8) FROM records").split("\n");
    const oldIds = keyIds();
    assert.equal(oldIds.length, 1);

    await withCd(page, "A", (cd) => cd.close());
    await openSealed(page, "A", { name: nameA, user, seed: "new", previous: ["old"] });
    const rotated = (await sync(page, "A")).result;
    assert.equal(rotated.shipped, 3, "every record (the delete too) pushed again");
    const newIds = keyIds();
    assert.equal(newIds.length, 1, "every row sealed with one key");
    assert.notEqual(newIds[0], oldIds[0], "the new key");
    assert.equal((await sync(page, "A")).result.shipped, 0, "rotation happens once");

    await assert.rejects(sync(page, "Old"), (e) => {
      assert.equal(e.code, "encryption_key_unknown");
      assert.ok(e.message.includes(newIds[0].toLowerCase()) && e.message.includes(oldIds[0].toLowerCase()), e.message);
      return true;
    });
    await openSealed(page, "New", { name: unique("dbNew"), user, seed: "new", previous: ["old"] });
    await sync(page, "New");
    assert.deepEqual(await dump(page, "New", plugins), expected);
  } finally {
    await context.close();
    await srv.stop();
  }
});

test("a passphrase derives the same key on two devices (PBKDF2 over the server's per-user salt); another passphrase does not", { timeout: 120_000 }, async () => {
  const srv = await server();
  const { context, page, user } = await devices(srv);
  try {
    const nameA = unique("dbA");
    await openSealed(page, "A", { name: nameA, user, passphrase: "correct horse battery staple" });
    await openSealed(page, "B", { name: unique("dbB"), user, passphrase: "correct horse battery staple" });
    await openSealed(page, "W", { name: unique("dbW"), user, passphrase: "incorrect horse" });
    await writeAndSync(page);
    await sync(page, "B");
    assert.deepEqual(await dump(page, "B", plugins), expected);
    await assert.rejects(sync(page, "W"), { code: "encryption_key_unknown" });
    assert.equal(sql(srv.database, "SELECT count(*) FROM salts"), "1", "one salt for the user");
    assert.ok(!databaseBytes(srv.database).includes("correct horse"));
    // A new passphrase, the old one kept for what it sealed: everything re-sealed, B locked out.
    await withCd(page, "A", (cd) => cd.close());
    await openSealed(page, "A", { name: nameA, user, passphrase: "new passphrase", previousPassphrases: ["correct horse battery staple"] });
    assert.equal((await sync(page, "A")).result.shipped, 3);
    await assert.rejects(sync(page, "B"), { code: "encryption_key_unknown" });
  } finally {
    await context.close();
    await srv.stop();
  }
});

test("malformed encryption options are InvalidOptionsError and open nothing", { timeout: 60_000 }, async () => {
  const srv = await server();
  const { context, page } = await devices(srv);
  try {
    const codes = await page.evaluate(async () => {
      const { ClientData } = await import("/pkg/index.js");
      const key = await crypto.subtle.generateKey({ name: "AES-GCM", length: 256 }, false, ["encrypt", "decrypt"]);
      const hmac = await crypto.subtle.generateKey({ name: "HMAC", hash: "SHA-256" }, false, ["sign"]);
      const server = location.origin;
      const cases = [
        { name: "e1", encryption: { key } },
        { name: "e2", server, encryption: {} },
        { name: "e3", server, encryption: { key: "not a key" } },
        { name: "e4", server, encryption: { key: hmac } },
        { name: "e5", server, encryption: { key, passphrase: "p" } },
        { name: "e6", server, encryption: { key, blindPluginIds: "yes" } },
        { name: "e7", server, encryption: { key, previousKeys: key } },
        { name: "e8", server, encryption: { passphrase: "" } },
        { name: "e9", server, encryption: 5 },
      ];
      const out = [];
      for (const options of cases) {
        try {
          await ClientData.open(options);
          out.push("opened");
        } catch (e) {
          out.push(`${e.name}:${e.code}`);
        }
      }
      return out;
    });
    assert.deepEqual(codes, Array(9).fill("InvalidOptionsError:invalid_options"));
  } finally {
    await context.close();
    await srv.stop();
  }
});
