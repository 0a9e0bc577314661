"""The image watermark's robustness suite: natural photos from scikit-image's bundled data, marked
by the CLI (`label --image-watermark`), attacked with Pillow, read back by `verify --key-file`.

    image_watermark.py [--quick] [--baseline] [--cli PATH]

Prints attack x detection rate x bit error rate, PSNR and SSIM, and the false finds on unmarked
images under many keys. `--quick` (make test) runs a small set and exits non-zero when a target
(or, for the stretch attack, a regression floor) is missed; the full run (make bench) reports the targets it misses, and with `--baseline` adds
ShieldMnt's invisible-watermark (dwtDct) on the same images.
"""

import argparse
import hashlib
import io
import json
import os
import subprocess
import sys
import tempfile

import numpy as np
from PIL import Image, ImageEnhance
from skimage import data as skdata
from skimage.metrics import structural_similarity

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
# The photographs among skimage.data's bundled images (not its text, page, logo, colour wheel or
# synthetic images: the targets are for natural photos).
PHOTOS = ["astronaut", "camera", "chelsea", "coffee", "rocket", "coins", "moon", "hubble_deep_field",
          "immunohistochemistry", "retina", "brick", "grass", "gravel", "clock", "cat", "stereo_motorcycle"]
QUICK = ["astronaut", "chelsea", "coffee", "camera"]


def photos(names):
    for name in names:
        try:
            img = getattr(skdata, name)()
        except Exception:  # not bundled in this wheel (needs a download): skip
            continue
        if isinstance(img, tuple):  # stereo_motorcycle: left, right, disparity
            img = img[0]
        if img.dtype != np.uint8:
            img = (255 * (img.astype(np.float64) - img.min()) / max(np.ptp(img), 1)).astype(np.uint8)
        if img.ndim == 2:
            img = np.stack([img] * 3, axis=2)
        img = img[:, :, :3]
        if min(img.shape[:2]) < 128:
            continue
        yield name, Image.fromarray(img, "RGB")


def reencode(img, fmt, **kw):
    buf = io.BytesIO()
    img.save(buf, fmt, **kw)
    return Image.open(io.BytesIO(buf.getvalue())).convert("RGB")


def central(img, share):
    w, h = img.size
    cw, ch = round(w * share), round(h * share)
    x0, y0 = (w - cw) // 2, (h - ch) // 2
    return img.crop((x0, y0, x0 + cw, y0 + ch))


def scaled(img, share):
    return img.resize((max(1, round(img.width * share)), max(1, round(img.height * share))), Image.BICUBIC)


ATTACKS = [
    ("none", lambda im: im),
    ("JPEG 50 (4:2:0)", lambda im: reencode(im, "JPEG", quality=50, subsampling=2)),
    ("resize 50%", lambda im: scaled(im, 0.5)),
    ("resize 200%", lambda im: scaled(im, 2.0)),
    ("crop central 80%", lambda im: central(im, 0.8)),
    ("crop central 60% (stretch)", lambda im: central(im, 0.6)),
    ("WebP 75", lambda im: reencode(im, "WEBP", quality=75)),
    ("brightness +20%", lambda im: ImageEnhance.Brightness(im).enhance(1.2)),
    ("brightness -20%", lambda im: ImageEnhance.Brightness(im).enhance(0.8)),
    ("contrast +20%", lambda im: ImageEnhance.Contrast(im).enhance(1.2)),
    ("contrast -20%", lambda im: ImageEnhance.Contrast(im).enhance(0.8)),
    ("screenshot: 75% -> JPEG 70 -> PNG", lambda im: reencode(reencode(scaled(im, 0.75), "JPEG", quality=70), "PNG")),
]
# The stretch goal, below 95% on small photos (a 60% crop of a 300 px photo holds under three
# tiles a side): --quick holds it to a floor that catches a regression, and every run prints
# where it stands. Every other attack is held to the 95%.
STRETCH = {"crop central 60% (stretch)"}
STRETCH_FLOOR = 0.75


def quality(a, b):
    x, y = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    mse = np.mean((x - y) ** 2)
    psnr = 10 * np.log10(255 ** 2 / mse) if mse > 0 else float("inf")
    return psnr, structural_similarity(x, y, channel_axis=2, data_range=255)


class Ours:
    name = "aigc-edge"

    def __init__(self, cli, work):
        self.cli, self.work = cli, work
        self.key = os.path.join(work, "wm.key")
        with open(self.key, "wb") as f:
            f.write(b"robustness suite key 0123456789")

    def embed(self, img, payload):
        src, out = os.path.join(self.work, "in.png"), os.path.join(self.work, "marked.png")
        img.save(src)
        subprocess.run([self.cli, "label", src, "-o", out, "--producer", "001191110102MACQD9K64010000",
                        "--image-watermark", "--key-file", self.key, "--watermark-payload", payload],
                       check=True, stdout=subprocess.DEVNULL)
        return Image.open(out).convert("RGB")

    def detect_many(self, imgs, key=None):
        paths = []
        for i, im in enumerate(imgs):
            paths.append(os.path.join(self.work, f"attacked-{i}.png"))
            im.save(paths[-1])
        keyfile = self.key
        if key is not None:
            keyfile = os.path.join(self.work, "other.key")
            with open(keyfile, "wb") as f:
                f.write(key)
        run = subprocess.run([self.cli, "verify", "--key-file", keyfile, *paths], capture_output=True, text=True)
        reports = json.loads(run.stdout)
        return [r["image_watermark"]["payload"] if r["image_watermark"]["found"] else None for r in reports]


class ShieldMnt:
    """ShieldMnt invisible-watermark (the one Stable Diffusion ships), dwtDct, 64 bits."""
    name = "invisible-watermark dwtDct"

    def __init__(self):
        # The package imports torch for its rivaGan method at import time; dwtDct needs none of it.
        import types
        sys.modules.setdefault("torch", types.ModuleType("torch"))
        from imwatermark import WatermarkDecoder, WatermarkEncoder
        import cv2
        self.cv2, self.Encoder, self.Decoder = cv2, WatermarkEncoder, WatermarkDecoder

    def embed(self, img, payload):
        enc = self.Encoder()
        enc.set_watermark("bytes", bytes.fromhex(payload))
        bgr = self.cv2.cvtColor(np.asarray(img), self.cv2.COLOR_RGB2BGR)
        out = enc.encode(bgr, "dwtDct")
        return Image.fromarray(self.cv2.cvtColor(out, self.cv2.COLOR_BGR2RGB))

    def detect_many(self, imgs, key=None):
        out = []
        for im in imgs:
            dec = self.Decoder("bytes", 64)
            try:
                bits = dec.decode(self.cv2.cvtColor(np.asarray(im), self.cv2.COLOR_RGB2BGR), "dwtDct")
                out.append(bytes(bits).hex())
            except Exception:
                out.append(None)
        return out


def bit_errors(found, payload):
    if found is None:
        return None
    return bin(int(found, 16) ^ int(payload, 16)).count("1") / 64


def payloads(name, rounds):
    """A payload per image and round: a scheme's weak spots depend on the bits, not only the image."""
    return [hashlib.sha256(f"{name}/{r}".encode()).hexdigest()[:16] for r in range(rounds)]


def run(method, images, rounds):
    rows, marked, missed = {}, [], {}
    qualities = []
    for name, img in images:
        for payload in payloads(name, rounds):
            m = method.embed(img, payload)
            marked.append((name, payload, m))
            qualities.append((quality(img, m), name))
    for attack, fn in ATTACKS:
        found = method.detect_many([fn(m) for _, _, m in marked])
        hits = sum(1 for (_, p, _), f in zip(marked, found) if f == p)
        missed[attack] = sorted({n for (n, p, _), f in zip(marked, found) if f != p})
        bers = [b for b in (bit_errors(f, p) for (_, p, _), f in zip(marked, found)) if b is not None]
        rows[attack] = (hits / len(marked), np.mean(bers) if bers else float("nan"))
    return rows, [q for q, _ in qualities], missed


def false_finds(method, images, keys):
    found = 0
    trials = 0
    for k in range(keys):
        for f in method.detect_many([img for _, img in images], key=b"other key %d" % k):
            trials += 1
            found += f is not None
    return found, trials


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--baseline", action="store_true")
    ap.add_argument("--cli", default=os.path.join(ROOT, "target", "release", "aigc-edge"))
    args = ap.parse_args()
    images = list(photos(QUICK if args.quick else PHOTOS))
    payload = "0123456789abcdef"
    rounds = 3
    failures = []
    with tempfile.TemporaryDirectory() as work:
        methods = [Ours(args.cli, work)]
        if args.baseline:
            methods.append(ShieldMnt())
        tables = []
        for method in methods:
            rows, qualities, missed = run(method, images, rounds)
            tables.append((method, rows, qualities))
            if method is methods[0]:
                ours_missed = missed
        print(f"\nimage watermark robustness: {len(images)} photos from skimage.data "
              f"({', '.join(n for n, _ in images)}); {rounds} payloads of 64 bits each")
        header = f"{'attack':36}" + "".join(f"{m.name:>34}" for m, _, _ in tables)
        print(header)
        print(f"{'':36}" + "".join(f"{'detected  bit errors*':>34}" for _ in tables))
        for attack, _ in ATTACKS:
            line = f"{attack:36}"
            for method, rows, _ in tables:
                rate, ber = rows[attack]
                line += f"{rate * 100:>22.1f}%{ber * 100:>10.1f}%"
            print(line)
        print("* of the payloads a method returned (ours returns only CRC-checked ones)")
        for method, rows, qualities in tables:
            psnr = [q[0] for q in qualities]
            ssim = [q[1] for q in qualities]
            print(f"{method.name}: PSNR min {min(psnr):.1f} dB mean {np.mean(psnr):.1f}; "
                  f"SSIM min {min(ssim):.4f} mean {np.mean(ssim):.4f}")
        ours, rows, qualities = tables[0]
        for attack, names in ours_missed.items():
            if names:
                print(f"{ours.name} missed after {attack}: {', '.join(names)}")
        names = [n for n, _ in images for _ in range(rounds)]
        worst = sorted(zip(qualities, names))[:3]
        print(f"{ours.name} lowest PSNR: " + ", ".join(f"{n} {q[0]:.1f} dB / SSIM {q[1]:.4f}" for q, n in worst))
        for attack, (rate, _) in rows.items():
            if rate < 0.95 and attack not in STRETCH:
                print(f"below the issue's target: {attack}: detected in {rate * 100:.1f}% < 95%")
            if rate < (STRETCH_FLOOR if attack in STRETCH else 0.95):
                failures.append(f"{attack}: detected in {rate * 100:.1f}%")
        if min(q[0] for q in qualities) < 40 or min(q[1] for q in qualities) < 0.98:
            failures.append("PSNR >= 40 dB and SSIM >= 0.98 missed")
        # False finds: every photo unmarked under many keys, and marked under another key.
        keys = 5 if args.quick else 1000 // max(1, len(images)) + 1
        found, trials = false_finds(ours, images, keys)
        marked = [ours.embed(img, payload) for _, img in images[:2]]
        other = ours.detect_many(marked, key=b"a different key")
        print(f"false finds: {found} of {trials} unmarked photo x key trials; "
              f"marked under another key: {sum(o is not None for o in other)} of {len(other)}")
        if found or any(o is not None for o in other):
            failures.append("a false find")
    for f in failures:
        print("MISSED:", f)
    sys.exit(1 if failures and args.quick else 0)


if __name__ == "__main__":
    main()
