// Builds the Library app into dist/ for realtime-host to serve at `/`.
// Relay's babel plugin turns each graphql`…` literal into an import of the artifact that
// relay-compiler generated for it; everything else (JSX included) is Vite's own transform.
import { transformAsync } from "@babel/core";
import { defineConfig } from "vite";

function relay() {
  return {
    name: "relay",
    enforce: "pre",
    async transform(code, id) {
      if (!/\.jsx?$/.test(id) || id.includes("node_modules") || !code.includes("graphql`")) {
        return null;
      }
      const out = await transformAsync(code, {
        filename: id,
        babelrc: false,
        configFile: false,
        sourceMaps: true,
        plugins: ["@babel/plugin-syntax-jsx", ["relay", { eagerEsModules: true }]],
      });
      return { code: out.code, map: out.map };
    },
  };
}

export default defineConfig({
  plugins: [relay()],
  oxc: { jsx: { runtime: "automatic" } },
  // One bundle (React, Relay, graphql-ws and the app): its gzipped size is budgeted by the tests.
  build: { outDir: "dist", emptyOutDir: true, sourcemap: false, chunkSizeWarningLimit: 700 },
  server: { proxy: { "/graphql": { target: "http://127.0.0.1:8787", ws: true } } },
});
