# The two entry points of the README. Both create .venv/ on first use; re-running is fast
# because the environment is rebuilt only when pyproject.toml changes.
PY := .venv/bin/python
STAMP := .venv/.installed

.PHONY: setup demo test lint bench browser

setup: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(PY) || python3 -m venv .venv
	$(PY) -m pip install -q --upgrade pip
	# The CPU wheel first, so no dependency can pull a CUDA build.
	$(PY) -m pip install -q torch==2.13.0
	$(PY) -m pip install -q -e ".[dev,train]"
	touch $(STAMP)

demo: $(STAMP)
	.venv/bin/monohand reconstruct examples/hand.jpg --out out/example

# The browser test drives Debian's Chromium; install it where we may (root with apt-get).
browser:
	@command -v chromium >/dev/null && command -v chromedriver >/dev/null || \
	  { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null && \
	    (DEBIAN_FRONTEND=noninteractive apt-get update -qq && \
	     DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >/dev/null) \
	  || echo "chromium could not be installed: the browser test will be skipped"; }

test: $(STAMP) browser
	.venv/bin/ruff check src tests bench
	.venv/bin/python -m pytest -q

bench: $(STAMP)
	.venv/bin/python bench/bench_lbs.py
	.venv/bin/python bench/bench_render.py
	.venv/bin/python bench/bench_evaluate.py
	.venv/bin/python bench/bench_synth.py
	.venv/bin/python bench/bench_nimble.py
	.venv/bin/python bench/bench_nets.py
	.venv/bin/python bench/bench_video.py
