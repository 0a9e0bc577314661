// The demo page: everything runs in the page, through the aigc-edge wasm modules: the text
// entry, and the file and image entries (each its own .wasm, loaded side by side).
import init, { Filter, implicitLabel } from './pkg/aigc_edge_web.js';
import initFiles, { carryMetadata, labelFile, verifyFile } from './pkg/aigc_edge_files.js';
import initImage, { detectImageWatermark, drawLabel, imageWatermarkPayload, watermarkImage } from './pkg/aigc_edge_image.js';

const $ = (id) => document.getElementById(id);
const PRODUCER = 'aigc-edge-demo';
// The demo's image watermark key (a platform keeps its own secret).
const WATERMARK_KEY = new TextEncoder().encode('aigc-edge demo image watermark key');
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

// The page speaks Chinese: actions, verdicts and block reasons in its language.
const ACTION_ZH = { pass: '通过', flag: '标记', mask: '屏蔽', block: '拦截' };
const VERDICT_ZH = { compliant: '合规', 'non-compliant': '不合规', 'no label': '无标识' };
const CATEGORY_ZH = {
  'A.1a': '煽动颠覆国家政权', 'A.1b': '危害国家安全和利益', 'A.1c': '煽动分裂国家', 'A.1d': '宣扬恐怖主义、极端主义',
  'A.1e': '宣扬民族仇恨', 'A.1f': '宣扬暴力、淫秽色情', 'A.1g': '传播虚假有害信息', 'A.1h': '其他法律法规禁止的内容',
  'A.2a': '民族歧视', 'A.2b': '信仰歧视', 'A.2c': '国别歧视', 'A.2d': '地域歧视', 'A.2e': '性别歧视', 'A.2f': '年龄歧视',
  'A.2g': '职业歧视', 'A.2h': '健康歧视', 'A.2i': '其他歧视', 'A.3a': '侵犯知识产权', 'A.3b': '违反商业道德',
  'A.3c': '泄露商业秘密', 'A.3d': '垄断和不正当竞争', 'A.3e': '其他商业违法违规', 'A.4a': '危害身心健康',
  'A.4b': '侵害肖像权', 'A.4c': '侵害名誉权', 'A.4d': '侵害荣誉权', 'A.4e': '侵害隐私权', 'A.4f': '侵害个人信息权益',
  'A.4g': '侵犯其他合法权益', 'A.5a': '内容不准确', 'A.5b': '内容不可靠',
};
const SEVERITY = ['pass', 'flag', 'mask', 'block'];
const worst = (a, b) => (SEVERITY.indexOf(b) > SEVERITY.indexOf(a) ? b : a);
const categoryZh = (c) => (c ? `${c} ${CATEGORY_ZH[c] ?? ''}`.trim() : '未分类');

function showDecision(action, hits, pii) {
  $('decision').innerHTML = `<span class="badge ${action}" id="action" data-action="${action}">${ACTION_ZH[action]}</span> ` +
    `${hits} 个命中` + (pii ? `，${pii} 处个人信息` : '');
}

function show(result, text) {
  $('highlight').innerHTML = highlight(text, result.hits);
  $('masked').textContent = result.text ?? text;
  showDecision(result.action, result.hits.length, (result.pii ?? []).length);
}

function check() {
  const text = $('text').value;
  show(filter.check(text), text);
}

// Why a stream stopped, in the page's language: the hit that blocked it.
function blockReason(chunk, hits) {
  const hit = [...chunk.hits, ...hits].reverse().find((h) => h.action === 'block');
  return hit ? `命中「${hit.keyword}」（${categoryZh(hit.category)}）` : '超出检查上限';
}

let streaming = 0;
async function stream() {
  const run = ++streaming; // a new stream (or an edit) supersedes the one in progress
  const text = $('text').value;
  const s = filter.stream();
  const hits = [];
  let fed = '';
  let shown = '';
  let pii = 0;
  let action = 'pass';
  const update = (chunk) => {
    shown += chunk.output;
    hits.push(...chunk.hits);
    pii += (chunk.pii ?? []).length;
    action = chunk.hits.reduce((a, h) => worst(a, h.action), action);
    $('masked').textContent = shown;
    $('highlight').innerHTML = highlight(fed, hits);
    showDecision(action, hits.length, pii);
  };
  for (const ch of text) {
    fed += ch;
    const c = s.write(ch);
    update(c);
    if (c.blocked) {
      showDecision('block', hits.length, pii);
      $('masked').textContent = `${shown}\n[已中断：${blockReason(c, hits)}]`;
      return;
    }
    await new Promise((r) => setTimeout(r, 15));
    if (run !== streaming) return;
  }
  update(s.finish());
}

const sniff = (b) => (b[0] === 0xff && b[1] === 0xd8 ? 'image/jpeg' : b[0] === 0x89 && b[1] === 0x50 ? 'image/png' : null);

// Core messages are English; the page says what went wrong in its own language.
function imageErrorZh(e) {
  const m = String(e?.message ?? e);
  if (m.includes('does not fit') || m.includes('too small')) return '图片太小，放不下高度不低于最短边 5% 的显式标识';
  if (m.includes('CMYK')) return '暂不支持 CMYK JPEG';
  if (m.includes('animated')) return '暂不支持动画 PNG';
  return `无法读取该图片（${m}）`;
}

// What a platform does to an upload: scaled to 75% and re-encoded as JPEG quality 70.
async function reuploaded(canvas) {
  const jpeg = await new Promise((r) => canvas.toBlob(r, 'image/jpeg', 0.7));
  const bitmap = await createImageBitmap(jpeg, {
    resizeWidth: Math.round(canvas.width * 0.75), resizeHeight: Math.round(canvas.height * 0.75), resizeQuality: 'high',
  });
  const work = document.createElement('canvas');
  work.width = bitmap.width;
  work.height = bitmap.height;
  const ctx = work.getContext('2d');
  ctx.drawImage(bitmap, 0, 0);
  return ctx.getImageData(0, 0, work.width, work.height);
}

async function labelImage(file) {
  const link = $('download');
  const canvas = $('canvas');
  // Nothing of the previous image stays on screen while this one is worked on or fails.
  link.hidden = true;
  if (link.href) URL.revokeObjectURL(link.href);
  link.removeAttribute('href');
  $('imagelabel').textContent = '处理中…';
  $('imagelabel').className = '';
  const mark = $('imagewatermark');
  mark.textContent = '';
  delete mark.dataset.found;
  try {
    const original = new Uint8Array(await file.arrayBuffer());
    const type = sniff(original);
    if (!type) throw new Error('只支持 PNG 和 JPEG 图片');
    // createImageBitmap applies the EXIF orientation: the label lands where the viewer looks.
    const bitmap = await createImageBitmap(new Blob([original], { type }));
    const work = document.createElement('canvas');
    work.width = bitmap.width;
    work.height = bitmap.height;
    const ctx = work.getContext('2d');
    ctx.drawImage(bitmap, 0, 0);
    const img = ctx.getImageData(0, 0, work.width, work.height);
    const pixels = new Uint8Array(img.data.buffer);
    const drawn = drawLabel(pixels, img.width, img.height, 'AI生成', 'bottom-right');
    img.data.set(pixels);
    // The invisible watermark carries the ProduceID's payload, so a copy that lost its metadata
    // still leads back to the label.
    const id = JSON.parse(implicitLabel(PRODUCER)).AIGC.ProduceID;
    let payload = imageWatermarkPayload(id);
    try {
      watermarkImage(img, WATERMARK_KEY, payload);
    } catch (e) {
      payload = null; // below the watermark's 96 px: labelled, not watermarked
      mark.textContent = `未加隐形水印：${e.message}`;
    }
    ctx.putImageData(img, 0, 0);
    // The same format back, with the original's EXIF, colour profile and text.
    const blob = await new Promise((r) => work.toBlob(r, type, 0.92));
    const encoded = new Uint8Array(await blob.arrayBuffer());
    const labeled = labelFile(carryMetadata(original, encoded), PRODUCER, id);
    canvas.width = work.width;
    canvas.height = work.height;
    canvas.getContext('2d').drawImage(work, 0, 0);
    link.href = URL.createObjectURL(new Blob([labeled], { type }));
    link.download = type === 'image/jpeg' ? 'labeled.jpg' : 'labeled.png';
    link.hidden = false;
    $('imagelabel').textContent = `显式标识高 ${drawn.textHeight}px；隐式标识已写入 ${type === 'image/jpeg' ? 'JPEG' : 'PNG'}，原图的 EXIF 与色彩配置保留`;
    // The page checks its own mark the way a platform would damage it.
    const found = payload && detectImageWatermark(await reuploaded(work), WATERMARK_KEY);
    if (payload) mark.dataset.payload = payload;
    mark.dataset.found = found ? found.payload : 'none';
    if (payload) mark.textContent = found
      ? `隐形水印 ${payload}：缩小到 75% 并以 JPEG 质量 70 重新压缩后仍检出 ${found.payload}（置信度 ${found.confidence.toFixed(2)}）`
      : `隐形水印 ${payload}：缩小并重新压缩后未检出（图片过于平坦时水印很弱）`;
  } catch (e) {
    canvas.width = 0;
    canvas.height = 0;
    $('imagelabel').textContent = `无法标识：${imageErrorZh(e)}`;
    $('imagelabel').className = 'error';
  }
}

async function verify(file) {
  $('fields').innerHTML = '';
  $('verdict').textContent = '';
  const bytes = new Uint8Array(await file.arrayBuffer());
  try {
    const r = verifyFile(bytes);
    $('verdict').innerHTML = `格式 ${r.format}：<span class="badge ${r.verdict === 'compliant' ? 'pass' : 'block'}" id="verdict-text" data-verdict="${r.verdict}">${VERDICT_ZH[r.verdict] ?? r.verdict}</span> ` + escape(r.reasons.join('；'));
    const f = r.labels[0]?.fields ?? {};
    $('fields').innerHTML = Object.entries(f).map(([k, v]) => `<tr><td>${k}</td><td>${escape(v)}</td></tr>`).join('');
  } catch (e) {
    $('verdict').innerHTML = `<span class="badge block" id="verdict-text" data-verdict="error">无法读取</span> ${escape(e.message)}`;
  }
}

await Promise.all([init(), initFiles(), initImage()]);
const [artifact, policy] = await Promise.all([
  fetch('./pkg/demo.dict').then((r) => r.arrayBuffer()),
  fetch('./pkg/demo-policy.json').then((r) => r.text()),
]);
const t0 = performance.now();
filter = Filter.fromArtifact(new Uint8Array(artifact), policy);
$('dict').textContent = `${filter.keywordCount} 个关键词，加载 ${(performance.now() - t0).toFixed(1)} ms`;
$('text').addEventListener('input', () => { streaming++; check(); });
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
