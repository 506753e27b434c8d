// Drives the operator console as a person would, in headless Chromium:
// load it, give the API key, see the counts, stop (and see that nothing more
// reaches the provider), start, retry a failed message and see it sent.
// Run by scripts/console-check, which starts the service and the mock.
import assert from "node:assert/strict";
import { mkdirSync } from "node:fs";
import { chromium } from "playwright-core";

const { BASE, MOCK, API_KEY, OUT, FAILED_ID, CHROMIUM = "/usr/bin/chromium" } = process.env;
mkdirSync(OUT, { recursive: true });

const stats = async () => (await fetch(`${MOCK}/stats`)).json();
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

const browser = await chromium.launch({
  executablePath: CHROMIUM,
  args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
         "--disable-component-update", "--disable-sync"],
});
try {
  const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
  const step = (name) => console.log(`console: ${name}`);

  step("load / and give the API key when asked");
  await page.goto(`${BASE}/`);
  await page.waitForSelector("#api-key", { state: "visible" });
  await page.fill("#api-key", API_KEY);
  await page.click("#api-key-save");
  assert.ok(!page.url().includes(API_KEY), "the key never goes into the URL");

  step("see the counts and the running state");
  await page.waitForFunction(() => Number(document.querySelector("#count-sent").textContent) >= 2);
  assert.equal(await page.textContent("#running"), "running");
  assert.match(await page.textContent("#count-failed"), /^[1-9]/);
  assert.equal(await page.textContent("#providers"), "default: closed", "the provider and its breaker");
  // The mock reports each delivery a tenth of a second after the send.
  await page.waitForFunction(() => Number(document.querySelector("#count-delivered").textContent) >= 1);
  await page.waitForSelector("#sent-table tbody tr td.phone");
  assert.match(await page.textContent("#sent-table tbody tr td.phone"), /^•••\d{4}$/, "phone numbers are masked");
  assert.match(await page.textContent("#sent-table tbody tr td.segments"), /^P\d · \d+ seg\. (gsm7|ucs2)$/, "priority and segments");
  assert.equal(await page.textContent("#count-scheduled"), "0");
  assert.equal(await page.textContent("#count-expired"), "0");

  step("press Stop: the state changes and nothing more reaches the provider");
  await page.click("#stop");
  await page.waitForFunction(() => document.querySelector("#running").textContent === "stopped");
  const callsAtStop = (await stats()).calls;
  await sleep(2500); // an absence: ticks come every second
  assert.equal((await stats()).calls, callsAtStop, "a call reached the provider after Stop");

  step("press Start: sending resumes");
  await page.click("#start");
  await page.waitForFunction(() => document.querySelector("#running").textContent === "running");
  for (let i = 0; (await stats()).calls === callsAtStop; i++) {
    assert.ok(i < 100, "no call after Start");
    await sleep(100);
  }

  step("retry the failed message and see it sent");
  await page.click(`button.retry[data-id="${FAILED_ID}"]`);
  await page.waitForFunction((id) => [...document.querySelectorAll("#sent-table tbody tr td:first-child")]
    .some((td) => td.textContent === id), FAILED_ID, { timeout: 15000 });
  assert.equal(await page.$(`button.retry[data-id="${FAILED_ID}"]`), null, "no longer listed as failed");

  await page.screenshot({ path: `${OUT}/console.png`, fullPage: true });
  step(`screenshot in ${OUT}/console.png`);

  step("on a phone-sized screen, nothing overflows the page");
  await page.setViewportSize({ width: 390, height: 844 });
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  assert.ok(overflow <= 0, `the page is ${overflow}px wider than a phone`);
  await page.screenshot({ path: `${OUT}/console-phone.png`, fullPage: true });
} finally {
  await browser.close();
}
console.log("console: all checks passed");
