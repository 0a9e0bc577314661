#!/usr/bin/env python3
"""`make bench-envoy`: three Envoys side by side in one run, measured in alternation (A B C A B C):
A no wasm filter, B a no-op proxy-wasm filter (the floor any V8 filter pays), C aigc-edge with
the 64k-word compiled dictionary from ../shared/data (fetched from a cluster, as in production).

One upstream for all: a fourth Envoy answering with direct responses (a ~4 KiB chat answer and a
stream of ~1,000 events), so the upstream is never the bottleneck. Load from wrk (Debian).
"""
import json
import os
import re
import subprocess
import sys
import tempfile
import time
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import run  # noqa: E402

ROOT = run.ROOT
DATA = os.environ.get("AIGC_DATA", os.path.join(ROOT, "..", "shared", "data"))
OUT = os.path.join(run.RUN_DIR, "bench")
NOOP = os.path.join(ROOT, "target", "wasm32-wasip1", "release", "aigc_edge_noop.wasm")
CLI = os.path.join(ROOT, "target", "release", "aigc-edge")
UP_PORT = 18500
ROUNDS = int(os.environ.get("ROUNDS", "3"))
SECONDS = int(os.environ.get("SECONDS_PER_RUN", "5"))

ANSWER = ("这是一段用于压力测试的回答文本，内容平和，介绍城市公园的开放时间与游览路线。" * 40)[:1400]
PROMPT = ("请介绍一下城市公园的开放时间、游览路线和附近的交通方式，谢谢。" * 40)[:700]


def upstream_config(dict_path):
    chat = json.dumps({"id": "c", "object": "chat.completion", "model": "m", "choices": [
        {"index": 0, "message": {"role": "assistant", "content": ANSWER}, "finish_reason": "stop"}]}, ensure_ascii=False)
    events = []
    for i in range(1000):
        piece = ANSWER[(i * 2) % len(ANSWER):(i * 2) % len(ANSWER) + 2]
        events.append("data: " + json.dumps({"id": "c", "object": "chat.completion.chunk", "model": "m", "choices": [
            {"index": 0, "delta": {"content": piece}, "finish_reason": None}]}, ensure_ascii=False) + "\n\n")
    events.append("data: [DONE]\n\n")
    with open(os.path.join(OUT, "stream.txt"), "w", encoding="utf-8") as f:
        f.write("".join(events))
    def direct(prefix, ctype, body):
        return {"match": {"prefix": prefix}, "direct_response": {"status": 200, "body": body},
                "response_headers_to_add": [{"header": {"key": "content-type", "value": ctype}}]}
    routes = [
        direct("/dict", "application/octet-stream", {"filename": dict_path}),
        dict(direct("/v1/chat/completions", "text/event-stream", {"filename": os.path.join(OUT, "stream.txt")}),
             match={"prefix": "/v1/chat/completions", "query_parameters": [{"name": "stream", "present_match": True}]}),
        direct("/v1/chat/completions", "application/json", {"inline_string": chat}),
    ]
    return {
        "static_resources": {"listeners": [{
            "address": {"socket_address": {"address": "127.0.0.1", "port_value": UP_PORT}},
            "filter_chains": [{"filters": [{"name": "envoy.filters.network.http_connection_manager", "typed_config": {
                "@type": "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager",
                "stat_prefix": "up", "route_config": {"max_direct_response_body_size_bytes": 64 << 20,
                                                      "virtual_hosts": [{"name": "up", "domains": ["*"], "routes": routes}]},
                "http_filters": [{"name": "envoy.filters.http.router", "typed_config": {
                    "@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"}}]}}]}]}]}}


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_mb(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


MOCK_PORT = 18510
GUARD_PORT = 18520


def start(name, port, admin, wasm_filter):
    cfg = run.bootstrap(port, admin, f"127.0.0.1:{UP_PORT}", {}, fetch_cluster=("dictionaries", f"127.0.0.1:{UP_PORT}"),
                        guard_cluster=("guard", f"127.0.0.1:{GUARD_PORT}"))
    cfg["static_resources"]["clusters"].append(dict(cfg["static_resources"]["clusters"][0], name="mock", load_assignment={
        "cluster_name": "mock", "endpoints": [{"lb_endpoints": [{"endpoint": {"address": {"socket_address": {
            "address": "127.0.0.1", "port_value": MOCK_PORT}}}}]}]}))
    hcm = cfg["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]["typed_config"]
    hcm["route_config"]["virtual_hosts"][0]["routes"].insert(0, {"match": {"prefix": "/mock/"},
        "route": {"cluster": "mock", "prefix_rewrite": "/", "timeout": "30s"}})
    if wasm_filter is None:
        hcm["http_filters"] = hcm["http_filters"][1:]
    else:
        hcm["http_filters"][0] = wasm_filter
    path = os.path.join(OUT, f"{name}.json")
    with open(path, "w", encoding="utf-8") as f:
        json.dump(cfg, f, ensure_ascii=False)
    log = open(os.path.join(OUT, f"{name}.log"), "w")
    t0 = time.monotonic()
    p = subprocess.Popen([run.ENVOY, "-c", path, "--concurrency", "1", "--use-dynamic-base-id", "--log-level", "warn",
                          "--component-log-level", "wasm:info"], stdout=log, stderr=subprocess.STDOUT)
    run.wait_http(f"http://127.0.0.1:{admin}/ready", 30, p)
    # Ready means answering through the filter (for C: after the dictionary arrived).
    body = json.dumps({"model": "m", "messages": [{"role": "user", "content": PROMPT}]}).encode()
    while time.monotonic() - t0 < 60:
        try:
            req = urllib.request.Request(f"http://127.0.0.1:{port}/v1/chat/completions", body, {"content-type": "application/json"})
            with urllib.request.urlopen(req, timeout=2) as r:
                if r.status == 200:
                    break
        except OSError:
            time.sleep(0.01)
    return p, time.monotonic() - t0


def wasm_filter(wasm, config):
    return {"name": "envoy.filters.http.wasm", "typed_config": {
        "@type": "type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm",
        "config": {"name": "f", "root_id": "f", "fail_open": False,
                   "configuration": {"@type": "type.googleapis.com/google.protobuf.StringValue", "value": json.dumps(config)},
                   "vm_config": {"vm_id": "f", "runtime": "envoy.wasm.runtime.v8", "code": {"local": {"filename": wasm}}}}}}


def wrk(port, path, lua, connections=8):
    out = subprocess.run(["wrk", "-t1", f"-c{connections}", f"-d{SECONDS}s", "--latency", "-s", lua, f"http://127.0.0.1:{port}{path}"],
                         capture_output=True, text=True, check=True).stdout
    reqs = int(re.search(r"(\d+) requests in", out).group(1))
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    def pct(p):
        m = re.search(rf"\s{p}%\s+([\d.]+)(us|ms|s)", out)
        v, unit = float(m.group(1)), m.group(2)
        return v / 1000 if unit == "us" else v * 1000 if unit == "s" else v
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    return {"requests": reqs, "rps": rps, "p50": pct(50), "p99": pct(99), "non2xx": int(non2xx.group(1)) if non2xx else 0}


def ttfb(port, n=30):
    """Median time to the first byte of a streamed answer from an upstream that really streams
    (the mock, one event per write): what a user of an LLM stream waits for."""
    body = json.dumps({"model": "m", "stream": True, "messages": [{"role": "user", "content": "你好"}]})
    times = []
    for _ in range(n):
        out = subprocess.run(["curl", "-s", "-o", "/dev/null", "-w", "%{time_starttransfer}", "-H", "content-type: application/json",
                              "-d", body, f"http://127.0.0.1:{port}/mock/v1/chat/completions"], capture_output=True, text=True)
        times.append(float(out.stdout) * 1000)
    times.sort()
    return times[len(times) // 2]


VISIBLE = os.path.join(ROOT, "target", "filter", "aigc_edge_envoy_visible.wasm")
TIMED = os.path.join(ROOT, "target", "filter", "aigc_edge_envoy_timed.wasm")


def image_ms(port, fmt, n=7):
    """Median wall time of one 1024x1024 image generation (OpenAI images, b64_json) through `port`."""
    body = json.dumps({"model": "m", "prompt": "a cat", "size": "1024x1024", "output_format": fmt})
    times = []
    for _ in range(n):
        out = subprocess.run(["curl", "-s", "-o", "/dev/null", "-w", "%{time_total}", "-H", "content-type: application/json",
                              "-d", body, f"http://127.0.0.1:{port}/mock/v1/images/generations"], capture_output=True, text=True)
        times.append(float(out.stdout) * 1000)
    return sorted(times)[len(times) // 2]


def compile_ms(wasm, runs=3):
    """Median time V8 takes to compile `wasm` the way Envoy's V8 does (proxy-wasm switches Liftoff
    off, so every function goes through TurboFan before the first request), each in a fresh node
    (node caches compiled modules within a process). Node's V8 stands in for Envoy's own."""
    script = ("const b=require('fs').readFileSync(process.argv[1]);const t=performance.now();"
              "WebAssembly.compile(b).then(()=>console.log(performance.now()-t))")
    times = [float(subprocess.run(["node", "--no-liftoff", "--no-wasm-lazy-compilation", "-e", script, wasm],
                                  capture_output=True, text=True, check=True).stdout) for _ in range(runs)]
    return sorted(times)[len(times) // 2]


def histogram_sums(admin):
    """{histogram: (sum, count)} of the filter's histograms, as Envoy last flushed them."""
    with urllib.request.urlopen(f"http://127.0.0.1:{admin}/stats/prometheus") as r:
        text = r.read().decode()
    sums = {}
    for name, part, value in re.findall(r"^(aigc_edge_\w+?)_(sum|count)(?:\{[^}]*\})? (\S+)$", text, re.M):
        pair = sums.setdefault(name, [0.0, 0.0])
        pair[0 if part == "sum" else 1] = float(value)
    return sums


def inside_the_filter(e, lua, flush=6):
    """Per exchange and per kind: the filter's own logic (its inspection histogram, µs) and each
    callback's time in V8 (the timed build's histograms, ns → µs), from one short load each, read
    after Envoy's 5 s stats flush. One connection: the callbacks' times are the host's wall clock,
    and with eight on two cores the worker is preempted inside them."""
    out = {}
    time.sleep(flush)
    before = histogram_sums(e["admin"])
    for kind, path in (("json", "/v1/chat/completions"), ("sse", "/v1/chat/completions?stream=1")):
        wrk(e["port"], path, lua, connections=1)
        time.sleep(flush)
        after = histogram_sums(e["admin"])
        delta = lambda name, i: after.get(name, [0, 0])[i] - before.get(name, [0, 0])[i]
        exchanges = max(delta("aigc_edge_inspect_microseconds", 1), 1)
        callbacks = {name[len("aigc_edge_callback_ns_"):]: delta(name, 0) / exchanges / 1000
                     for name in after if name.startswith("aigc_edge_callback_ns_")}
        out[kind] = {"logic": delta("aigc_edge_inspect_microseconds", 0) / exchanges,
                     "callbacks": {k: v for k, v in callbacks.items() if v > 0}}
        before = after
    # The timed build prices each kind of host call once per VM (glue.rs, `time_host_calls`).
    prefix = "aigc_edge_hostcall_ns_"
    out["host_calls"] = {name[len(prefix):]: total / count for name, (total, count) in after.items()
                         if name.startswith(prefix) and count}
    return out


def startup_phases(log_path):
    """The filter's own start-up work per VM, from the times it logs (configure, dictionary load)."""
    with open(log_path, errors="replace") as f:
        text = f.read()
    grab = lambda pattern: [float(x) for x in re.findall(pattern, text)]
    return (grab(r"aigc-edge: configured.* in ([\d.]+) ms"), grab(r"aigc-edge: loaded dictionary.* in ([\d.]+) ms"),
            grab(r"aigc-edge: loaded dictionary.*; linear memory (\d+) MiB"))


def main():
    os.makedirs(OUT, exist_ok=True)
    words = os.path.join(DATA, "keywords", "sensitive_word_dict.txt")
    dict_path = os.path.join(OUT, "big.dict")
    subprocess.run([CLI, "compile", "--keywords", words, "-o", dict_path], check=True, capture_output=True)
    with open(os.path.join(OUT, "up.json"), "w") as f:
        json.dump(upstream_config(dict_path), f, ensure_ascii=False)
    up = subprocess.Popen([run.ENVOY, "-c", os.path.join(OUT, "up.json"), "--concurrency", "1", "--use-dynamic-base-id",
                           "--log-level", "error", "--disable-hot-restart"])
    mock = subprocess.Popen([sys.executable, os.path.join(run.HERE, "mock_upstream.py"), "--port", str(MOCK_PORT)])
    # The guard model stand-in, answering every call in a fixed 5 ms.
    guard = subprocess.Popen([sys.executable, os.path.join(run.HERE, "tests", "guard_standin.py"), "--port", str(GUARD_PORT),
                              "--delay-ms", "5"])
    time.sleep(1.0)
    lua = os.path.join(OUT, "post.lua")
    with open(lua, "w", encoding="utf-8") as f:
        body = json.dumps({"model": "m", "messages": [{"role": "user", "content": PROMPT}]}, ensure_ascii=False)
        f.write('wrk.method = "POST"\nwrk.headers["content-type"] = "application/json"\nwrk.body = [[' + body + ']]\n')
    ours = {"policy": {"actions": {"default": "flag", "uncategorized": "flag"}},
            "dictionary_fetch": {"cluster": "dictionaries", "path": "/dict", "interval_seconds": 3600},
            "label": {"producer": "aigc-edge-bench"}}
    guarded = dict(ours, guard={"cluster": "guard", "timeout_ms": 2000, "stream": {"mode": "hold"}})
    setups = [("A no filter", None), ("B no-op wasm", wasm_filter(NOOP, {})),
              ("C aigc-edge 64k", wasm_filter(run.WASM, ours)),
              ("D C + guard 5 ms", wasm_filter(run.WASM, guarded))]
    procs = []
    try:
        for i, (name, f) in enumerate(setups):
            p, ready = start(f"bench{i}", 18601 + i, 19601 + i, f)
            procs.append({"name": name, "proc": p, "port": 18601 + i, "admin": 19601 + i, "ready": ready,
                          "log": os.path.join(OUT, f"bench{i}.log"), "runs": {"json": [], "sse": []}})
        for _ in range(ROUNDS):
            for e in procs:
                for kind, path in (("json", "/v1/chat/completions"), ("sse", "/v1/chat/completions?stream=1")):
                    c0 = cpu_seconds(e["proc"].pid)
                    r = wrk(e["port"], path, lua)
                    r["cpu_us"] = (cpu_seconds(e["proc"].pid) - c0) / max(r["requests"], 1) * 1e6
                    e["runs"][kind].append(r)
        for e in procs:
            e["rss"] = rss_mb(e["proc"].pid)
            e["ttfb"] = ttfb(e["port"])
        # The same filter with each callback timed, alone, for the breakdown.
        p, ready = start("bench-timed", 18606, 19606, wasm_filter(TIMED, ours))
        timed = {"name": "C' timed build", "proc": p, "port": 18606, "admin": 19606, "ready": ready}
        procs.append(timed)
        inside = inside_the_filter(timed, lua)
        p.terminate()
        # Generated images: the implicit label (C) and the visible build drawing the label too (E).
        drawn = dict(ours, label=dict(ours["label"], visible={"text": "AI生成", "corner": "bottom-right"}))
        p, ready = start("bench-visible", 18605, 19605, wasm_filter(VISIBLE, drawn))
        procs.append({"name": "E visible build", "proc": p, "port": 18605, "ready": ready})
        visible = procs[-1]
        images = {}
        for _ in range(2):
            for e in (procs[0], procs[2], visible):
                for fmt in ("png", "jpeg"):
                    images.setdefault((e["name"], fmt), []).append(image_ms(e["port"], fmt))
    finally:
        for e in procs:
            e["proc"].terminate()
        up.terminate()
        mock.terminate()
        guard.terminate()
    med = lambda xs: sorted(xs)[len(xs) // 2]
    base = procs[0]
    for kind, title in (("json", "~2 KiB chat request, ~4 KiB JSON answer"), ("sse", "streamed answer, 1,000 events")):
        print(f"\n## {title} (median of {ROUNDS} alternating rounds, {SECONDS} s each, wrk -c8, Envoy --concurrency 1)")
        print(f"{'':18} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8} {'CPU us/req':>11} {'non-2xx':>8} {'CPU ratio':>10} {'req/s ratio':>12}")
        b_cpu = med([r["cpu_us"] for r in base["runs"][kind]])
        b_rps = med([r["rps"] for r in base["runs"][kind]])
        for e in procs[:4]:
            rs = e["runs"][kind]
            cpu, rps = med([r["cpu_us"] for r in rs]), med([r["rps"] for r in rs])
            print(f"{e['name']:18} {rps:9.0f} {med([r['p50'] for r in rs]):8.2f} {med([r['p99'] for r in rs]):8.2f} "
                  f"{cpu:11.0f} {sum(r['non2xx'] for r in rs):8} {cpu / b_cpu:9.2f}x {rps / b_rps:11.2f}x")
    print(f"\n{'':18} {'RSS after load':>15} {'start to ready':>15} {'stream TTFB p50':>16}")
    for e in procs[:4]:
        print(f"{e['name']:18} {e['rss']:12.0f} MB {e['ready'] * 1000:12.0f} ms {e['ttfb']:13.2f} ms")
    print(f"added time to first byte on streams: {procs[2]['ttfb'] - base['ttfb']:.2f} ms (target < 1 ms); "
          f"with the guard in hold mode (text held until its window and the next are judged): "
          f"{procs[3]['ttfb'] - base['ttfb']:.2f} ms")
    print_breakdown(procs, inside, med)
    print(f"\n## a 1024x1024 generated image (OpenAI images, b64_json; median of 2x7 requests; the mock draws it)")
    print(f"{'':18} {'PNG ms':>8} {'added':>8} {'JPEG ms':>8} {'added':>8}")
    for name in (procs[0]["name"], procs[2]["name"], visible["name"]):
        row = [med(images[(name, fmt)]) for fmt in ("png", "jpeg")]
        base_row = [med(images[(procs[0]["name"], fmt)]) for fmt in ("png", "jpeg")]
        print(f"{name:18} {row[0]:8.1f} {row[0] - base_row[0]:8.1f} {row[1]:8.1f} {row[1] - base_row[1]:8.1f}")
    print("(C adds the implicit label to the image's metadata; E also decodes it, draws the visible label and encodes it)")
    build = os.path.join(ROOT, "target", "wasm32-wasip1", "filter", "aigc_edge_envoy.wasm")
    print(f"aigc_edge_envoy.wasm: {os.path.getsize(build) / 1024:.0f} KiB as built, "
          f"{os.path.getsize(run.WASM) / 1024:.0f} KiB shipped after wasm-opt -Oz "
          f"(what the runs above loaded; target < 1 MiB without dictionaries); "
          f"the visible build: {os.path.getsize(VISIBLE) / 1024:.0f} KiB")

def print_breakdown(procs, inside, med):
    """Where C's cost goes: per request (Envoy itself, the V8 floor, the filter's callbacks split
    into its own logic and the glue around it, and the rest: Envoy's side of the host calls,
    buffering and copies) and at start-up."""
    none, noop, ours = procs[0], procs[1], procs[2]
    print("\n## where the time goes (C aigc-edge 64k; callbacks timed in a separate build, C')")
    print(f"{'per request, CPU us':34} {'Envoy':>7} {'V8 floor':>9} {'logic':>7} {'glue':>7} {'host':>7} {'total':>7}")
    for kind, title in (("json", "2 KiB prompt + 4 KiB JSON answer"), ("sse", "1,000-event stream")):
        cpu = {e["name"]: med([r["cpu_us"] for r in e["runs"][kind]]) for e in (none, noop, ours)}
        floor = cpu[noop["name"]] - cpu[none["name"]]
        logic, callbacks = inside[kind]["logic"], sum(inside[kind]["callbacks"].values())
        host = cpu[ours["name"]] - cpu[noop["name"]] - callbacks
        print(f"{title:34} {cpu[none['name']]:7.0f} {floor:9.0f} {logic:7.0f} {callbacks - logic:7.0f} {host:7.0f} "
              f"{cpu[ours['name']]:7.0f}")
        print(f"{'':34} callbacks, us per exchange: " +
              ", ".join(f"{k} {v:.1f}" for k, v in sorted(inside[kind]["callbacks"].items(), key=lambda kv: -kv[1])))
    print(f"{'host calls, ns each':34} " + (", ".join(f"{k} {v:.0f}" for k, v in inside.get("host_calls", {}).items())
                                             or "(not recorded)"))
    print(f"{'':34} (C', each kind made 2,000 times on a VM's first request; a call that returns bytes also\n"
          f"{'':34}  calls back into the module's allocator)")
    print("(logic: the core's work, the filter's inspection histogram; glue: the rest of its callbacks' time in V8,\n"
          " host calls included; host: C's CPU above the no-op's outside the callbacks: Envoy's side of the ABI,\n"
          " buffering and copies, context creation. Inside times are wall clock from C' under one connection,\n"
          " the CPU columns from C under eight: host is the difference, so it is the least exact)")
    configure, load, memory = startup_phases(ours["log"])
    ours_ms, noop_ms = compile_ms(run.WASM), compile_ms(NOOP)
    fmt = lambda xs: " / ".join(f"{x:.1f}" for x in xs) or "-"
    node = subprocess.run(["node", "--version"], capture_output=True, text=True).stdout.strip()
    print(f"{'start-up, ms':34} {'C':>8} {'B no-op':>9}")
    print(f"{'V8 compile (TurboFan, as Envoy)':34} {ours_ms:8.0f} {noop_ms:9.0f}   node {node}'s V8; "
          f"{os.path.getsize(run.WASM) / 1024:.0f} vs {os.path.getsize(NOOP) / 1024:.0f} KiB")
    print(f"{'configure, per VM':34} {fmt(configure):>8}")
    print(f"{'dictionary load, per VM':34} {fmt(load):>8}   (the 64k artifact, fetched)")
    print(f"{'linear memory after it, MiB per VM':34} {fmt(memory):>8}   (never shrinks: the VM's high-water mark)")
    print(f"{'start to ready':34} {ours['ready'] * 1000:8.0f} {noop['ready'] * 1000:9.0f}")
    ratio = lambda kind: med([r["cpu_us"] for r in ours["runs"][kind]]) / med([r["cpu_us"] for r in none["runs"][kind]])
    print(f"\n## the edge-cost targets (C aigc-edge 64k against A no filter)")
    print(f"{'':44} {'now':>10} {'target':>10}")
    for what, now, target, unit in (("CPU per request, 2 KiB prompt + 4 KiB answer", ratio("json"), 1.25, "x"),
                                    ("CPU per 1,000-event stream", ratio("sse"), 2.5, "x"),
                                    ("Envoy RSS after load (1 worker)", ours["rss"], 110, " MB"),
                                    ("start to ready", ours["ready"] * 1000, 400, " ms")):
        print(f"{what:44} {now:9.2f}{unit:<3} <= {target}{unit:<4} {'met' if now <= target else 'not met'}")


if __name__ == "__main__":
    main()
