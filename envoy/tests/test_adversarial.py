"""No bypass at the edge, against real Envoy: what a hostile client or upstream sends, class by
class, each case with its expected outcome. The upstream serves exact bytes, scenario chosen per
request (`x-scenario`), and records what reached it; clients are the `openai` client, a raw
HTTP/1.1 client and an HTTP/2 client (h2), so framing, trailers and encodings are ours to choose.
Run by `make test-e2e`; the forbidden word is 自制炸药 (A.1d, block), 傻逼 (A.4c) is masked."""
import gzip
import http.client
import json
import os
import socket
import subprocess
import sys
import threading
import time
import unittest

import h2.config
import h2.connection
import h2.events

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))
import run  # noqa: E402

import openai  # noqa: E402

PORT, ADMIN, UP = 10300, 9931, 18300
ESC = "\\u81ea\\u5236\\u70b8\\u836f"  # 自制炸药 as JSON escapes


def chunk(delta, finish=None):
    return {"id": "c1", "object": "chat.completion.chunk", "model": "m",
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}


def sse(*events, newline="\n", done=True):
    out = "".join(f"data: {json.dumps(e, ensure_ascii=False)}{newline}{newline}" for e in events)
    if done:
        out += f"data: [DONE]{newline}{newline}"
    return out.encode()


CLEAN = json.dumps({"id": "c", "object": "chat.completion", "model": "m",
                    "choices": [{"index": 0, "message": {"role": "assistant", "content": "好的"}, "finish_reason": "stop"}]},
                   ensure_ascii=False).encode()
ANSWER_WITH_KEYWORD = json.dumps({"choices": [{"index": 0, "message": {"role": "assistant", "content": "教你自制炸药"},
                                              "finish_reason": "stop"}]}, ensure_ascii=False).encode()

# name -> (status, content-type, body pieces, trailers)
SCENARIOS = {
    "clean": (200, "application/json", [CLEAN], None),
    "nan-escaped": (200, "application/json",
                    [f'{{"x":NaN,"choices":[{{"index":0,"message":{{"role":"assistant","content":"{ESC}"}},"finish_reason":"stop"}}]}}'.encode()], None),
    "big-numbers-masked": (200, "application/json",
                           [b'{"id":"c","n":123456789012345678901234567890,"f":1.50,"choices":[{"index":0,"message":{"role":"assistant","content":"\xe4\xbd\xa0\xe6\x98\xaf\xe5\x82\xbb\xe9\x80\xbc"},"finish_reason":"stop"}]}'], None),
    "utf16-answer": (200, "application/json",
                     ['{"choices":[{"message":{"content":"自制炸药"}}]}'.encode("utf-16")], None),
    "error-500": (500, "application/json", [f'{{"error":{{"message":"{ESC}"}}}}'.encode()], None),
    # Header values a hostile upstream may send: obs-text, and a repeated content-encoding (the
    # content type given as bytes goes out raw, a second header line included).
    "obs-text-content-type": (200, b"application/json\xff", [ANSWER_WITH_KEYWORD], None),
    "repeated-encoding": (200, b"application/json\r\ncontent-encoding: identity\r\ncontent-encoding: gzip",
                          [gzip.compress(ANSWER_WITH_KEYWORD)], None),
    "bom-cr-stream": (200, "text/event-stream",
                      [b"\xef\xbb\xbf" + sse(chunk({"content": "你是傻"}), chunk({"content": "逼"}), newline="\r")], None),
    "split-keyword-stream": (200, "text/event-stream",
                             [sse(chunk({"role": "assistant", "content": ""}))[:-len(b"data: [DONE]\n\n")],
                              sse(chunk({"content": "教你自制"}), done=False),
                              sse(chunk({"content": "炸药吧"}), chunk({}, "stop"))], None),
    "sse-as-json": (200, "application/json", [sse(chunk({"content": "自制"}), chunk({"content": "炸药"}))], None),
    "unreadable-event": (200, "text/event-stream",
                         [sse(chunk({"content": "你好"}), done=False), b'data: {"choices":[{"delta":{"content":"\xff"}}]}\n\n'], None),
    "id-lines": (200, "text/event-stream",
                 [b'id: 7\nevent: message\ndata: {"choices":[{"index":0,"delta":{"content":"\xe4\xbd\xa0\xe6\x98\xaf\xe5\x82\xbb\xe9\x80\xbc"}}]}\n\ndata: [DONE]\n\n'], None),
    "tool-args-stream": (200, "text/event-stream",
                         [sse(chunk({"tool_calls": [{"index": 0, "id": "t", "type": "function",
                                                     "function": {"name": "f", "arguments": "{\"q\":\""}}]}),
                              chunk({"tool_calls": [{"index": 0, "function": {"arguments": ESC + "\"}"}}]}), done=False),
                          sse(chunk({}, "tool_calls"))], None),
    "after-finish": (200, "text/event-stream", [sse(chunk({"content": "好"}, "stop"), chunk({"content": "自制炸药"}))], None),
    "endless-event": (200, "text/event-stream", [b'data: {"choices":[{"delta":{"content":"' + "好".encode() * 700_000] * 8, None),
    "trailers-answer": (200, "application/json",
                        [f'{{"choices":[{{"index":0,"message":{{"role":"assistant","content":"{ESC}"}},"finish_reason":"stop"}}]}}'.encode()],
                        {"x-checksum": "1"}),
    "too-large": (200, "application/json", [b'{"choices":[{"message":{"content":"' + b"a" * 2_000_000 + b'"}}]}'], None),
}


class Upstream:
    """An HTTP/1.1 upstream on loopback serving exact bytes; records every request it gets."""

    def __init__(self, port):
        self.port = port
        self.seen = []
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", port))
        self.sock.listen(64)
        self.thread = threading.Thread(target=self.serve, daemon=True)
        self.thread.start()

    def stop(self):
        self.sock.close()

    def serve(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            threading.Thread(target=self.handle, args=(conn,), daemon=True).start()

    def handle(self, conn):
        f = conn.makefile("rb")
        try:
            while True:
                line = f.readline()
                if not line:
                    return
                method, path, _ = line.decode("latin-1").split(" ", 2)
                headers = {}
                while (h := f.readline()) not in (b"\r\n", b"\n", b""):
                    k, _, v = h.decode("latin-1").partition(":")
                    headers[k.strip().lower()] = v.strip()
                body, trailers = b"", {}
                if headers.get("transfer-encoding", "").lower() == "chunked":
                    while True:
                        size = int(f.readline().split(b";")[0], 16)
                        if size == 0:
                            while (t := f.readline()) not in (b"\r\n", b"\n", b""):
                                k, _, v = t.decode("latin-1").partition(":")
                                trailers[k.strip().lower()] = v.strip()
                            break
                        body += f.read(size)
                        f.readline()
                elif "content-length" in headers:
                    body = f.read(int(headers["content-length"]))
                self.seen.append({"path": path, "headers": headers, "body": body, "trailers": trailers})
                self.respond(conn, headers.get("x-scenario", "clean"))
        except (OSError, ValueError):
            return
        finally:
            conn.close()

    def respond(self, conn, name):
        status, ctype, pieces, trailers = SCENARIOS[name]
        ctype = ctype if isinstance(ctype, bytes) else ctype.encode()
        head = f"HTTP/1.1 {status} X\r\ncontent-type: ".encode() + ctype + b"\r\ntransfer-encoding: chunked\r\n"
        if trailers:
            head += ("trailer: " + ", ".join(trailers) + "\r\n").encode()
        out = head + b"\r\n"
        for i, piece in enumerate(pieces):
            if i:
                conn.sendall(out)
                out = b""
                time.sleep(0.02)  # pieces arrive apart, as tokens do
            out += f"{len(piece):x}\r\n".encode() + piece + b"\r\n"
        tail = "".join(f"{k}: {v}\r\n" for k, v in (trailers or {}).items())
        conn.sendall(out + f"0\r\n{tail}\r\n".encode())


def http1(path, body=b"", headers=(), chunked=False, trailers=None, scenario=None, method="POST"):
    """A raw HTTP/1.1 request; returns (status, headers, body)."""
    s = socket.create_connection(("127.0.0.1", PORT), timeout=20)
    lines = [f"{method} {path} HTTP/1.1", "host: x", "connection: close"]
    lines += [f"{k}: {v}" for k, v in headers if not isinstance(v, bytes)]
    if scenario:
        lines.append(f"x-scenario: {scenario}")
    if chunked:
        lines.append("transfer-encoding: chunked")
        if trailers:
            lines.append("trailer: " + ", ".join(trailers))
        payload = f"{len(body):x}\r\n".encode() + body + b"\r\n0\r\n"
        payload += "".join(f"{k}: {v}\r\n" for k, v in (trailers or {}).items()).encode() + b"\r\n"
    else:
        lines.append(f"content-length: {len(body)}")
        payload = body
    # A value given as bytes goes out as it is (obs-text, bytes that are not UTF-8).
    raw = b"".join(k.encode() + b": " + v + b"\r\n" for k, v in headers if isinstance(v, bytes))
    s.sendall(("\r\n".join(lines) + "\r\n").encode() + raw + b"\r\n" + payload)
    data = b""
    while chunk_ := s.recv(65536):
        data += chunk_
    s.close()
    head, _, rest = data.partition(b"\r\n\r\n")
    status = int(head.split()[1])
    hdrs = {}
    for line in head.decode("latin-1").split("\r\n")[1:]:
        k, _, v = line.partition(":")
        hdrs[k.strip().lower()] = v.strip()
    if hdrs.get("transfer-encoding") == "chunked":
        out, at = b"", 0
        while True:
            nl = rest.index(b"\r\n", at)
            size = int(rest[at:nl].split(b";")[0], 16)
            if size == 0:
                break
            out += rest[nl + 2:nl + 2 + size]
            at = nl + 2 + size + 2
        rest = out
    return status, hdrs, rest


def http2(path, body, headers=(), trailers=None, scenario=None):
    """An HTTP/2 (h2c, prior knowledge) request; returns (status, headers, body, trailers)."""
    s = socket.create_connection(("127.0.0.1", PORT), timeout=20)
    conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True))
    conn.initiate_connection()
    req = [(":method", "POST"), (":path", path), (":scheme", "http"), (":authority", "x")] + list(headers)
    if scenario:
        req.append(("x-scenario", scenario))
    sid = conn.get_next_available_stream_id()
    conn.send_headers(sid, req)
    conn.send_data(sid, body, end_stream=not trailers)
    if trailers:
        conn.send_headers(sid, list(trailers.items()), end_stream=True)
    s.sendall(conn.data_to_send())
    status, hdrs, out, tr, done = None, {}, b"", {}, False
    while not done:
        data = s.recv(65536)
        if not data:
            break
        for ev in conn.receive_data(data):
            if isinstance(ev, h2.events.ResponseReceived):
                hdrs = {k.decode(): v.decode() for k, v in ev.headers}
                status = int(hdrs[":status"])
            elif isinstance(ev, h2.events.DataReceived):
                out += ev.data
                conn.acknowledge_received_data(ev.flow_controlled_length, ev.stream_id)
            elif isinstance(ev, h2.events.TrailersReceived):
                tr = {k.decode(): v.decode() for k, v in ev.headers}
            elif isinstance(ev, (h2.events.StreamEnded, h2.events.StreamReset)):
                done = True
        s.sendall(conn.data_to_send())
    s.close()
    return status, hdrs, out, tr


def chat_body(content, **extra):
    return json.dumps({"model": "m", "messages": [{"role": "user", "content": content}], **extra}, ensure_ascii=False).encode()


def stream_text(body):
    """What a chat client assembles from an SSE body, and the finish reasons it saw."""
    text = body.decode("utf-8", "replace").lstrip("\ufeff").replace("\r\n", "\n").replace("\r", "\n")
    content, finishes = "", []
    for event in text.split("\n\n"):
        data = "\n".join(l[5:].lstrip() for l in event.split("\n") if l.startswith("data:"))
        try:
            v = json.loads(data)
        except ValueError:
            continue
        for c in v.get("choices", []):
            content += (c.get("delta") or {}).get("content") or ""
            if c.get("finish_reason"):
                finishes.append(c["finish_reason"])
    return content, finishes


def rss_kb(pid):
    with open(f"/proc/{pid}/status") as f:
        return next(int(l.split()[1]) for l in f if l.startswith("VmRSS:"))


class Adversarial(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.upstream = Upstream(UP)
        cls.stack = run.Stack(os.path.join(run.HERE, "demo", "policy.json"), port=PORT, admin_port=ADMIN,
                              upstream=f"127.0.0.1:{UP}", name="adversarial", concurrency=1)
        cls.client = openai.OpenAI(base_url=f"http://127.0.0.1:{PORT}/v1", api_key="k", max_retries=0)

    @classmethod
    def tearDownClass(cls):
        cls.stack.stop()
        cls.upstream.stop()

    def forwarded(self, count_before):
        return self.upstream.seen[count_before:]

    # 1. What the parser rejects is read, or refused --------------------------------------------
    def test_prompts_serde_refuses_are_read_or_refused(self):
        deep = "[" * 300 + "1" + "]" * 300
        cases = [
            ("NaN", f'{{"model":"m","temperature":NaN,"messages":[{{"role":"user","content":"{ESC}"}}]}}'.encode()),
            ("-Infinity", f'{{"model":"m","seed":-Infinity,"messages":[{{"role":"user","content":"{ESC}"}}]}}'.encode()),
            ("1e400", f'{{"top_p":1e400,"messages":[{{"role":"user","content":"{ESC}"}}]}}'.encode()),
            ("lone surrogate", f'{{"messages":[{{"role":"user","content":"\\ud800{ESC}"}}]}}'.encode()),
            ("deep nesting", f'{{"x":{deep},"messages":[{{"role":"user","content":"{ESC}"}}]}}'.encode()),
            ("UTF-16", chat_body("教我自制炸药").decode().encode("utf-16")),
            ("UTF-32", chat_body("教我自制炸药").decode().encode("utf-32")),
            ("invalid UTF-8", b'{"messages":[{"role":"user","content":"\xff"}]}'),
            ("broken JSON", b'{"messages":[{"role":"user","content":"x"'),
            ("split across parts", json.dumps({"messages": [{"role": "user", "content": [
                {"type": "text", "text": "自制"}, {"type": "text", "text": "炸药"}]}]}).encode()),
            ("tool description", json.dumps({"messages": [], "tools": [{"type": "function", "function": {
                "name": "f", "description": "自制炸药"}}]}).encode()),
            ("tool-call arguments", json.dumps({"messages": [{"role": "assistant", "tool_calls": [{"function": {
                "name": "f", "arguments": json.dumps({"q": "自制炸药"})}}]}]}).encode()),
        ]
        for name, body in cases:
            with self.subTest(name):
                before = len(self.upstream.seen)
                status, _, out = http1("/v1/chat/completions", body, [("content-type", "application/json")])
                self.assertEqual(status, 400, out)
                self.assertEqual(self.forwarded(before), [], "nothing reaches the upstream")

    def test_answers_serde_refuses_are_read(self):
        for scenario in ("nan-escaped", "utf16-answer", "error-500"):
            with self.subTest(scenario):
                _, _, out = http1("/v1/chat/completions", chat_body("你好"), scenario=scenario)
                self.assertIn(b"content_filter", out)
                self.assertNotIn("自制炸药".encode(), out)
                self.assertNotIn(ESC.encode(), out)

    # 2. SSE framing per the spec ---------------------------------------------------------------
    def test_sse_framing(self):
        _, _, out = http1("/v1/chat/completions", chat_body("你好", stream=True), scenario="bom-cr-stream")
        content, finishes = stream_text(out)
        self.assertEqual(content, "本回答由人工智能生成\n\n你是**")
        _, _, out = http1("/v1/chat/completions", chat_body("你好", stream=True), scenario="id-lines")
        self.assertTrue(out.startswith(b"id: 7\nevent: message\n"), out[:80])
        self.assertEqual(stream_text(out)[0], "本回答由人工智能生成\n\n你是**")
        _, _, out = http1("/v1/chat/completions", chat_body("你好", stream=True), scenario="unreadable-event")
        self.assertIn(b"content_filter", out)
        self.assertNotIn(b"\xff", out)

    def test_openai_client_reads_a_cut_stream(self):
        stream = self.client.chat.completions.create(model="m", messages=[{"role": "user", "content": "hi"}],
                                                     stream=True, extra_headers={"x-scenario": "split-keyword-stream"})
        text, finish = "", None
        for c in stream:
            for ch in c.choices:
                text += ch.delta.content or ""
                finish = ch.finish_reason or finish
        self.assertNotIn("炸药", text)
        self.assertEqual(finish, "content_filter")

    def test_an_endless_event_is_cut_and_memory_stays_bounded(self):
        before = rss_kb(self.stack.envoy.pid)
        _, _, out = http1("/v1/chat/completions", chat_body("你好", stream=True), scenario="endless-event")
        self.assertLess(len(out), 4096)
        self.assertIn(b"content_filter", out)
        self.assertLess(rss_kb(self.stack.envoy.pid) - before, 10 * 1024, "Envoy grew by more than 10 MB")

    # 3. Every text is inspected ----------------------------------------------------------------
    def test_streamed_tool_arguments_and_content_after_finish(self):
        for scenario in ("tool-args-stream", "after-finish", "sse-as-json"):
            with self.subTest(scenario):
                _, _, out = http1("/v1/chat/completions", chat_body("你好", stream=True), scenario=scenario)
                self.assertIn(b"content_filter", out)
                self.assertNotIn("炸药".encode(), out)
                self.assertNotIn(b"\\u70b8\\u836f", out)

    # 4. The route cannot be dodged ------------------------------------------------------------
    def test_every_route_is_inspected(self):
        body = chat_body("教我自制炸药")
        for path in ("/V1/CHAT/COMPLETIONS", "/v1/chat%2Fcompletions", "/v1/chat/completions;x=1",
                     "/v1/./chat/completions", "/v1/completions", "/api/chat", "/api/generate", "/anything/else"):
            with self.subTest(path):
                before = len(self.upstream.seen)
                status, _, _ = http1(path, body, [("content-type", "application/json")])
                self.assertEqual(status, 400)
                self.assertEqual(self.forwarded(before), [])

    # 5. Encodings and trailers -----------------------------------------------------------------
    def test_encoded_prompts_are_refused(self):
        status, _, out = http1("/v1/chat/completions", b"\x1f\x8b\x08\x00", [("content-encoding", "gzip")])
        self.assertEqual(status, 415, out)

    def test_header_values_that_are_not_utf8_or_repeated(self):
        # Envoy passes obs-text (bytes 0x80-0xFF) in header values: reading one must neither kill
        # the VM nor let the body through uninspected. A repeated content-encoding is read whole
        # (Envoy's single-value read gives the first, while an upstream may read another).
        prompt = chat_body("教我自制炸药")
        cases = [
            ([("content-type", b"application/json\xff")], prompt),
            ([("content-type", "application/json"), ("content-encoding", b"\xe9identity")], prompt),
            ([("content-type", "application/json"), ("x-aigc-profile", b"\xff")], prompt),
            ([("content-type", "application/json"), ("content-encoding", "identity"),
              ("content-encoding", "gzip")], b"\x1f\x8b\x08\x00"),
        ]
        for headers, body in cases:
            with self.subTest(headers):
                before = len(self.upstream.seen)
                status, _, out = http1("/v1/chat/completions", body, headers)
                self.assertIn(status, (400, 415), out)
                self.assertEqual(self.forwarded(before), [])
        for scenario in ("obs-text-content-type", "repeated-encoding"):
            with self.subTest(scenario):
                _, _, out = http1("/v1/chat/completions", chat_body("你好"), [("content-type", "application/json")],
                                  scenario=scenario)
                self.assertNotIn("自制炸药".encode(), out)
                self.assertNotIn(gzip.compress(ANSWER_WITH_KEYWORD), out)
        # The filter is still there and still reads plain requests.
        status, _, _ = http1("/v1/chat/completions", chat_body("你好"), [("content-type", "application/json")])
        self.assertEqual(status, 200)

    def test_bodies_ending_with_trailers_are_inspected(self):
        before = len(self.upstream.seen)
        status, _, _ = http1("/v1/chat/completions", chat_body("教我自制炸药"), chunked=True, trailers={"x-sum": "1"})
        self.assertEqual(status, 400)
        status, _, _, _ = http2("/v1/chat/completions", chat_body("教我自制炸药"), [("content-type", "application/json")],
                                trailers={"x-sum": "1"})
        self.assertEqual(status, 400)
        self.assertEqual(self.forwarded(before), [])
        status, _, out, _ = http2("/v1/chat/completions", chat_body("你好"), scenario="trailers-answer")
        self.assertEqual(status, 200)
        self.assertIn(b"content_filter", out)
        self.assertNotIn(ESC.encode(), out)
        # And a clean one passes, masked word and all, over HTTP/2.
        status, _, out, _ = http2("/v1/chat/completions", chat_body("你好"), scenario="big-numbers-masked")
        self.assertIn("你是**".encode(), out)

    # 6. Profiles cannot be downgraded ----------------------------------------------------------
    def test_profiles_cannot_be_downgraded(self):
        status, _, _ = http1("/v1/chat/completions", chat_body("你好"), [("x-aigc-profile", "nosuch")])
        self.assertEqual(status, 400)
        status, _, _ = http1("/minors/v1/chat/completions", chat_body("你好"), [("x-aigc-profile", "default")])
        self.assertEqual(status, 400)

    # 7. Nothing lost ---------------------------------------------------------------------------
    def test_answers_are_edited_in_place(self):
        _, _, out = http1("/v1/chat/completions", chat_body("你好"), scenario="big-numbers-masked")
        self.assertIn(b'"n":123456789012345678901234567890,"f":1.50,', out)
        self.assertIn("你是**".encode(), out)

    def test_an_answer_over_the_limit_gets_a_refusal(self):
        status, _, out = http1("/v1/chat/completions", chat_body("你好"), scenario="too-large")
        self.assertEqual(json.loads(out)["choices"][0]["finish_reason"], "content_filter")

    # 8. Audit is honest ------------------------------------------------------------------------
    def test_streamed_hits_carry_the_hash_of_the_match(self):
        http1("/v1/chat/completions", chat_body("你好", stream=True), scenario="bom-cr-stream")
        time.sleep(0.3)
        logs = [l for l in self.stack.logs().splitlines() if '"direction":"response"' in l and '"A.4c"' in l]
        self.assertTrue(logs)
        self.assertNotIn("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855", logs[-1])

    # Memory over many mixed requests ------------------------------------------------------------
    def test_memory_stays_flat_over_mixed_requests(self):
        mixed = [("clean", False), ("big-numbers-masked", False), ("bom-cr-stream", True), ("nan-escaped", False)]
        def burst(n):
            conn = http.client.HTTPConnection("127.0.0.1", PORT, timeout=20)
            for i in range(n):
                scenario, stream = mixed[i % len(mixed)]
                conn.request("POST", "/v1/chat/completions", chat_body("你好", stream=stream),
                             {"content-type": "application/json", "x-scenario": scenario})
                conn.getresponse().read()
            conn.close()
        burst(2000)
        start = rss_kb(self.stack.envoy.pid)
        n = int(os.environ.get("AIGC_MIXED_REQUESTS", "20000"))
        threads = [threading.Thread(target=burst, args=(n // 4,)) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        grown = rss_kb(self.stack.envoy.pid) - start
        print(f"\nRSS after warm-up {start / 1024:.1f} MB, grew {grown / 1024:.1f} MB over {n} mixed requests", file=sys.stderr)
        self.assertLess(grown, 10 * 1024)


if __name__ == "__main__":
    unittest.main()
