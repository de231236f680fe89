// Drives the lag dashboard with many groups in headless Chromium for
// crates/lag/tests/lag_dashboard_scale.rs and reports what a person would see; the Rust
// test makes the assertions.
// Usage: node dashboard_scale_check.mjs. Talks JSON lines: prints {"event":"ready"} once
// Chromium runs, then reads one line
//   {"url", "expect": {group: status, ...}, "filter", "screenshots"}
// waits until every group of "expect" shows its status, and prints
//   {"event":"page", "first": reading, "expanded": reading, "filtered": reading,
//    "screenshots": [...]}
//   {"event":"done","console_errors":[...]}
// A reading: the cards in view in page order, the folded section (hidden, open, summary,
// its cards and whether they are visible), the group count line and the groups the lag
// chart draws.
import { join } from "node:path";
import { nextLine, newPage, run, say } from "./driver.mjs";

const WAIT = { timeout: 60000 };

async function read(page) {
  return page.evaluate(() => {
    // checkVisibility: a closed <details> hides its content with content-visibility, which
    // still reports a layout size.
    const visible = (node) => node.checkVisibility();
    const cardOf = (card) => ({
      group: card.getAttribute("data-group"),
      status: card.querySelector('[data-field="status"]').textContent,
      lag: card.querySelector('[data-field="lag"]').getAttribute("data-value"),
      visible: visible(card),
    });
    const folded = document.getElementById("folded-groups");
    return {
      in_view: [...document.querySelectorAll("#groups .card")].map(cardOf),
      folded: {
        hidden: folded.hidden,
        open: folded.open,
        summary: document.getElementById("folded-summary").textContent,
        cards: [...document.querySelectorAll("#folded-cards .card")].map(cardOf),
      },
      count: document.getElementById("group-count").textContent,
      chart: [...document.querySelectorAll("#chart-groups .u-legend .u-label")].map((e) => e.textContent),
    };
  });
}

await run(async () => {
  const plan = JSON.parse(await nextLine());
  const page = await newPage();
  await page.goto(plan.url, { waitUntil: "load" });
  await page.waitForFunction(
    (expect) => Object.entries(expect).every(([g, status]) =>
      document.querySelector(`.card[data-group="${g}"] [data-field="status"]`)?.textContent === status),
    plan.expect, WAIT);
  const screenshots = [join(plan.screenshots, "lag-dashboard-200-groups.png"),
    join(plan.screenshots, "lag-dashboard-200-groups-filtered.png")];
  const first = await read(page);
  await page.screenshot({ path: screenshots[0], fullPage: true });

  // Unfold the groups without members, read, fold them again.
  await page.locator("#folded-summary").click();
  await page.waitForFunction(() => document.getElementById("folded-groups").open);
  const expanded = await read(page);
  await page.locator("#folded-summary").click();
  await page.waitForFunction(() => !document.getElementById("folded-groups").open);

  // The filter narrows at once (typed like a person, one key at a time).
  await page.locator("#group-filter").pressSequentially(plan.filter);
  await page.waitForFunction((needle) => [...document.querySelectorAll(".card")]
    .every((card) => card.getAttribute("data-group").toLowerCase().includes(needle.toLowerCase())), plan.filter, WAIT);
  const filtered = await read(page);
  await page.screenshot({ path: screenshots[1], fullPage: true });
  say({ event: "page", first, expanded, filtered, screenshots });
});
