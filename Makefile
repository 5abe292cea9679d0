# Pillarbox — common tasks. `make run` starts a local instance, `make test` runs the suite.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: run test check lint typecheck bench clean venv

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

venv: $(STAMP)

## run: start a local-only instance (loopback, ports +1000, account you@localhost)
run: $(STAMP)
	$(BIN)/pillarbox localserve

## test: run the whole test suite
test: $(STAMP)
	$(BIN)/python -m pytest -q tests

## check: lint, strict type check and the layering test
check: $(STAMP)
	$(BIN)/ruff check app tests
	$(BIN)/ruff format --check app tests
	$(BIN)/mypy app
	$(BIN)/python -m pytest -q tests/test_layering.py

## bench: benchmarks, results printed as JSON
bench: $(STAMP)
	$(BIN)/python -m tests.bench.run

clean:
	rm -rf $(VENV) dist build/work .pytest_cache .mypy_cache .ruff_cache

# Shipping (build/, packaging/, systemd/). Build tools live in build/work/venv, apart
# from the development venv; outputs go to dist/.
.PHONY: binary binary-arm64 deb rpm test-install

## binary: the one-file executable dist/pillarbox (PyInstaller), then its selftest
binary:
	PYTHON=$(PYTHON) sh build/build.sh onefile

## binary-arm64: dist/arm64/pillarbox, built in a Debian arm64 chroot under qemu (root; not in CI)
binary-arm64:
	sh build/binary-arm64.sh

## deb: dist/pillarbox_VERSION-1_ARCH.deb (one-directory build under /usr/lib/pillarbox)
deb:
	PYTHON=$(PYTHON) sh build/package.sh deb

## rpm: dist/pillarbox-VERSION-1.ARCH.rpm, from the same description as the .deb
rpm:
	PYTHON=$(PYTHON) sh build/package.sh rpm

## test-install: install, upgrade, remove and purge the .deb in a Debian 12 chroot (root)
test-install:
	PYTHON=$(PYTHON) sh build/test-install.sh

# Peers: Postfix and Dovecot from Debian, side by side with Pillarbox (root; installs them).
.PHONY: bench-peers

## bench-peers: SMTP vs Postfix, IMAP vs Dovecot, same machine and run; JSON with ratios
bench-peers: $(STAMP)
	$(BIN)/python -m tests.bench.peers
