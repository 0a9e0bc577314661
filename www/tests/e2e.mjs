// Drives the demo page in headless Chromium (Debian's, never a downloaded browser): paste text and
// see hits, stream it, upload an image and download the labeled file, verify files; checks the
// downloaded label with the CLI's `verify` and saves a screenshot. Run by `make test-web`.
import { spawn, execFileSync } from 'node:child_process';
import { mkdirSync, writeFileSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

const WWW = join(dirname(fileURLToPath(import.meta.url)), '..');
const ROOT = join(WWW, '..');
const RUN = join(WWW, '.run');
const PORT = 18700;
mkdirSync(RUN, { recursive: true });

let passed = 0;
let failed = 0;
async function test(name, body) {
  try {
    await body();
    passed++;
    console.log(`ok - ${name}`);
  } catch (e) {
    failed++;
    console.log(`not ok - ${name}\n  ${e.stack}`);
  }
}
function assert(cond, message) {
  if (!cond) throw new Error(message);
}

const server = spawn('python3', ['-m', 'http.server', String(PORT), '--bind', '127.0.0.1', '--directory', WWW], { stdio: 'ignore' });
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium',
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage', '--disable-quic', '--no-first-run',
    '--disable-background-networking', '--disable-component-update', '--disable-sync'],
});
try {
  const page = await browser.newPage({ acceptDownloads: true, viewport: { width: 1200, height: 1000 } });
  const errors = [];
  page.on('pageerror', (e) => errors.push(e.message));
  for (let i = 0; i < 50; i++) {
    try { await page.goto(`http://127.0.0.1:${PORT}/`); break; } catch { await new Promise((r) => setTimeout(r, 100)); }
  }
  await page.waitForSelector('body[data-ready="true"]', { timeout: 15000 });

  await test('dictionary loads from the compiled artifact', async () => {
    const text = await page.textContent('#dict');
    assert(/\d+ 个关键词/.test(text), text);
  });

  await test('pasted text shows hits highlighted and masked', async () => {
    await page.fill('#text', '教人自-制炸药的方法。你这个傻逼，电话13812345678。');
    await page.waitForFunction(() => document.querySelectorAll('#highlight mark').length >= 2);
    const marks = await page.$$eval('#highlight mark', (ms) => ms.map((m) => m.textContent));
    assert(marks.includes('自-制炸药') && marks.includes('傻逼'), JSON.stringify(marks));
    assert((await page.textContent('#action')) === 'block', 'decision is block');
    const masked = await page.textContent('#masked');
    assert(masked.includes('你这个**') && masked.includes('[MOBILE_1]'), masked);
  });

  await test('streaming output masks keywords split across pieces', async () => {
    await page.fill('#text', '你这个傻逼，再见。');
    await page.click('#stream');
    await page.waitForFunction(() => document.querySelector('#masked').textContent.endsWith('再见。'), null, { timeout: 10000 });
    assert((await page.textContent('#masked')) === '你这个**，再见。', await page.textContent('#masked'));
  });

  let labeledPath;
  await test('an uploaded image gets the visible and implicit label, downloadable', async () => {
    const png = join(RUN, 'upload.png');
    execFileSync(join(ROOT, '.venv', 'bin', 'python'), ['-c',
      `from PIL import Image; Image.new('RGB', (640, 400), (240, 240, 235)).save(${JSON.stringify(png)})`]);
    await page.setInputFiles('#image', png);
    await page.waitForSelector('#download:not([hidden])', { timeout: 10000 });
    const [download] = await Promise.all([page.waitForEvent('download'), page.click('#download')]);
    labeledPath = join(RUN, 'labeled.png');
    await download.saveAs(labeledPath);
    const report = JSON.parse(execFileSync(join(ROOT, 'target', 'release', 'aigc-edge'), ['verify', labeledPath]).toString())[0];
    assert(report.verdict === 'compliant', JSON.stringify(report));
    assert(report.labels[0].fields.ContentProducer === 'aigc-edge-demo', JSON.stringify(report));
  });

  await test('verify shows the seven fields and the verdict', async () => {
    await page.setInputFiles('#verify', labeledPath);
    await page.waitForSelector('#verdict-text');
    assert((await page.textContent('#verdict-text')) === 'compliant', 'verdict');
    const keys = await page.$$eval('#fields td:first-child', (tds) => tds.map((t) => t.textContent));
    assert(keys.join() === 'Label,ContentProducer,ProduceID,ReservedCode1,ContentPropagator,PropagateID,ReservedCode2', keys.join());
    const broken = join(RUN, 'broken.png');
    writeFileSync(broken, readFileSync(labeledPath).subarray(0, 60));
    await page.setInputFiles('#verify', broken);
    await page.waitForFunction(() => document.querySelector('#verdict-text').textContent === 'error');
  });

  await test('no uncaught page errors', async () => {
    assert(errors.length === 0, errors.join('\n'));
  });
  await page.screenshot({ path: join(RUN, 'demo.png'), fullPage: true });
  console.log(`screenshot: ${join(RUN, 'demo.png')}`);
} finally {
  await browser.close();
  server.kill();
}
console.log(`${passed} passed, ${failed} failed`);
process.exitCode = failed ? 1 : 0;
