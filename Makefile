# The two commands of the README: `make book` and `make test`. Both create .venv when missing.
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.xaisurvey-installed
# These wheels lie on the development machines' disk; elsewhere pip fetches them from PyPI.
TORCH_SPEC ?= torch==2.14.1 torchvision==0.29.1
# Warnings are errors, references are checked, and every problem is listed before failing.
BOOK_FLAGS := -W -n --keep-going
# The real data: ../shared/data when it lies beside the clone, else the loaders' user cache.
ifeq ($(origin XAISURVEY_DATA),undefined)
ifneq ($(wildcard ../shared/data/README.md),)
export XAISURVEY_DATA := $(abspath ../shared/data)
endif
endif
export PATH := $(abspath $(VENV))/bin:$(PATH)
export PYTHONHASHSEED := 0
# Every claim a chapter checks (xaisurvey.claims.Ledger) is recorded here for the Claims appendix.
export XAISURVEY_CLAIMS_DIR ?= $(abspath _build/claims)

.PHONY: book test check-site install notebooks benchmark clean pdf

install: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet $(TORCH_SPEC)
	$(PY) -m pip install --quiet -e '.[book,test]'
	touch $@

# Jupyter Book's execution cache keys on each notebook's code, and Sphinx re-reads only changed
# pages: neither notices a change in the package the chapters import. Drop both whenever the
# package (or its dependencies) change, so no output is ever stale. Then the evaluation battery
# fills its cache first, in two processes (chapters only read it; a chapter that finds a result
# missing computes it itself, so a warm build skips this step).
MATHJAX := _static/mathjax/tex-mml-chtml.js

# MathJax served by the book itself (offline readers, CI, the browser test); CDN when npm is absent.
$(MATHJAX):
	@if command -v npm >/dev/null 2>&1; then \
	  tmp=$$(mktemp -d) && (cd $$tmp && npm pack --silent mathjax@3.2.2 >/dev/null) && \
	  mkdir -p _static/mathjax && tar -xzf $$tmp/mathjax-3.2.2.tgz -C _static/mathjax --strip-components=2 package/es5 && \
	  rm -rf $$tmp; \
	else echo "npm not found: the book will load MathJax from its CDN"; fi

book: $(STAMP) $(MATHJAX)
	@key=$$(cat pyproject.toml $$(find xaisurvey -name '*.py' | LC_ALL=C sort) | sha256sum | cut -c1-16); \
	if [ "$$(cat _build/.package-hash 2>/dev/null)" != "$$key" ]; then \
	  echo "package changed ($$key): executing every chapter afresh"; \
	  rm -rf _build/.jupyter_cache _build/.doctrees _build/jupyter_execute _build/html; \
	  $(PY) -m xaisurvey.evaluation.battery --jobs 2 || exit 1; \
	fi; mkdir -p _build; echo "$$key" > _build/.package-hash
	$(VENV)/bin/jupyter-book build . $(BOOK_FLAGS)
	$(PY) tools/export_executed.py
	@echo "The book is at _build/html/index.html"

test: $(STAMP)
	$(PY) -m pytest -n 2 --dist loadfile
	@# The GPU tests once more on the CPU: without a GPU they are skipped above, and this keeps them runnable.
	XAISURVEY_TEST_DEVICE=cpu $(PY) -m pytest tests/test_gpu.py -q -p no:cacheprovider

# The printed book: Sphinx's LaTeX builder and xelatex (Debian's TeX packages: .ci/run installs
# them). It reuses what `make book` executed, lands next to the HTML (every page's download menu
# links to it) and is read back by tests/pdf: chapter titles, figures, references, fonts.
PDF := $(shell sed -n 's/^ *targetname: *\(.*\)\.tex$$/\1.pdf/p' _config.yml)
pdf: book
	@command -v xelatex >/dev/null && command -v latexmk >/dev/null && command -v xindy >/dev/null || \
	  { echo "make pdf needs xelatex, latexmk and xindy: see the apt-get line in .ci/run"; exit 1; }
	LATEXMKOPTS="-interaction=nonstopmode -halt-on-error" $(VENV)/bin/jupyter-book build . --builder pdflatex $(BOOK_FLAGS)
	cp _build/latex/$(PDF) _build/html/$(PDF)
	$(PY) -m pytest tests/pdf -m pdf -p no:xdist
	@echo "The PDF is at _build/latex/$(PDF) (and _build/html/$(PDF))"

# Open the built book in headless Chromium (Debian's chromium + chromium-driver): images, math,
# internal links, search, and a screenshot in _build/site-screenshots/.
check-site: $(STAMP)
	@command -v chromium >/dev/null && command -v chromedriver >/dev/null || \
	  { echo "check-site needs Debian's chromium and chromium-driver (apt-get install chromium chromium-driver)"; exit 1; }
	$(PY) -m pytest tests/site -m site -p no:xdist

# Regenerate the paired .ipynb of every chapter (Colab/Binder) after editing a chapter.
notebooks: $(STAMP)
	$(PY) tools/sync_notebooks.py

# The paired notebooks run as a reader runs them (Colab, Jupyter), tested with nbval: a fresh kernel
# per notebook in the notebook's own folder, no myst-nb (tools/plain_kernel hides it) and no claims
# recorded; a cell fails the test only by raising (--nbval-lax). The data come from XAISURVEY_DATA
# or the user cache, as the README tells a reader. Run after `make book`, whose caches (trained
# models, the evaluation battery) it reuses. One notebook per worker (--dist loadscope), one
# PyTorch thread per kernel. The notebooks must first be in sync with their MyST sources.
NBVAL_JOBS ?= 2
.PHONY: notebook-test
notebook-test: $(STAMP)
	$(PY) tools/sync_notebooks.py --check
	XAISURVEY_CLAIMS_DIR= OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 \
	PYTHONPATH=$(abspath tools/plain_kernel)$${PYTHONPATH:+:$$PYTHONPATH} \
	$(PY) -m pytest chapters --nbval-lax --nbval-current-env --nbval-cell-timeout=1200 \
	  -n $(NBVAL_JOBS) --dist loadscope -p no:cacheprovider --ignore-glob='*/.ipynb_checkpoints/*'

benchmark: $(STAMP)
	$(PY) benchmarks/attribution.py

clean:
	rm -rf _build .cache _static/mathjax
