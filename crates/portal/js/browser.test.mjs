// Drives the real portal in headless Chromium (Debian's /usr/bin/chromium,
// through playwright-core): opens the county home, a department and an
// item, presses "verify" and expects "verified"; then serves a tampered
// proof (one flipped byte in an entry, as a poisoned cache or mirror would)
// and expects "failed" with the reason. Saves screenshots of the main pages.
//
// Usage: node browser.test.mjs <portal base URL> <item path> <artifact dir>
// Run by crates/portal/tests/browser.rs.
import { chromium } from 'playwright-core';
import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';

const [base, itemPath, out] = process.argv.slice(2);
mkdirSync(out, { recursive: true });

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium',
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
    '--disable-background-networking', '--disable-component-update', '--disable-sync'],
});
const errors = [];
try {
  const page = await browser.newPage({ viewport: { width: 412, height: 915 } }); // a phone
  page.on('pageerror', (e) => errors.push(String(e)));
  page.on('console', (m) => { if (m.type() === 'error') errors.push(m.text()); });

  await page.goto(base + '/');
  await page.screenshot({ path: `${out}/home.png`, fullPage: true });
  await page.click('table.departments a');
  await page.waitForSelector('table.matters');
  await page.screenshot({ path: `${out}/catalog.png`, fullPage: true });

  await page.goto(base + itemPath);
  await page.click('#verify');
  await page.waitForSelector('#verify-result[data-state]');
  const state = await page.getAttribute('#verify-result', 'data-state');
  const text = await page.textContent('#verify-result');
  assert.equal(state, 'verified', `expected verified, got: ${text}`);
  assert.match(text, /已验证/);
  // In Chinese, with China time (issue 20, item 1).
  assert.match(text, /见证方 .* 于 \d{4}-\d{2}-\d{2} \d{2}:\d{2}（北京时间）副署/);
  assert.match(text, /第 \d+ 条（发布）：签名有效/);
  assert.doesNotMatch(text, /cosigned by|signature valid|T\d{2}:\d{2}:\d{2}/);
  await page.screenshot({ path: `${out}/item-verified.png`, fullPage: true });

  // The downloaded document, checked in the browser against the verified
  // commitment; one changed byte is refused (issue 20, item 1).
  await page.waitForSelector('#check-file:not([hidden])');
  const href = await page.getAttribute('a.download', 'href');
  const doc = Buffer.from(await (await fetch(new URL(href, base))).arrayBuffer());
  await page.setInputFiles('#gk-file', { name: 'doc', mimeType: 'application/octet-stream', buffer: doc });
  await page.waitForSelector('#check-file-result[data-state="match"]');
  assert.match(await page.textContent('#check-file-result'), /此文件正是第 \d+ 条记录（(发布|更正)）所承诺的内容/);
  const changed = Buffer.from(doc);
  changed[0] ^= 0x01;
  await page.setInputFiles('#gk-file', { name: 'doc2', mimeType: 'application/octet-stream', buffer: changed });
  await page.waitForSelector('#check-file-result[data-state="mismatch"]');
  assert.match(await page.textContent('#check-file-result'), /不一致/);
  await page.screenshot({ path: `${out}/item-file-checked.png`, fullPage: true });

  // Where the county publishes to a bucket, the page names the log's
  // static files there (data-static) and the proof is built here from
  // them. This portal serves the same paths, so it stands in for the
  // bucket: the page is given the attribute the bucket would give it.
  const logSlug = itemPath.split('/')[2];
  const withStatic = async (route) => {
    const res = await route.fetch();
    const html = (await res.text()).replace('<button id="verify"', `<button id="verify" data-static="${base}/logs/${logSlug}"`);
    await route.fulfill({ response: res, body: html });
  };
  await page.route(`**${itemPath}*`, withStatic);
  const asked = [];
  page.on('request', (r) => asked.push(new URL(r.url()).pathname));
  const verifyNow = async () => {
    asked.length = 0;
    await page.goto(base + itemPath + '?lang=en');
    await page.click('#verify');
    await page.waitForSelector('#verify-result[data-state]');
    return [await page.getAttribute('#verify-result', 'data-state'), await page.textContent('#verify-result')];
  };
  const proofAsked = () => asked.some((p) => p.startsWith('/api/v1/logs/') && p.includes('/proof/'));
  let [state2, text2] = await verifyNow();
  assert.equal(state2, 'verified', `from the static files: ${text2}`);
  assert.ok(asked.some((p) => p.endsWith(`/logs/${logSlug}/checkpoint`)), `the checkpoint was read: ${asked}`);
  assert.ok(asked.some((p) => p.includes(`/logs/${logSlug}/tile/entries/`)), `an entry bundle was read: ${asked}`);
  assert.ok(!proofAsked(), 'the county\'s proof endpoint was not asked');
  // A tile changed on its way (a poisoned CDN): failed, not papered over
  // by the county's answer.
  await page.route('**/logs/*/tile/0/**', async (route) => {
    const res = await route.fetch();
    const body = Buffer.from(await res.body());
    body[body.length - 1] ^= 0x01;
    await route.fulfill({ response: res, body });
  });
  [state2, text2] = await verifyNow();
  assert.equal(state2, 'failed', `a changed tile must fail: ${text2}`);
  await page.unroute('**/logs/*/tile/0/**');
  // The static files cannot be read (not there yet, a CDN refusing the
  // read): the county's proof endpoint answers.
  await page.route('**/logs/*/checkpoint', (route) => route.fulfill({ status: 404, body: '' }));
  const quietStatic = errors.length;
  [state2, text2] = await verifyNow();
  assert.equal(state2, 'verified', `the county's fallback: ${text2}`);
  assert.ok(proofAsked(), 'the county\'s proof endpoint was asked');
  errors.push(...errors.splice(quietStatic).filter((e) => !/Failed to load resource/.test(e)));
  await page.unroute('**/logs/*/checkpoint');
  await page.unroute(`**${itemPath}*`);
  await page.goto(base + itemPath);

  // The printable proof of the item (issue 20, item 9), printed to A4.
  await page.click('a.proof-link');
  await page.waitForSelector('table.proof');
  assert.match(await page.textContent('body'), /公开信息存证[\s\S]*gongkai check-proof/);
  await page.screenshot({ path: `${out}/item-proof.png`, fullPage: true });
  await page.pdf({ path: `${out}/item-proof.pdf`, format: 'A4' });

  // A tampered proof: flip one byte of the first history entry.
  await page.route('**/api/v1/logs/*/proof/**', async (route) => {
    const res = await route.fetch();
    const answer = await res.json();
    const entries = answer.bundle.entries;
    const bytes = Buffer.from(entries[0].entry, 'base64');
    bytes[bytes.length - 70] ^= 0x01; // inside the body, before the signature
    entries[0].entry = bytes.toString('base64');
    await route.fulfill({ response: res, json: answer });
  });
  await page.goto(base + itemPath + '?lang=en');
  await page.click('#verify');
  await page.waitForSelector('#verify-result[data-state]');
  const bad = await page.getAttribute('#verify-result', 'data-state');
  const why = await page.textContent('#verify-result');
  assert.equal(bad, 'failed', `a tampered entry must fail: ${why}`);
  assert.match(why, /Verification failed/);
  assert.match(why, /report it to the county discipline inspection office/, 'a failure says whom to tell');
  assert.match(why, /entry \d+/, `the reason names the entry: ${why}`);
  await page.screenshot({ path: `${out}/item-tampered.png`, fullPage: true });
  await page.unroute('**/api/v1/logs/*/proof/**');

  // A genuine proof of another item of the same log, as a tampering cache
  // could serve it: refused, not shown as this item's proof.
  const slug = itemPath.split('/')[2];
  const list = await (await fetch(`${base}/api/v1/logs/${slug}/items`)).json();
  const other = list.items.map((i) => i.item_id).find((id) => !itemPath.endsWith(`/${id}`));
  assert.ok(other, 'the sample log has a second item');
  await page.route('**/api/v1/logs/*/proof/**', async (route) => {
    const url = route.request().url().replace(/proof\/.*$/, `proof/${encodeURIComponent(other)}`);
    const res = await route.fetch({ url });
    await route.fulfill({ response: res });
  });
  await page.goto(base + itemPath + '?lang=en');
  await page.click('#verify');
  await page.waitForSelector('#verify-result[data-state]');
  const swapped = await page.getAttribute('#verify-result', 'data-state');
  const swappedWhy = await page.textContent('#verify-result');
  assert.equal(swapped, 'failed', `another item's proof must fail: ${swappedWhy}`);
  assert.match(swappedWhy, /not item/);
  await page.unroute('**/api/v1/logs/*/proof/**');

  // An outage is not tampering: a 503 or a dropped connection while
  // fetching the proof says "could not check", never "failed". (The
  // browser logs the failed loads it is given; only those are expected.)
  const quietFrom = errors.length;
  for (const [name, handler] of [
    ['503', (route) => route.fulfill({ status: 503, json: { error: 'county overloaded' } })],
    ['network', (route) => route.abort('connectionreset')],
  ]) {
    await page.route('**/api/v1/logs/*/proof/**', handler);
    await page.goto(base + itemPath + '?lang=en');
    await page.click('#verify');
    await page.waitForSelector('#verify-result[data-state]');
    const outage = await page.getAttribute('#verify-result', 'data-state');
    const outageWhy = await page.textContent('#verify-result');
    assert.equal(outage, 'unavailable', `${name}: an outage is not a failure: ${outageWhy}`);
    assert.match(outageWhy, /not evidence of tampering/);
    assert.doesNotMatch(outageWhy, /Verification failed/);
    await page.unroute('**/api/v1/logs/*/proof/**');
  }
  await page.route('**/api/v1/logs/*/proof/**', (route) => route.fulfill({ status: 503, json: {} }));
  await page.goto(base + itemPath);
  await page.click('#verify');
  await page.waitForSelector('#verify-result[data-state]');
  assert.match(await page.textContent('#verify-result'), /暂时无法验证/);
  await page.screenshot({ path: `${out}/item-unavailable.png`, fullPage: true });
  await page.unroute('**/api/v1/logs/*/proof/**');
  errors.push(...errors.splice(quietFrom).filter((e) => !/Failed to load resource/.test(e)));

  await page.goto(base + '/inspection');
  await page.screenshot({ path: `${out}/inspection.png`, fullPage: true });

  // A phone (issue 20, item 7): no page scrolls sideways, and the wide
  // tables become cards whose values sit beside their column's name.
  const dept = itemPath.split('/').slice(0, 3).join('/');
  for (const [name, path] of [['home', '/'], ['catalog', `${dept}/`], ['requests', `${dept}/requests`], ['guide', '/guide'], ['proof', itemPath.replace('/items/', '/proof/')]]) {
    await page.goto(base + path);
    const [scroll, width] = await page.evaluate(() => [document.documentElement.scrollWidth, window.innerWidth]);
    assert.ok(scroll <= width + 1, `${name}: the page is ${scroll}px wide on a ${width}px phone`);
    await page.screenshot({ path: `${out}/${name}-phone.png`, fullPage: true });
  }
  await page.goto(base + `${dept}/`);
  const label = await page.evaluate(() => {
    const td = document.querySelector('table.matters td[data-label]');
    return td ? getComputedStyle(td, '::before').content : null;
  });
  assert.match(label ?? '', /事项/, 'a matter card names its fields on a phone');
  assert.deepEqual(errors, [], 'no script errors or CSP violations');
  console.log('browser: verified, tampered proof failed; screenshots in', out);
} finally {
  await browser.close();
}
