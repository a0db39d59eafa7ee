"""The project's Python harness, shared by the tests (tests/python) and the benchmark
drivers (bench/python): start the hub and the tapper and wait for their JSON ready line,
stop them by pid, replay events through `hub-client replay`, scrape /metrics, and run a
real Prometheus, Alertmanager and PostgreSQL.

Import it with the repository's `python/` directory on the module path: pytest does so
through tests/python/pytest.ini (`pythonpath`), scripts/bench.sh exports
`PYTHONPATH=python`; by hand, run `PYTHONPATH=python python3 bench/python/SCRIPT.py`.
"""
