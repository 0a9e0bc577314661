#!/usr/bin/env python3
"""Finishes the npm package in www/pkg after wasm-bindgen: package.json (an export for each
entry and its .wasm), README and LICENSE, and the size report: what a page downloads for each
entry (its JS glue and .wasm, gzip), the main entry against the 200 KiB gzip target.

Usage: web_package.py PKG MAIN_ENTRY [ENTRY ...]   (entry names as wasm-bindgen's --out-name)
"""
import gzip
import json
import os
import re
import shutil
import sys

TARGET_KIB = 200

pkg, main, others = sys.argv[1], sys.argv[2], sys.argv[3:]
root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
with open(os.path.join(root, "www", "module", "Cargo.toml")) as f:
    version = re.search(r'^version = "([^"]+)"', f.read(), re.M).group(1)
# The package's own README and the project's licence go inside the tarball.
shutil.copy(os.path.join(root, "www", "module", "README.md"), os.path.join(pkg, "README.md"))
shutil.copy(os.path.join(root, "LICENSE"), os.path.join(pkg, "LICENSE"))


def entry_files(name):
    return [f"{name}.js", f"{name}.d.ts", f"{name}_bg.wasm", f"{name}_bg.wasm.d.ts"]


def export(name):
    return {"types": f"./{name}.d.ts", "import": f"./{name}.js", "default": f"./{name}.js"}


# `aigc_edge_files` is imported as `aigc-edge/files`.
subpath = {name: "./" + name.split("_")[-1] for name in others}
exports = {".": export(main)}
exports.update({subpath[name]: export(name) for name in others})
for name in [main] + others:
    exports[f"./{name}_bg.wasm"] = f"./{name}_bg.wasm"
demo = ["demo.dict", "demo-policy.json"]
exports.update({f"./{d}": f"./{d}" for d in demo} | {"./package.json": "./package.json"})
files = [f for name in [main] + others for f in entry_files(name)] + demo + ["README.md", "LICENSE"]
manifest = {
    "name": "aigc-edge",
    "version": version,
    "description": "Keeps generated content within China's rules in the browser and Node: keyword filtering "
                   "(streaming), personal-information redaction, GB 45438 labels for text and files, invisible "
                   "text and image watermarks, verifier. The core of the aigc-edge Envoy filter, in WebAssembly.",
    "keywords": ["aigc", "gb45438", "content-moderation", "sensitive-words", "keyword-filter", "llm", "guardrails",
                 "wasm", "watermark", "ai-label"],
    "license": "Apache-2.0",
    "homepage": "https://github.com/aigc-edge/aigc-edge/tree/main/www/module#readme",
    "repository": {"type": "git", "url": "git+https://github.com/aigc-edge/aigc-edge.git", "directory": "www/module"},
    "bugs": {"url": "https://github.com/aigc-edge/aigc-edge/issues"},
    "type": "module",
    "main": f"./{main}.js",
    "module": f"./{main}.js",
    "types": f"./{main}.d.ts",
    "exports": exports,
    "files": files,
    "engines": {"node": ">=18"},
    "sideEffects": False,
}
with open(os.path.join(pkg, "package.json"), "w") as f:
    json.dump(manifest, f, indent=2)


def gzip_kib(names):
    return sum(len(gzip.compress(open(os.path.join(pkg, n), "rb").read(), 9)) for n in names) / 1024


for name in [main] + others:
    page = [f"{name}.js", f"{name}_bg.wasm"]
    raw = sum(os.path.getsize(os.path.join(pkg, n)) for n in page) / 1024
    where = "aigc-edge" if name == main else "aigc-edge/" + subpath[name][2:]
    target = f", target <= {TARGET_KIB} KiB gzip" if name == main else ""
    print(f"www/pkg {where:18} {raw:4.0f} KiB ({gzip_kib(page):3.0f} KiB gzip{target}): {', '.join(page)}")
