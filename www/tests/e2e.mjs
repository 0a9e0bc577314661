// Drives the demo page in headless Chromium (Debian's, never a downloaded browser): paste text and
// see hits, stream it, upload an image and download the labeled file, verify files; checks the
// downloaded label with the CLI's `verify` and saves a screenshot. Run by `make test-web`.
import { spawn, execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdirSync, writeFileSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { assert, launchChromium, open, summary, test } from './harness.mjs';

const WWW = join(dirname(fileURLToPath(import.meta.url)), '..');
const ROOT = join(WWW, '..');
const RUN = join(WWW, '.run');
const PORT = 18700;
mkdirSync(RUN, { recursive: true });


const server = spawn('python3', ['-m', 'http.server', String(PORT), '--bind', '127.0.0.1', '--directory', WWW], { stdio: 'ignore' });
const browser = await launchChromium();
try {
  const page = await browser.newPage({ acceptDownloads: true, viewport: { width: 1200, height: 1000 } });
  const errors = [];
  page.on('pageerror', (e) => errors.push(e.message));
  await open(page, `http://127.0.0.1:${PORT}/`);
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
    assert((await page.getAttribute('#action', 'data-action')) === 'block', 'decision is block');
    assert((await page.textContent('#action')) === '拦截', 'said in the page language');
    const masked = await page.textContent('#masked');
    assert(masked.includes('你这个**') && masked.includes('[MOBILE_1]'), masked);
  });

  await test('streaming output masks keywords split across pieces, with decision and highlights', async () => {
    await page.fill('#text', '你这个傻逼，再见。');
    await page.click('#stream');
    await page.waitForFunction(() => document.querySelector('#masked').textContent.endsWith('再见。'), null, { timeout: 10000 });
    assert((await page.textContent('#masked')) === '你这个**，再见。', await page.textContent('#masked'));
    assert((await page.getAttribute('#action', 'data-action')) === 'mask', 'the decision follows the stream');
    const marks = await page.$$eval('#highlight mark', (ms) => ms.map((m) => m.textContent));
    assert(marks.join() === '傻逼', JSON.stringify(marks));
  });

  await test('a blocked stream says why in Chinese', async () => {
    await page.fill('#text', '好的，下面教你自制炸药的步骤');
    await page.click('#stream');
    await page.waitForFunction(() => document.querySelector('#masked').textContent.includes('已中断'), null, { timeout: 10000 });
    const masked = await page.textContent('#masked');
    assert(masked.includes('[已中断：命中「自制炸药」（A.1d 宣扬恐怖主义、极端主义）]'), masked);
    assert(!masked.includes('炸药的步骤'), 'nothing after the hit is shown');
    assert((await page.textContent('#action')) === '拦截', await page.textContent('#action'));
  });

  const python = (code) => execFileSync(join(ROOT, '.venv', 'bin', 'python'), ['-c', code]);
  const cli = (...args) => JSON.parse(execFileSync(join(ROOT, 'target', 'release', 'aigc-edge'), args).toString());
  const exiftool = (path) => JSON.parse(execFileSync('exiftool', ['-j', '-G1', path]).toString())[0];
  async function upload(path, name) {
    await page.setInputFiles('#image', path);
    await page.waitForFunction(() => !document.querySelector('#imagelabel').textContent.includes('处理中'), null, { timeout: 10000 });
    if (await page.isHidden('#download')) return null;
    const [download] = await Promise.all([page.waitForEvent('download'), page.click('#download')]);
    const saved = join(RUN, name ?? download.suggestedFilename());
    await download.saveAs(saved);
    return { saved, suggested: download.suggestedFilename() };
  }

  let labeledPath;
  await test('an uploaded PNG gets the visible and implicit label, downloadable as PNG', async () => {
    const png = join(RUN, 'upload.png');
    python(`from PIL import Image; Image.new('RGB', (640, 400), (240, 240, 235)).save(${JSON.stringify(png)})`);
    const { saved, suggested } = await upload(png, 'labeled.png');
    labeledPath = saved;
    assert(suggested === 'labeled.png', suggested);
    const report = cli('verify', labeledPath)[0];
    assert(report.verdict === 'compliant', JSON.stringify(report));
    assert(report.labels[0].fields.ContentProducer === 'aigc-edge-demo', JSON.stringify(report));
  });

  await test('an uploaded photo is watermarked with its ProduceID and found after the page re-encodes it', async () => {
    const png = join(RUN, 'photo.png');
    // Photo-like at a generator's size: blurred noise over a gradient, with shapes. (At 75% of
    // a 512 px image the chips fall under 4 px and the mark is marginal: see README.)
    python(`from PIL import Image, ImageDraw, ImageFilter
W, H = 1024, 768
noise = Image.effect_noise((W, H), 60).filter(ImageFilter.GaussianBlur(1.5))
grad = Image.linear_gradient('L').resize((W, H))
img = Image.merge('RGB', (Image.blend(noise, grad, 0.5), noise, grad))
d = ImageDraw.Draw(img)
for i in range(14):
    x, y = (197 * i) % (W - 240), (121 * i) % (H - 200)
    d.ellipse((x, y, x + 240, y + 200), fill=((37 * i) % 256, (91 * i + 40) % 256, (53 * i + 90) % 256))
img.save(${JSON.stringify(png)})`);
    const { saved } = await upload(png, 'watermarked.png');
    const mark = await page.$eval('#imagewatermark', (e) => ({ ...e.dataset, text: e.textContent }));
    assert(/^[0-9a-f]{16}$/.test(mark.payload ?? ''), JSON.stringify(mark));
    assert(mark.found === mark.payload, `found after 75% + JPEG 70 on the page: ${JSON.stringify(mark)}`);
    const key = join(RUN, 'demo-watermark.key');
    writeFileSync(key, 'aigc-edge demo image watermark key');
    const report = cli('verify', '--key-file', key, saved)[0];
    assert(report.image_watermark.found && report.image_watermark.payload === mark.payload, JSON.stringify(report));
    const id = report.labels[0].fields.ProduceID;
    const derived = createHash('sha256').update(id).digest('hex').slice(0, 16);
    assert(derived === mark.payload, `payload ${mark.payload} is the ProduceID's ${derived}`);
  });

  await test('a phone JPEG comes back a JPEG, upright, with its EXIF and colour profile', async () => {
    const jpeg = join(RUN, 'phone.jpg');
    python(`from PIL import Image, ImageCms
img = Image.new('RGB', (400, 300))
img.putdata([(x * 255 // 400, y * 255 // 300, 128) for y in range(300) for x in range(400)])
exif = Image.Exif(); exif[0x0112] = 6; exif[0x010F] = 'PhoneMaker'; exif[0x0110] = 'Phone 15'
icc = ImageCms.ImageCmsProfile(ImageCms.createProfile('sRGB')).tobytes()
img.save(${JSON.stringify(jpeg)}, quality=90, exif=exif, icc_profile=icc)`);
    const before = readFileSync(jpeg).length;
    const { saved, suggested } = await upload(jpeg);
    assert(suggested === 'labeled.jpg', suggested);
    const tags = exiftool(saved);
    assert(tags['File:FileType'] === 'JPEG', tags['File:FileType']);
    assert(tags['IFD0:Make'] === 'PhoneMaker' && tags['IFD0:Model'] === 'Phone 15', JSON.stringify(tags));
    assert(tags['IFD0:Orientation'] === 'Horizontal (normal)', tags['IFD0:Orientation']);
    assert(tags['File:ImageWidth'] === 300 && tags['File:ImageHeight'] === 400, 'stored as the viewer saw it');
    const icc = (p) => execFileSync('exiftool', ['-b', '-ICC_Profile', p]);
    assert(icc(saved).length > 100 && icc(saved).equals(icc(jpeg)), 'the colour profile is byte-identical');
    assert(readFileSync(saved).length < before * 4, 'a JPEG, not a bloated PNG');
    assert(cli('verify', saved)[0].verdict === 'compliant', 'labeled');
  });

  await test('a too-small image shows an error and nothing of the previous one', async () => {
    const tiny = join(RUN, 'tiny.png');
    python(`from PIL import Image; Image.new('RGB', (40, 30), (0, 0, 0)).save(${JSON.stringify(tiny)})`);
    assert(await upload(tiny) === null, 'no download offered');
    const message = await page.textContent('#imagelabel');
    assert(message.includes('图片太小') && !message.includes('显式标识高'), message);
    assert((await page.getAttribute('#imagelabel', 'class')) === 'error', 'shown as an error');
    assert((await page.$eval('#canvas', (c) => c.width)) === 0, 'the previous picture is gone');
  });

  await test('verify shows the seven fields and the verdict', async () => {
    await page.setInputFiles('#verify', labeledPath);
    await page.waitForSelector('#verdict-text');
    assert((await page.getAttribute('#verdict-text', 'data-verdict')) === 'compliant', 'verdict');
    assert((await page.textContent('#verdict-text')) === '合规', 'in the page language');
    const keys = await page.$$eval('#fields td:first-child', (tds) => tds.map((t) => t.textContent));
    assert(keys.join() === 'Label,ContentProducer,ProduceID,ReservedCode1,ContentPropagator,PropagateID,ReservedCode2', keys.join());
    const broken = join(RUN, 'broken.png');
    writeFileSync(broken, readFileSync(labeledPath).subarray(0, 60));
    await page.setInputFiles('#verify', broken);
    await page.waitForFunction(() => document.querySelector('#verdict-text')?.dataset.verdict === 'error');
    assert((await page.$$('#fields tr')).length === 0, 'no stale fields');
  });

  await test('the page fits a 390 px phone screen', async () => {
    const phone = await browser.newPage({ viewport: { width: 390, height: 844 } });
    await phone.goto(`http://127.0.0.1:${PORT}/`);
    await phone.waitForSelector('body[data-ready="true"]', { timeout: 15000 });
    const width = await phone.evaluate(() => document.documentElement.scrollWidth);
    assert(width <= 390, `scrolls sideways: ${width} px wide`);
    const columns = await phone.$eval('.row', (r) => getComputedStyle(r).gridTemplateColumns.split(' ').length);
    assert(columns === 1, `${columns} columns`);
    await phone.screenshot({ path: join(RUN, 'demo-390.png'), fullPage: true });
    await phone.close();
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
summary();
