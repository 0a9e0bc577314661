#!/usr/bin/env python3
"""Finishes the npm package in www/pkg after wasm-bindgen: package.json, and the size report
(raw and gzip) against the 400 KiB gzip target."""
import gzip
import json
import os
import sys

pkg = sys.argv[1]
version = sys.argv[2] if len(sys.argv) > 2 else "0.1.0"
files = ["aigc_edge_web.js", "aigc_edge_web.d.ts", "aigc_edge_web_bg.wasm", "aigc_edge_web_bg.wasm.d.ts"]
manifest = {
    "name": "aigc-edge",
    "version": version,
    "description": "Keeps generated content within China's rules in the browser: keyword filtering (streaming), "
                   "GB 45438 labels for text and files, invisible text watermark, verifier.",
    "license": "Apache-2.0",
    "type": "module",
    "main": "aigc_edge_web.js",
    "module": "aigc_edge_web.js",
    "types": "aigc_edge_web.d.ts",
    "files": files,
    "sideEffects": ["./snippets/*"],
}
with open(os.path.join(pkg, "package.json"), "w") as f:
    json.dump(manifest, f, indent=2)
wasm = os.path.join(pkg, "aigc_edge_web_bg.wasm")
with open(wasm, "rb") as f:
    data = f.read()
total = sum(os.path.getsize(os.path.join(pkg, n)) for n in files if os.path.exists(os.path.join(pkg, n)))
gz = sum(len(gzip.compress(open(os.path.join(pkg, n), "rb").read(), 9)) for n in files if os.path.exists(os.path.join(pkg, n)))
print(f"www/pkg: .wasm {len(data) / 1024:.0f} KiB ({len(gzip.compress(data, 9)) / 1024:.0f} KiB gzip); "
      f"package {total / 1024:.0f} KiB ({gz / 1024:.0f} KiB gzip, target < 400 KiB gzip, no dictionary)")
