#!/usr/bin/env python3
"""The segmentation baseline `make bench` prints beside the segmentation check: Higress's method
of keyword matching (segment each line with jieba, the deny words added as user words, then
look each token up in the deny set), over the same lines the Rust bench checks.

    python jieba_baseline.py DENY_WORDS LINES_FILE [LINES_FILE ...]

Each file holds one item a line. Prints one JSON object: for each lines file its share of
lines flagged (%), and the segmentation speed in MiB/s over all of them (set-up not timed).
"""
import json
import logging
import sys
import time

import jieba


def main():
    deny_path, *line_paths = sys.argv[1:]
    jieba.setLogLevel(logging.WARNING)
    jieba.initialize()
    with open(deny_path, encoding="utf-8") as f:
        deny = {w.strip().lower() for w in f if w.strip()}
    for word in deny:
        jieba.add_word(word)
    report = {"deny_words": len(deny)}
    seconds = 0.0
    size = 0
    for path in line_paths:
        with open(path, encoding="utf-8") as f:
            lines = f.read().split("\n")
        start = time.perf_counter()
        flagged = sum(1 for line in lines if any(t.lower() in deny for t in jieba.cut(line)))
        seconds += time.perf_counter() - start
        size += sum(len(line.encode("utf-8")) + 1 for line in lines)
        report[path] = 100.0 * flagged / max(1, len(lines))
    report["mib_s"] = size / (1 << 20) / seconds if seconds else 0.0
    print(json.dumps(report))


if __name__ == "__main__":
    main()
