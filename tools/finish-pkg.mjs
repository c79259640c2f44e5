// Post-build step of scripts/build-pkg.sh: ships the JS modules of js/ beside the generated
// module and rewrites pkg/package.json for consumers (exports, types, files, sideEffects).
// pkg/ is generated: never edit it by hand, never commit it.
import { readFile, writeFile, copyFile, readdir } from "node:fs/promises";
import { join, dirname } from "node:path";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const pkg = join(root, "pkg");
const extra = (await readdir(join(root, "js"))).filter((f) => f.endsWith(".js") || f.endsWith(".d.ts"));
for (const file of extra) await copyFile(join(root, "js", file), join(pkg, file));

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
