#!/usr/bin/env python3
"""A small OpenAI/Anthropic-compatible upstream for the demo and the end-to-end tests.

It answers every chat with a canned text; a prompt of the form `reply-b64:<base64>` makes it
answer exactly the decoded text, so tests can have the model "say" a keyword without the prompt
itself containing one; a prompt holding `[refuse]` gets a refusal ("抱歉，我无法回答这个问题。").
Streaming (`"stream": true`) sends the answer in events of `chunk`
characters (default 2, so keywords are split across events), with `\\n` or, when the request
has `x-mock-crlf: 1`, `\\r\\n` line endings. `x-mock-gzip: 1` gzips the answer whatever the
client accepts (to prove compressed answers cannot slip past the filter). `GET /files/NAME`
serves files from --files DIR (the compiled dictionary for the periodic fetch).

Usage: mock_upstream.py --port 18000 [--files DIR]
"""
import argparse
import base64
import gzip
import json
import os
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

DEFAULT_ANSWER = "你好！我是演示用的模型。今天天气很好，适合出门散步。"
ARGS = None


def last_user_text(body, path):
    if path.endswith("/responses"):
        inp = body.get("input", "")
        if isinstance(inp, str):
            return inp
        items = [i for i in inp if i.get("role", "user") == "user"]
        content = items[-1].get("content", "") if items else ""
    else:
        msgs = [m for m in body.get("messages", []) if m.get("role") == "user"]
        content = msgs[-1].get("content", "") if msgs else ""
    if isinstance(content, list):
        return "".join(p.get("text", "") for p in content if isinstance(p, dict))
    return content


def tiny_png(width=8, height=8):
    """A real PNG drawn here, standing in for a generated image."""
    import struct
    import zlib
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    rows = b"".join(b"\x00" + b"".join(bytes((x * 30 % 256, y * 30 % 256, 128)) for x in range(width))
                    for y in range(height))
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b"")


def photo(width, height, fmt):
    """A generated image of the size and format asked for (`size`, `output_format`), by Pillow."""
    import io
    from PIL import Image
    img = Image.linear_gradient("L").resize((width, height)).convert("RGB")
    out = io.BytesIO()
    img.save(out, {"jpeg": "JPEG", "webp": "WEBP"}.get(fmt, "PNG"), quality=90)
    return out.getvalue()


def answer_for(prompt):
    if "[refuse]" in prompt:
        # A model that declines, for `aigc-edge assess`'s tests.
        return "抱歉，我无法回答这个问题。"
    if prompt.startswith("reply-b64:"):
        return base64.b64decode(prompt[len("reply-b64:"):]).decode("utf-8")
    return DEFAULT_ANSWER + "你刚才说：" + prompt


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):
        pass

    def read_body(self):
        if self.headers.get("transfer-encoding", "").lower() == "chunked":
            data = b""
            while True:
                size = int(self.rfile.readline().strip() or b"0", 16)
                if size == 0:
                    self.rfile.readline()
                    return data
                data += self.rfile.read(size)
                self.rfile.readline()
        return self.rfile.read(int(self.headers.get("content-length") or 0))

    def send(self, status, body, content_type="application/json"):
        data = body if isinstance(body, bytes) else body.encode("utf-8")
        gz = self.headers.get("x-mock-gzip") == "1" or "gzip" in self.headers.get("accept-encoding", "")
        self.send_response(status)
        self.send_header("content-type", content_type)
        if gz:
            data = gzip.compress(data)
            self.send_header("content-encoding", "gzip")
        self.send_header("content-length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        if self.path.startswith("/files/") and ARGS.files:
            name = os.path.basename(self.path[len("/files/"):])
            try:
                with open(os.path.join(ARGS.files, name), "rb") as f:
                    return self.send(200, f.read(), "application/octet-stream")
            except OSError:
                return self.send(404, '{"error":"no such file"}')
        if self.path == "/healthz":
            return self.send(200, '{"ok":true}')
        return self.send(404, '{"error":"not found"}')

    def do_POST(self):
        raw = self.read_body()
        if self.path.startswith("/upload"):
            # A platform's upload endpoint: says what arrived, for platform-mode tests.
            return self.send(200, json.dumps({"label_found": self.headers.get("x-aigc-label-found"),
                                              "content_type": self.headers.get("content-type"),
                                              "body_b64": base64.b64encode(raw).decode()}))
        try:
            body = json.loads(raw or b"{}")
        except ValueError:
            return self.send(400, '{"error":{"message":"bad json"}}')
        path = self.path.split("?")[0]
        if path.endswith("/audio/speech") and ARGS.files:
            # OpenAI speech: the file speech.<response_format> from --files, as the API sends it.
            fmt = body.get("response_format", "mp3")
            types = {"mp3": "audio/mpeg", "wav": "audio/wav", "pcm": "application/octet-stream"}
            try:
                with open(os.path.join(ARGS.files, "speech." + os.path.basename(fmt)), "rb") as f:
                    return self.send(200, f.read(), types.get(fmt, "application/octet-stream"))
            except OSError:
                return self.send(400, '{"error":{"message":"no such format"}}')
        if path.endswith("/images/generations"):
            size, fmt = body.get("size"), body.get("output_format", "png")
            data = tiny_png() if not size else photo(*map(int, size.split("x")), fmt)
            image = base64.b64encode(data).decode()
            return self.send(200, json.dumps({"created": int(time.time()),
                                              "data": [{"b64_json": image, "revised_prompt": body.get("prompt", "")}]}))
        prompt = last_user_text(body, path)
        answer = answer_for(prompt)
        model = body.get("model", "mock-model")
        if body.get("stream"):
            return self.stream(path, model, answer, int(body.get("chunk", 2)))
        if path.endswith("/messages"):
            return self.send(200, json.dumps({"id": "msg_mock", "type": "message", "role": "assistant", "model": model,
                                              "content": [{"type": "text", "text": answer}], "stop_reason": "end_turn"},
                                             ensure_ascii=False))
        if path.endswith("/responses"):
            return self.send(200, json.dumps({"id": "resp_mock", "object": "response", "model": model, "status": "completed",
                                              "output": [{"type": "message", "role": "assistant",
                                                          "content": [{"type": "output_text", "text": answer}]}]},
                                             ensure_ascii=False))
        return self.send(200, json.dumps({
            "id": "chatcmpl-mock", "object": "chat.completion", "created": int(time.time()), "model": model,
            "choices": [{"index": 0, "message": {"role": "assistant", "content": answer}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 1, "completion_tokens": len(answer), "total_tokens": len(answer) + 1}},
            ensure_ascii=False))

    def stream(self, path, model, answer, chunk):
        nl = "\r\n" if self.headers.get("x-mock-crlf") == "1" else "\n"
        pieces = [answer[i:i + chunk] for i in range(0, len(answer), chunk)]
        events = []
        if path.endswith("/messages"):
            def ev(name, obj):
                return f"event: {name}{nl}data: {json.dumps(obj, ensure_ascii=False)}{nl}{nl}"
            events.append(ev("message_start", {"type": "message_start", "message": {"id": "msg_mock", "role": "assistant", "content": [], "model": model}}))
            events.append(ev("content_block_start", {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}))
            for p in pieces:
                events.append(ev("content_block_delta", {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": p}}))
            events.append(ev("content_block_stop", {"type": "content_block_stop", "index": 0}))
            events.append(ev("message_delta", {"type": "message_delta", "delta": {"stop_reason": "end_turn", "stop_sequence": None}, "usage": {"output_tokens": len(pieces)}}))
            events.append(ev("message_stop", {"type": "message_stop"}))
        elif path.endswith("/responses"):
            def ev(name, obj):
                return f"event: {name}{nl}data: {json.dumps(obj, ensure_ascii=False)}{nl}{nl}"
            for p in pieces:
                events.append(ev("response.output_text.delta", {"type": "response.output_text.delta", "output_index": 0, "content_index": 0, "delta": p}))
            events.append(ev("response.output_text.done", {"type": "response.output_text.done", "output_index": 0, "content_index": 0, "text": answer}))
            events.append(ev("response.completed", {"type": "response.completed", "response": {"id": "resp_mock", "status": "completed",
                          "output": [{"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": answer}]}]}}))
        else:
            base = {"id": "chatcmpl-mock", "object": "chat.completion.chunk", "created": int(time.time()), "model": model}
            def ev(choice):
                return f"data: {json.dumps(dict(base, choices=[choice]), ensure_ascii=False)}{nl}{nl}"
            events.append(ev({"index": 0, "delta": {"role": "assistant", "content": ""}, "finish_reason": None}))
            for p in pieces:
                events.append(ev({"index": 0, "delta": {"content": p}, "finish_reason": None}))
            events.append(ev({"index": 0, "delta": {}, "finish_reason": "stop"}))
            events.append(f"data: [DONE]{nl}{nl}")
        self.send_response(200)
        self.send_header("content-type", "text/event-stream")
        self.send_header("cache-control", "no-cache")
        self.send_header("transfer-encoding", "chunked")
        self.end_headers()
        for e in events:
            data = e.encode("utf-8")
            # Split every event in two TCP writes, mid-character, to exercise reassembly.
            for part in (data[: len(data) // 2 + 1], data[len(data) // 2 + 1:]):
                if part:
                    self.wfile.write(f"{len(part):x}\r\n".encode() + part + b"\r\n")
                    self.wfile.flush()
        self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()


def main():
    global ARGS
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, default=18000)
    parser.add_argument("--files")
    ARGS = parser.parse_args()
    server = ThreadingHTTPServer(("127.0.0.1", ARGS.port), Handler)
    # A client (or Envoy answering locally) may hang up mid-answer; that is not an error here.
    server.handle_error = lambda request, address: None
    server.serve_forever()


if __name__ == "__main__":
    main()
