// What the node-driven suites share: a tiny TAP-like runner and Debian's headless Chromium.
import { chromium } from 'playwright-core';

let passed = 0;
let failed = 0;

/** Runs one named test; a throw fails it and the run goes on. */
export async function test(name, body) {
  try {
    await body();
    passed++;
    console.log(`ok - ${name}`);
  } catch (e) {
    failed++;
    console.log(`not ok - ${name}\n  ${e.stack}${e.stdout ? `\n${e.stdout}` : ''}${e.stderr ? `\n${e.stderr}` : ''}`);
  }
}

export function assert(cond, message) {
  if (!cond) throw new Error(message);
}

/** Prints the tally and sets the exit code. */
export function summary() {
  console.log(`${passed} passed, ${failed} failed`);
  process.exitCode = failed ? 1 : 0;
}

/** Debian's Chromium (never a downloaded browser), with the flags this closed network needs. */
export function launchChromium() {
  return chromium.launch({
    executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium',
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
}

/** Opens `url`, retrying while the server that serves it starts. */
export async function open(page, url) {
  for (let i = 0; i < 50; i++) {
    try { return await page.goto(url); } catch { await new Promise((r) => setTimeout(r, 100)); }
  }
  return page.goto(url);
}
