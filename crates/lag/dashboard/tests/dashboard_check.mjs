// Drives the lag dashboard in headless Chromium for crates/lag/tests/lag_dashboard.rs.
// Usage: node dashboard_check.mjs URL GROUP SCREENSHOT_PATH
// Prints JSON lines on stdout: {"event":"lag","lag":N,"members_title":...,"members":...}
// once the group shows (with the text of its members table), then waits
// for a line "expect N" on stdin, waits until the page shows lag N without reloading,
// prints {"event":"updated",...}, saves the screenshot and prints {"event":"done",...}.
import { chromium } from "playwright-core";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";

const [url, group, screenshot] = process.argv.slice(2);
const say = (obj) => process.stdout.write(JSON.stringify(obj) + "\n");
const input = createInterface({ input: process.stdin });
const lines = input[Symbol.asyncIterator]();

const profile = mkdtempSync(join(tmpdir(), "orderflow-lag-chromium-"));
const context = await chromium.launchPersistentContext(profile, {
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  headless: true,
  viewport: { width: 1400, height: 1100 },
  args: ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
         "--disable-sync", "--no-first-run"],
});
const consoleErrors = [];
try {
  const page = context.pages()[0] || (await context.newPage());
  page.on("console", (msg) => { if (msg.type() === "error") consoleErrors.push(msg.text()); });
  page.on("pageerror", (err) => consoleErrors.push("page error: " + err.message));
  await page.goto(url, { waitUntil: "load" });
  await page.evaluate(() => { window.__notReloaded = true; });
  const lagCell = page.locator(`.card[data-group="${group}"] [data-field="lag"]`);
  await lagCell.waitFor({ timeout: 20000 });
  const members = await page.locator("#members").innerText();
  say({
    event: "lag",
    lag: Number(await lagCell.getAttribute("data-value")),
    members_title: await page.locator("#members-title").textContent(),
    members,
  });

  const { value } = await lines.next();
  const expected = Number(String(value).replace(/^expect\s+/, ""));
  await page.waitForFunction(
    ([g, n]) => {
      const el = document.querySelector(`.card[data-group="${g}"] [data-field="lag"]`);
      return el && Number(el.getAttribute("data-value")) === n;
    },
    [group, expected],
    { timeout: 20000 },
  );
  const notReloaded = await page.evaluate(() => window.__notReloaded === true);
  const chartCount = await page.locator(".uplot").count();
  say({ event: "updated", lag: expected, not_reloaded: notReloaded, charts: chartCount });
  await page.screenshot({ path: screenshot, fullPage: true });
} catch (err) {
  say({ event: "error", message: String(err && err.message || err) });
} finally {
  say({ event: "done", console_errors: consoleErrors });
  await context.close();
  rmSync(profile, { recursive: true, force: true });
  input.close();
  process.exit(0);
}
