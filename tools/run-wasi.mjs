// Runs a wasm32-wasip1 program under node's WASI: node tools/run-wasi.mjs PROGRAM.wasm [ARGS...]
// The current directory is preopened as `.` and `$AIGC_DATA` (default ../shared/data) as /data.
import { readFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import { WASI } from 'node:wasi';
import { argv, env } from 'node:process';
import { setFlagsFromString } from 'node:v8';

// Node 20's WASI hands V8 "fast API" host calls the wasm memory it saw first; once the program
// grows its memory (any benchmark that allocates ~100 MB), a later fd_write works on freed pages
// and node dies with SIGSEGV or "Invalid bytecode" (nodejs/node#53087). Slow calls look the memory
// up each time; the host calls a benchmark makes are a few hundred, so its figures do not move.
setFlagsFromString('--no-turbo-fast-api-calls');

const [program, ...args] = argv.slice(2);
const data = resolve(env.AIGC_DATA ?? '../shared/data');
const wasi = new WASI({
  version: 'preview1',
  args: [program, ...args],
  env: { AIGC_DATA: '/data' },
  preopens: { '/data': data, '.': '.' },
  returnOnExit: true,
});
const module = await WebAssembly.compile(await readFile(program));
// Host functions a program may import but never call here (the proxy-wasm ABI, when a filter's
// logic is measured outside Envoy) resolve to stubs.
const imports = { ...wasi.getImportObject(), env: new Proxy({}, { get: () => () => 0 }) };
const instance = await WebAssembly.instantiate(module, imports);
// Only `_start` runs: a module that also exports a reactor's `_initialize` is still a command here.
const { memory, _start, _initialize } = instance.exports;
const code = _initialize ? wasi.start({ exports: { memory, _start } }) : wasi.start(instance);
process.exitCode = code;
