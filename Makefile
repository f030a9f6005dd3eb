# Test entry points. `make test` is the one to run: it installs what is missing, then runs the
# host tier and the kernel tier (inside a VM) and prints a summary. See scripts/*.sh.
#   make kernel-test PYTEST_ARGS='-k smoke'   extra pytest arguments for one tier

PYTEST_ARGS ?=
VENV := .venv

.PHONY: test bootstrap lint host-test kernel-test demo demo-keep

test:
	scripts/test.sh

bootstrap:
	scripts/bootstrap.sh

lint: bootstrap
	$(VENV)/bin/ruff check piranha testkit lab tests scripts bench demo
	$(VENV)/bin/mypy

host-test: bootstrap
	$(VENV)/bin/python -m pytest -m "not kernel" $(PYTEST_ARGS)

kernel-test: bootstrap
	scripts/vm-pytest.sh $(PYTEST_ARGS)

demo:
	scripts/demo.sh

demo-keep:
	scripts/demo.sh --keep
