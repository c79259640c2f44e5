// Post-build step of scripts/build-pkg.sh: ships the JS modules of js/ beside the generated
// module and rewrites pkg/package.json for consumers (exports, types, files, sideEffects).
// pkg/ is generated: never edit it by hand, never commit it.
import { readFile, writeFile, copyFile, readdir } from "node:fs/promises";
import { join, dirname } from "node:path";
import { fileURLToPath } from "node:url";
import { parse } from "acorn";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const pkg = join(root, "pkg");
const extra = (await readdir(join(root, "js"))).filter((f) => f.endsWith(".js") || f.endsWith(".d.ts"));
for (const file of extra) await copyFile(join(root, "js", file), join(pkg, file));

// wasm-bindgen writes the docs of what it generates (init, initSync, each class's free());
// they get their examples here, as every method of the API has one (docs/API.md).
const GENERATED_EXAMPLES = [
  [/^export default function __wbg_init /m, ["import init, { ClientData } from \"clientdata\";", "await init(); // fetches clientdata_bg.wasm beside the module", "const cd = await ClientData.open({ name: \"supervisor\" });"]],
  [/^export function initSync\(/m, ["import { initSync } from \"clientdata\";", "initSync({ module: wasmBytes }); // e.g. in a Worker that was handed the bytes"]],
];
const dtsPath = join(pkg, "clientdata.d.ts");
let dts = await readFile(dtsPath, "utf8");
for (const [anchor, lines] of GENERATED_EXAMPLES) {
  const at = dts.search(anchor);
  const close = dts.lastIndexOf(" */", at);
  if (at < 0 || close < 0) throw new Error(`finish-pkg: no generated declaration ${anchor} to document`);
  const example = ` * @example\n * \`\`\`js\n${lines.map((l) => ` * ${l}\n`).join("")} * \`\`\`\n`;
  dts = dts.slice(0, close) + example + dts.slice(close);
}
// free() of each class, with how to get an instance: a class not listed here fails the build.
const FREE_EXAMPLES = {
  ClientData: ["const cd = await ClientData.open({ name: \"supervisor\" });", "await cd.close();", "cd.free();"],
  PluginStore: ["const kv = cd.plugin(\"notes-app\");", "kv.free();"],
  DistributedLock: ["const lock = createLock(\"supervisor\", \"notes/export\");", "lock.free();"],
  SyncService: ["const svc = cd.createSyncService();", "svc.free();"],
  Verifier: ["const verifier = cd.createVerifier();", "verifier.free();"],
};
dts = dts.replace(/^export class (\w+) \{\n((?: {4}private constructor\(\);\n)?) {4}free\(\): void;\n/gm, (whole, name, ctor) => {
  const lines = FREE_EXAMPLES[name];
  if (!lines) throw new Error(`finish-pkg: no free() example for class ${name}`);
  const example = lines.map((l) => `     * ${l}\n`).join("");
  return `export class ${name} {\n${ctor}    /**\n     * Releases this object's wasm memory now, rather than when it is garbage collected.\n     * @example\n     * \`\`\`js\n${example}     * \`\`\`\n     */\n    free(): void;\n`;
});
await writeFile(dtsPath, dts);

// The generated glue repeats every doc comment of clientdata.d.ts as JSDoc (a third of its
// gzipped size); editors read the .d.ts, so the shipped .js goes without them. acorn finds the
// comments, so nothing inside a string or a regular expression is touched.
const gluePath = join(pkg, "clientdata.js");
const glue = await readFile(gluePath, "utf8");
const docs = [];
parse(glue, { ecmaVersion: "latest", sourceType: "module", onComment: (block, text, start, end) => block && text.startsWith("*") && docs.push([start, end]) });
let stripped = "";
let from = 0;
for (const [start, end] of docs) {
  const before = glue.slice(from, start);
  const lineStart = before.lastIndexOf("\n") + 1;
  // A comment on lines of its own takes those lines with it; any other text stays as it is.
  const ownLines = before.slice(lineStart).trim() === "" && glue[end] === "\n";
  stripped += ownLines ? before.slice(0, lineStart) : before;
  from = ownLines ? end + 1 : end;
}
stripped += glue.slice(from);
parse(stripped, { ecmaVersion: "latest", sourceType: "module" });
await writeFile(gluePath, stripped);

const manifest = JSON.parse(await readFile(join(pkg, "package.json"), "utf8"));
// index.js (the entry: the generated module plus its JS read path) is ".", not a subpath.
const modules = extra.filter((f) => f.endsWith(".js") && f !== "index.js");
const exportsMap = {
  ".": { types: "./index.d.ts", default: "./index.js" },
  "./clientdata_bg.wasm": "./clientdata_bg.wasm",
};
for (const file of modules) {
  const types = file.replace(/\.js$/, ".d.ts");
  exportsMap[`./${file}`] = extra.includes(types) ? { types: `./${types}`, default: `./${file}` } : `./${file}`;
}
const out = {
  name: manifest.name,
  version: manifest.version,
  description: manifest.description,
  license: manifest.license,
  repository: manifest.repository,
  keywords: manifest.keywords,
  type: "module",
  main: "./index.js",
  module: "./index.js",
  types: "./index.d.ts",
  exports: exportsMap,
  files: [...new Set([...(manifest.files ?? []), "clientdata_bg.wasm.d.ts", ...extra])].sort(),
  // Importing the package runs no code until init() is called (which also installs index.js's
  // read path); the snippets are plain modules.
  sideEffects: false,
};
await writeFile(join(pkg, "package.json"), JSON.stringify(out, null, 2) + "\n");
console.log(`pkg/package.json: ${out.name}@${out.version}, exports ${Object.keys(exportsMap).join(", ")}`);
