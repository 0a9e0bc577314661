"""Platform mode (Measures art. 6) end to end: a real Envoy with the filter in front of an upload
endpoint; real files (Pillow's PNG and JPEG, a WAV, a PDF, a docx) labeled by the CLI or not,
uploaded raw and as multipart forms; the upstream reports what reached it. Run by `make test-e2e`."""
import base64
import io
import json
import os
import subprocess
import sys
import tempfile
import unittest
import urllib.error
import urllib.request
import wave

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))
import run  # noqa: E402

from PIL import Image, PngImagePlugin  # noqa: E402

POLICY = os.path.join(run.HERE, "demo", "policy.json")
CLI = os.path.join(run.ROOT, "target", "release", "aigc-edge")
PORT, ADMIN, MOCK = 10900, 9990, 18900
PRODUCER, PLATFORM = "001191110102MACQD9K64010000", "PLATFORM01"


def cli(*args):
    return subprocess.run([CLI, *args], capture_output=True, text=True, check=True).stdout


def post(port, path, body, content_type, headers=()):
    request = urllib.request.Request(f"http://127.0.0.1:{port}{path}", data=body, method="POST",
                                     headers={"content-type": content_type, **dict(headers)})
    try:
        with urllib.request.urlopen(request, timeout=10) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


def multipart(fields):
    """`fields`: (name, filename or None, content type, bytes)."""
    out = b""
    for name, filename, ctype, data in fields:
        disposition = f'form-data; name="{name}"' + (f'; filename="{filename}"' if filename else "")
        out += f"--BOUNDARY\r\nContent-Disposition: {disposition}\r\nContent-Type: {ctype}\r\n\r\n".encode() + data + b"\r\n"
    return out + b"--BOUNDARY--\r\n", "multipart/form-data; boundary=BOUNDARY"


def parts(body):
    """The contents of a multipart body's parts, in order."""
    chunks = body.split(b"--BOUNDARY")[1:-1]
    return [c.split(b"\r\n\r\n", 1)[1][:-2] for c in chunks]


class Platform(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.dir = d = tempfile.mkdtemp()
        cli("keygen", "-o", f"{d}/platform")
        with open(f"{d}/platform.key") as f:
            pem = f.read()
        platform = {"code": PLATFORM, "upload_paths": ["/upload/"]}
        cls.stack = run.Stack(POLICY, port=PORT, admin_port=ADMIN, mock_port=MOCK, name="platform",
                              extra={"platform": platform, "label": {"producer": "PROVIDER", "signing_key": pem}})
        cls.mark = run.Stack(POLICY, port=PORT + 1, admin_port=ADMIN + 1, mock_port=MOCK + 1, name="platform-mark",
                             extra={"platform": dict(platform, on_conflict="mark")})
        img = Image.new("RGB", (40, 30))
        img.putdata([(x * 6, y * 8, 100) for y in range(30) for x in range(40)])
        img.save(f"{d}/a.png")
        img.save(f"{d}/a.jpg", quality=90)
        with wave.open(f"{d}/a.wav", "wb") as w:
            w.setnchannels(1)
            w.setsampwidth(2)
            w.setframerate(8000)
            w.writeframes(bytes(range(256)) * 8)
        pdf = b"%PDF-1.4\n"
        at = []
        for i, body in enumerate([b"<< /Type /Catalog /Pages 2 0 R >>", b"<< /Type /Pages /Kids [] /Count 0 >>"], 1):
            at.append(len(pdf))
            pdf += b"%d 0 obj\n%s\nendobj\n" % (i, body)
        xref = len(pdf)
        pdf += b"xref\n0 3\n0000000000 65535 f \n" + b"".join(b"%010d 00000 n \n" % a for a in at)
        pdf += b"trailer\n<< /Size 3 /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % xref
        with open(f"{d}/a.pdf", "wb") as f:
            f.write(pdf)
        import docx
        doc = docx.Document()
        doc.add_paragraph("一段文字")
        doc.save(f"{d}/a.docx")
        for name in ["a.png", "a.jpg", "a.pdf", "a.docx"]:
            cli("label", f"{d}/{name}", "-o", f"{d}/labeled-{name}", "--producer", PRODUCER, "--produce-id", "gen-1")
        # Two different labels in one PNG: a tEXt label and an XMP one.
        other = json.dumps({"AIGC": {"Label": "1", "ContentProducer": "OTHER", "ProduceID": "x", "ReservedCode1": "",
                                     "ContentPropagator": "OTHER", "PropagateID": "x", "ReservedCode2": ""}})
        xmp = ('<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">'
               '<rdf:Description xmlns:TC260="http://www.tc260.org.cn/ns/AIGC/1.0/" TC260:AIGC="%s"/></rdf:RDF></x:xmpmeta>'
               % other.replace('"', "&quot;"))
        info = PngImagePlugin.PngInfo()
        info.add_itxt("XML:com.adobe.xmp", xmp)
        with Image.open(f"{d}/labeled-a.png") as labeled:
            info.add_text("AIGC", labeled.text["AIGC"])
            labeled.save(f"{d}/conflict.png", pnginfo=info)

    @classmethod
    def tearDownClass(cls):
        cls.stack.stop()
        cls.mark.stop()

    def read(self, name):
        with open(os.path.join(self.dir, name), "rb") as f:
            return f.read()

    def verify(self, data, name):
        path = os.path.join(self.dir, "received-" + name)
        with open(path, "wb") as f:
            f.write(data)
        return json.loads(cli("verify", path, "--public-key", os.path.join(self.dir, "platform.pub")))[0]

    def test_a_labeled_raw_upload_keeps_its_label_and_gets_the_platforms_fields(self):
        status, got = post(PORT, "/upload/image", self.read("labeled-a.png"), "image/png")
        self.assertEqual(status, 200, got)
        self.assertEqual(got["label_found"], "1")
        report = self.verify(base64.b64decode(got["body_b64"]), "a.png")
        self.assertEqual(report["verdict"], "compliant", report)
        fields = report["labels"][0]["fields"]
        self.assertEqual((fields["Label"], fields["ContentProducer"], fields["ProduceID"]), ("1", PRODUCER, "gen-1"))
        self.assertEqual(fields["ContentPropagator"], PLATFORM)
        self.assertEqual(report["labels"][0]["codes"]["ReservedCode2"], "verified: sm2")
        with Image.open(io.BytesIO(base64.b64decode(got["body_b64"]))) as a, Image.open(os.path.join(self.dir, "a.png")) as b:
            self.assertEqual(a.tobytes(), b.tobytes(), "pixels unchanged")

    def test_a_form_of_several_formats_reports_each_file(self):
        body, ctype = multipart([("title", None, "text/plain", "一张图".encode()),
                                 ("photo", "a.jpg", "image/jpeg", self.read("labeled-a.jpg")),
                                 ("sound", "a.wav", "audio/wav", self.read("a.wav")),
                                 ("paper", "a.pdf", "application/pdf", self.read("labeled-a.pdf")),
                                 ("doc", "a.docx", "application/octet-stream", self.read("labeled-a.docx"))])
        status, got = post(PORT, "/upload/batch", body, ctype)
        self.assertEqual(status, 200, got)
        self.assertEqual(got["label_found"], "1, none, 1, 1")
        received = parts(base64.b64decode(got["body_b64"]))
        self.assertEqual(received[0], "一张图".encode())
        self.assertEqual(received[2], self.read("a.wav"), "an unlabeled, undeclared file is unchanged")
        for data, name in [(received[1], "a.jpg"), (received[3], "a.pdf"), (received[4], "a.docx")]:
            report = self.verify(data, name)
            self.assertEqual(report["verdict"], "compliant", (name, report))
            self.assertEqual({l["fields"]["ContentPropagator"] for l in report["labels"]}, {PLATFORM}, name)

    def test_a_declared_upload_gets_label_2_and_a_client_cannot_claim_one(self):
        body, ctype = multipart([("photo", "a.png", "image/png", self.read("a.png"))])
        status, got = post(PORT, "/upload/x", body, ctype, [("x-aigc-declared", "1")])
        self.assertEqual((status, got["label_found"]), (200, "2"))
        report = self.verify(parts(base64.b64decode(got["body_b64"]))[0], "declared.png")
        self.assertEqual(report["labels"][0]["fields"]["Label"], "2")
        status, got = post(PORT, "/upload/x", self.read("a.png"), "image/png", [("x-aigc-label-found", "1")])
        self.assertEqual((status, got["label_found"]), (200, "none"))
        self.assertEqual(base64.b64decode(got["body_b64"]), self.read("a.png"))

    def test_conflicts_are_refused_or_marked_and_never_rewritten(self):
        status, got = post(PORT, "/upload/x", self.read("conflict.png"), "image/png")
        self.assertEqual(status, 422, got)
        self.assertIn("two different AIGC labels", json.dumps(got, ensure_ascii=False))
        status, got = post(PORT + 1, "/upload/x", self.read("conflict.png"), "image/png")
        self.assertEqual((status, got["label_found"]), (200, "conflict"))
        self.assertEqual(base64.b64decode(got["body_b64"]), self.read("conflict.png"))

    def test_unreadable_uploads_are_refused(self):
        status, got = post(PORT, "/upload/x", self.read("labeled-a.png")[:60], "image/png")
        self.assertEqual(status, 400, got)
        body, ctype = multipart([("photo", "a.png", "image/png", self.read("a.png"))])
        status, _ = post(PORT, "/upload/x", body[:-20], ctype)
        self.assertEqual(status, 400)

    def test_other_paths_are_not_uploads(self):
        status, got = post(PORT, "/v1/chat/completions",
                           json.dumps({"model": "m", "messages": [{"role": "user", "content": "你好"}]}).encode(),
                           "application/json", [("x-aigc-label-found", "1")])
        self.assertEqual(status, 200)
        self.assertIn("choices", got)


if __name__ == "__main__":
    unittest.main(verbosity=2)
