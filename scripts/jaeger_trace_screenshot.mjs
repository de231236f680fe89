// Opens one trace in Jaeger's web UI in headless Chromium (Debian's chromium, driven by
// the playwright-core of crates/lag/dashboard) and saves a screenshot, for
// scripts/screenshot-trace.sh.
// Usage: node scripts/jaeger_trace_screenshot.mjs JAEGER_URL TRACE_ID OUT.png
// Env: PLAYWRIGHT_CORE (the package's index.mjs), CHROMIUM (default /usr/bin/chromium).
const [base, traceId, out] = process.argv.slice(2);
const { chromium } = await import(process.env.PLAYWRIGHT_CORE);
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  headless: true,
  args: ["--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking"],
});
const errors = [];
try {
  const page = await browser.newPage({ viewport: { width: 1400, height: 430 } });
  page.on("pageerror", (err) => errors.push(err.message));
  await page.goto(`${base}/trace/${traceId}`, { waitUntil: "load" });
  // The trace view is drawn once every span row is there: wait for the consumer's
  // transaction, the last hop.
  await page.getByText("order-consumer").first().waitFor({ timeout: 60000 });
  await page.locator(".span-row").first().waitFor({ timeout: 60000 });
  await page.waitForTimeout(500);
  await page.screenshot({ path: out, fullPage: true });
  const rows = await page.locator(".span-row").count();
  process.stdout.write(JSON.stringify({ screenshot: out, span_rows: rows, page_errors: errors }) + "\n");
} finally {
  await browser.close();
}
