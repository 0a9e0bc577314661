"""Packaging for meshes and gateways: the shipped module, the OCI image layout read back as a
fetcher reads it, and the Istio examples agreeing with the bootstrap the tests run. Run by
`make test-e2e` after `make oci`."""
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import unittest

import yaml

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))
import run  # noqa: E402

OCI = os.path.join(run.ROOT, "tools", "oci.py")
ISTIO = os.path.join(run.HERE, "istio")


def oci(*args):
    return subprocess.run([sys.executable, OCI, *args], capture_output=True, text=True)


class Packaging(unittest.TestCase):
    def test_the_shipped_module_is_the_optimized_one(self):
        built = os.path.join(run.ROOT, "target", "wasm32-wasip1", "filter", "aigc_edge_envoy.wasm")
        shipped = os.path.getsize(run.WASM)
        self.assertLess(shipped, os.path.getsize(built))
        self.assertLess(shipped, 1024 * 1024, "under 1 MiB after wasm-opt")

    def test_oci_layout_reads_back_and_pins_the_wasmplugin(self):
        out = tempfile.mkdtemp()
        try:
            r = oci("build", run.WASM, out, "9.9.9", os.path.join(ISTIO, "wasmplugin.yaml"))
            self.assertEqual(r.returncode, 0, r.stderr)
            r = oci("verify", out, "9.9.9", run.WASM)
            self.assertEqual(r.returncode, 0, r.stderr)
            with open(os.path.join(out, "index.json")) as f:
                digest = json.load(f)["manifests"][0]["digest"]
            manifest_path = os.path.join(out, "blobs", "sha256", digest.split(":")[1])
            with open(manifest_path, "rb") as f:
                manifest = json.loads(f.read())
            self.assertEqual(manifest["config"]["mediaType"], "application/vnd.module.wasm.config.v1+json")
            self.assertEqual([l["mediaType"] for l in manifest["layers"]],
                             ["application/vnd.module.wasm.content.layer.v1+wasm"])
            with open(os.path.join(out, "wasmplugin.yaml")) as f:
                plugin = yaml.safe_load(f)
            self.assertEqual("sha256:" + plugin["spec"]["sha256"], digest)
            # A fetcher would refuse a tampered layer, and so does the check.
            layer = os.path.join(out, "blobs", "sha256", manifest["layers"][0]["digest"].split(":")[1])
            with open(layer, "r+b") as f:
                f.seek(100)
                byte = f.read(1)
                f.seek(100)
                f.write(bytes([byte[0] ^ 1]))
            r = oci("verify", out, "9.9.9", run.WASM)
            self.assertNotEqual(r.returncode, 0)
            self.assertIn("does not match its digest", r.stderr)
            self.assertNotEqual(oci("verify", out, "1.0.0", run.WASM).returncode, 0, "an unknown tag")
        finally:
            shutil.rmtree(out)

    def test_wasmplugin_example_has_what_a_mesh_needs(self):
        with open(os.path.join(ISTIO, "wasmplugin.yaml")) as f:
            plugin = yaml.safe_load(f)
        self.assertEqual((plugin["apiVersion"], plugin["kind"]), ("extensions.istio.io/v1alpha1", "WasmPlugin"))
        spec = plugin["spec"]
        self.assertRegex(spec["sha256"], r"^[0-9a-f]{64}$")
        self.assertTrue(spec["url"].startswith("oci://"))
        self.assertEqual(spec["failStrategy"], "FAIL_CLOSE")
        self.assertIn(spec["phase"], {"AUTHN", "AUTHZ", "STATS"})
        self.assertIsInstance(spec["priority"], int)
        self.assertIn(spec["match"][0]["mode"], {"CLIENT", "SERVER", "CLIENT_AND_SERVER"})
        self.assertIsInstance(spec["match"][0]["ports"][0]["number"], int)

    def test_stats_config_is_the_same_everywhere(self):
        with open(os.path.join(ISTIO, "stats.yaml")) as f:
            config_map = yaml.safe_load(f)
        istio = json.loads(config_map["data"]["custom_bootstrap.json"])
        self.assertEqual(istio, {"stats_config": run.stats_config()})
        with open(os.path.join(run.ROOT, "README.md"), encoding="utf-8") as f:
            readme = f.read()
        block = re.search(r"```yaml\n(stats_config:.*?)```", readme, re.S).group(1)
        self.assertEqual(yaml.safe_load(block), {"stats_config": run.stats_config()})


if __name__ == "__main__":
    unittest.main()
