# powernode — the two commands (run; test) and the lab.
.PHONY: run test lab lab-down bench lint

run:  ## fresh machine → running platform (SQLite, local CA, default catalog, admin login)
	scripts/run.sh

test:  ## install what the tests need and run them all (PostgreSQL, OpenBao, WireGuard, dockerd)
	scripts/test.sh

lab:  ## (root) the tutorial end to end on this machine: namespaces, WireGuard hub, agent, dockerd
	scripts/bootstrap.sh
	scripts/install_lab_deps.sh
	.venv/bin/python -m lab walk --keep

lab-down:  ## remove every namespace, interface, process and file the lab made
	scripts/bootstrap.sh
	.venv/bin/python -m lab down

bench:  ## print the benchmark figures
	scripts/bench.sh

lint:
	.venv/bin/ruff check .
