# The two commands a user needs are `make demo` and `make test`; both run `make setup` first.
.PHONY: setup assets build demo test test-native test-wasm test-webgpu-full test-e2e fuzz conformance bench bench-lora bench-audio bench-series bench-riann clean

# Browser tests: chromedriver drives Debian's Chromium with the flags in webdriver.json.
WASM_TEST_ENV = CHROMEDRIVER=/usr/bin/chromedriver WASM_BINDGEN_TEST_ONLY_WEB=1 \
	WASM_BINDGEN_TEST_TIMEOUT=900 WASM_BINDGEN_TEST_WEBDRIVER_JSON=$(CURDIR)/webdriver.json

setup:
	@bash scripts/setup.sh

assets:
	@python3 scripts/assets.py

build: setup
	@bash scripts/build-wasm.sh

# The demo serves the module without wasm-opt's size pass (minutes on a fresh machine; the page
# is served from this machine), or the optimised one when `make build` made it.
demo: setup
	@TABTUNE_WASM_OPT=off bash scripts/build-wasm.sh
	@node scripts/serve.mjs --port 8080

# Each stage's wall time is printed at the end (CI's budget is 90 minutes on a fresh machine).
test:
	@t0=$$(date +%s); $(MAKE) --no-print-directory setup && t1=$$(date +%s) && \
	$(MAKE) --no-print-directory test-native && t2=$$(date +%s) && \
	$(MAKE) --no-print-directory test-wasm && t3=$$(date +%s) && \
	$(MAKE) --no-print-directory test-e2e && t4=$$(date +%s) && \
	echo "make test: passed in $$((t4 - t0)) s: setup $$((t1 - t0)) s, native $$((t2 - t1)) s, wasm $$((t3 - t2)) s, e2e $$((t4 - t3)) s"

# 1. Native, CPU backend. --release shares compiled burn with the CLI build.
test-native:
	cargo test --release

# 2. wasm-bindgen-test in headless Chromium on WebGPU (SwiftShader without a GPU), built as the
#    page's module is (the `wasm` profile).
test-wasm:
	$(WASM_TEST_ENV) cargo test --profile wasm --target wasm32-unknown-unknown --test web -- --nocapture

# Not part of `make test` (about 45 minutes on SwiftShader, a GPU emulated on the CPU): Whisper
# on WebGPU. Its reference checks (tests/web_whisper.rs: one clip's encoder states, logits,
# greedy tokens and decoder step; four clips' greedy tokens and the encoder's gradients), then
# one training step in the page against the CPU backend's loss (tests/e2e/speech.test.mjs).
# The native port runs the same reference checks in `make test`. The runner's timeout covers the
# whole module (both tests, about 35 minutes), not each test.
test-webgpu-full: setup
	$(WASM_TEST_ENV) WASM_BINDGEN_TEST_TIMEOUT=3600 cargo test --profile wasm --target wasm32-unknown-unknown --test web_whisper -- --nocapture
	@TABTUNE_WASM_OPT=off bash scripts/build-wasm.sh
	TABTUNE_SLOW=1 node --test --test-name-pattern='on WebGPU' tests/e2e/speech.test.mjs

# 3. End to end: the page in headless Chromium, driven by Playwright. On the module as cargo and
#    wasm-bindgen make it: wasm-opt's size pass (6 minutes on 2 cores) is `make build`'s, and an
#    optimised module already built serves the tests too (scripts/build-wasm.sh's stamp).
test-e2e:
	@TABTUNE_WASM_OPT=off bash scripts/build-wasm.sh
	@TABTUNE_WASM_OPT=off bash scripts/build-wasm.sh --bench
	node --test --test-concurrency=1 tests/e2e/

# Not part of `make test` (about 25 minutes to build, then a few minutes a target): libFuzzer on
# every parser a user feeds (tabtune::fuzz: safetensors, .pth, config.json, tokenizer.json,
# tables, sensor recordings, images, audio), FUZZ_RUNS executions each, through cargo-fuzz on
# the nightly toolchain (both installed here when missing). Inputs that reach new code join
# fuzz/corpus, which `make test` replays (tests/fuzz_corpus.rs); a crash stops here with its
# input in fuzz/artifacts. Each target's last lines are in fuzz/logs.
FUZZ_RUNS ?= 1000000
FUZZ_TARGETS = $(basename $(notdir $(wildcard fuzz/fuzz_targets/*.rs)))
fuzz: setup
	@rustup toolchain list | grep -q '^nightly' || rustup toolchain install nightly --profile minimal
	@command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --version 0.13.2 --locked
	cargo +nightly fuzz build -s none
	@mkdir -p fuzz/logs
	@for t in $(FUZZ_TARGETS); do \
		cargo +nightly fuzz run -s none $$t fuzz/corpus/$$t -- -runs=$(FUZZ_RUNS) -max_len=65536 \
			-timeout=10 -rss_limit_mb=4096 -print_final_stats=1 > fuzz/logs/$$t.log 2>&1 \
			|| { tail -40 fuzz/logs/$$t.log; exit 1; }; \
		echo "$$t: $$(grep -E '^Done [0-9]+ runs' fuzz/logs/$$t.log) corpus $$(ls fuzz/corpus/$$t | wc -l) files"; \
	done

# Not part of `make test` (a virtualenv of 5.5 GB, the CLI and the page's module, then about 5
# minutes of runs): every kind of
# export tabtune makes, loaded by the PyTorch library its users would use (torchvision,
# transformers, PEFT) and compared with tabtune's predictions, and PyTorch's own fine-tunes
# predicted by tabtune (conformance/run.py), and the adapter the page trains in
# tests/e2e/lora.test.mjs loaded by PEFT. The table goes to conformance/results.md.
conformance: setup
	@bash conformance/setup.sh
	cargo build --release --bin tabtune
	@TABTUNE_WASM_OPT=off bash scripts/build-wasm.sh
	node --test tests/e2e/lora.test.mjs
	conformance/.venv/bin/python conformance/run.py $(CONFORMANCE_ARGS)

# Not part of `make test`: LoRA against full fine-tuning on the same recipe and seed (issue 21):
# accuracy on the demo sets natively (bench/lora.sh, about 25 minutes on 2 cores), then
# parameters, optimiser memory, GPU pool peak and step time in the tab on the wasm CPU backend
# and WebGPU (bench/lora.mjs). Tables in bench/results/lora-*.md.
bench-lora: setup
	cargo build --release --bin tabtune
	bash bench/lora.sh
	@TABTUNE_WASM_OPT=off bash scripts/build-wasm.sh
	node bench/lora.mjs

# Not part of `make test`: every contender on this machine, side by side (BENCHMARKS.md).
# BENCH_ARGS passes options to bench/run.mjs, e.g. BENCH_ARGS="--only 1,2 --reps 5".
bench: build
	@bash scripts/build-wasm.sh --bench
	@bash bench/setup.sh
	cargo build --release --bin tabtune
	node bench/run.mjs $(BENCH_ARGS)

# Audio (issue 17): tabtune's head-only accuracy on the spoken-commands demo set against the same
# head on onnxruntime's embeddings of the original ONNX files (numpy + onnxruntime in a
# virtualenv of their own, about 60 MB). BENCH_AUDIO_ARGS=--full adds the fine-tuning phase.
bench-audio: setup
	cargo build --release --bin tabtune
	@test -x bench/.venv-audio/bin/python || { python3 -m venv bench/.venv-audio && \
		bench/.venv-audio/bin/pip install --quiet --disable-pip-version-check numpy onnxruntime; }
	bench/.venv-audio/bin/python bench/audio_reference.py $(BENCH_AUDIO_ARGS)

# Sensors (issue 18): HAPT activity recognition, person-wise split, tabtune's head-only, full
# and from-scratch runs against the same recipe in PyTorch (bench/.venv from bench/setup.sh),
# mean of BENCH_SERIES_ARGS="--seeds N" seeds (3).
bench-series: setup
	cargo build --release --bin tabtune
	@bash bench/setup.sh
	bench/.venv/bin/python bench/series_reference.py $(BENCH_SERIES_ARGS)

# RIANN on one simulated sensor: attitude error before, after fine-tuning, and from scratch.
bench-riann: setup
	cargo build --release --bin tabtune
	bash bench/riann.sh

clean:
	rm -rf target www/pkg www/pkg-bench test-results
