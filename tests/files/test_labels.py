"""GB 45438 implicit labels over real files made by independent tools (Pillow, sox, lame, ffmpeg), read
back by an independent reader (exiftool) and decoded to identical pixels and samples.
Run by `make test-labels` (part of `make test`)."""
import json
import os
import subprocess
import sys
import tempfile
import unittest

from PIL import Image

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CLI = os.environ.get("AIGC_CLI", os.path.join(ROOT, "target", "release", "aigc-edge"))
PRODUCER = "001191110102MACQD9K64010000"


def run(*args, check=True):
    return subprocess.run([CLI, *args], capture_output=True, text=True, check=check)


class Labels(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.dir = tempfile.mkdtemp()
        d = cls.dir
        rgba = Image.new("RGBA", (48, 32))
        rgba.putdata([(x * 5 % 256, y * 7 % 256, (x * y) % 256, 255 - x) for y in range(32) for x in range(48)])
        rgba.save(f"{d}/a.png")
        rgba.convert("RGB").save(f"{d}/a.jpg", quality=92)
        rgba.save(f"{d}/lossless.webp", lossless=True)
        rgba.convert("RGB").save(f"{d}/lossy.webp", quality=80)
        rgba.convert("P").save(f"{d}/a.gif")
        rgba.save(f"{d}/a.tiff")
        rgba.convert("RGB").save(f"{d}/described.tiff", tiffinfo={270: "an image description"})
        subprocess.run(["sox", "-n", "-r", "8000", "-c", "1", f"{d}/a.wav", "synth", "0.3", "sine", "440"], check=True)
        subprocess.run(["lame", "--quiet", f"{d}/a.wav", f"{d}/a.mp3"], check=True)
        subprocess.run(["sox", f"{d}/a.wav", f"{d}/a.flac"], check=True)
        for codec, name in (("libvorbis", "a.ogg"), ("libopus", "a.opus")):
            subprocess.run(["ffmpeg", "-loglevel", "error", "-y", "-i", f"{d}/a.wav", "-c:a", codec,
                            "-metadata", "title=一首歌", f"{d}/{name}"], check=True)
        # A FLAC that already has Vorbis comments (an encoder's tags) keeps them.
        subprocess.run(["ffmpeg", "-loglevel", "error", "-y", "-i", f"{d}/a.wav", "-metadata", "title=一首歌",
                        "-metadata", "artist=Someone", f"{d}/tagged.flac"], check=True)
        ff = ["ffmpeg", "-loglevel", "error", "-y"]
        video = ["-f", "lavfi", "-i", "testsrc=size=64x48:rate=10", "-t", "1", "-pix_fmt", "yuv420p", "-c:v", "mpeg4"]
        subprocess.run(ff + video + [f"{d}/a.mp4"], check=True)
        subprocess.run(ff + video + ["-movflags", "+faststart", f"{d}/fast.mp4"], check=True)
        subprocess.run(ff + ["-f", "lavfi", "-i", "sine=frequency=440:duration=0.5", "-c:a", "aac", f"{d}/a.m4a"], check=True)
        with open(f"{d}/a.md", "w", encoding="utf-8") as f:
            f.write("# 回答\n\n" + "这是一段由模型生成的回答，内容仅供参考。" * 20 + "\n")
        with open(f"{d}/key", "wb") as f:
            f.write(b"test key")

    def label(self, name, *extra):
        src = os.path.join(self.dir, name)
        out = os.path.join(self.dir, "labeled-" + name)
        r = run("label", src, "-o", out, *extra)
        return src, out, json.loads(r.stdout)

    def exiftool(self, path):
        return json.loads(subprocess.run(["exiftool", "-j", path], capture_output=True, text=True, check=True).stdout)[0]

    def test_images_round_trip_read_by_exiftool_with_identical_pixels(self):
        for name in ["a.png", "a.jpg", "lossless.webp", "lossy.webp", "a.gif", "a.tiff", "described.tiff"]:
            with self.subTest(name=name):
                src, out, label = self.label(name, "--producer", PRODUCER, "--produce-id", "img-1")
                self.assertEqual(label["AIGC"]["ProduceID"], "img-1")
                tags = self.exiftool(out)
                found = [v for k, v in tags.items() if k.lower() == "aigc"]
                self.assertEqual(len(found), 1, tags)
                self.assertEqual(json.loads(found[0])["AIGC"], label["AIGC"])
                with Image.open(src) as a, Image.open(out) as b:
                    self.assertEqual(a.size, b.size)
                    self.assertEqual(list(a.convert("RGBA").getdata()), list(b.convert("RGBA").getdata()))
                report = json.loads(run("verify", out).stdout)[0]
                self.assertEqual(report["verdict"], "compliant", report)

    def test_exif_label_written_by_exiftool_is_read_and_updated_in_place(self):
        src = os.path.join(self.dir, "exif.jpg")
        with open(os.path.join(self.dir, "a.jpg"), "rb") as f, open(src, "wb") as g:
            g.write(f.read())
        label = {"Label": "1", "ContentProducer": "EXIFPRODUCER", "ProduceID": "exif-1", "ReservedCode1": "",
                 "ContentPropagator": "EXIFPRODUCER", "PropagateID": "exif-1", "ReservedCode2": ""}
        subprocess.run(["exiftool", "-q", "-overwrite_original", "-UserComment=" + json.dumps({"AIGC": label}, separators=(",", ":")), src],
                       check=True)
        report = json.loads(run("verify", src).stdout)[0]
        self.assertEqual([l["carrier"] for l in report["labels"]], ["exif-usercomment"])
        self.assertEqual(report["labels"][0]["fields"]["ProduceID"], "exif-1")
        out = os.path.join(self.dir, "exif-platform.jpg")
        run("label", src, "-o", out, "--propagate", "--platform", "PLAT", "--propagate-id", "p1")
        tags = self.exiftool(out)
        # Both carriers (the EXIF one updated in place, XMP added) hold the same one label.
        self.assertEqual(json.loads(tags["UserComment"]), json.loads(tags["Aigc"]))
        self.assertEqual(json.loads(tags["UserComment"])["AIGC"]["ContentPropagator"], "PLAT")
        self.assertEqual(json.loads(run("verify", out).stdout)[0]["verdict"], "compliant")
        with Image.open(src) as a, Image.open(out) as b:
            self.assertEqual(list(a.getdata()), list(b.getdata()))

    def test_visible_label_drawn_in_a_corner(self):
        # Too small an image for a label 5% high that fits: refused, not shrunk below the rule.
        r = run("label", os.path.join(self.dir, "a.png"), "-o", os.path.join(self.dir, "x.png"), "--producer", PRODUCER,
                "--visible", "由人工智能生成", check=False)
        self.assertEqual(r.returncode, 2)
        self.assertIn("does not fit", r.stderr)
        big = os.path.join(self.dir, "big.png")
        Image.new("RGB", (1000, 600), (250, 250, 250)).save(big)
        out_big = os.path.join(self.dir, "big-labeled.png")
        run("label", big, "-o", out_big, "--producer", PRODUCER, "--visible", "由人工智能生成")
        with Image.open(big) as a, Image.open(out_big) as b:
            a, b = a.convert("RGB"), b.convert("RGB")
            changed = [(x, y) for y in range(0, 600, 2) for x in range(0, 1000, 2) if a.getpixel((x, y)) != b.getpixel((x, y))]
            xs, ys = [c[0] for c in changed], [c[1] for c in changed]
            # Bottom-right corner only, at least 5% of the shortest side (30 px) high.
            self.assertGreater(min(xs), 500)
            self.assertGreater(min(ys), 450)
            self.assertGreaterEqual(max(ys) - min(ys), 30)
            darkest = min(sum(b.getpixel(c)) for c in changed)
            brightest = max(sum(b.getpixel(c)) for c in changed)
            self.assertLess(darkest, 350)     # darkened backdrop on a light image
            self.assertGreater(brightest, 600)  # white text
        self.assertEqual(json.loads(run("verify", out_big).stdout)[0]["verdict"], "compliant")

    # Tags that describe the file or its encoding rather than what it says: they may change.
    ENCODING_GROUPS = {"ExifTool", "System", "File", "Composite", "PNG"}

    def tags_by_group(self, path):
        out = subprocess.run(["exiftool", "-j", "-G1", "-struct", path], capture_output=True, text=True, check=True)
        return json.loads(out.stdout)[0]

    def icc(self, path):
        return subprocess.run(["exiftool", "-b", "-ICC_Profile", path], capture_output=True, check=True).stdout

    def assert_visible_keeps_metadata(self, src, corner_check, *extra):
        out = os.path.join(self.dir, "visible-" + os.path.basename(src))
        run("label", src, "-o", out, "--producer", PRODUCER, "--visible", "AI生成", *extra)
        before, after = self.tags_by_group(src), self.tags_by_group(out)
        self.assertEqual(after["File:FileType"], before["File:FileType"])
        for tag, value in before.items():
            if tag.split(":")[0] in self.ENCODING_GROUPS or tag == "SourceFile":
                continue
            if tag == "IFD0:Orientation":
                # The pixels come out upright, and the tag says so.
                self.assertEqual(after[tag], "Horizontal (normal)")
                continue
            self.assertEqual(after.get(tag), value, f"{tag} lost or changed")
        icc = self.icc(src)
        self.assertGreater(len(icc), 100)
        self.assertEqual(self.icc(out), icc, "the colour profile is byte-identical")
        self.assertEqual(json.loads(run("verify", out).stdout)[0]["verdict"], "compliant")
        from PIL import ImageOps
        with Image.open(src) as a, Image.open(out) as b:
            upright = ImageOps.exif_transpose(a).convert("RGB")
            b = b.convert("RGB")
            self.assertEqual(upright.size, b.size, "stored upright, as the viewer saw it")
            w, h = b.size
            changed = [(x, y) for y in range(0, h, 3) for x in range(0, w, 3)
                       if sum(abs(p - q) for p, q in zip(upright.getpixel((x, y)), b.getpixel((x, y)))) > 60]
            self.assertTrue(changed)
            corner_check(changed, w, h)
        return out

    def bottom_right(self, changed, w, h):
        self.assertGreater(min(x for x, _ in changed), w // 2)
        self.assertGreater(min(y for _, y in changed), h // 2)

    def photo(self, w, h):
        img = Image.new("RGB", (w, h))
        img.putdata([((x * 255) // w, (y * 255) // h, 128) for y in range(h) for x in range(w)])
        return img

    def srgb_profile(self):
        from PIL import ImageCms
        return ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()

    def test_visible_label_keeps_exif_icc_and_xmp_of_a_phone_jpeg(self):
        src = os.path.join(self.dir, "phone.jpg")
        exif = Image.Exif()
        exif[0x0112] = 6  # stored sideways: the viewer turns it 90 degrees clockwise
        exif[0x010F], exif[0x0110] = "PhoneMaker", "Phone 15"
        exif[0x0131] = "camera firmware 1.2"
        exif.get_ifd(0x8769)[0x9003] = "2026:11:30 10:00:00"
        self.photo(400, 300).save(src, quality=90, exif=exif, icc_profile=self.srgb_profile())
        subprocess.run(["exiftool", "-q", "-overwrite_original", "-XMP-dc:Creator=Someone", "-IPTC:Keywords=beach",
                        "-Comment=shot on a phone", "-GPSLatitude=31.2", "-GPSLatitudeRef=N", src], check=True)
        out = self.assert_visible_keeps_metadata(src, self.bottom_right, "--quality", "85")
        with Image.open(out) as b:
            self.assertEqual(b.format, "JPEG")
            self.assertEqual(b.size, (300, 400))

    def test_visible_label_keeps_text_chunks_and_profile_of_a_png(self):
        from PIL import PngImagePlugin
        src = os.path.join(self.dir, "meta.png")
        info = PngImagePlugin.PngInfo()
        info.add_text("Author", "Someone")
        info.add_itxt("Description", "一张图片", lang="zh")
        exif = Image.Exif()
        exif[0x0112] = 3  # upside down
        self.photo(400, 300).save(src, pnginfo=info, icc_profile=self.srgb_profile(), exif=exif)
        out = self.assert_visible_keeps_metadata(src, self.bottom_right)
        with Image.open(out) as b:
            self.assertEqual(b.format, "PNG")
            self.assertEqual(b.text.get("Author"), "Someone")
            self.assertEqual(b.text.get("Description"), "一张图片")

    def test_visible_label_keeps_a_16_bit_png_16_bit(self):
        src = os.path.join(self.dir, "deep.png")
        deep = Image.new("I;16", (400, 300))
        deep.putdata([(x * 163 + y * 97) % 65536 for y in range(300) for x in range(400)])
        deep.save(src)
        out = os.path.join(self.dir, "deep-labeled.png")
        run("label", src, "-o", out, "--producer", PRODUCER, "--visible", "AI生成")
        self.assertEqual(self.exiftool(out)["BitDepth"], 16)
        with Image.open(src) as a, Image.open(out) as b:
            self.assertEqual((a.mode, b.mode), ("I;16", "I;16"))
            pa, pb = a.tobytes(), b.tobytes()
            same = sum(1 for i in range(0, len(pa), 2) if pa[i:i + 2] == pb[i:i + 2])
            # Every sample outside the label keeps its 16-bit value.
            self.assertGreater(same, 400 * 300 * 0.8)

    def test_audio_round_trip(self):
        for name in ["a.wav", "a.mp3"]:
            with self.subTest(name=name):
                src, out, label = self.label(name, "--producer", PRODUCER)
                self.assertRegex(label["AIGC"]["ProduceID"], r"^aigc-[0-9a-f]{32}$")
                raw = lambda p: subprocess.run(["sox", p, "-t", "raw", "-"], capture_output=True, check=True).stdout
                if name.endswith(".wav"):
                    self.assertEqual(raw(src), raw(out))
                else:
                    self.assertIn("(AIGC) ", self.exiftool(out).get("UserDefinedText", ""))
                    with open(src, "rb") as a, open(out, "rb") as b:
                        self.assertTrue(b.read().endswith(a.read()), "MP3 frames changed")
                self.assertEqual(json.loads(run("verify", out).stdout)[0]["verdict"], "compliant")

    def test_flac_vorbis_comment_read_by_mutagen_with_identical_samples(self):
        import mutagen.flac
        raw = lambda p: subprocess.run(["sox", p, "-t", "raw", "-"], capture_output=True, check=True).stdout
        for name in ["a.flac", "tagged.flac"]:
            with self.subTest(name=name):
                src, out, label = self.label(name, "--producer", PRODUCER, "--produce-id", "flac-1")
                tags = mutagen.flac.FLAC(out)
                self.assertEqual(len(tags["AIGC"]), 1)
                self.assertEqual(json.loads(tags["AIGC"][0])["AIGC"], label["AIGC"])
                if name == "tagged.flac":
                    self.assertEqual((tags["title"], tags["artist"]), (["一首歌"], ["Someone"]))
                self.assertEqual(raw(src), raw(out), "the samples decode the same")
                self.assertEqual(mutagen.flac.FLAC(src).info.md5_signature, tags.info.md5_signature)
                # Labeled again (the platform's label): still one AIGC comment.
                again = os.path.join(self.dir, "platform-" + name)
                run("label", out, "-o", again, "--propagate", "--platform", "PLAT")
                self.assertEqual(len(mutagen.flac.FLAC(again)["AIGC"]), 1)
                self.assertEqual(json.loads(run("verify", again).stdout)[0]["verdict"], "compliant")

    def test_ogg_vorbis_and_opus_comments_read_by_mutagen_with_identical_packets(self):
        import mutagen
        pcm = lambda p: subprocess.run(["ffmpeg", "-loglevel", "error", "-i", p, "-f", "s16le", "-"],
                                       capture_output=True, check=True).stdout
        # Every audio packet's timing, size and MD5 (not its byte position, which the longer headers move).
        packets = lambda p: subprocess.run(["ffprobe", "-loglevel", "error", "-select_streams", "a", "-show_data_hash", "md5",
                                            "-show_entries", "packet=pts,duration,size,data_hash", "-of", "csv", p],
                                           capture_output=True, check=True).stdout
        for name in ["a.ogg", "a.opus"]:
            with self.subTest(name=name):
                src, out, label = self.label(name, "--producer", PRODUCER, "--produce-id", "ogg-1")
                tags = mutagen.File(out)
                self.assertEqual(len(tags["AIGC"]), 1)
                self.assertEqual(json.loads(tags["AIGC"][0])["AIGC"], label["AIGC"])
                self.assertEqual(tags["title"], ["一首歌"], "the encoder's comments stay")
                self.assertEqual(packets(src), packets(out), "every audio packet unchanged")
                self.assertEqual(pcm(src), pcm(out))
                again = os.path.join(self.dir, "platform-" + name)
                run("label", out, "-o", again, "--propagate", "--platform", "PLAT")
                self.assertEqual(len(mutagen.File(again)["AIGC"]), 1)
                self.assertEqual(json.loads(run("verify", again).stdout)[0]["verdict"], "compliant")

    def pdf(self, name):
        """A one-page PDF with text, written by hand; then the same document as qpdf writes it with
        object streams and a compressed cross-reference stream, and as exiftool updates it with XMP."""
        content = b"BT /F1 24 Tf 20 40 Td (Generated text) Tj ET"
        objects = [b"<< /Type /Catalog /Pages 2 0 R >>",
                   b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
                   b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 300 100] /Contents 4 0 R "
                   b"/Resources << /Font << /F1 5 0 R >> >> >>",
                   b"<< /Length %d >>\nstream\n%s\nendstream" % (len(content), content),
                   b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
                   b"<< /Title (A page) /Producer (hand) >>"]
        out, at = b"%PDF-1.4\n", []
        for i, body in enumerate(objects, 1):
            at.append(len(out))
            out += b"%d 0 obj\n%s\nendobj\n" % (i, body)
        xref = len(out)
        out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
        out += b"".join(b"%010d 00000 n \n" % a for a in at)
        out += b"trailer\n<< /Size %d /Root 1 0 R /Info 6 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref)
        path = os.path.join(self.dir, name)
        with open(path, "wb") as f:
            f.write(out)
        compact = os.path.join(self.dir, "compact-" + name)
        subprocess.run(["qpdf", "--object-streams=generate", "--compress-streams=y", path, compact], check=True)
        xmp = os.path.join(self.dir, "xmp-" + name)
        subprocess.run(["exiftool", "-q", "-o", xmp, "-XMP-dc:Creator=Someone", "-XMP-dc:Title=A page", path], check=True)
        return [path, compact, xmp]

    def test_pdf_info_and_xmp_read_by_pypdf_with_identical_pages(self):
        import pypdf
        for src in self.pdf("a.pdf"):
            with self.subTest(name=os.path.basename(src)):
                src, out, label = self.label(os.path.basename(src), "--producer", PRODUCER, "--produce-id", "pdf-1")
                with open(src, "rb") as a, open(out, "rb") as b:
                    before, after = a.read(), b.read()
                self.assertTrue(after.startswith(before), "an incremental update: every earlier byte kept")
                reader, original = pypdf.PdfReader(out), pypdf.PdfReader(src)
                self.assertEqual(json.loads(reader.metadata["/AIGC"])["AIGC"], label["AIGC"])
                self.assertEqual(reader.metadata.get("/Title"), "A page", "the other Info entries stay")
                xmp = reader.xmp_metadata.rdf_root.toxml()
                self.assertIn("pdf-1", xmp)
                if "xmp-" in src:
                    self.assertIn("Someone", xmp, "the XMP already there is kept")
                self.assertEqual(len(reader.pages), 1)
                self.assertEqual(reader.pages[0].get_contents().get_data(), original.pages[0].get_contents().get_data())
                self.assertIn("Generated text", reader.pages[0].extract_text())
                subprocess.run(["qpdf", "--check", out], check=True, capture_output=True)
                self.assertEqual(json.loads(self.exiftool(out)["AIGC"])["AIGC"], label["AIGC"])
                # The platform's label replaces it: still one label, in both carriers.
                again = os.path.join(self.dir, "platform-" + os.path.basename(src))
                run("label", out, "-o", again, "--propagate", "--platform", "PLAT")
                report = json.loads(run("verify", again).stdout)[0]
                self.assertEqual(report["verdict"], "compliant", report)
                self.assertEqual(sorted(l["carrier"] for l in report["labels"]), ["pdf-info", "xmp"])
                self.assertEqual({l["fields"]["ContentPropagator"] for l in report["labels"]}, {"PLAT"})
                self.assertEqual(pypdf.PdfReader(again).metadata["/AIGC"], report["labels"][0]["json"])

    def office(self):
        """A docx, xlsx and pptx written by python-docx, openpyxl and python-pptx; the xlsx with a custom
        property of its own already."""
        import docx, openpyxl, pptx
        from openpyxl.packaging.custom import StringProperty
        d = self.dir
        doc = docx.Document()
        doc.add_paragraph("由模型生成的段落。")
        doc.save(f"{d}/a.docx")
        wb = openpyxl.Workbook()
        wb.active["A1"] = "生成的表格"
        wb.custom_doc_props.append(StringProperty(name="Department", value="Research"))
        wb.save(f"{d}/a.xlsx")
        deck = pptx.Presentation()
        slide = deck.slides.add_slide(deck.slide_layouts[5])
        slide.shapes.title.text = "生成的幻灯片"
        deck.save(f"{d}/a.pptx")
        return ["a.docx", "a.xlsx", "a.pptx"]

    def test_ooxml_custom_property_read_by_openpyxl_with_identical_parts(self):
        import zipfile, docx, openpyxl, pptx
        for name in self.office():
            with self.subTest(name=name):
                src, out, label = self.label(name, "--producer", PRODUCER, "--produce-id", "doc-1")
                with zipfile.ZipFile(src) as a, zipfile.ZipFile(out) as b:
                    self.assertIsNone(b.testzip())
                    touched = {"[Content_Types].xml", "_rels/.rels", "docProps/custom.xml"}
                    for info in a.infolist():
                        if info.filename not in touched:
                            self.assertEqual(a.read(info), b.read(info.filename), info.filename)
                    custom = b.read("docProps/custom.xml").decode()
                    self.assertIn("custom-properties", b.read("_rels/.rels").decode())
                    self.assertIn("/docProps/custom.xml", b.read("[Content_Types].xml").decode())
                self.assertEqual(custom.count('name="AIGC"'), 1)
                if name.endswith(".docx"):
                    self.assertEqual([p.text for p in docx.Document(out).paragraphs], ["由模型生成的段落。"])
                elif name.endswith(".pptx"):
                    self.assertEqual(pptx.Presentation(out).slides[0].shapes.title.text, "生成的幻灯片")
                # openpyxl reads custom properties of any package part it is given: the xlsx.
                if name.endswith(".xlsx"):
                    wb = openpyxl.load_workbook(out)
                    self.assertEqual(wb.active["A1"].value, "生成的表格")
                    props = {p.name: p.value for p in wb.custom_doc_props.props}
                    self.assertEqual(props["Department"], "Research", "the other custom properties stay")
                    self.assertEqual(json.loads(props["AIGC"])["AIGC"], label["AIGC"])
                again = os.path.join(self.dir, "platform-" + name)
                run("label", out, "-o", again, "--propagate", "--platform", "PLAT")
                report = json.loads(run("verify", again).stdout)[0]
                self.assertEqual(report["verdict"], "compliant", report)
                self.assertEqual([l["carrier"] for l in report["labels"]], ["ooxml-custom"])
                self.assertEqual(report["labels"][0]["fields"]["ContentPropagator"], "PLAT")

    @staticmethod
    def decode(path, rate=None):
        """Mono 16-bit samples as ffmpeg decodes them (at the file's own rate unless `rate`)."""
        import array
        cmd = ["ffmpeg", "-loglevel", "error", "-i", path, "-ac", "1", "-f", "s16le"]
        if rate:
            cmd += ["-ar", str(rate)]
        out = subprocess.run(cmd + ["-"], capture_output=True, check=True).stdout
        return array.array("h", out)

    @staticmethod
    def tones(samples, rate):
        """(start, length) in seconds of each stretch louder than 10% of full scale, by 5 ms windows."""
        w = rate // 200
        loud = [max(abs(x) for x in samples[i:i + w]) > 3276 for i in range(0, len(samples) - w, w)]
        runs, start = [], None
        for i, on in enumerate(loud + [False]):
            if on and start is None:
                start = i
            elif not on and start is not None:
                runs.append((start * w / rate, (i - start) * w / rate))
                start = None
        return runs

    def assert_rhythm(self, runs, unit):
        """Morse "AI": tones of 1, 3, 1, 1 units with gaps of 1, 3, 1 (unit in seconds, +-25 ms)."""
        self.assertEqual(len(runs), 4, runs)
        for (_, length), want in zip(runs, [1, 3, 1, 1]):
            self.assertAlmostEqual(length, want * unit, delta=0.03, msg=runs)
        for (a, la), (b, _), want in zip(runs, runs[1:], [1, 3, 1]):
            self.assertAlmostEqual(b - a - la, want * unit, delta=0.03, msg=runs)

    def test_audible_label_in_wav_and_raw_pcm_then_the_original_samples(self):
        raw = lambda p: subprocess.run(["sox", p, "-t", "raw", "-"], capture_output=True, check=True).stdout
        src, out, _ = self.label("a.wav", "--producer", PRODUCER, "--audible")
        original, marked = raw(src), raw(out)
        self.assertTrue(marked.endswith(original), "the original samples follow unchanged")
        rate = 8000
        runs = self.tones(self.decode(out), rate)
        self.assertAlmostEqual(runs[0][0], 0.0, delta=0.01)
        self.assert_rhythm(runs[:4], 0.120)
        self.assertEqual(json.loads(run("verify", out).stdout)[0]["verdict"], "compliant")
        # At the end, and raw 24 kHz PCM (OpenAI speech) with the layout given.
        _, end, _ = self.label("a.wav", "--producer", PRODUCER, "--audible", "end")
        self.assertTrue(raw(end).startswith(original))
        pcm = os.path.join(self.dir, "speech.pcm")
        with open(pcm, "wb") as f:
            f.write(b"\0\0" * 24000)
        marked_pcm = os.path.join(self.dir, "speech-marked.pcm")
        run("label", pcm, "-o", marked_pcm, "--producer", PRODUCER, "--audible", "--pcm", "24000:1:s16le")
        import array
        with open(marked_pcm, "rb") as f:
            samples = array.array("h", f.read())
        self.assert_rhythm(self.tones(samples, 24000), 0.120)
        self.assertEqual(samples[-24000:].tobytes(), b"\0\0" * 24000)

    def test_audible_label_in_mp3_frames_of_its_own_kind(self):
        d = self.dir
        subprocess.run(["sox", "-n", "-r", "44100", "-c", "2", f"{d}/stereo.wav", "synth", "1", "sine", "300", "vol", "0.05"], check=True)
        subprocess.run(["lame", "--quiet", "-b", "128", f"{d}/stereo.wav", f"{d}/stereo.mp3"], check=True)
        for name, rate, frame in [("a.mp3", 8000, 576 / 8000), ("stereo.mp3", 44100, 1152 / 44100)]:
            with self.subTest(name=name):
                src, out, _ = self.label(name, "--producer", PRODUCER, "--audible")
                before, after = self.decode(src, rate), self.decode(out, rate)
                unit = round(0.120 / frame) * frame
                self.assert_rhythm(self.tones(after[:int(rate * 14 * unit)], rate), unit)
                # Then the original, sample for sample (the decoder's overlap with our silent frames adds nothing).
                tail = after[len(after) - len(before):]
                self.assertLessEqual(max(abs(a - b) for a, b in zip(tail, before)), 2)
                self.assertAlmostEqual(len(after) - len(before), 14 * unit * rate, delta=frame * rate)
                self.assertEqual(json.loads(run("verify", out).stdout)[0]["verdict"], "compliant")
                info = subprocess.run(["ffprobe", "-loglevel", "error", "-show_entries", "format=duration", "-of", "csv=p=0", out],
                                      capture_output=True, text=True, check=True).stdout
                self.assertAlmostEqual(float(info), len(after) / rate, delta=0.1, msg="the Info frame's counts were updated")

    def test_mp4_round_trip_with_identical_frames(self):
        frames = lambda p: subprocess.run(["ffmpeg", "-loglevel", "error", "-i", p, "-f", "framemd5", "-"],
                                          capture_output=True, text=True, check=True).stdout.splitlines()[-5:]
        for name in ["a.mp4", "fast.mp4", "a.m4a"]:
            with self.subTest(name=name):
                src, out, label = self.label(name, "--producer", PRODUCER, "--produce-id", "av-1")
                self.assertEqual(json.loads(self.exiftool(out)["AIGC"])["AIGC"], label["AIGC"])
                self.assertEqual(frames(src), frames(out))
                _, twice, _ = self.label(os.path.basename(out), "--producer", PRODUCER, "--produce-id", "av-2")
                report = json.loads(run("verify", twice).stdout)[0]
                self.assertEqual(report["verdict"], "compliant")
                self.assertEqual([l["fields"]["ProduceID"] for l in report["labels"]], ["av-2"])
                self.assertEqual(frames(src), frames(twice))

    def test_one_label_per_file_and_propagation(self):
        src, out, _ = self.label("a.png", "--producer", PRODUCER, "--key-file", os.path.join(self.dir, "key"))
        platform = os.path.join(self.dir, "platform.png")
        r = run("label", out, "-o", platform, "--propagate", "--platform", "PLATFORM01", "--propagate-id", "p-1",
                "--key-file", os.path.join(self.dir, "key"))
        label = json.loads(r.stdout)["AIGC"]
        self.assertEqual((label["Label"], label["ContentPropagator"], label["PropagateID"]), ("1", "PLATFORM01", "p-1"))
        report = json.loads(run("verify", platform, "--key-file", os.path.join(self.dir, "key")).stdout)[0]
        self.assertEqual(report["verdict"], "compliant", report)
        self.assertEqual(len(report["labels"]), 1)
        # The wrong key exposes the seal.
        with open(os.path.join(self.dir, "other"), "wb") as f:
            f.write(b"other")
        r = run("verify", platform, "--key-file", os.path.join(self.dir, "other"), check=False)
        self.assertEqual(r.returncode, 1)
        self.assertIn("ReservedCode1 does not verify", r.stdout)
        # Unlabeled and undeclared: refused; declared: Label "2".
        r = run("label", src, "-o", platform, "--propagate", "--platform", "PLATFORM01", check=False)
        self.assertEqual(r.returncode, 2)
        r = run("label", src, "-o", platform, "--propagate", "--platform", "PLATFORM01", "--declared")
        self.assertEqual(json.loads(r.stdout)["AIGC"]["Label"], "2")

    def test_text_watermark_and_front_matter(self):
        src, out, label = self.label("a.md", "--producer", PRODUCER, "--produce-id", "txt-1", "--watermark",
                                     "--key-file", os.path.join(self.dir, "key"))
        report = json.loads(run("verify", out, "--key-file", os.path.join(self.dir, "key")).stdout)[0]
        self.assertEqual(report["format"], "text")
        self.assertEqual(report["verdict"], "compliant")
        self.assertEqual(report["watermark"]["payload"], "txt-1")

    def test_unreadable_files_exit_2_without_panic(self):
        with open(os.path.join(self.dir, "a.png"), "rb") as f:
            data = f.read()
        bad = os.path.join(self.dir, "bad.png")
        with open(bad, "wb") as f:
            f.write(data[:len(data) // 2])
        r = run("verify", bad, os.path.join(self.dir, "a.png"), check=False)
        self.assertEqual(r.returncode, 2, r.stderr)
        reports = json.loads(r.stdout)
        self.assertIn("malformed PNG", reports[0]["error"])
        self.assertEqual(reports[1]["verdict"], "no label")
        self.assertNotIn("panicked", r.stderr)


class Signatures(unittest.TestCase):
    """SM2 signatures over SM3 and HMAC-SM3, checked against an independent implementation (gmssl)."""

    @classmethod
    def setUpClass(cls):
        cls.dir = tempfile.mkdtemp()

    def keygen(self, name):
        path = os.path.join(self.dir, name)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        return path, json.loads(run("keygen", "-o", path).stdout)

    @staticmethod
    def secret(pem_path):
        """The 32-byte secret inside a PKCS#8 SM2 key (its ECPrivateKey: version 1, then the octet string)."""
        import base64
        with open(pem_path) as f:
            der = base64.b64decode("".join(l for l in f.read().splitlines() if not l.startswith("-----")))
        at = der.index(b"\x02\x01\x01\x04\x20") + 5
        return der[at:at + 32].hex()

    @staticmethod
    def gmssl(public_hex, secret_hex=None):
        from gmssl import sm2
        crypt = sm2.CryptSM2(private_key=secret_hex, public_key="00")
        crypt.public_key = public_hex[2:]  # x ‖ y; set directly (its constructor strips 0s and 4s)
        return crypt

    @staticmethod
    def message(*fields):
        return b"".join(f.encode() + b"\0" for f in fields)

    def text_file(self, label):
        path = os.path.join(self.dir, "signed-elsewhere.md")
        with open(path, "w") as f:
            f.write("---\nAIGC: '%s'\n---\n生成的文字。\n" % json.dumps({"AIGC": label}, separators=(",", ":")))
        return path

    def test_keygen_writes_pem_pair_private_key_owner_only(self):
        path, out = self.keygen("pair/one")
        with open(path + ".key") as f:
            self.assertTrue(f.read().startswith("-----BEGIN PRIVATE KEY-----"))
        with open(path + ".pub") as f:
            self.assertTrue(f.read().startswith("-----BEGIN PUBLIC KEY-----"))
        self.assertEqual(os.stat(path + ".key").st_mode & 0o777, 0o600)
        self.assertRegex(out["public_point"], "^04[0-9a-f]{128}$")
        r = run("keygen", "-o", path, check=False)
        self.assertEqual(r.returncode, 2)
        self.assertIn("exists", r.stderr)

    def test_our_signature_verifies_in_gmssl_and_theirs_in_ours(self):
        key, out = self.keygen("producer")
        src = os.path.join(self.dir, "a.md")
        with open(src, "w") as f:
            f.write("生成的回答。\n")
        labeled = os.path.join(self.dir, "labeled.md")
        label = json.loads(run("label", src, "-o", labeled, "--producer", PRODUCER, "--produce-id", "sig-1",
                               "--sign", key + ".key").stdout)["AIGC"]
        rc1 = label["ReservedCode1"]
        self.assertRegex(rc1, "^[0-9a-f]{128}$")
        message = self.message("1", PRODUCER, "sig-1")
        self.assertTrue(self.gmssl(out["public_point"]).verify_with_sm3(rc1, message), "gmssl verifies our signature")
        self.assertFalse(self.gmssl(out["public_point"]).verify_with_sm3(rc1, self.message("1", PRODUCER, "sig-2")))
        report = json.loads(run("verify", labeled, "--public-key", key + ".pub").stdout)[0]
        self.assertEqual(report["verdict"], "compliant", report)
        self.assertEqual(report["labels"][0]["codes"]["ReservedCode1"], "verified: sm2")

        # gmssl signs with the same key; we verify its signature with only the public key.
        theirs = self.gmssl(out["public_point"], self.secret(key + ".key")).sign_with_sm3(message)
        forged = dict(label, ReservedCode1=theirs)
        report = json.loads(run("verify", self.text_file(forged), "--public-key", key + ".pub").stdout)[0]
        self.assertEqual(report["verdict"], "compliant", report)
        self.assertEqual(report["labels"][0]["codes"]["ReservedCode1"], "verified: sm2")
        # Their signature over other fields: refused.
        edited = dict(forged, ProduceID="sig-2")
        r = run("verify", self.text_file(edited), "--public-key", key + ".pub", check=False)
        self.assertEqual(r.returncode, 1)
        self.assertIn("ReservedCode1 does not verify", r.stdout)

    def test_propagator_signs_over_producer_code_keys_by_party_code(self):
        producer, _ = self.keygen("keys/" + PRODUCER)
        platform, out = self.keygen("keys/PLATFORM01")
        src = os.path.join(self.dir, "b.md")
        with open(src, "w") as f:
            f.write("生成的回答。\n")
        first = os.path.join(self.dir, "b1.md")
        run("label", src, "-o", first, "--producer", PRODUCER, "--produce-id", "p-1", "--sign", producer + ".key")
        second = os.path.join(self.dir, "b2.md")
        label = json.loads(run("label", first, "-o", second, "--propagate", "--platform", "PLATFORM01",
                               "--propagate-id", "q-1", "--sign", platform + ".key").stdout)["AIGC"]
        message = self.message("1", "PLATFORM01", "q-1", label["ReservedCode1"])
        self.assertTrue(self.gmssl(out["public_point"]).verify_with_sm3(label["ReservedCode2"], message))
        report = json.loads(run("verify", second, "--public-key", os.path.join(self.dir, "keys")).stdout)[0]
        self.assertEqual(report["labels"][0]["codes"], {"ReservedCode1": "verified: sm2", "ReservedCode2": "verified: sm2"})
        # The platform's key does not pass for the producer's signature.
        other = os.path.join(self.dir, "only-platform")
        os.makedirs(other, exist_ok=True)
        with open(platform + ".pub") as f, open(os.path.join(other, PRODUCER + ".pub"), "w") as g:
            g.write(f.read())
        r = run("verify", second, "--public-key", other, check=False)
        self.assertEqual(r.returncode, 1)
        self.assertIn("ReservedCode1 does not verify", r.stdout)

    def test_hmac_sm3_matches_an_independent_hmac(self):
        from gmssl import sm3, func
        key_path = os.path.join(self.dir, "shared")
        with open(key_path, "wb") as f:
            f.write(b"shared key")
        src = os.path.join(self.dir, "c.md")
        with open(src, "w") as f:
            f.write("生成的回答。\n")
        out = os.path.join(self.dir, "c1.md")
        label = json.loads(run("label", src, "-o", out, "--producer", PRODUCER, "--produce-id", "h-1",
                               "--key-file", key_path, "--hmac", "sm3").stdout)["AIGC"]
        h = lambda b: bytes.fromhex(sm3.sm3_hash(func.bytes_to_list(b)))
        k = b"shared key".ljust(64, b"\0")
        inner = h(bytes(x ^ 0x36 for x in k) + self.message("1", PRODUCER, "h-1"))
        self.assertEqual(label["ReservedCode1"], h(bytes(x ^ 0x5C for x in k) + inner).hex())
        report = json.loads(run("verify", out, "--key-file", key_path).stdout)[0]
        self.assertEqual(report["labels"][0]["codes"]["ReservedCode1"], "verified: hmac-sm3")


if __name__ == "__main__":
    unittest.main(verbosity=2)
