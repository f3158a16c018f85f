// The oversight desk's acceptance run in headless Chromium (Debian's
// `chromium`, driven by playwright-core). Started by
// crates/docket-server/tests/pages.rs against a server it runs; what to
// expect comes in DOCKET_EXPECT (JSON). Exits 0 when every check passes,
// 1 naming the first that failed. With DOCKET_SCREENSHOTS=DIR it saves a
// screenshot of each page there.
import { chromium } from 'playwright-core';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const base = process.env.DOCKET_URL;
const expect = JSON.parse(process.env.DOCKET_EXPECT || '{}');
const shots = process.env.DOCKET_SCREENSHOTS;
const executablePath = process.env.CHROMIUM || '/usr/bin/chromium';

const check = (ok, what) => {
  if (!ok) throw new Error(`check failed: ${what}`);
  console.log(`ok - ${what}`);
};
const shot = async (page, name) => {
  if (shots) await page.screenshot({ path: join(shots, `${name}.png`), fullPage: true });
};

const profile = mkdtempSync(join(tmpdir(), 'docket-chromium-'));
const context = await chromium.launchPersistentContext(profile, {
  executablePath,
  headless: true,
  viewport: { width: 1280, height: 900 },
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
    '--disable-background-networking', '--disable-component-update', '--disable-sync'],
});
try {
  const page = context.pages()[0] || await context.newPage();
  page.setDefaultTimeout(30000);

  // The public list: search by a subject's code finds its entry.
  await page.goto(`${base}/?lang=en&valid_at=${expect.valid_at}`);
  await page.fill('#q', expect.search.q);
  await Promise.all([page.waitForNavigation(), page.click('#search button')]);
  const numbers = await page.$$eval('#entries tr.entry td:nth-child(2)', (cells) => cells.map((c) => c.textContent.trim()));
  check(numbers.includes(expect.search.number), `search ${expect.search.q} finds ${expect.search.number} (got ${numbers.join(', ')})`);
  await page.goto(`${base}/?lang=en&valid_at=${expect.valid_at}`);
  await shot(page, 'public-list');

  // The language switch, and back.
  check(await page.getAttribute('html', 'lang') === 'en', 'the list is in English');
  await Promise.all([page.waitForNavigation(), page.click('#lang-switch')]);
  check(await page.getAttribute('html', 'lang') === 'zh', 'the switch turns the page to Chinese');
  check((await page.textContent('h1')).includes('公示名单'), 'the Chinese heading is shown');
  await shot(page, 'public-list-zh');
  await page.goto(`${base}/`);
  check(await page.getAttribute('html', 'lang') === 'zh', 'the choice is kept (cookie)');
  await Promise.all([page.waitForNavigation(), page.click('#lang-switch')]);
  check(await page.getAttribute('html', 'lang') === 'en', 'the switch turns it back to English');

  await page.goto(`${base}${expect.public_case}&lang=en`);
  check(await page.$('#public-entry') !== null, 'the public case page shows its entry');
  await shot(page, 'public-case');

  // Sign in with the session token.
  await page.goto(`${base}/signin?lang=en`);
  await shot(page, 'sign-in');
  await page.fill('#token', expect.token);
  await Promise.all([page.waitForNavigation(), page.click('#signin button')]);
  const cookie = (await context.cookies()).find((c) => c.name === 'docket_session');
  check(cookie && cookie.httpOnly && cookie.sameSite === 'Strict', 'the session is an HttpOnly SameSite=Strict cookie');

  // The planted violation's timeline: its finding on the right step, and the proof check.
  await page.goto(`${base}${expect.case.path}&lang=en`);
  const row = page.locator(`#seq-${expect.case.seq}`);
  check(await row.getAttribute('data-kind') === expect.case.kind, `row #${expect.case.seq} is the ${expect.case.kind}`);
  check(await row.locator(`.finding[data-rule="${expect.case.rule}"]`).count() === 1, `finding ${expect.case.rule} is on step #${expect.case.seq}`);
  await page.waitForSelector('#proof-summary.verified, #proof-summary.failed');
  const detail = await page.textContent('#proof-detail');
  check(await page.textContent('#proof-summary') === 'verified', `the in-page proof check says verified (${detail})`);
  await shot(page, 'case-timeline');

  // A case with a notice: its objection window on the calendar strip.
  await page.goto(`${base}${expect.periods_case}&lang=en`);
  check(await page.$('.period[data-name="objection_window"] .strip li') !== null, 'the objection window is drawn day by day');
  await page.waitForSelector('#proof-summary.verified, #proof-summary.failed');
  await shot(page, 'case-periods');

  // A restoration application: its decision deadline drawn day by day, the decision's day marked.
  await page.goto(`${base}${expect.restoration_case}&lang=en`);
  check(await page.$('.period[data-name="restoration_processing"] .strip li.done') !== null, 'the restoration application is drawn to its deadline with the decision day');
  await page.waitForSelector('#proof-summary.verified, #proof-summary.failed');
  await shot(page, 'case-restoration');

  // A served byte altered: the check says failed.
  await page.route('**/desk/record/**', async (route) => {
    const response = await route.fetch();
    const record = await response.json();
    const flip = record.wire.length - 2;
    record.wire = record.wire.slice(0, flip) + (record.wire[flip] === '0' ? '1' : '0') + record.wire.slice(flip + 1);
    await route.fulfill({ response, json: record });
  });
  await page.goto(`${base}${expect.case.path}&lang=en`);
  await page.waitForSelector('#proof-summary.verified, #proof-summary.failed');
  check(await page.textContent('#proof-summary') === 'failed', 'with one byte of a record altered the check says failed');
  await page.unroute('**/desk/record/**');

  // The audit desk's counts.
  await page.goto(`${base}/desk/audit?lang=en&valid_at=${expect.audit.valid_at}`);
  const cells = await page.$$eval('td.count', (tds) => tds.map((td) => [td.dataset.rule, td.dataset.agency, td.dataset.status, Number(td.textContent.trim())]));
  const seen = {};
  for (const [rule, agency, status, n] of cells) if (n) seen[`${rule} ${agency} ${status}`] = n;
  check(JSON.stringify(Object.entries(seen).sort()) === JSON.stringify(Object.entries(expect.audit.counts).sort()),
    `the audit desk's counts equal the audit report's (${Object.keys(expect.audit.counts).length} cells)`);
  check(Number(await page.textContent('#grand-total')) === expect.audit.total, `the desk's total is ${expect.audit.total}`);
  await shot(page, 'audit-desk');

  await page.goto(`${base}/desk/worklist?lang=en&agency=${expect.worklist}`);
  check(await page.$('#must-lift') !== null, 'the worklist renders');
  await shot(page, 'worklist');
} finally {
  await context.close();
  rmSync(profile, { recursive: true, force: true });
}
console.log('all browser checks passed');
