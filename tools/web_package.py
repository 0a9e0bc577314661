#!/usr/bin/env python3
"""Finishes the npm package in www/pkg after wasm-bindgen: package.json (exports map), README and
LICENSE, and the size report
(raw and gzip) against the 200 KiB gzip target."""
import gzip
import json
import os
import shutil
import sys

pkg = sys.argv[1]
version = sys.argv[2] if len(sys.argv) > 2 else "0.1.0"
root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# The package's own README and the project's licence go inside the tarball.
shutil.copy(os.path.join(root, "www", "module", "README.md"), os.path.join(pkg, "README.md"))
shutil.copy(os.path.join(root, "LICENSE"), os.path.join(pkg, "LICENSE"))
code = ["aigc_edge_web.js", "aigc_edge_web.d.ts", "aigc_edge_web_bg.wasm", "aigc_edge_web_bg.wasm.d.ts"]
demo = ["demo.dict", "demo-policy.json"]
files = code + demo + ["README.md", "LICENSE"]
manifest = {
    "name": "aigc-edge",
    "version": version,
    "description": "Keeps generated content within China's rules in the browser and Node: keyword filtering "
                   "(streaming), personal-information redaction, GB 45438 labels for text and files, invisible "
                   "text watermark, verifier. The core of the aigc-edge Envoy filter, in WebAssembly.",
    "keywords": ["aigc", "gb45438", "content-moderation", "sensitive-words", "keyword-filter", "llm", "guardrails",
                 "wasm", "watermark", "ai-label"],
    "license": "Apache-2.0",
    "homepage": "https://github.com/aigc-edge/aigc-edge/tree/main/www/module#readme",
    "repository": {"type": "git", "url": "git+https://github.com/aigc-edge/aigc-edge.git", "directory": "www/module"},
    "bugs": {"url": "https://github.com/aigc-edge/aigc-edge/issues"},
    "type": "module",
    "main": "./aigc_edge_web.js",
    "module": "./aigc_edge_web.js",
    "types": "./aigc_edge_web.d.ts",
    "exports": {
        ".": {"types": "./aigc_edge_web.d.ts", "import": "./aigc_edge_web.js", "default": "./aigc_edge_web.js"},
        "./aigc_edge_web_bg.wasm": "./aigc_edge_web_bg.wasm",
        "./demo.dict": "./demo.dict",
        "./demo-policy.json": "./demo-policy.json",
        "./package.json": "./package.json",
    },
    "files": files,
    "engines": {"node": ">=18"},
    "sideEffects": False,
}
with open(os.path.join(pkg, "package.json"), "w") as f:
    json.dump(manifest, f, indent=2)
wasm = os.path.join(pkg, "aigc_edge_web_bg.wasm")
with open(wasm, "rb") as f:
    data = f.read()
total = sum(os.path.getsize(os.path.join(pkg, n)) for n in code)
gz = sum(len(gzip.compress(open(os.path.join(pkg, n), "rb").read(), 9)) for n in code)
print(f"www/pkg: .wasm {len(data) / 1024:.0f} KiB ({len(gzip.compress(data, 9)) / 1024:.0f} KiB gzip); "
      f"package {total / 1024:.0f} KiB ({gz / 1024:.0f} KiB gzip, target <= 200 KiB gzip, no dictionary)")
