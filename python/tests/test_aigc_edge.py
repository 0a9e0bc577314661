"""The Python package through its public API, and a corpus scan on a local Ray cluster (2
workers) whose report equals the CLI's. Run by `make test-python` (part of `make test`)."""
import json
import os
import subprocess
import sys
import threading

import pytest

import aigc_edge
from aigc_edge import AigcEdgeError, Assessment, Filter

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CLI = os.environ.get("AIGC_CLI", os.path.join(ROOT, "target", "release", "aigc-edge"))
KEYWORDS_PATH = os.path.join(ROOT, "tests", "fixtures", "keywords.txt")
POLICY_PATH = os.path.join(ROOT, "envoy", "demo", "policy.json")
with open(KEYWORDS_PATH, encoding="utf-8") as f:
    KEYWORDS = f.read()
# A 1x1 PNG.
PNG = bytes([137, 80, 78, 71, 13, 10, 26, 10, 0, 0, 0, 13, 73, 72, 68, 82, 0, 0, 0, 1, 0, 0, 0, 1, 8, 6, 0, 0, 0, 31,
             21, 196, 137, 0, 0, 0, 13, 73, 68, 65, 84, 120, 156, 99, 248, 207, 192, 240, 31, 0, 5, 0, 1, 255, 137, 153,
             61, 29, 0, 0, 0, 0, 73, 69, 78, 68, 174, 66, 96, 130])


def cli(*args, stdin=b""):
    return subprocess.run([CLI, *args], input=stdin, capture_output=True)


LINES = ["今天很好", "网上赌-博和色情", "你是SB吗", "usb接口", "电话13812345678，邮箱a@b.cn", "", "法轮功" * 3]


@pytest.mark.parametrize("policy", [None, POLICY_PATH])
def test_check_gives_the_clis_decisions(policy):
    args = ["check", "-k", KEYWORDS_PATH] + (["--policy", policy] if policy else [])
    out = cli(*args, stdin="\n".join(LINES).encode() + b"\n").stdout.decode().splitlines()
    # The demo policy names its own keyword file: inlined, as the Ray driver does.
    from aigc_edge.scan import _policy_text
    f = Filter(KEYWORDS, policy=_policy_text(policy))
    for line, expected in zip(LINES, out):
        got = f.check(line)
        assert list(got) == list(json.loads(expected)), "the same keys, in the same order"
        assert got == json.loads(expected), line
    assert f.check_batch(LINES) == [f.check(t) for t in LINES]


def test_check_batch_runs_in_threads():
    f = Filter(KEYWORDS)
    texts = ["网上赌博的新闻，" * 50, "今天天气很好。" * 50] * 200
    expected = f.check_batch(texts)
    results = [None] * 4

    def work(i):
        results[i] = f.check_batch(texts)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert all(r == expected for r in results)


def test_mask():
    f = Filter(KEYWORDS, policy='{"pii": {"action": "mask"}}')
    assert f.mask("网上赌博，电话13812345678") == "网上**，电话[MOBILE_1]"
    assert f.mask("今天很好") == "今天很好"


@pytest.mark.parametrize("make, message", [
    (lambda: Filter(KEYWORDS, policy='{"normalize": {"max_gap": 99}}'), "invalid policy field `normalize.max_gap`"),
    (lambda: Filter(artifact=b"not an artifact"), "bad dictionary artifact"),
    (lambda: Filter(KEYWORDS, artifact=Filter(KEYWORDS).to_artifact()), "not both"),
    (lambda: Filter(""), "dictionary has no usable keyword"),
    (lambda: Filter(policy='{"dictionaries": [{"path": "k.txt"}]}'), "reads no files (k.txt)"),
    (lambda: aigc_edge.verify_file(PNG[:40]), "malformed PNG at byte"),
    (lambda: aigc_edge.label_file(PNG, "bad producer!"), "ContentProducer"),
    (lambda: Assessment([], threshold=5), "threshold 5 is not a share between 0 and 1"),
])
def test_errors_are_python_exceptions_with_the_core_message(make, message):
    with pytest.raises(AigcEdgeError, match=None) as e:
        make()
    assert message in str(e.value)
    assert isinstance(e.value, ValueError)


def test_artifact_round_trip_and_dirty_lines():
    f = Filter(KEYWORDS)
    again = Filter(artifact=f.to_artifact())
    assert again.keyword_count == f.keyword_count
    assert again.check("网上赌-博") == f.check("网上赌-博")
    assert Filter("赌博\tA.1h\n色情\tA.7z\n").warnings == ['dictionaries[0]:2: unknown category "A.7z" ignored']


def test_label_and_verify_files(tmp_path):
    labeled = aigc_edge.label_file(PNG, "PRODUCER1", "id-1", key=b"k")
    report = aigc_edge.verify_file(labeled, key=b"k")
    assert report["format"] == "png" and report["verdict"] == "compliant"
    assert report["labels"][0]["fields"]["ProduceID"] == "id-1"
    assert report["labels"][0]["codes"]["ReservedCode1"] == "verified: hmac-sha256"
    assert aigc_edge.verify_file(labeled, key=b"other")["verdict"] == "non-compliant"
    (tmp_path / "k").write_bytes(b"k")
    cli_report = json.loads(cli("verify", "-", "--key-file", str(tmp_path / "k"), stdin=labeled).stdout)[0]
    assert cli_report["labels"] == report["labels"]


def test_sm2_signed_files_verify_with_the_public_key(tmp_path):
    cli("keygen", "-o", str(tmp_path / "p"))
    private, public = (tmp_path / "p.key").read_text(), (tmp_path / "p.pub").read_text()
    signed = aigc_edge.label_file(PNG, "PRODUCER1", "id-1", signing_key=private)
    report = aigc_edge.verify_file(signed, public_keys=[public])
    assert report["verdict"] == "compliant"
    assert report["labels"][0]["codes"]["ReservedCode1"] == "verified: sm2"
    cli_report = json.loads(cli("verify", "-", "--public-key", str(tmp_path / "p.pub"), stdin=signed).stdout)[0]
    assert cli_report["labels"] == report["labels"]
    with pytest.raises(AigcEdgeError, match="PKCS#8"):
        aigc_edge.label_file(PNG, "PRODUCER1", signing_key="not a key")


def corpus(tmp_path, files=2, per_file=300):
    """A JSONL corpus over a few sources, with some harmful documents, bad lines and blanks."""
    paths = []
    for n in range(files):
        path = tmp_path / f"part-{n}.jsonl"
        lines = []
        for i in range(per_file):
            source = ["news", "forum", "books"][i % 3]
            text = "有人在网上赌博" if (i % 11 == 0 and source == "forum") or i % 97 == 5 else f"第{i}句话，今天很好。"
            lines.append(json.dumps({"text": text, "source": source}, ensure_ascii=False))
            if i % 83 == 7:
                lines.append("not json")
            if i % 131 == 0:
                lines.append("")
        path.write_text("\n".join(lines) + "\n", encoding="utf-8")
        paths.append(str(path))
    return paths


def cli_scan(paths, *extra):
    out = cli("scan", "-k", KEYWORDS_PATH, *paths, *extra)
    assert out.returncode in (0, 1), out.stderr
    return out


def same(a, b):
    """Byte for byte after key ordering."""
    return json.dumps(a, sort_keys=True, ensure_ascii=False) == json.dumps(b, sort_keys=True, ensure_ascii=False)


def test_assessment_in_one_process_equals_the_cli(tmp_path):
    paths = corpus(tmp_path)
    expected = json.loads(cli_scan(paths, "--sample", "40", "--seed", "3").stdout)
    assert expected["rejected_sources"] == ["forum"]
    f = Filter(KEYWORDS)
    whole = Assessment(paths, sample=40, seed=3)
    shares = [Assessment(paths, sample=40, seed=3) for _ in range(3)]
    for path in reversed(paths):
        with open(path, "rb") as fh:
            lines = fh.read().split(b"\n")[:-1]
        numbers = list(range(1, len(lines) + 1))
        whole.lines(f, [path] * len(lines), numbers, lines)
        for k, share in enumerate(shares):
            share.lines(f, [path] * len(lines[k::3]), numbers[k::3], lines[k::3])
    assert same(whole.report(), expected)
    runs = Assessment(paths, sample=40, seed=3)
    for path in paths:
        with open(path, "rb") as fh:
            data = fh.read()
        cut = data.index(b"\n", len(data) // 2) + 1  # two runs of whole lines
        runs.jsonl(f, path, data[:cut].count(b"\n") + 1, data[cut:])
        runs.jsonl(f, path, 1, data[:cut])
    assert same(runs.report(), expected)
    merged = Assessment(paths, sample=40, seed=3)
    for share in shares:
        merged.merge(share.to_bytes())
    assert same(merged.report(), expected)
    assert merged.rejected_sources == ["forum"]


@pytest.fixture(scope="module")
def ray_cluster():
    ray = pytest.importorskip("ray")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, logging_level="ERROR")
    ray.data.DataContext.get_current().enable_progress_bars = False
    yield ray.get_runtime_context().gcs_address
    ray.shutdown()


@pytest.mark.parametrize("workers", [1, 2])
def test_ray_scan_equals_the_cli(tmp_path, ray_cluster, workers):
    import aigc_edge.ray as on_ray

    paths = corpus(tmp_path, files=3)
    expected = json.loads(cli_scan(paths, "--sample", "50", "--seed", "11").stdout)
    artifact = Filter(KEYWORDS).to_artifact()
    assessment = on_ray.scan(on_ray.read_documents(paths), paths, artifact=artifact, sample=50, seed=11,
                             workers=workers, batch_size=97)
    assert same(assessment.report(), expected)


def test_ray_reads_parquet(tmp_path, ray_cluster):
    import pyarrow as pa
    import pyarrow.parquet as pq

    import aigc_edge.ray as on_ray

    path = str(tmp_path / "docs.parquet")
    texts = ["网上赌博" if i % 4 == 0 else "今天很好" for i in range(100)]
    pq.write_table(pa.table({"text": texts, "source": ["a" if i % 2 else "b" for i in range(100)]}), path)
    report = on_ray.scan(on_ray.read_documents([path]), [path], artifact=Filter(KEYWORDS).to_artifact(),
                         sample=10, batch_size=33).report()
    assert report["documents"] == 100
    assert report["sources"]["b"]["flagged"] == 25 and report["sources"]["a"]["flagged"] == 0
    assert {i["file"] for i in report["sample"]["items"]} == {path}
    single = Assessment([path], sample=10)
    single.documents(Filter(KEYWORDS), [path] * 100, list(range(1, 101)), texts, ["a" if i % 2 else "b" for i in range(100)])
    assert same(single.report(), report)


def test_entry_point_prints_the_clis_report_byte_for_byte(tmp_path, ray_cluster):
    paths = corpus(tmp_path)
    expected = cli_scan(paths, "--sample", "30")
    out = subprocess.run([sys.executable, "-m", "aigc_edge.scan", "--address", ray_cluster, "-k", KEYWORDS_PATH,
                          "--sample", "30", *paths], capture_output=True)
    assert out.stdout == expected.stdout, out.stderr.decode()[-2000:]
    assert out.returncode == expected.returncode == 1  # the forum source is over 5%
    bad = subprocess.run([sys.executable, "-m", "aigc_edge.scan", "-k", KEYWORDS_PATH, "--policy", os.devnull, *paths],
                         capture_output=True)
    assert bad.returncode == 2 and b"aigc_edge.scan:" in bad.stderr
