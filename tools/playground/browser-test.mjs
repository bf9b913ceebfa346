// The playground in a real browser: Debian's Chromium driven by playwright-core. Starts
// `rmsprop serve --port 0`, loads the page, checks the lesson's example is what it shows, moves
// the learning-rate slider and sees the path change, clicks a new start, reloads the shared
// address, and takes the screenshots README shows. Any console error fails the test.
//
//   node browser-test.mjs [path/to/rmsprop] [--screenshots DIR]
import { spawn } from "node:child_process";
import { mkdirSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";

const here = dirname(fileURLToPath(import.meta.url));
const args = process.argv.slice(2);
const shotsAt = args.indexOf("--screenshots");
const shots = shotsAt >= 0 ? resolve(args[shotsAt + 1]) : null;
const binary = resolve(args.find((a, i) => !a.startsWith("--") && i !== shotsAt + 1) ?? join(here, "../../target/release/rmsprop"));

function fail(message) {
  console.error(`FAIL: ${message}`);
  process.exitCode = 1;
  throw new Error(message);
}

function check(condition, message) {
  if (!condition) fail(message);
  console.log(`ok: ${message}`);
}

const server = spawn(binary, ["serve", "--port", "0"], { stdio: ["ignore", "pipe", "inherit"] });
const url = await new Promise((resolveUrl, reject) => {
  let seen = "";
  server.stdout.on("data", (chunk) => {
    seen += chunk;
    const m = seen.match(/rmsprop playground: (http:\/\/\S+)/);
    if (m) resolveUrl(m[1]);
  });
  server.on("exit", (code) => reject(new Error(`rmsprop serve exited with ${code}`)));
  setTimeout(() => reject(new Error("no URL printed within 20 s")), 20000);
});

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium",
  args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update", "--disable-sync", "--no-first-run"],
});
const errors = [];
try {
  const page = await browser.newPage({ viewport: { width: 1440, height: 1000 } });
  page.on("console", (msg) => {
    if (msg.type() === "error") errors.push(`console: ${msg.text()}`);
  });
  page.on("pageerror", (err) => errors.push(`page error: ${err.message}`));
  page.on("requestfailed", (req) => errors.push(`request failed: ${req.url()}`));
  page.on("response", (res) => {
    if (res.status() >= 400) errors.push(`HTTP ${res.status()}: ${res.url()}`);
  });

  const runs = () => page.evaluate(() => Number(document.body.dataset.runs || 0));
  const waitRuns = (n) => page.waitForFunction((k) => Number(document.body.dataset.runs || 0) >= k, n, { timeout: 20000 });
  const settle = () => page.waitForTimeout(1300); // the path animation takes 0.9 s

  await page.goto(url);
  await waitRuns(1);
  let view = await page.evaluate(() => ({ state: window.playground.state, run: window.playground.lastRun }));
  check(view.state.objective === "sphere" && view.state.start[0] === 5 && view.state.start[1] === 4, "opens on the sphere from (5, 4)");
  const lesson = view.run.runs[0];
  check(lesson.summary.spec.preset === "lesson" && lesson.summary.lr === 0.1, "opens with the lesson's RMSProp (lr 0.1)");
  // The lesson's first printed state, "Epoch 0, current state: [4.68377233 3.68377236]".
  check(lesson.path[1][0] === 4.68377233398313 && lesson.path[1][1] === 3.683772358983113, "its first step is the lesson's, to the last bit");
  const firstPath = JSON.stringify(lesson.path);
  await settle();
  const drawn = await page.evaluate(() => document.querySelectorAll("#paths .scatterlayer .trace").length);
  check(drawn >= 3, `the paths are drawn (${drawn} traces)`);
  check((await page.locator("#summary tbody tr").count()) === 2, "the summary table has a row per optimizer");
  if (shots) {
    mkdirSync(shots, { recursive: true });
    await page.screenshot({ path: join(shots, "playground.png") });
  }

  // Move RMSProp's learning rate to 10^-0.5 (the slider is in log10; the page keeps 3 digits).
  const before = await runs();
  await page.locator('.opt[data-optimizer="0"] label[data-option="lr"] input').fill("-0.5");
  await waitRuns(before + 1);
  view = await page.evaluate(() => ({ state: window.playground.state, run: window.playground.lastRun }));
  check(view.state.optimizers[0].lr === 0.316, `the slider set lr ${view.state.optimizers[0].lr}`);
  check(view.run.runs[0].summary.lr === 0.316, "the server ran with it");
  check(JSON.stringify(view.run.runs[0].path) !== firstPath, "the path changed");

  // Click the contour plot, left of and above the middle: a new start there.
  await settle();
  const box = await page.locator("#paths .nsewdrag").first().boundingBox();
  const n = await runs();
  await page.mouse.move(box.x + box.width * 0.25, box.y + box.height * 0.3);
  await page.mouse.click(box.x + box.width * 0.25, box.y + box.height * 0.3);
  await waitRuns(n + 1);
  view = await page.evaluate(() => ({ state: window.playground.state, run: window.playground.lastRun }));
  const [sx, sy] = view.state.start;
  check(sx < 0 && sy > 0 && !(sx === 5 && sy === 4), `the click set a new start (${sx}, ${sy})`);
  check(view.run.runs[0].path[0][0] === sx && view.run.runs[0].path[0][1] === sy, "the runs start there");
  // README's account of this view: RMSProp at lr 0.316 nears the minimum, then its square average
  // has decayed so far that the effective rate passes the stability limit (1 on the sphere) and
  // the path blows up near step 60, then bounces with f - f_min between about 1e-4 and 0.5.
  const loss = view.run.runs[0].loss;
  const eff = view.run.runs[0].accumulator.effective_lr.map((row) => Math.max(...row));
  const low = Math.min(...loss.slice(0, 50));
  const after = loss.slice(70);
  const [lo, hi] = [Math.min(...after), Math.max(...after)];
  check(low < 1e-20 && lo > 1e-5 && hi > 0.1 && hi < 1, `it nears the minimum (${low.toExponential(1)}), then bounces (${lo.toExponential(1)} to ${hi.toFixed(2)}) from step 70`);
  check(Math.max(...eff.slice(40, 80)) > 1, "while its effective learning rate passes 1, the sphere's stability limit");
  await settle();
  if (shots) await page.screenshot({ path: join(shots, "playground-changed.png") });

  // A second RMSProp (to compare two decay rates) runs beside the first, under its own label.
  let before2 = await runs();
  await page.selectOption("#add-name", "rmsprop");
  await page.click("#add");
  await waitRuns(before2 + 1);
  view = await page.evaluate(() => ({ run: window.playground.lastRun, status: document.getElementById("status").className }));
  check(view.run.runs.length === 3 && view.run.runs[2].summary.optimizer === "rmsprop #2", "an added RMSProp runs as \"rmsprop #2\"");
  check(view.status !== "error", "and the page shows no error");
  // Another objective: its contours and its own start.
  before2 = await runs();
  await page.selectOption("#objective", "rosenbrock");
  await waitRuns(before2 + 1);
  view = await page.evaluate(() => ({ state: window.playground.state, run: window.playground.lastRun }));
  check(view.run.experiment.objective === "rosenbrock" && view.state.start[0] === -1.5, "the objective picker runs Rosenbrock from its start");
  await settle();

  // The address holds the view: a fresh page at it shows the same runs.
  const shared = page.url();
  const other = await browser.newPage({ viewport: { width: 1200, height: 900 } });
  other.on("pageerror", (err) => errors.push(`page error (shared view): ${err.message}`));
  other.on("console", (msg) => {
    if (msg.type() === "error") errors.push(`console (shared view): ${msg.text()}`);
  });
  await other.goto(shared);
  await other.waitForFunction(() => Number(document.body.dataset.runs || 0) >= 1, null, { timeout: 20000 });
  const again = await other.evaluate(() => window.playground.state);
  check(JSON.stringify(again) === JSON.stringify(view.state), "the shared address restores the view");

  check(errors.length === 0, `no console errors${errors.length ? ": " + errors.join("; ") : ""}`);
} finally {
  await browser.close();
  server.kill();
}
