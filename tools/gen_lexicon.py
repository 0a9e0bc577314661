#!/usr/bin/env python3
"""Writes the segmentation check's lexicon from jieba's dict.txt (MIT licence, in the `jieba`
wheel on PyPI): `word frequency` lines, Han words of 1-8 characters with a frequency above 0,
which is all `aigc_edge::segment::Lexicon` keeps. Other lines are left out; the file is what a
policy's `"segmentation": {"path": ...}` names and `aigc-edge compile` puts in the artifact.

    python3 tools/gen_lexicon.py [--dict PATH/dict.txt] [--out target/lexicon/jieba.txt]

Without --dict, the dict.txt of the `jieba` package importable by this Python is read.
"""
import argparse
import os
import re
import sys

HAN = re.compile(r"^[\u3400-\u4DBF\u4E00-\u9FFF\uF900-\uFAFF\U00020000-\U0003134F]{1,8}$")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dict", help="jieba's dict.txt (default: from the installed jieba package)")
    ap.add_argument("--out", default="target/lexicon/jieba.txt")
    args = ap.parse_args()
    path = args.dict
    if path is None:
        try:
            import jieba  # noqa: PLC0415 (only to find its file)
        except ImportError:
            sys.exit("gen_lexicon: no --dict and no `jieba` package (pip install jieba==0.42.1)")
        path = os.path.join(os.path.dirname(jieba.__file__), "dict.txt")
    kept = skipped = 0
    total = 0
    lines = []
    with open(path, encoding="utf-8") as f:
        for line in f:
            fields = line.split()
            if len(fields) < 2:
                continue
            word, freq = fields[0], int(fields[1])
            total += freq
            if freq > 0 and HAN.match(word):
                lines.append(f"{word} {freq}\n")
                kept += 1
            else:
                skipped += 1
    os.makedirs(os.path.dirname(args.out) or ".", exist_ok=True)
    with open(args.out, "w", encoding="utf-8") as f:
        f.write(f"# From jieba's dict.txt (MIT licence, https://github.com/fxsjy/jieba) by tools/gen_lexicon.py\n")
        f.writelines(lines)
    print(f"gen_lexicon: {kept} words kept, {skipped} left out, total frequency {total} -> {args.out}")


if __name__ == "__main__":
    main()
