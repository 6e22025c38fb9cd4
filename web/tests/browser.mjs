// Drives headless Chromium (Debian's, through playwright-core) on the demo
// page, as tests/it/browser.rs starts it: PAGE is the page's URL, ADMIN and
// MEMBER the e-mail addresses of two demo users of the workspace `acme`, LOCAL the
// local part of the member to create. Prints what it saw as JSON; exits
// non-zero on the first thing that is not as expected.
import { chromium } from "playwright-core";

const { PAGE, ADMIN, MEMBER, LOCAL, CHROMIUM } = process.env;
const browser = await chromium.launch({ executablePath: CHROMIUM || "/usr/bin/chromium", args: ["--no-sandbox"] });
const seen = {};
try {
  const page = await browser.newPage();
  const failed = [];
  page.on("requestfailed", (r) => failed.push(`${r.url()}: ${r.failure()?.errorText}`));
  await page.goto(PAGE);
  const pick = async (name) => {
    const value = await page.locator("#user option", { hasText: name }).first().getAttribute("value");
    await page.selectOption("#user", value);
  };
  // Signed in as the workspace admin: /users/me shows their document.
  await pick(ADMIN);
  await page.waitForFunction((email) => document.querySelector("#me")?.textContent?.includes(`"email": "${email}"`), ADMIN);
  seen.me = JSON.parse(await page.textContent("#me"));
  // The members of acme.
  await page.click("#list");
  await page.waitForSelector("#members tbody tr");
  seen.members = await page.$$eval("#members tbody tr td:first-child", (tds) => tds.map((td) => td.textContent));
  // A new member, with the temporary password shown.
  await page.fill("#local", LOCAL);
  await page.fill("#name", "Browser Made");
  await page.click("#create");
  await page.waitForSelector("#password");
  seen.password = await page.textContent("#password");
  seen.created = await page.textContent("#created");
  // A member may not list: the 403 is shown as a message.
  await pick(MEMBER);
  await page.click("#list");
  await page.waitForFunction(() => document.querySelector("#problem")?.textContent?.startsWith("403"));
  seen.problem = await page.textContent("#problem");
  seen.failedRequests = failed;
} finally {
  await browser.close();
}
console.log(JSON.stringify(seen));
