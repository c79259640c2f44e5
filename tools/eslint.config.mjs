// ESLint for the JavaScript we ship: the snippets wasm-bindgen loads (src/browser/*.js) and the
// package's own modules (js/*.js). Run by scripts/test.sh; the recommended rules, nothing more.
import js from "@eslint/js";

// What those files may use from a window or a worker (ES builtins are known from ecmaVersion).
const browser = Object.fromEntries(
  [
    "AbortController", "DOMException", "IDBKeyRange", "TextDecoder", "TextEncoder", "URL",
    "clearTimeout", "setTimeout", "console", "crypto", "document", "fetch", "localStorage", "navigator",
    "performance",
  ].map((name) => [name, "readonly"]),
);

export default [
  {
    files: ["src/browser/*.js", "js/*.js"],
    ...js.configs.recommended,
    languageOptions: { ecmaVersion: 2022, sourceType: "module", globals: browser },
  },
];
