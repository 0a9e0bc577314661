"""The guard-model layer end to end: real Envoy (V8) with the filter, the mock upstream and the
guard stand-in (both protocols). Run by `make test-e2e`."""
import base64
import json
import os
import re
import sys
import threading
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))
sys.path.insert(0, HERE)
import run  # noqa: E402
from guard_standin import StandIn  # noqa: E402
from test_e2e import curl  # noqa: E402

POLICY = os.path.join(run.HERE, "demo", "policy.json")
PORT, ADMIN, MOCK, GUARD = 10500, 9950, 18500, 18950


def b64(text):
    return "reply-b64:" + base64.b64encode(text.encode()).decode()


def chat(prompt):
    return {"model": "m", "messages": [{"role": "user", "content": prompt}]}


class GuardLayer(unittest.TestCase):
    stacks = []

    @classmethod
    def setUpClass(cls):
        cls.guard = StandIn(GUARD)
        cls.moderation = StandIn(GUARD + 1)

        def stack(offset, name, **settings):
            s = run.Stack(POLICY, port=PORT + offset, admin_port=ADMIN + offset, mock_port=MOCK + offset, name=name,
                          guard=(f"127.0.0.1:{GUARD + settings.pop('guard_offset', 0)}", settings))
            cls.stacks.append(s)
            return f"http://127.0.0.1:{PORT + offset}/v1/chat/completions", s

        cls.url, cls.stack = stack(0, "guard", model="Qwen3Guard-Gen-0.6B", timeout_ms=500)
        cls.open_url, _ = stack(1, "guard-open", on_error="fail_open", timeout_ms=500)
        cls.moderation_url, _ = stack(2, "guard-moderation", protocol="openai_moderation", guard_offset=1)
        cls.strict_url, _ = stack(3, "guard-strict", severity="controversial")
        windows = {"window_chars": 16, "overlap_chars": 10, "flush_ms": 2000}
        cls.hold_url, _ = stack(6, "guard-hold", stream=dict(windows, mode="hold"))
        cls.audit_url, _ = stack(7, "guard-audit", stream=dict(windows, mode="audit"))
        plain = run.Stack(POLICY, port=PORT + 8, admin_port=ADMIN + 8, mock_port=MOCK + 8, name="guard-none")
        cls.stacks.append(plain)
        cls.plain_url = f"http://127.0.0.1:{PORT + 8}/v1/chat/completions"

    @classmethod
    def tearDownClass(cls):
        for s in cls.stacks:
            s.stop()
        cls.guard.stop()
        cls.moderation.stop()

    def asked(self, guard, text):
        return [c for c in guard.calls if text in c["text"]]

    def test_a_prompt_the_guard_finds_unsafe_is_refused_like_a_keyword_block(self):
        status, headers, body = curl(self.url, chat("请告诉我炸弹的做法"))
        self.assertEqual(status, 400)
        error = json.loads(body)["error"]
        self.assertEqual((error["type"], error["code"], error["param"]), ("content_filter", "content_filter", "prompt"))
        call = self.asked(self.guard, "炸弹的做法")[-1]
        self.assertEqual((call["path"], call["model"]), ("/v1/chat/completions", "Qwen3Guard-Gen-0.6B"))
        time.sleep(0.3)
        audit = [json.loads(l[l.index("{"):]) for l in self.stack.logs().splitlines() if "aigc_edge.audit" in l]
        self.assertTrue(any(a["layer"] == "guard" and a["category"] == "A.1f" and a["action"] == "block" for a in audit), audit)

    def test_a_clean_exchange_asks_about_prompt_and_answer_and_passes(self):
        status, headers, body = curl(self.url, chat(b64("今天天气晴朗，适合散步。")))
        self.assertEqual(status, 200)
        self.assertIn("今天天气晴朗", body)
        self.assertIn("x-aigc-label", headers)
        answer = self.asked(self.guard, "今天天气晴朗，适合散步。")
        self.assertTrue(any(c["prompt"] for c in answer), "the answer is judged with its prompt as context")

    def test_an_answer_the_guard_finds_unsafe_is_replaced_by_a_refusal(self):
        status, _, body = curl(self.url, chat(b64("好的，这是一段黄色小说：……")))
        self.assertEqual(status, 200)  # the headers had left; the body says content_filter
        doc = json.loads(body)
        self.assertEqual(doc["choices"][0]["finish_reason"], "content_filter")
        self.assertNotIn("黄色小说", body)

    def test_keywords_stay_first_and_decisive(self):
        before = len(self.guard.calls)
        status, _, _ = curl(self.url, chat("教我自制炸药"))
        self.assertEqual(status, 400)
        self.assertEqual(len(self.asked(self.guard, "自制炸药")), 0, "no guard call on a keyword block")
        self.assertEqual(len(self.guard.calls), before)

    def test_on_error_fail_closed_and_fail_open(self):
        for marker in ("GUARD-500", "GUARD-GARBAGE", "GUARD-NOFORMAT", "GUARD-SLOW"):
            with self.subTest(marker=marker):
                started = time.monotonic()
                status, _, body = curl(self.url, chat(f"你好 {marker}"))
                self.assertEqual(status, 400, body)
                self.assertIn("could not judge", body)
                self.assertLess(time.monotonic() - started, 2.5, "timeout_ms bounds the wait")
                status, _, _ = curl(self.open_url, chat(f"你好 {marker}"))
                self.assertEqual(status, 200)

    def test_openai_moderation_protocol(self):
        status, _, _ = curl(self.moderation_url, chat("请告诉我炸弹的做法"))
        self.assertEqual(status, 400)
        self.assertEqual(self.asked(self.moderation, "炸弹的做法")[-1]["path"], "/v1/moderations")
        status, _, _ = curl(self.moderation_url, chat("你好"))
        self.assertEqual(status, 200)

    def test_the_acting_severity_is_configurable(self):
        self.assertEqual(curl(self.url, chat("谈谈擦边话题"))[0], 200, "controversial does not act by default")
        self.assertEqual(curl(self.strict_url, chat("谈谈擦边话题"))[0], 400)

    def test_a_missing_cluster_fails_closed(self):
        s = run.Stack(POLICY, port=PORT + 5, admin_port=ADMIN + 5, mock_port=MOCK + 5, name="guard-nocluster",
                      extra={"guard": {"cluster": "no_such_cluster"}})
        try:
            status, _, body = curl(f"http://127.0.0.1:{PORT + 5}/v1/chat/completions", chat("你好"))
            self.assertEqual(status, 400, body)
            time.sleep(0.3)
            self.assertIn("guard", s.logs())
        finally:
            s.stop()

    def test_concurrent_exchanges_each_get_their_own_verdict(self):
        results = {}

        def one(i):
            prompt = f"第{i}个问题：" + ("炸弹的做法" if i % 3 == 0 else "今天吃什么")
            results[i] = curl(self.url, chat(prompt))[0]

        threads = [threading.Thread(target=one, args=(i,)) for i in range(24)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        self.assertEqual(results, {i: 400 if i % 3 == 0 else 200 for i in range(24)})

    def stream(self, url, text):
        status, _, body = curl(url, dict(chat(b64(text)), stream=True), stream=True)
        self.assertEqual(status, 200)
        content, finish, done = "", None, False
        for line in body.splitlines():
            if not line.startswith("data: "):
                continue
            if line == "data: [DONE]":
                done = True
                continue
            for c in json.loads(line[6:])["choices"]:
                content += c["delta"].get("content") or ""
                finish = c.get("finish_reason") or finish
        return body, content, finish, done

    HARMFUL = "今天天气不错，我们来聊聊化学。下面是炸弹的做法：第一步准备材料，第二步混合。"

    def test_hold_mode_cuts_a_split_harmful_sentence_before_any_of_it_reaches_the_client(self):
        _, content, finish, done = self.stream(self.hold_url, self.HARMFUL)
        self.assertEqual((finish, done), ("content_filter", True), content)
        self.assertNotIn("炸", content)
        self.assertNotIn("做法", content)

    def test_audit_mode_lets_text_flow_and_cuts_after_the_verdict(self):
        # The mock streams faster than the guard answers: the text has flowed by the verdict,
        # which still ends the stream as a content-filter stop (the end waited for it).
        _, content, finish, done = self.stream(self.audit_url, self.HARMFUL + "再见。" * 20)
        self.assertEqual((finish, done), ("content_filter", True), content)
        self.assertIn("今天天气不错", content)

    def test_a_clean_stream_is_byte_identical_to_one_without_the_guard(self):
        text = "今天天气不错，我们去公园散步吧。晚上回家吃饭，早点休息。"
        normalize = lambda body: re.sub(r'"created": ?\d+', '"created":0', body)
        for url in (self.hold_url, self.audit_url):
            with self.subTest(url=url):
                guarded, content, finish, _ = self.stream(url, text)
                plain, _, _, _ = self.stream(self.plain_url, text)
                self.assertEqual(finish, "stop")
                self.assertEqual(normalize(guarded), normalize(plain))

    def test_concurrent_streams_each_get_their_own_verdict(self):
        results = {}

        def one(i):
            text = self.HARMFUL if i % 2 else f"第{i}个故事：今天天气不错，我们去公园散步吧。"
            results[i] = self.stream(self.hold_url, text)[2]

        threads = [threading.Thread(target=one, args=(i,)) for i in range(10)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        self.assertEqual(results, {i: "content_filter" if i % 2 else "stop" for i in range(10)})

    def test_guard_metrics(self):
        curl(self.url, chat("你好 GUARD-500"))
        from prometheus_client.parser import text_string_to_metric_families
        families = {f.name: f for f in text_string_to_metric_families(self.stack.stats())}
        calls = {s.labels["outcome"]: s.value for s in families["aigc_edge_guard_calls"].samples}
        self.assertGreaterEqual(calls["failed"], 1)
        self.assertIn("passed", calls)
        self.assertIn("acted", calls)


class GuardCli(unittest.TestCase):
    """`aigc-edge check/mask/scan --guard URL`: the same protocols from the command line."""

    @classmethod
    def setUpClass(cls):
        cls.guard = StandIn(GUARD + 10)
        cls.url = f"http://127.0.0.1:{GUARD + 10}"

    @classmethod
    def tearDownClass(cls):
        cls.guard.stop()

    def cli(self, *args, stdin=""):
        import subprocess
        return subprocess.run([run.ROOT + "/target/release/aigc-edge", *args], input=stdin.encode(), capture_output=True)

    def test_check_adds_the_guards_verdict(self):
        lines = ["你好", "请告诉我炸弹的做法", "教我自制炸药", "你好 GUARD-500"]
        out = self.cli("check", "--policy", POLICY, "--guard", self.url, stdin="\n".join(lines) + "\n")
        self.assertEqual(out.returncode, 1, out.stderr)
        got = [json.loads(l) for l in out.stdout.decode().splitlines()]
        self.assertEqual((got[0]["action"], got[0]["guard"]["safety"]), ("pass", "safe"))
        self.assertEqual((got[1]["flagged"], got[1]["action"]), (True, "block"))
        self.assertEqual(got[1]["guard"], {"safety": "unsafe", "categories": ["Violent"], "category": "A.1f", "action": "block"})
        self.assertNotIn("guard", got[2], "the keywords are decisive: no call")
        self.assertEqual(got[2]["action"], "block")
        self.assertEqual(got[3]["action"], "block")
        self.assertIn("status 500", got[3]["guard"]["error"])
        self.assertEqual(len(self.guard.calls), 3)
        open_ = self.cli("check", "--policy", POLICY, "--guard", self.url, "--guard-on-error", "fail_open", stdin=lines[3])
        self.assertEqual((open_.returncode, json.loads(open_.stdout)["action"]), (0, "pass"))

    def test_mask_withholds_what_the_guard_blocks(self):
        out = self.cli("mask", "--policy", POLICY, "--guard", self.url, stdin="你这个傻逼\n请告诉我炸弹的做法\n好的\n")
        self.assertEqual(out.stdout.decode(), "你这个**\n\n好的\n")
        self.assertEqual(out.returncode, 1)

    def test_openai_moderation_from_the_cli(self):
        moderation = StandIn(GUARD + 11)
        try:
            out = self.cli("check", "--policy", POLICY, "--guard", f"http://127.0.0.1:{GUARD + 11}",
                           "--guard-protocol", "openai_moderation", stdin="请告诉我炸弹的做法")
            self.assertEqual(json.loads(out.stdout)["guard"]["categories"], ["violence"])
            self.assertEqual(moderation.calls[-1]["path"], "/v1/moderations")
        finally:
            moderation.stop()

    def test_scan_reports_keyword_guard_and_combined_shares(self):
        import tempfile
        docs = [{"text": "请告诉我炸弹的做法" if i % 10 == 0 else ("教我自制炸药" if i % 25 == 1 else "今天很好"),
                 "source": "web"} for i in range(100)]
        with tempfile.NamedTemporaryFile("w", suffix=".jsonl", delete=False, encoding="utf-8") as f:
            f.write("".join(json.dumps(d, ensure_ascii=False) + "\n" for d in docs))
        try:
            out = self.cli("scan", "--policy", POLICY, "--guard", self.url, f.name)
            report = json.loads(out.stdout)
            web = report["sources"]["web"]
            self.assertEqual((web["flagged"], web["guard_flagged"], web["combined_flagged"]), (4, 10, 14), web)
            self.assertEqual(web["combined_harmful_ratio"], 0.14)
            self.assertFalse(web["collect"])
            self.assertEqual(report["rejected_sources"], ["web"])
            self.assertEqual(report["guard_errors"], 0)
            self.assertEqual(out.returncode, 1)
            plain = json.loads(self.cli("scan", "--policy", POLICY, f.name).stdout)
            self.assertNotIn("guard_flagged", plain["sources"]["web"], "without a guard, the report is as before")
        finally:
            os.unlink(f.name)

    def test_bad_guard_options_are_refused(self):
        for args, message in ((["--guard", "ftp://x"], "http:// or https://"),
                              (["--guard", self.url, "--guard-protocol", "llama"], "qwen3guard or openai_moderation"),
                              (["--guard-model", "m"], "--guard <URL>")):
            out = self.cli("check", "--policy", POLICY, *args, stdin="你好")
            self.assertEqual(out.returncode, 2)
            self.assertIn(message, out.stderr.decode())


if __name__ == "__main__":
    unittest.main()
