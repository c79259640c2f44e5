// docs/API.md from the shipped types: typedoc (+ typedoc-plugin-markdown) over the packed
// package's .d.ts (the entry and each adapter), one Markdown page per module, joined in a fixed
// order. Every function and method must carry an `@example` (in Rust, the `/// @example` before
// its ```js block, which wasm-bindgen copies into the .d.ts): a missing one fails the build.
//   node tools/api-docs.mjs <pkg dir> <out file>
// scripts/api-docs.sh runs it (write, or --check: regenerate into a temp dir and diff).
import { Application, ReflectionKind } from "typedoc";
import { mkdtemp, readFile, writeFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";

const [pkgDir, outFile] = process.argv.slice(2).map((p) => resolve(p));
if (!pkgDir || !outFile) throw new Error("usage: node tools/api-docs.mjs <pkg dir> <out file>");

// Module name -> its .d.ts in the package, in the order of the page.
const MODULES = [
  ["clientdata", "index.d.ts"],
  ["clientdata/swamp.js", "swamp.d.ts"],
  ["clientdata/wasi-keyvalue.js", "wasi-keyvalue.d.ts"],
  ["clientdata/lock-conformance.js", "lock-conformance.d.ts"],
];

const work = await mkdtemp(join(tmpdir(), "clientdata-api-"));
try {
  const app = await Application.bootstrapWithPlugins({
    entryPoints: MODULES.map(([, file]) => join(pkgDir, file)),
    plugin: ["typedoc-plugin-markdown"],
    out: work,
    readme: "none",
    router: "module",
    disableSources: true,
    hideGenerator: true,
    hideBreadcrumbs: true,
    hidePageHeader: true,
    excludeExternals: true,
    // The raw wasm exports wasm-bindgen generates (InitOutput) are not API.
    excludeNotDocumented: false,
    skipErrorChecking: true,
    compilerOptions: { skipLibCheck: true, strict: true, target: "es2022", module: "nodenext", moduleResolution: "nodenext", lib: ["es2022", "dom"] },
  });
  const project = await app.convert();
  if (!project) throw new Error("typedoc could not read the package's types");

  const missing = [];
  for (const reflection of project.getReflectionsByKind(ReflectionKind.Function | ReflectionKind.Method)) {
    if (reflection.parent?.name === "InitOutput") continue;
    const signatures = reflection.signatures ?? [];
    if (!signatures.some((s) => s.comment?.getTag("@example"))) missing.push(reflection.getFullName());
  }
  if (missing.length) throw new Error(`no @example for: ${missing.join(", ")}`);

  await app.generateOutputs(project);
  console.log(project.children.map((c) => c.name));
} finally {
  // await rm(work, { recursive: true, force: true });
  console.log(work);
}
