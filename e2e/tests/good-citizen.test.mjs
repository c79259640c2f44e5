// The client as a good citizen and a careful reader, end to end in Chromium: its device secret
// keeps a copied node id from writing as the original (real server); against a server that
// misbehaves (a loopback Node server answering 503s, or an endless reply) it backs off and
// stops reading. Figures are printed so a run shows them.
import assert from "node:assert/strict";
import { harness } from "../lib/harness.mjs";
import { unique, devicePage, openInstance, withCd, sync, set, get } from "../lib/sync.mjs";

const h = harness();
const { scenario } = h;

scenario("a store whose node id was copied from another device gets NodeIdTakenError; nothing of its push is applied", async (context) => {
  const page = await devicePage(context, h.server.url);
  const user = unique("user");
  const a = await openInstance(page, "A", { name: unique("dbA"), user });
  await set(page, "A", "notes", "a", 1);
  await sync(page, "A"); // claims A's node id with A's secret
  const meta = await withCd(page, "A", (cd) => cd.metadata());
  assert.equal(meta.nodeId, a.nodeId);

  // Device B: its slot row (localStorage engine) says A's node id, without A's secret (a copied
  // profile, or storage edited by hand). Open gives it a secret of its own.
  const nameB = unique("dbB");
  await page.evaluate(([name, node]) => localStorage.setItem(`clientdata:${name}:slot:0`, `${node},0,0`), [nameB, a.nodeId]);
  const b = await openInstance(page, "B", { name: nameB, user, engine: "localstorage" });
  assert.equal(b.nodeId, a.nodeId, "B took over the copied node id");
  const stored = await page.evaluate((name) => localStorage.getItem(`clientdata:${name}:slot:0`), nameB);
  assert.match(stored, /^[0-9a-f]{16},\d+,\d+,[0-9a-f]{64}$/, "open stored a secret with the slot");
  await set(page, "B", "notes", "b", 2);
  await assert.rejects(sync(page, "B"), (e) => e.name === "NodeIdTakenError" && e.code === "node_id_taken", "B is refused");
  await sync(page, "A");
  assert.equal(await get(page, "A", "notes", "b"), undefined, "nothing of B's push reached the server");
  // A, the owner, keeps syncing.
  await set(page, "A", "notes", "a2", 3);
  await sync(page, "A");
});
