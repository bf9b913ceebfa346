// Copies the plotting library the playground embeds from node_modules (installed by `npm ci`
// from package-lock.json) into the CLI's assets. With --check, fails if the committed copy
// differs from the package instead (CI runs that).
import { readFileSync, writeFileSync, mkdirSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
const vendor = join(here, "../../crates/rmsprop-cli/src/serve/assets/vendor");
const files = [
  ["plotly.js-cartesian-dist-min/plotly-cartesian.min.js", "plotly-cartesian.min.js"],
  ["plotly.js-cartesian-dist-min/LICENSE", "plotly-LICENSE"],
];
const check = process.argv.includes("--check");
let stale = 0;
mkdirSync(vendor, { recursive: true });
for (const [from, to] of files) {
  const source = readFileSync(join(here, "node_modules", from));
  const target = join(vendor, to);
  if (check) {
    let committed = null;
    try { committed = readFileSync(target); } catch { /* missing */ }
    if (!committed || !committed.equals(source)) {
      console.error(`${to} differs from the npm package's ${from}: run \`npm run vendor\` in tools/playground`);
      stale += 1;
    }
  } else {
    writeFileSync(target, source);
    console.log(`vendored ${from} -> ${to}`);
  }
}
process.exit(stale ? 1 : 0);
