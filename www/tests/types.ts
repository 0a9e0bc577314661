// Compiled with `tsc --noEmit` by `make test-web`: the generated .d.ts must describe the API
// as JavaScript users call it.
import init, { Filter, labelText, detectWatermark, watermarkText, compileDictionary } from '../pkg/aigc_edge_web.js';
import type { CheckResult, StreamChunk, Hit } from '../pkg/aigc_edge_web.js';
import initPinyin, { Filter as PinyinFilter } from '../pkg/aigc_edge_pinyin.js';
import initFiles, { labelFile, verifyFile, generateSigningKey, markAudio, markPcm, carryMetadata } from '../pkg/aigc_edge_files.js';
import type { FileReport } from '../pkg/aigc_edge_files.js';
import initImage, { drawLabel, watermarkImage, detectImageWatermark, imageWatermarkPayload } from '../pkg/aigc_edge_image.js';
import type { ImageWatermark } from '../pkg/aigc_edge_image.js';

export async function usage(artifact: Uint8Array, png: Uint8Array, image: ImageData): Promise<string[]> {
  await Promise.all([init(), initPinyin(), initFiles(), initImage()]);
  const readings: CheckResult = new PinyinFilter('赌博\tA.1h\n', '{"normalize": {"pinyin": true}}', null).check('dubo');
  const filter: Filter = Filter.fromArtifact(artifact, '{"actions": {"default": "mask"}}');
  const compiled: Uint8Array = compileDictionary('赌博\tA.1h\n', null, null);
  const own: Filter = Filter.fromArtifact(compiled, null);
  const kept: Uint8Array = carryMetadata(png, png);
  const result: CheckResult = filter.check('text');
  const hits: Hit[] = result.hits;
  const first: number = hits.length ? hits[0].start : -1;
  const stream = filter.stream();
  const chunk: StreamChunk = stream.write('tok');
  const rest: StreamChunk = stream.finish();
  const labeled: Uint8Array = labelFile(png, 'PRODUCER', 'id-1');
  const report: FileReport = verifyFile(labeled);
  const pair = generateSigningKey();
  const signed: Uint8Array = labelFile(png, 'PRODUCER', 'id-1', undefined, pair.privateKey);
  const checked: FileReport = verifyFile(signed, undefined, [pair.publicKey]);
  const rc1: string = checked.labels[0].codes?.ReservedCode1 ?? 'none';
  const speech: Uint8Array = markPcm(new Uint8Array(48000), 24000, 1, 's16le', 'start');
  const song: Uint8Array = markAudio(png, 'end');
  const drawn = drawLabel(new Uint8Array(image.data.buffer), image.width, image.height, 'AI生成', 'top-left');
  const marked: string = watermarkText(labelText('答'), 'id-1', new Uint8Array([1, 2, 3]));
  const found = detectWatermark(marked, new Uint8Array([1, 2, 3]));
  watermarkImage(image, new Uint8Array([1, 2, 3]), imageWatermarkPayload('id-1'));
  const inImage: ImageWatermark | null = detectImageWatermark(image, new Uint8Array([1, 2, 3]));
  return [String(own.keywordCount), String(kept.length), String(first), chunk.output + rest.output, report.verdict, String(drawn.textHeight), found?.payload ?? 'none', result.action, rc1, String(speech.length + song.length), inImage?.payload ?? 'none', readings.action];
}
