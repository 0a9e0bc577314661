// The demo page: everything runs in the page, through the aigc-edge wasm module.
import init, { Filter, drawLabel, labelFile, verifyFile } from './pkg/aigc_edge_web.js';

const $ = (id) => document.getElementById(id);
const PRODUCER = 'aigc-edge-demo';
let filter;

function escape(s) {
  return s.replace(/[&<>"]/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;' }[c]));
}

// Hits carry UTF-16 offsets, so plain string slicing highlights them.
function highlight(text, hits) {
  let html = '';
  let at = 0;
  for (const h of [...hits].sort((a, b) => a.start - b.start)) {
    if (h.start < at) continue;
    html += escape(text.slice(at, h.start));
    html += `<mark class="${h.action}" title="${escape(h.keyword)} ${h.category ?? ''} ${h.action}">${escape(text.slice(h.start, h.end))}</mark>`;
    at = h.end;
  }
  return html + escape(text.slice(at));
}

function show(result, text) {
  $('highlight').innerHTML = highlight(text, result.hits);
  $('masked').textContent = result.text ?? text;
  $('decision').innerHTML = `<span class="badge ${result.action}" id="action">${result.action}</span> ` +
    `${result.hits.length} 个命中` + ((result.pii ?? []).length ? `，${result.pii.length} 处个人信息` : '');
}

function check() {
  const text = $('text').value;
  show(filter.check(text), text);
}

async function stream() {
  const text = $('text').value;
  const s = filter.stream();
  $('masked').textContent = '';
  const hits = [];
  for (const ch of text) {
    const c = s.write(ch);
    $('masked').textContent += c.output;
    hits.push(...c.hits);
    if (c.blocked) { $('masked').textContent += `\n[已中断：${c.blocked}]`; return; }
    await new Promise((r) => setTimeout(r, 15));
  }
  $('masked').textContent += s.finish().output;
}

async function labelImage(file) {
  const bitmap = await createImageBitmap(file);
  const canvas = $('canvas');
  canvas.width = bitmap.width;
  canvas.height = bitmap.height;
  const ctx = canvas.getContext('2d');
  ctx.drawImage(bitmap, 0, 0);
  const img = ctx.getImageData(0, 0, canvas.width, canvas.height);
  const pixels = new Uint8Array(img.data.buffer);
  const drawn = drawLabel(pixels, img.width, img.height, 'AI生成', 'bottom-right');
  img.data.set(pixels);
  ctx.putImageData(img, 0, 0);
  const png = new Uint8Array(await (await new Promise((r) => canvas.toBlob(r, 'image/png'))).arrayBuffer());
  const labeled = labelFile(png, PRODUCER);
  const link = $('download');
  link.href = URL.createObjectURL(new Blob([labeled], { type: 'image/png' }));
  link.hidden = false;
  $('imagelabel').textContent = `显式标识高 ${drawn.textHeight}px；隐式标识已写入 PNG`;
}

async function verify(file) {
  const bytes = new Uint8Array(await file.arrayBuffer());
  try {
    const r = verifyFile(bytes);
    $('verdict').innerHTML = `格式 ${r.format}：<span class="badge ${r.verdict === 'compliant' ? 'pass' : 'block'}" id="verdict-text">${r.verdict}</span> ` + escape(r.reasons.join('；'));
    const f = r.labels[0]?.fields ?? {};
    $('fields').innerHTML = Object.entries(f).map(([k, v]) => `<tr><td>${k}</td><td>${escape(v)}</td></tr>`).join('');
  } catch (e) {
    $('fields').innerHTML = '';
    $('verdict').innerHTML = `<span class="badge block" id="verdict-text">error</span> ${escape(e.message)}`;
  }
}

await init();
const [artifact, policy] = await Promise.all([
  fetch('./pkg/demo.dict').then((r) => r.arrayBuffer()),
  fetch('./pkg/demo-policy.json').then((r) => r.text()),
]);
const t0 = performance.now();
filter = Filter.fromArtifact(new Uint8Array(artifact), policy);
$('dict').textContent = `${filter.keywordCount} 个关键词，加载 ${(performance.now() - t0).toFixed(1)} ms`;
$('text').addEventListener('input', check);
$('stream').addEventListener('click', stream);
$('image').addEventListener('change', (e) => e.target.files[0] && labelImage(e.target.files[0]));
$('verify').addEventListener('change', (e) => e.target.files[0] && verify(e.target.files[0]));
for (const id of ['image', 'verify']) {
  const drop = $(id).parentElement;
  drop.addEventListener('dragover', (e) => e.preventDefault());
  drop.addEventListener('drop', (e) => {
    e.preventDefault();
    const file = e.dataTransfer.files[0];
    if (file) (id === 'image' ? labelImage : verify)(file);
  });
}
check();
document.body.dataset.ready = 'true';
