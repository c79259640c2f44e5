// The demo's main job, headless: device A writes, syncs; device B syncs and reads it; then B
// deletes and A sees the delete. Prints what happens; exits non-zero if the devices disagree.
//   node e2e/walkthrough.mjs http://127.0.0.1:8787
import { launch, openDevice } from "./lib/browser.mjs";

export async function walkthrough(base, log = console.log) {
  const browser = await launch();
  try {
    const context = await browser.newContext();
    const a = await openDevice(context, base, "A");
    const b = await openDevice(context, base, "B");
    const stamp = new Date().toISOString();
    await a.evaluate((v) => window.clientdata.plugin("notes").set("greeting", { text: "hello from A", at: v }), stamp);
    log(`device A: set notes/greeting = {"text":"hello from A","at":"${stamp}"}`);
    log(`device A: sync ${JSON.stringify(await a.evaluate(() => window.clientdata.sync()))}`);
    log(`device B: sync ${JSON.stringify(await b.evaluate(() => window.clientdata.sync()))}`);
    const seen = await b.evaluate(() => window.clientdata.plugin("notes").get("greeting"));
    log(`device B: get notes/greeting = ${JSON.stringify(seen)}`);
    if (seen?.at !== stamp) throw new Error("device B did not receive device A's write");
    await b.evaluate(() => window.clientdata.plugin("notes").delete("greeting"));
    await b.evaluate(() => window.clientdata.sync());
    await a.evaluate(() => window.clientdata.sync());
    const gone = await a.evaluate(() => window.clientdata.plugin("notes").get("greeting"));
    log(`device B deleted it; device A after sync: get notes/greeting = ${JSON.stringify(gone)}`);
    if (gone !== undefined) throw new Error("device A still has the deleted key");
    log("two devices converged through the reference server");
  } finally {
    await browser.close();
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  walkthrough(process.argv[2] ?? "http://127.0.0.1:8787").catch((e) => {
    console.error(`walkthrough failed: ${e.message}`);
    process.exit(1);
  });
}
