"""`python -m aigc_edge.scan`: `aigc-edge scan` on a Ray cluster.

    python -m aigc_edge.scan --keywords keywords.txt [--policy policy.json] \\
        [--address ray://head:10001] [--workers 8] corpus/part-*.jsonl s3://bucket/more.parquet

Prints the report `aigc-edge scan` prints (the same JSON, byte for byte for the same files);
exit 0 when every source may be collected, 1 when a source is over the threshold (5%), 2 on an
error. Without `--address` a local Ray instance is started for the run.
"""
import argparse
import json
import os
import sys

from . import AigcEdgeError, Filter


def _policy_text(path):
    """The policy JSON with every `dictionaries[].path` read and inlined (relative to the
    policy), since workers read no files of the driver's."""
    if path is None:
        return None
    with open(path, encoding="utf-8") as f:
        policy = json.load(f)
    base = os.path.dirname(os.path.abspath(path))
    for entry in policy.get("dictionaries", []):
        if "path" in entry:
            with open(os.path.join(base, entry.pop("path")), encoding="utf-8") as f:
                entry["text"] = f.read()
    return json.dumps(policy, ensure_ascii=False)


def _read(paths):
    out = []
    for path in paths:
        with open(path, encoding="utf-8") as f:
            out.append(f.read())
    return "\n".join(out) if out else None


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m aigc_edge.scan", description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("paths", nargs="+", metavar="PATH", help="JSONL or Parquet files, local or any path Ray reads")
    words = parser.add_argument_group("dictionary")
    words.add_argument("-k", "--keywords", action="append", default=[], metavar="FILE", help="deny words (repeatable)")
    words.add_argument("--allow", action="append", default=[], metavar="FILE", help="allow words (repeatable)")
    words.add_argument("-d", "--dictionary", metavar="FILE", help="a compiled artifact (aigc-edge compile)")
    words.add_argument("-p", "--policy", metavar="FILE", help="the policy JSON")
    parser.add_argument("--text-field", default="text")
    parser.add_argument("--source-field", default="source")
    parser.add_argument("--sample", type=int, default=4000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threshold", type=float, default=0.05)
    parser.add_argument("--address", help="an existing Ray cluster (ray://host:10001 or host:6379)")
    parser.add_argument("--workers", type=int, default=2, help="actors that match (default 2)")
    parser.add_argument("--batch-size", type=int, default=None,
                        help="rows per batch (default: each block as read: a run of JSONL lines, a Parquet file)")
    args = parser.parse_args(argv)
    try:
        policy = _policy_text(args.policy)
        if args.dictionary:
            if args.keywords or args.allow:
                parser.error("give --keywords/--allow or --dictionary, not both")
            with open(args.dictionary, "rb") as f:
                artifact = f.read()
            Filter(artifact=artifact, policy=policy)  # refused here, not on every worker
        else:
            artifact = Filter(_read(args.keywords), policy=policy, allow=_read(args.allow)).to_artifact()
    except (OSError, AigcEdgeError, ValueError) as e:
        print(f"aigc_edge.scan: {e}", file=sys.stderr)
        return 2
    import ray

    from . import ray as on_ray

    ray.init(address=args.address, include_dashboard=False, log_to_driver=False, logging_level="ERROR")
    try:
        ray.data.DataContext.get_current().enable_progress_bars = sys.stderr.isatty()
        dataset = on_ray.read_documents(args.paths, text_field=args.text_field, source_field=args.source_field)
        assessment = on_ray.scan(dataset, args.paths, artifact=artifact, policy=policy, text_field=args.text_field,
                                 source_field=args.source_field, sample=args.sample, seed=args.seed,
                                 threshold=args.threshold, workers=args.workers, batch_size=args.batch_size)
    except AigcEdgeError as e:
        print(f"aigc_edge.scan: {e}", file=sys.stderr)
        return 2
    finally:
        ray.shutdown()
    print(assessment.report_json())
    return 1 if assessment.rejected_sources else 0


if __name__ == "__main__":
    sys.exit(main())
