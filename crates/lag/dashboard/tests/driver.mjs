// What the dashboard drivers share: the JSON-lines talk with the Rust test (see
// crates/lag/tests/support/dashboard.rs), one headless Chromium, pages that collect
// console errors, and the closing {"event":"done","console_errors":[...]}.
import { chromium } from "playwright-core";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";

export const say = (obj) => process.stdout.write(JSON.stringify(obj) + "\n");
const input = createInterface({ input: process.stdin });
const lines = input[Symbol.asyncIterator]();
export const nextLine = async () => String((await lines.next()).value ?? "");

const profile = mkdtempSync(join(tmpdir(), "orderflow-lag-chromium-"));
const context = await chromium.launchPersistentContext(profile, {
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  headless: true,
  viewport: { width: 1400, height: 1100 },
  args: ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
         "--disable-sync", "--no-first-run", "--disable-background-timer-throttling",
         "--disable-renderer-backgrounding", "--disable-backgrounding-occluded-windows"],
});
const consoleErrors = [];

// A new page whose console errors and uncaught exceptions are reported at the end.
export async function newPage() {
  const page = await context.newPage();
  page.on("console", (msg) => { if (msg.type() === "error") consoleErrors.push(msg.text()); });
  page.on("pageerror", (err) => consoleErrors.push("page error: " + err.message));
  return page;
}

// Says "ready", runs `body`, reports its failure as {"event":"error"}, then always says
// "done" with the console errors, closes Chromium and exits.
export async function run(body) {
  try {
    say({ event: "ready" });
    await body();
  } catch (err) {
    say({ event: "error", message: String((err && err.message) || err) });
  } finally {
    say({ event: "done", console_errors: consoleErrors });
    await context.close();
    rmSync(profile, { recursive: true, force: true });
    input.close();
    process.exit(0);
  }
}
