"""Training-data assessment on Ray Data: the report `aigc-edge scan` prints, from a cluster.

    import ray, aigc_edge, aigc_edge.ray
    ray.init()
    artifact = aigc_edge.Filter(open("keywords.txt").read()).to_artifact()
    files = ["s3://corpus/part-000.jsonl", "s3://corpus/part-001.parquet"]
    assessment = aigc_edge.ray.scan(aigc_edge.ray.read_documents(files), files, artifact=artifact)
    print(assessment.report_json())

`read_documents` reads each file in one task (any path Ray's pyarrow filesystems read: local,
s3://, gs://, hdfs://), numbering lines as the CLI does; `scan` runs `map_batches` over Arrow
batches on an actor pool, each actor building its filter once from the compiled artifact, each
batch giving a share of the assessment, and the driver merges the shares. A document's spot-check
draw depends on the seed, its file and its line only, so the report is the CLI's, whatever the
number of workers.
"""
from typing import Any, Dict, Optional, Sequence

from ._core import Assessment, Filter

#: The columns `scan` reads: `file` and `line` always; `json` (a raw JSONL line, parsed by the
#: core exactly as the CLI parses it) or `text` and `source` (documents already read).
COLUMNS = ("file", "line", "json", "text", "source")


def _open(path: str):
    import pyarrow.fs

    if "://" in path:
        fs, inner = pyarrow.fs.FileSystem.from_uri(path)
    else:
        import os

        fs, inner = pyarrow.fs.LocalFileSystem(), os.path.abspath(path)
    return fs, inner


def _read_file(batch, text_field: str, source_field: str):
    """One file (a batch of one `file` row) as rows of COLUMNS."""
    import pyarrow as pa

    (name,) = batch.column("file").to_pylist()
    fs, path = _open(name)
    if name.endswith(".parquet"):
        import pyarrow.parquet as pq

        table = pq.read_table(path, filesystem=fs)
        n = table.num_rows
        texts = table.column(text_field) if text_field in table.column_names else pa.nulls(n, pa.string())
        sources = table.column(source_field) if source_field in table.column_names else pa.nulls(n, pa.string())
        return pa.table({
            "file": pa.array([name] * n, pa.string()),
            "line": pa.array(range(1, n + 1), pa.uint64()),
            "json": pa.nulls(n, pa.binary()),
            "text": texts.cast(pa.string()),
            "source": sources.cast(pa.string()),
        })
    with fs.open_input_stream(path) as f:
        data = f.read()
    lines = data.split(b"\n")
    if data.endswith(b"\n"):
        lines.pop()  # the last line's newline ends it; it does not start another
    n = len(lines)
    return pa.table({
        "file": pa.array([name] * n, pa.string()),
        "line": pa.array(range(1, n + 1), pa.uint64()),
        "json": pa.array(lines, pa.binary()),
        "text": pa.nulls(n, pa.string()),
        "source": pa.nulls(n, pa.string()),
    })


def read_documents(paths: Sequence[str], *, text_field: str = "text", source_field: str = "source"):
    """A Ray Dataset of the documents in JSONL and Parquet files (Parquet by its `.parquet`
    name), one read task per file, with the columns `scan` reads."""
    import ray

    files = [str(p) for p in paths]
    items = ray.data.from_items([{"file": f} for f in files], override_num_blocks=max(1, len(files)))
    return items.map_batches(_read_file, batch_format="pyarrow", batch_size=1,
                             fn_kwargs={"text_field": text_field, "source_field": source_field})


class _AssessBatch:
    """An actor of the pool: the filter built once, from the artifact; a share per batch."""

    def __init__(self, artifact: bytes, policy: Optional[str], files: Sequence[str], options: Dict[str, Any]):
        self.filter = Filter(artifact=artifact, policy=policy)
        self.files = list(files)
        self.options = options

    def __call__(self, batch):
        share = Assessment(self.files, **self.options)
        files = batch.column("file").to_pylist()
        numbers = batch.column("line").to_pylist()
        raw = batch.column("json").to_pylist() if "json" in batch.column_names else [None] * len(files)
        texts = batch.column("text").to_pylist() if "text" in batch.column_names else [None] * len(files)
        sources = batch.column("source").to_pylist() if "source" in batch.column_names else [None] * len(files)
        jsonl = [i for i, r in enumerate(raw) if r is not None]
        if jsonl:
            share.lines(self.filter, [files[i] for i in jsonl], [numbers[i] for i in jsonl], [raw[i] for i in jsonl])
        read = [i for i, r in enumerate(raw) if r is None and texts[i] is not None]
        if read:
            share.documents(self.filter, [files[i] for i in read], [numbers[i] for i in read],
                            [texts[i] for i in read], [sources[i] for i in read])
        return {"state": [share.to_bytes()]}


def scan(dataset, files: Sequence[str], *, artifact: bytes, policy: Optional[str] = None, text_field: str = "text",
         source_field: str = "source", sample: int = 4000, seed: int = 0, threshold: float = 0.05,
         workers: int = 2, batch_size: int = 65536) -> Assessment:
    """Assesses `dataset` (rows of COLUMNS, e.g. from `read_documents(files)`) on `workers`
    actors; `files` are the file names as the report lists them. Returns the merged
    `Assessment`: `report()`, `report_json()`, `rejected_sources`."""
    options = {"text_field": text_field, "source_field": source_field, "sample": sample, "seed": seed,
               "threshold": threshold}
    total = Assessment(list(files), **options)  # refuses bad options before any work starts
    shares = dataset.map_batches(
        _AssessBatch, batch_format="pyarrow", batch_size=batch_size, concurrency=workers,
        fn_constructor_kwargs={"artifact": artifact, "policy": policy, "files": list(files), "options": options})
    for batch in shares.iter_batches(batch_format="pyarrow", batch_size=None):
        for state in batch.column("state").to_pylist():
            total.merge(state)
    return total
