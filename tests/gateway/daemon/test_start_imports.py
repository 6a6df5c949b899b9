"""What ``posgw run`` loads before it starts: no library of a part that is not configured.

The daemon's resident memory is mostly what it imports (benchmarks/rss.py, docs/performance.md,
"Memory"): head-office sync's MQTT libraries load only with ``[mqtt]``, JSON Schema only with the
OpenAPI route or the tests, Playwright never; and importing the password module hashes nothing
(an Argon2id hash takes 64 MiB for a moment: it was the daemon's peak at start); an unknown
name is still checked against a dummy hash with the parameters of a real one.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]

_PROBE = """
import json, sys
import gateway.daemon.cli, gateway.daemon.daemon
from gateway.security import passwords
print(json.dumps({"modules": sorted(sys.modules),
                  "dummy_hashes": passwords._dummy.cache_info().currsize}))
"""


def _probe() -> dict[str, object]:
    result = subprocess.run(
        [sys.executable, "-c", _PROBE], cwd=ROOT, capture_output=True, text=True, check=True,
        timeout=120,
    )  # fmt: skip
    report = json.loads(result.stdout)
    assert isinstance(report, dict)
    return report


def test_the_daemon_starts_without_the_libraries_of_unconfigured_parts() -> None:
    report = _probe()
    modules = report["modules"]
    assert isinstance(modules, list)
    loaded = {name.split(".")[0] for name in modules}
    assert "gateway.daemon.daemon" in modules  # the probe did import the daemon
    for library in ("aiomqtt", "paho", "jsonschema", "playwright", "pytest"):
        assert library not in loaded, f"{library} is loaded at start"
    assert not any(name.startswith("gateway.sync") for name in modules)
    # the status page's catalogue tools: with the first page in a translated language only
    assert not any(name.startswith("babel.messages") for name in modules)


def test_importing_the_password_module_hashes_nothing() -> None:
    assert _probe()["dummy_hashes"] == 0


def test_an_unknown_account_is_still_verified_against_the_dummy() -> None:
    from gateway.security.passwords import _DUMMY, _dummy, hash_password, verify_password

    # the shipped dummy has today's parameters (else each process would hash one at its first
    # unknown name), and it is the hash of what it says
    assert _dummy() == _DUMMY
    assert verify_password(_DUMMY, "posgw dummy password, never valid")

    stored = hash_password("correct horse battery")
    assert verify_password(stored, "correct horse battery")
    assert not verify_password(None, "correct horse battery")
    assert not verify_password(stored, "wrong horse battery")


_STATUS_PROBE = """
import json, sys
from aiohttp import web
if sys.argv[1] == "absent":
    sys.modules["prometheus_client"] = None  # Python's own way to make an import fail
try:
    from gateway.web import add_status_routes
    add_status_routes(web.Application(), lambda: {})
    outcome = "mounted"
except ImportError as exc:
    outcome = f"ImportError {exc.name}"
print(json.dumps({"outcome": outcome, "loaded": "prometheus_client" in sys.modules
                  and sys.modules["prometheus_client"] is not None}))
"""


def _status_probe(mode: str) -> dict[str, object]:
    result = subprocess.run(
        [sys.executable, "-c", _STATUS_PROBE, mode], cwd=ROOT, capture_output=True, text=True,
        check=True, timeout=120,
    )  # fmt: skip
    report = json.loads(result.stdout)
    assert isinstance(report, dict)
    return report


def test_the_status_routes_load_prometheus_client_only_at_the_first_scrape() -> None:
    # about 1 MB with http.server and wsgiref: a shop that is never scraped never loads it
    # (test_metrics.py scrapes /metrics for real)
    assert _status_probe("installed") == {"outcome": "mounted", "loaded": False}


def test_a_missing_prometheus_client_still_fails_at_start_not_at_the_first_scrape() -> None:
    assert _status_probe("absent") == {"outcome": "ImportError prometheus_client",
                                       "loaded": False}
