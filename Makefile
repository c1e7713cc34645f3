# Two set-up commands: `make demo` and `make test` (see README.md).
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
PLUGIN := $(wildcard plugins/napari/pyproject.toml)
DEMO_OUT ?= demo-out

# Debian packages napari needs for a virtual display (tests run under xvfb-run).
APT_PACKAGES := xvfb xauth libxcb-icccm4 libxcb-keysyms1 libxcb-xinerama0 libxcb-cursor0 \
                libxkbcommon-x11-0 libxcb-image0 libxcb-render-util0 libxcb-shape0 \
                libxcb-randr0 libgl1 libegl1 libglib2.0-0 libfontconfig1 libdbus-1-3

.PHONY: demo test install system-deps clean benchmarks

$(STAMP): pyproject.toml $(PLUGIN)
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test]' $(if $(PLUGIN),-e 'plugins/napari[test]')
	touch $@

install: $(STAMP)

system-deps:
	@if ! command -v xvfb-run >/dev/null 2>&1 || ! dpkg -s libxcb-cursor0 libgl1 libegl1 >/dev/null 2>&1; then \
	  echo "installing Debian packages for the virtual display: $(APT_PACKAGES)"; \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq $(APT_PACKAGES) >/dev/null; \
	fi

test: $(STAMP) system-deps
	@rc=0; xvfb-run -a -s "-screen 0 1600x1000x24" $(PY) -m pytest $(PYTEST_ARGS) || rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "pytest collected no tests (exit 5): not a failure"; rc=0; fi; \
	exit $$rc

demo: $(STAMP)
	$(PY) -m flr_volumetry.cli demo $(DEMO_OUT)

benchmarks: $(STAMP) system-deps
	@for b in benchmarks/*.py plugins/napari/benchmarks/*.py; do echo "== $$b"; xvfb-run -a $(PY) $$b || exit 1; done

clean:
	rm -rf $(VENV) $(DEMO_OUT) .pytest_cache
