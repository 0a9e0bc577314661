"""A guard-model stand-in for the tests: speaks the two contracts the filter's `guard` layer
calls exactly (a Qwen3Guard-Gen chat-completions endpoint and the OpenAI moderation endpoint),
decides by rules the test gives, and misbehaves on request. Loopback only.

    python envoy/tests/guard_standin.py --port 18900 [--delay-ms 5] [--rules rules.json]

Rules: a JSON list of {"contains": TEXT, "safety": "Unsafe"|"Controversial", "categories": [...]},
the first whose TEXT is in the judged text wins; nothing matching is Safe. Markers in the judged
text make it misbehave: GUARD-SLOW (answers after 3 s), GUARD-500 (status 500), GUARD-GARBAGE
(an answer that is not JSON), GUARD-NOFORMAT (JSON without a verdict). For an answer (an
assistant message after the prompt) the verdict also says `Refusal: Yes` when the answer
refuses (抱歉, 无法, "I can't"). GET /calls lists what was asked, in order."""
import argparse
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

DEFAULT_RULES = [
    {"contains": "炸弹的做法", "safety": "Unsafe", "categories": ["Violent"]},
    {"contains": "黄色小说", "safety": "Unsafe", "categories": ["Sexual Content or Sexual Acts"]},
    {"contains": "擦边话题", "safety": "Controversial", "categories": ["Politically Sensitive Topics"]},
]
REFUSALS = ("抱歉", "无法", "I can't", "I cannot")


class Guard:
    def __init__(self, rules, delay_ms):
        self.rules, self.delay, self.calls, self.lock = rules, delay_ms / 1000, [], threading.Lock()

    def judge(self, text):
        for rule in self.rules:
            if rule["contains"] in text:
                return rule["safety"], rule.get("categories", [])
        return "Safe", []


def make_handler(guard):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        # Headers and body go in separate writes: without this, Nagle's algorithm and the
        # peer's delayed ACK add ~40 ms to every answer.
        disable_nagle_algorithm = True

        def log_message(self, *args):
            pass

        def send(self, status, body, content_type="application/json"):
            data = body if isinstance(body, bytes) else json.dumps(body, ensure_ascii=False).encode()
            self.send_response(status)
            self.send_header("content-type", content_type)
            self.send_header("content-length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self):
            if self.path == "/calls":
                with guard.lock:
                    return self.send(200, guard.calls)
            if self.path == "/healthz":
                return self.send(200, {"ok": True})
            self.send(404, {"error": "not found"})

        def do_POST(self):
            body = json.loads(self.rfile.read(int(self.headers.get("content-length", 0))) or b"{}")
            if self.path == "/v1/moderations":
                text = body.get("input", "")
                text = "\n".join(text) if isinstance(text, list) else text
                answer_text, prompt = text, None
            elif self.path == "/v1/chat/completions":
                messages = body.get("messages", [])
                answer = [m for m in messages if m.get("role") == "assistant"]
                prompt = next((m["content"] for m in messages if m.get("role") == "user"), "")
                answer_text = answer[-1]["content"] if answer else prompt
                prompt = prompt if answer else None
            else:
                return self.send(404, {"error": f"no such path {self.path}"})
            with guard.lock:
                guard.calls.append({"path": self.path, "model": body.get("model"), "text": answer_text,
                                    "prompt": prompt, "at": time.time()})
            if guard.delay:
                time.sleep(guard.delay)
            if "GUARD-SLOW" in answer_text:
                time.sleep(3)
            if "GUARD-500" in answer_text:
                return self.send(500, {"error": "guard model overloaded"})
            if "GUARD-GARBAGE" in answer_text:
                return self.send(200, b"<html>not json</html>", "text/html")
            if "GUARD-NOFORMAT" in answer_text:
                return self.send(200, {"choices": [{"message": {"content": "I think it is fine."}}]})
            safety, categories = guard.judge(answer_text)
            if self.path == "/v1/moderations":
                names = ["sexual", "violence", "hate", "harassment", "self-harm", "illicit"]
                mapped = {"Violent": "violence", "Sexual Content or Sexual Acts": "sexual"}
                flagged = safety == "Unsafe"
                chosen = {mapped.get(c, "illicit") for c in categories} if flagged else set()
                return self.send(200, {"id": "modr-1", "model": body.get("model", "omni-moderation-latest"), "results": [{
                    "flagged": flagged,
                    "categories": {n: n in chosen for n in names},
                    "category_scores": {n: 0.97 if n in chosen else 0.01 for n in names}}]})
            lines = [f"Safety: {safety}", f"Categories: {', '.join(categories) if categories else 'None'}"]
            if prompt is not None:
                lines.append("Refusal: " + ("Yes" if any(r in answer_text for r in REFUSALS) else "No"))
            self.send(200, {"id": "chatcmpl-guard", "object": "chat.completion", "model": body.get("model"),
                            "choices": [{"index": 0, "finish_reason": "stop",
                                         "message": {"role": "assistant", "content": "\n".join(lines)}}]})

    return Handler


class StandIn:
    """The stand-in in a thread of the test process."""

    def __init__(self, port, rules=None, delay_ms=0):
        self.guard = Guard(rules or DEFAULT_RULES, delay_ms)
        self.server = ThreadingHTTPServer(("127.0.0.1", port), make_handler(self.guard))
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def calls(self):
        with self.guard.lock:
            return list(self.guard.calls)

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, default=18900)
    parser.add_argument("--delay-ms", type=float, default=0)
    parser.add_argument("--rules")
    args = parser.parse_args()
    rules = json.load(open(args.rules, encoding="utf-8")) if args.rules else None
    guard = Guard(rules or DEFAULT_RULES, args.delay_ms)
    server = ThreadingHTTPServer(("127.0.0.1", args.port), make_handler(guard))
    server.daemon_threads = True
    server.serve_forever()
