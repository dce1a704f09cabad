# SPDX-License-Identifier: MIT
# One obvious way to build, test, benchmark and run wsfast.
PY ?= python3
HOST ?= 127.0.0.1
PORT ?= 8000

.DEFAULT_GOAL := help
.PHONY: help build cython dev wheel wheels sdist test-wheels run test test-rust test-python lint format bench bench-micro bench-e2e bench-clients bench-targets bench-quick fuzz soak clean docs bench-uvicorn bench-fanout bench-workers bench-redis examples fuzz-ci

help: ## list the targets
	@grep -E '^[a-z0-9-]+:.*## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*## "}; {printf "  %-12s %s\n", $$1, $$2}'

build: ## build the Rust and Cython extensions and install wsfast (editable) with test/lint tools
	flock /tmp/wsfast-build.lock $(PY) -m pip install -q --disable-pip-version-check -e ".[test,lint]"

cython: ## rebuild only the Cython extension in place (fast inner loop)
	flock /tmp/wsfast-build.lock $(PY) setup.py -q build_ext --inplace

dev: build ## alias of build

wheel: ## build a wheel (both extensions) into dist/ and check its contents
	rm -rf dist && $(PY) -m pip wheel --no-deps -q -w dist .
	$(PY) -c "import sys, zipfile, glob; n = zipfile.ZipFile(glob.glob('dist/wsfast-*.whl')[0]).namelist(); \
	missing = [m for m in ('wsfast/_rust.', 'wsfast/_cy.') if not any(x.startswith(m) and x.endswith('.so') for x in n)]; \
	sys.exit(f'wheel lacks {missing}' if missing else 0)"

# Interpreters (paths or versions) for `make wheels`; empty means every one of 3.11-3.13 here.
WHEEL_PYTHONS ?=
wheels: ## sdist, then manylinux_2_17 wheels from it for each CPython here (zig, auditwheel; no compiler needed to install)
	$(PY) tools/build_wheels.py $(WHEEL_PYTHONS)

sdist: ## source distribution into dist/ (pip install wsfast-*.tar.gz builds both extensions)
	$(PY) -m pip install -q --disable-pip-version-check build
	rm -f dist/wsfast-*.tar.gz && $(PY) -m build --sdist --outdir dist .

test-wheels: ## install each dist/ wheel into a fresh compiler-free venv and run the suite on it; build the sdist with pip
	$(PY) tools/test_wheels.py

run: build ## build, then start the demo server on http://$(HOST):$(PORT)
	$(PY) -m wsfast demo --host $(HOST) --port $(PORT)

test: build test-rust test-python lint ## build, then run every test and linter

test-rust: ## cargo tests of the protocol core
	cargo test --quiet -p wsfast-rs

test-python: ## pytest (unit, property, integration, conformance)
	$(PY) -m pytest -q

docs: ## build the documentation site into site/ (mkdocs --strict: a broken link or API reference fails)
	NO_MKDOCS_2_WARNING=1 $(PY) -m mkdocs build --strict --site-dir site

lint: ## ruff, mypy, stubtest (needs the build), cython-lint, cargo fmt, clippy
	$(PY) -m ruff check python tests bench tools cython_ext/wsfast_backend.py setup.py
	$(PY) -m ruff format --check python tests bench tools cython_ext/wsfast_backend.py setup.py
	$(PY) -m mypy
	$(PY) -m mypy.stubtest wsfast._cy --allowlist cython_ext/stubtest-allowlist.txt
	cython-lint --max-line-length 100 cython_ext/*.pyx cython_ext/*.pxd cython_ext/wsfast/*.pxd \
		cython_ext/includes/*.pxd
	cargo fmt --all --check
	cargo clippy --quiet --all-targets -p wsfast-rs -- -D warnings

format: ## apply ruff format and cargo fmt
	$(PY) -m ruff format python tests bench tools cython_ext/wsfast_backend.py setup.py
	$(PY) -m ruff check --fix python tests bench tools cython_ext/wsfast_backend.py setup.py
	cargo fmt --all

bench: bench-micro bench-e2e bench-clients bench-uvicorn bench-fanout bench-workers bench-redis bench-targets ## every benchmark, then each target and whether it is met (~47 min)

bench-micro: build ## micro-benchmarks (pytest-benchmark), then ratios from the same run
	mkdir -p bench/results
	$(PY) -m pytest bench/bench_*.py -q -p no:cacheprovider --benchmark-only --benchmark-warmup=on --benchmark-min-rounds=20 \
		--benchmark-columns=median,ops --benchmark-sort=name --benchmark-json=bench/results/micro.json
	$(PY) bench/report.py bench/results/micro.json

bench-e2e: ## server end to end: C load generator vs wsfast (+ asyncio, Cython handler), picows, websockets, aiohttp, raw TCP (~18 min)
	$(PY) bench/e2e/run.py

bench-clients: ## client end to end: C feed server vs wsfast, picows, aiohttp, websockets, websocket-client (~8 min)
	$(PY) bench/e2e/run_clients.py

bench-uvicorn: build ## FastAPI echo under uvicorn: wsfast.uvicorn vs websockets, websockets-sansio, wsproto (~4 min)
	$(PY) bench/e2e/uvicorn_fastapi.py

bench-fanout: ## fan-out to 1,000 and 10,000 subscribers: wsfast vs websockets.broadcast, picows, socketify (~8 min)
	$(PY) bench/e2e/fanout.py

bench-workers: ## topics across 1 and 2 worker processes: deliveries per second and the scaling factor (~20 s)
	$(PY) bench/e2e/workers_fanout.py --out bench/results

bench-redis: ## topics through a real redis-server: publish-to-receive latency and pipelined throughput (~30 s)
	$(PY) bench/e2e/redis_latency.py --out bench/results

bench-targets: ## print each end-to-end target and whether the latest results meet it
	$(PY) bench/targets.py bench/results

BENCH_SCRATCH ?= bench/results/scratch
bench-quick: ## a smoke run of every end-to-end harness (1 rep, short; writes only to BENCH_SCRATCH)
	$(PY) bench/e2e/run.py --quick --only wsfast,ceiling,wsfast-asyncio,wsfast-cython --no-chart --out $(BENCH_SCRATCH)
	$(PY) bench/e2e/run_clients.py --quick --no-chart --out $(BENCH_SCRATCH)
	$(PY) bench/e2e/uvicorn_fastapi.py --quick --only echo-64B-c64 --out $(BENCH_SCRATCH)
	$(PY) bench/e2e/fanout.py --quick --only wsfast,websockets,socketify --out $(BENCH_SCRATCH)
	$(PY) bench/e2e/workers_fanout.py --seconds 1 --subscribers 100 --out $(BENCH_SCRATCH)
	$(PY) bench/e2e/redis_latency.py --count 200 --burst 5000 --out $(BENCH_SCRATCH)
	$(PY) bench/targets.py $(BENCH_SCRATCH)

SOAK_SECONDS ?= 600
soak: build ## soak wsfast echo for SOAK_SECONDS (600): churn, random sizes to 1 MiB, deflate, slow readers; nothing lost, no leak
	$(PY) tools/soak.py --seconds $(SOAK_SECONDS)

examples: ## build examples/cython_handler (the Cython handler API) in place against the installed wsfast
	cd examples/cython_handler && $(PY) setup.py -q build_ext --inplace

FUZZ_SECONDS ?= 60
fuzz: ## run each cargo-fuzz target for FUZZ_SECONDS from the committed seeds
	command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz
	cd rust && for t in protocol handshake deflate; do \
		mkdir -p fuzz/corpus/$$t && cp fuzz/seeds/$$t/* fuzz/corpus/$$t/ && \
		RUSTC_BOOTSTRAP=1 cargo fuzz run -O $$t fuzz/corpus/$$t -- \
			-max_total_time=$(FUZZ_SECONDS) -rss_limit_mb=2048 || exit 1; \
	done

FUZZ_CI_SECONDS ?= 30
FUZZ_CI_EXAMPLES ?= 200
fuzz-ci: ## CI: each cargo-fuzz target for FUZZ_CI_SECONDS from a fresh copy of the seeds, then the end-to-end fuzzers (hypothesis)
	command -v cargo-fuzz >/dev/null || cargo install --locked cargo-fuzz
	cd rust && for t in protocol handshake deflate; do \
		rm -rf fuzz/target/corpus-ci/$$t && mkdir -p fuzz/target/corpus-ci/$$t && cp fuzz/seeds/$$t/* fuzz/target/corpus-ci/$$t/ && \
		RUSTC_BOOTSTRAP=1 cargo fuzz run -O $$t fuzz/target/corpus-ci/$$t -- \
			-max_total_time=$(FUZZ_CI_SECONDS) -rss_limit_mb=2048 -print_final_stats=1 || exit 1; \
	done
	WSFAST_FUZZ_EXAMPLES=$(FUZZ_CI_EXAMPLES) $(PY) -m pytest -q -p no:randomly tests/property/test_api_fuzz.py

clean: ## remove build products
	rm -rf target dist build python/wsfast/*.so cython_ext/*.c
