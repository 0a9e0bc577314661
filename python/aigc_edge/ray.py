"""Training-data assessment on Ray Data: the report `aigc-edge scan` prints, from a cluster.

    import ray, aigc_edge, aigc_edge.ray
    ray.init()
    artifact = aigc_edge.Filter(open("keywords.txt").read()).to_artifact()
    files = ["s3://corpus/part-000.jsonl", "s3://corpus/part-001.parquet"]
    assessment = aigc_edge.ray.scan(aigc_edge.ray.read_documents(files), files, artifact=artifact)
    print(assessment.report_json())

`read_documents` reads each file in one task (any path Ray's pyarrow filesystems read: local,
s3://, gs://, hdfs://), in runs of whole lines numbered as the CLI numbers them; `scan` runs `map_batches` over Arrow
batches on an actor pool, each actor building its filter once from the compiled artifact, each
batch giving a share of the assessment, and the driver merges the shares. A document's spot-check
draw depends on the seed, its file and its line only, so the report is the CLI's, whatever the
number of workers.
"""
from typing import Any, Dict, Optional, Sequence

from ._core import Assessment, Filter

#: The columns `scan` reads: `file` and `line` always; then either `jsonl` (a run of whole JSONL
#: lines, the first being `line`, parsed by the core exactly as the CLI parses them) or `text`
#: and `source` (one document already read, e.g. a Parquet row).
COLUMNS = ("file", "line", "jsonl", "text", "source")
#: JSONL is read and handed to the core in runs of about this many bytes (whole lines).
CHUNK_BYTES = 32 << 20


def _open(path: str):
    import pyarrow.fs

    if "://" in path:
        fs, inner = pyarrow.fs.FileSystem.from_uri(path)
    else:
        import os

        fs, inner = pyarrow.fs.LocalFileSystem(), os.path.abspath(path)
    return fs, inner


def _table(name, lines, jsonl, texts, sources):
    import pyarrow as pa

    n = len(lines)
    return pa.table({
        "file": pa.array([name] * n, pa.string()),
        "line": pa.array(lines, pa.uint64()),
        "jsonl": jsonl if jsonl is not None else pa.nulls(n, pa.large_binary()),
        "text": texts if texts is not None else pa.nulls(n, pa.string()),
        "source": sources if sources is not None else pa.nulls(n, pa.string()),
    })


def _read_file(batch, text_field: str, source_field: str):
    """One file (a batch of one `file` row), yielded as tables of COLUMNS: Parquet a row per
    document, JSONL in runs of whole lines of about CHUNK_BYTES (memory stays bounded)."""
    import pyarrow as pa

    (name,) = batch.column("file").to_pylist()
    fs, path = _open(name)
    if name.endswith(".parquet"):
        import pyarrow.parquet as pq

        table = pq.read_table(path, filesystem=fs)
        n = table.num_rows
        texts = table.column(text_field) if text_field in table.column_names else pa.nulls(n, pa.string())
        sources = table.column(source_field) if source_field in table.column_names else pa.nulls(n, pa.string())
        yield _table(name, list(range(1, n + 1)), None, texts.cast(pa.string()), sources.cast(pa.string()))
        return
    line, rest = 1, b""
    with fs.open_input_stream(path) as f:
        while True:
            data = f.read(CHUNK_BYTES)
            if not data:
                break
            data = rest + data
            cut = data.rfind(b"\n") + 1
            run, rest = data[:cut], data[cut:]
            if run:
                yield _table(name, [line], pa.array([run], pa.large_binary()), None, None)
                line += run.count(b"\n")
    if rest:
        yield _table(name, [line], pa.array([rest], pa.large_binary()), None, None)


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
        columns = {name: batch.column(name).to_pylist() if name in batch.column_names else [None] * batch.num_rows
                   for name in COLUMNS}
        documents = []
        for file, line, jsonl, text, source in zip(*(columns[name] for name in COLUMNS)):
            if jsonl is not None:
                share.jsonl(self.filter, file, line, jsonl)
            elif text is not None:
                documents.append((file, line, text, source))
        if documents:
            share.documents(self.filter, *map(list, zip(*documents)))
        return {"state": [share.to_bytes()]}


def scan(dataset, files: Sequence[str], *, artifact: bytes, policy: Optional[str] = None, text_field: str = "text",
         source_field: str = "source", sample: int = 4000, seed: int = 0, threshold: float = 0.05,
         workers: int = 2, batch_size: Optional[int] = None) -> Assessment:
    """Assesses `dataset` (rows of COLUMNS, e.g. from `read_documents(files)`) on `workers`
    actors, a share per batch (`batch_size` rows; by default each block as read: a run of
    JSONL lines, a Parquet file's documents); `files` are the file names as the report lists them. Returns the merged
    `Assessment`: `report()`, `report_json()`, `rejected_sources`."""
    options = {"text_field": text_field, "source_field": source_field, "sample": sample, "seed": seed,
               "threshold": threshold}
    total = Assessment(list(files), **options)  # refuses bad options before any work starts
    import ray

    shares = dataset.map_batches(
        _AssessBatch, batch_format="pyarrow", batch_size=batch_size, compute=ray.data.ActorPoolStrategy(size=workers),
        fn_constructor_kwargs={"artifact": artifact, "policy": policy, "files": list(files), "options": options})
    for batch in shares.iter_batches(batch_format="pyarrow", batch_size=None):
        for state in batch.column("state").to_pylist():
            total.merge(state)
    return total
