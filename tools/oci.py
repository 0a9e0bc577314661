"""`make oci`: the filter as an OCI image layout that Istio's and Higress's Wasm fetchers accept
(the Wasm artifact variant: config `application/vnd.module.wasm.config.v1+json`, one layer
`application/vnd.module.wasm.content.layer.v1+wasm`), read back and checked, and the Istio
WasmPlugin pinned to the image's digest.

    python3 tools/oci.py build MODULE.wasm OUT_DIR TAG WASMPLUGIN.yaml
    python3 tools/oci.py verify OUT_DIR TAG MODULE.wasm

Standard library only; the layout is what `oras cp --from-oci-layout OUT_DIR:TAG REGISTRY/NAME:TAG`
pushes unchanged (same manifest, same digest)."""
import hashlib
import json
import os
import re
import sys

MANIFEST = "application/vnd.oci.image.manifest.v1+json"
CONFIG = "application/vnd.module.wasm.config.v1+json"
LAYER = "application/vnd.module.wasm.content.layer.v1+wasm"
TITLE = "org.opencontainers.image.title"
REF_NAME = "org.opencontainers.image.ref.name"


def put_blob(out, data):
    digest = hashlib.sha256(data).hexdigest()
    blobs = os.path.join(out, "blobs", "sha256")
    os.makedirs(blobs, exist_ok=True)
    with open(os.path.join(blobs, digest), "wb") as f:
        f.write(data)
    return {"digest": f"sha256:{digest}", "size": len(data)}


def canonical(value):
    return json.dumps(value, sort_keys=True, separators=(",", ":")).encode()


def build(module, out, tag, wasmplugin):
    with open(module, "rb") as f:
        wasm = f.read()
    if not wasm.startswith(b"\0asm"):
        sys.exit(f"{module}: not a Wasm module")
    # Solo's Wasm image spec, which Istio's fetcher follows: what runs the module and its root id.
    config = canonical({"type": "envoy_proxy", "abiVersions": ["v0.2.1"], "rootIds": ["aigc_edge"]})
    manifest = canonical({
        "schemaVersion": 2,
        "mediaType": MANIFEST,
        "config": dict(mediaType=CONFIG, **put_blob(out, config)),
        "layers": [dict(mediaType=LAYER, **put_blob(out, wasm), annotations={TITLE: "plugin.wasm"})],
    })
    pinned = put_blob(out, manifest)
    with open(os.path.join(out, "oci-layout"), "w") as f:
        json.dump({"imageLayoutVersion": "1.0.0"}, f)
    with open(os.path.join(out, "index.json"), "w") as f:
        json.dump({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json",
                   "manifests": [dict(mediaType=MANIFEST, **pinned, annotations={REF_NAME: tag})]}, f)
    # The WasmPlugin, pinned: Istio checks an oci:// image's manifest digest against `sha256`.
    with open(wasmplugin, encoding="utf-8") as f:
        plugin = f.read()
    hexdigest = pinned["digest"].split(":", 1)[1]
    plugin, n = re.subn(r"(?m)^(\s*sha256:\s*).*$", lambda m: f"{m.group(1)}\"{hexdigest}\"", plugin)
    if n != 1:
        sys.exit(f"{wasmplugin}: expected one sha256 line, found {n}")
    with open(os.path.join(out, "wasmplugin.yaml"), "w", encoding="utf-8") as f:
        f.write(plugin)
    print(f"OCI layout {out}:{tag}, manifest {pinned['digest']}, module {len(wasm)} bytes")
    print(f"WasmPlugin pinned to it: {os.path.join(out, 'wasmplugin.yaml')}")


def need(condition, message):
    if not condition:
        sys.exit(f"OCI layout check failed: {message}")


def verify(out, tag, module):
    """Reads the layout back as a fetcher does, from index.json to the module's bytes."""
    def blob(descriptor):
        algorithm, digest = descriptor["digest"].split(":", 1)
        need(algorithm == "sha256", descriptor)
        with open(os.path.join(out, "blobs", algorithm, digest), "rb") as f:
            data = f.read()
        need(hashlib.sha256(data).hexdigest() == digest, f"{digest}: content does not match its digest")
        need(len(data) == descriptor["size"], f"{digest}: size {len(data)}, descriptor says {descriptor['size']}")
        return data

    with open(os.path.join(out, "oci-layout")) as f:
        need(json.load(f)["imageLayoutVersion"] == "1.0.0", "malformed layout")
    with open(os.path.join(out, "index.json")) as f:
        index = json.load(f)
    tagged = [m for m in index["manifests"] if m.get("annotations", {}).get(REF_NAME) == tag]
    need(len(tagged) == 1, f"tag {tag}: {len(tagged)} manifests")
    need(tagged[0]["mediaType"] == MANIFEST, "malformed layout")
    manifest = json.loads(blob(tagged[0]))
    need(manifest["schemaVersion"] == 2 and manifest["mediaType"] == MANIFEST, "malformed layout")
    need(manifest["config"]["mediaType"] == CONFIG, "malformed layout")
    json.loads(blob(manifest["config"]))
    # Istio's fetcher takes the Wasm artifact variant only with exactly one layer of this type.
    need([l["mediaType"] for l in manifest["layers"]] == [LAYER], manifest["layers"])
    with open(module, "rb") as f:
        need(blob(manifest["layers"][0]) == f.read(), "the layer is not the module")
    print(f"verified {out}:{tag}: manifest {tagged[0]['digest']}, one {LAYER} layer = {module}")
    return tagged[0]["digest"]


if __name__ == "__main__":
    if len(sys.argv) == 6 and sys.argv[1] == "build":
        build(*sys.argv[2:])
    elif len(sys.argv) == 5 and sys.argv[1] == "verify":
        verify(*sys.argv[2:])
    else:
        sys.exit(__doc__)
