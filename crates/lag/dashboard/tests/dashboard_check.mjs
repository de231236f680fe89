// Drives the lag dashboard in headless Chromium for crates/lag/tests/lag_dashboard.rs and
// reports what a person would read on it; the Rust test makes the assertions.
// Usage: node dashboard_check.mjs. Talks JSON lines: prints {"event":"ready"} once Chromium
// runs, then reads one line
//   {"measuring_url","measuring_group","main_url","groups":{"lagging","stalled","caught_up"},"dlq_group","screenshots"}
// and prints, in order:
//   {"event":"measuring",...}  the measuring page (an exporter in its first window), before its broker stops;
//   {"event":"groups",...}     the main page once each group shows its expected status, with a
//                              screenshot per group (SCREENSHOTS/lag-dashboard-<kind>.png); for DLQ_GROUP,
//                              after following its card's DLQ link, the records panel as read;
//   then, after reading a line "killed" (the measuring page's broker is gone):
//   {"event":"stale",...}      the measuring page's staleness banner;
//   {"event":"done","console_errors":[...]}.
// Every reading carries the /api/groups body the page rendered it from (matched by the
// snapshot time the page shows), so the test compares the page with the JSON API.
import { join } from "node:path";
import { nextLine, newPage, run, say } from "./driver.mjs";

const WAIT = { timeout: 30000 };

// A page and the /api/groups bodies it received, by snapshot time.
async function open(url) {
  const page = await newPage();
  const bodies = new Map();
  page.on("response", async (res) => {
    if (!res.url().endsWith("/api/groups") || !res.ok()) return;
    try {
      const body = await res.json();
      bodies.set(body.snapshot.taken_at_ms, body);
    } catch { /* page closed */ }
  });
  await page.goto(url, { waitUntil: "load" });
  await page.evaluate(() => { window.__notReloaded = true; });
  return { page, bodies };
}

// What the page shows now, read in one go (one render), with the API body behind it.
async function read({ page, bodies }) {
  const shown = await page.evaluate(() => {
    const text = (node) => (node ? node.innerText.trim() : null);
    const cards = [...document.querySelectorAll(".card")].map((card) => ({
      group: card.getAttribute("data-group"),
      status: text(card.querySelector('[data-field="status"]')),
      lag: text(card.querySelector('[data-field="lag"]')),
      lag_seconds: text(card.querySelector('[data-field="lag-seconds"]')),
      catch_up: text(card.querySelector('[data-field="catch-up"]')),
      members: text(card.querySelector('[data-field="members"]')),
      text: text(card),
    }));
    const charts = [...document.querySelectorAll(".chart-box")].map((box) => ({
      title: text(box.querySelector("h3")),
      drawn: box.querySelector(".uplot canvas") !== null,
      note: text(box.querySelector(".chart-note")),
    }));
    const stale = document.getElementById("stale");
    return {
      taken_at_ms: Number(document.getElementById("meta").getAttribute("data-taken-at")),
      cards,
      charts,
      partitions: text(document.getElementById("partitions")),
      members_title: text(document.getElementById("members-title")),
      members_table: text(document.getElementById("members")),
      stale_banner: stale.hidden ? null : text(stale),
      page_text: document.body.innerText,
    };
  });
  const deadline = Date.now() + 5000;
  while (!bodies.has(shown.taken_at_ms) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
  return { ...shown, api: bodies.get(shown.taken_at_ms) || null };
}

await run(async () => {
  const plan = JSON.parse(await nextLine());

  // An exporter in its first window: "measuring", never "∞" or an empty panel.
  const first = await open(plan.measuring_url);
  await first.page.locator(`.card[data-group="${plan.measuring_group}"]`).waitFor(WAIT);
  say({ event: "measuring", ...(await read(first)) });

  const main = await open(plan.main_url);
  const legend = await main.page.locator("#legend > div").evaluateAll((rows) => rows.map((row) => ({
    status: row.getAttribute("data-status"),
    word: row.querySelector("dt").innerText.trim(),
    meaning: row.querySelector("dd").innerText.trim(),
    visible: row.getBoundingClientRect().height > 0,
  })));
  const expected = { lagging: "LAGGING", stalled: "STALLED", caught_up: "CAUGHT_UP" };
  const wanted = Object.entries(expected).map(([kind, word]) => [plan.groups[kind], word]);
  await main.page.waitForFunction(
    (pairs) => pairs.every(([g, word]) =>
      document.querySelector(`.card[data-group="${g}"] [data-field="status"]`)?.textContent === word),
    wanted, WAIT);
  const groups = [];
  for (const [kind, word] of Object.entries(expected)) {
    const group = plan.groups[kind];
    await main.page.locator(`.card[data-group="${group}"]`).click();
    await main.page.waitForFunction(
      ([g, w]) => document.getElementById("members-title").textContent.startsWith(`Members of ${g}`)
        && document.querySelector(`.card[data-group="${g}"] [data-field="status"]`)?.textContent === w
        && document.querySelectorAll(".uplot").length === 3,
      [group, word], WAIT);
    let dlq = null;
    if (group === plan.dlq_group) {
      await main.page.locator(`.card[data-group="${group}"] [data-field="dlq"] a`).first().click();
      await main.page.locator('#dlq-records-box[data-loaded="true"]').waitFor(WAIT);
      dlq = await main.page.evaluate((g) => ({
        card: document.querySelector(`.card[data-group="${g}"] [data-field="dlq"]`).innerText.trim(),
        topic: document.getElementById("dlq-records-box").getAttribute("data-dlq-topic"),
        title: document.getElementById("dlq-records-title").innerText.trim(),
        meta: document.getElementById("dlq-records-meta").innerText.trim(),
        categories: [...document.querySelectorAll("#dlq-categories tbody tr")]
          .map((tr) => [...tr.cells].map((td) => td.innerText.trim())),
        records: [...document.querySelectorAll("#dlq-records tbody tr")]
          .map((tr) => [...tr.cells].map((td) => td.innerText.trim())),
      }), group);
    }
    const screenshot = join(plan.screenshots, `lag-dashboard-${kind.replace("_", "-")}.png`);
    await main.page.screenshot({ path: screenshot, fullPage: true });
    groups.push({ kind, group, screenshot, dlq, ...(await read(main)) });
  }
  const notReloaded = await main.page.evaluate(() => window.__notReloaded === true);
  say({ event: "groups", legend, groups, not_reloaded: notReloaded });

  if ((await nextLine()) !== "killed") throw new Error("expected the line 'killed'");
  await first.page.bringToFront();
  await first.page.locator("#stale").waitFor({ state: "visible", ...WAIT });
  const screenshot = join(plan.screenshots, "lag-dashboard-stale.png");
  await first.page.screenshot({ path: screenshot, fullPage: true });
  say({ event: "stale", screenshot, ...(await read(first)) });
});
