# Two commands on a fresh machine: `make demo` and `make test`. Both install what they need.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
PIP    := $(PY) -m pip
STAMP  := $(VENV)/.installed-$(shell cat pyproject.toml constraints.txt | cksum | cut -d' ' -f1)

.PHONY: install browser lint test test-slow test-container demo bench completions readme docs docs-serve wheel-check clean voices voices-eval peer

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip

$(STAMP): $(PY) pyproject.toml constraints.txt
	$(PIP) install -q -c constraints.txt -e '.[dev,demo,docs]'
	rm -f $(VENV)/.installed-*
	touch $@

install: $(STAMP)

# The guards (configured in pyproject.toml): one formatter, the lint rules, mypy on the package.
lint: $(STAMP)
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy

# Real recorded voices for the evaluation sets (Debian codec2-examples + alsa-utils, the pyannote.audio
# wheel's sample), fetched with apt-get download / pip download into ~/.cache/anomaly/voices and checked
# by SHA-256. `make test` tries it first; without apt/PyPI the tests that need it skip and say why.
voices: $(STAMP)
	$(PY) -m anomaly_cli.synth.voices fetch

# Headless Chromium + a Devanagari font for the report's browser test (Debian packages; needs root).
# Without root or apt it says so and the browser test skips with that reason.
browser:
	@if command -v chromium >/dev/null 2>&1 && fc-list 2>/dev/null | grep -qi 'lohit marathi'; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	  echo "make browser: installing chromium fonts-lohit-deva-marathi (apt)"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
	    chromium fonts-lohit-deva-marathi >/dev/null; \
	else echo "make browser: not root or no apt-get: install chromium + fonts-lohit-deva-marathi to run the browser test"; fi

test: $(STAMP) browser
	-$(PY) -m anomaly_cli.synth.voices fetch
	$(PY) -m pytest -q

# The fuzz suite's long profile: FUZZ_EXAMPLES a property (default 15 000 x 7 properties >= 100 000).
fuzz: $(STAMP)
	HYPOTHESIS_PROFILE=long $(PY) -m pytest -q -p no:cacheprovider tests/fuzz

test-slow: $(STAMP)
	$(PY) -m pytest -q -m slow

# Builds the Containerfile with podman and stops the worker in it with SIGTERM (root, minutes;
# not part of `make test`). Installs podman, runc and debootstrap from Debian packages when missing.
test-container: $(STAMP)
	@command -v podman >/dev/null && command -v runc >/dev/null && command -v debootstrap >/dev/null || \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq podman runc debootstrap)
	$(PY) -m pytest -q -s -m container tests/container

demo: $(STAMP)
	$(VENV)/bin/anomaly demo

# The off-the-shelf peer (Silero VAD + DNSMOS): their wheels declare torch/librosa, which the ONNX
# models do not need, so they are installed without dependencies (onnxruntime runs them).
peer: $(STAMP)
	$(PIP) install -q -c constraints.txt onnxruntime
	$(PIP) install -q -c constraints.txt --no-deps silero-vad speechmos

bench: $(STAMP) peer
	$(PIP) install -q -c constraints.txt -e '.[dev,demo,bench]'
	$(PY) bench/run_all.py

# Model quality on the real-voice held-out split (and the peer on the same files): see MODEL_CARD.md.
# VOICES_SEED 16 is model v4's clean test (built after v4's last change); 15 was v3's, 14 was seen while tuning v3.
voices-eval: voices peer
	$(PY) -m anomaly_cli.synth.voices build $(or $(VOICES_SET),/tmp/anomaly-voices-heldout) --split heldout \
	  --seed $(or $(VOICES_SEED),16)
	$(VENV)/bin/anomaly model evaluate --data $(or $(VOICES_SET),/tmp/anomaly-voices-heldout)

completions: $(STAMP)
	$(PY) -m anomaly_cli.cli.completions --write completions

# README.md is generated from docs/readme/NN-*.md (+ tables from code): run this on any conflict in it.
readme: $(STAMP)
	$(PY) docs/generate.py

# The documentation site (mkdocs-material): strict, so a broken link or anchor fails.
docs: $(STAMP)
	NO_MKDOCS_2_WARNING=1 $(VENV)/bin/mkdocs build --strict --quiet
	@echo "site/index.html"

# sdist + wheel, the wheel in a clean venv, `anomaly score` from an empty temporary folder.
wheel-check: $(STAMP)
	bash .ci/wheel_check.sh

docs-serve: $(STAMP)
	NO_MKDOCS_2_WARNING=1 $(VENV)/bin/mkdocs serve

clean:
	rm -rf $(VENV) .pytest_cache build dist site *.egg-info
