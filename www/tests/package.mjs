// The npm package as its users get it: `npm pack` of www/pkg, linted by publint and
// @arethetypeswrong/cli, installed from the tarball into fresh projects, and used from plain Node
// (initSync), a Vite build and an esbuild bundle, both driven in headless Chromium (Debian's).
// Run by `make test-web`.
import { execFileSync, spawn } from 'node:child_process';
import { mkdirSync, rmSync, writeFileSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';
import { assert, launchChromium, open, summary, test } from './harness.mjs';

const WWW = join(dirname(fileURLToPath(import.meta.url)), '..');
const PKG = join(WWW, 'pkg');
const RUN = join(WWW, '.run', 'package');
const BIN = join(WWW, 'node_modules', '.bin');
const PORT = 18710;

const run = (cmd, args, cwd) => execFileSync(cmd, args, { cwd, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });

rmSync(RUN, { recursive: true, force: true });
mkdirSync(RUN, { recursive: true });
const version = JSON.parse(readFileSync(join(PKG, 'package.json'), 'utf8')).version;
run('npm', ['pack', '--silent', '--pack-destination', RUN], PKG);
const tarball = join(RUN, `aigc-edge-${version}.tgz`);

/** A fresh project with the tarball installed and `files` written. */
function project(name, files) {
  const dir = join(RUN, name);
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'package.json'), JSON.stringify({ name: `consumer-${name}`, private: true, type: 'module' }));
  run('npm', ['install', '--no-audit', '--no-fund', '--silent', tarball], dir);
  for (const [path, text] of Object.entries(files)) writeFileSync(join(dir, path), text);
  return dir;
}

// What every consumer runs: a filter from words, and one from an artifact compiled in the page.
const USE = `
const words = new Filter('自制炸药\\tA.1d\\n傻逼\\tA.4c\\tmask\\n');
const compiled = Filter.fromArtifact(compileDictionary('赌博\\tA.1h\\n', null, null), null);
const result = [words.check('教我自制炸药').action, words.check('你这个傻逼').text, compiled.check('网上赌博').action];`;
const EXPECTED = JSON.stringify(['block', '你这个**', 'block']);
// Each entry of the package: its import path and its files' stem (tools/web_package.py).
const ENTRIES = [['.', 'aigc_edge_web'], ['./pinyin', 'aigc_edge_pinyin'], ['./files', 'aigc_edge_files'], ['./image', 'aigc_edge_image']];
const PAGE = (script) => `<!doctype html><meta charset="utf-8"><script type="module" src="${script}"></script>`;
const BROWSER_MAIN = (imports, init) => `${imports}
try {
  ${init}
  ${USE}
  document.body.dataset.result = JSON.stringify(result);
} catch (e) {
  document.body.dataset.error = String(e.stack ?? e);
}`;

await test('the tarball holds the code, types, wasm, README and LICENSE', async () => {
  const listed = run('tar', ['-tzf', tarball]).split('\n').filter(Boolean).sort();
  const code = ENTRIES.flatMap(([, name]) => [`${name}.js`, `${name}.d.ts`, `${name}_bg.wasm`]);
  for (const name of [...code, 'README.md', 'LICENSE', 'package.json']) {
    assert(listed.includes(`package/${name}`), `${name} missing from ${listed.join(', ')}`);
  }
  const manifest = JSON.parse(readFileSync(join(PKG, 'package.json'), 'utf8'));
  for (const key of ['exports', 'repository', 'homepage', 'keywords', 'engines', 'license']) {
    assert(manifest[key], `package.json lacks ${key}`);
  }
  for (const [path, name] of ENTRIES) {
    assert(manifest.exports[path]?.types && manifest.exports[path]?.import, `exports map: types and import of ${path}`);
    assert(manifest.exports[`./${name}_bg.wasm`], `${name}_bg.wasm is a subpath export`);
  }
});

await test('the main entry a page downloads stays within 200 KiB gzip', async () => {
  // The JS glue and the .wasm, as tools/web_package.py reports them (issue 15's target).
  const kib = ['aigc_edge_web.js', 'aigc_edge_web_bg.wasm']
    .reduce((sum, name) => sum + gzipSync(readFileSync(join(PKG, name)), { level: 9 }).length, 0) / 1024;
  assert(kib <= 200, `aigc-edge is ${kib.toFixed(1)} KiB gzip`);
});

await test('publint finds nothing', async () => {
  const out = run(join(BIN, 'publint'), ['--strict', PKG]);
  assert(out.includes('All good'), out);
});

await test('are the types wrong: no problem for ESM consumers', async () => {
  // The asset subpaths carry no types by nature; the ESM-only profile, since there is no CJS build.
  run(join(BIN, 'attw'), [tarball, '--profile', 'esm-only', '--no-emoji', '--no-color',
    '--exclude-entrypoints', ...ENTRIES.map(([, name]) => `${name}_bg.wasm`), 'demo.dict', 'demo-policy.json', 'package.json']);
});

await test('plain Node: initSync with the bytes the package resolves', async () => {
  const dir = project('node', {
    'main.mjs': `import { readFileSync } from 'node:fs';
import { initSync, Filter, compileDictionary } from 'aigc-edge';
initSync({ module: readFileSync(new URL(import.meta.resolve('aigc-edge/aigc_edge_web_bg.wasm'))) });
${USE}
const demo = Filter.fromArtifact(readFileSync(new URL(import.meta.resolve('aigc-edge/demo.dict'))),
  readFileSync(new URL(import.meta.resolve('aigc-edge/demo-policy.json')), 'utf8'));
console.log(JSON.stringify(result));
console.log(demo.keywordCount > 0 ? 'demo dictionary loads' : 'demo dictionary empty');
`,
  });
  const out = run('node', ['main.mjs'], dir).trim().split('\n');
  assert(out[0] === EXPECTED, out.join('\n'));
  assert(out[1] === 'demo dictionary loads', out[1]);
});

await test('plain Node: the pinyin, files and image entries load beside the main one', async () => {
  const dir = project('entries', {
    'main.mjs': `import { readFileSync } from 'node:fs';
const wasm = (name) => readFileSync(new URL(import.meta.resolve('aigc-edge/' + name + '_bg.wasm')));
const pinyin = await import('aigc-edge/pinyin');
const files = await import('aigc-edge/files');
const image = await import('aigc-edge/image');
pinyin.initSync({ module: wasm('aigc_edge_pinyin') });
files.initSync({ module: wasm('aigc_edge_files') });
image.initSync({ module: wasm('aigc_edge_image') });
const readings = new pinyin.Filter('赌博\\tA.1h\\n', '{"normalize": {"pinyin": true}}').check('du bo').action;
const report = files.verifyFile(files.labelFile(new TextEncoder().encode('答'), 'P', 'id-1')).verdict;
const payload = image.imageWatermarkPayload('id-1').length;
console.log(JSON.stringify([readings, report, payload]));
`,
  });
  const out = run('node', ['main.mjs'], dir).trim();
  assert(out === JSON.stringify(['block', 'compliant', 16]), out);
});

await test('the main entry refuses pinyin by name; the pinyin entry has it', async () => {
  const dir = project('refusal', {
    'main.mjs': `import { readFileSync } from 'node:fs';
import { initSync, Filter } from 'aigc-edge';
initSync({ module: readFileSync(new URL(import.meta.resolve('aigc-edge/aigc_edge_web_bg.wasm'))) });
try { new Filter('赌博\\tA.1h\\n', '{"normalize": {"pinyin": true}}'); console.log('accepted'); }
catch (e) { console.log(e.message); }
`,
  });
  const out = run('node', ['main.mjs'], dir).trim();
  assert(out.includes('normalize.pinyin') && out.includes('aigc-edge/pinyin'), out);
});

const vite = project('vite', {
  'index.html': PAGE('./main.js'),
  'main.js': BROWSER_MAIN("import init, { Filter, compileDictionary } from 'aigc-edge';", 'await init();'),
});
const esbuild = project('esbuild', {
  'main.js': BROWSER_MAIN(
    "import init, { Filter, compileDictionary } from 'aigc-edge';\nimport wasmUrl from 'aigc-edge/aigc_edge_web_bg.wasm';",
    'await init({ module_or_path: wasmUrl });'),
});
let builds = true;
await test('Vite and esbuild builds emit the .wasm as an asset', async () => {
  builds = false;
  run(join(BIN, 'vite'), ['build', '--logLevel', 'warn', '--base', './', '--outDir', 'dist'], vite);
  const assets = run('ls', [join(vite, 'dist', 'assets')]);
  assert(/\.wasm/.test(assets), assets);
  run(join(BIN, 'esbuild'), ['main.js', '--bundle', '--format=esm', '--loader:.wasm=file', '--outdir=dist', '--log-level=warning'], esbuild);
  assert(/\.wasm/.test(run('ls', [join(esbuild, 'dist')])), 'esbuild copied the .wasm');
  // The file loader's URL is relative to the page: the page sits next to the bundle.
  writeFileSync(join(esbuild, 'dist', 'index.html'), PAGE('./main.js'));
  builds = true;
});

const server = spawn('python3', ['-m', 'http.server', String(PORT), '--bind', '127.0.0.1', '--directory', RUN], { stdio: 'ignore' });
const browser = await launchChromium();
try {
  for (const [name, path] of [['Vite', 'vite/dist/'], ['esbuild', 'esbuild/dist/']]) {
    await test(`the ${name} build runs in Chromium`, async () => {
      assert(builds, 'the builds failed');
      const page = await browser.newPage();
      const errors = [];
      page.on('pageerror', (e) => errors.push(e.message));
      await open(page, `http://127.0.0.1:${PORT}/${path}`);
      await page.waitForSelector('body[data-result], body[data-error]', { state: 'attached', timeout: 15000 });
      const error = await page.getAttribute('body', 'data-error');
      assert(!error, error);
      const result = await page.getAttribute('body', 'data-result');
      assert(result === EXPECTED, result);
      assert(errors.length === 0, errors.join('\n'));
      await page.close();
    });
  }
} finally {
  await browser.close();
  server.kill();
}
summary();
