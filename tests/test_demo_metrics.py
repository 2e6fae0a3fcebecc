"""``scripts/demo.sh --metrics``: each shop demo serves its cache's Prometheus metrics at
/metrics (cacheplug.prometheus.CacheCollector), the counters moved by the demo's traffic."""

from __future__ import annotations

import re
import signal
import urllib.request

import pytest
from test_example_project import serving_demo


@pytest.mark.parametrize("shop", ["django_shop", "flask_shop"])
def test_the_demo_serves_metrics_with_one_flag(shop: str) -> None:
    with serving_demo(shop, "--metrics") as (demo, printed):
        found = re.search(r"Metrics: (http://127\.0\.0\.1:\d+/metrics)", printed)
        assert found is not None, printed
        with urllib.request.urlopen(found.group(1), timeout=10) as response:
            assert response.headers["Content-Type"].startswith("text/plain")
            page = response.read().decode()
        hits = re.search(
            r'cacheplug_hits_total\{cache="shop",[^}]*scope="process",tier="l1"\} (\S+)', page
        )
        loads = re.search(r'cacheplug_loads_total\{cache="shop",[^}]*scope="process"\} (\S+)', page)
        assert hits is not None, page
        assert loads is not None, page
        assert float(loads.group(1)) >= 1  # the burst's page, at least
        assert "cacheplug_load_duration_seconds_bucket" in page
        # Each shop's database has the outbox table (migrate, or create_all(), made it).
        backlog = re.search(r'cacheplug_outbox_backlog_rows\{database="[^"]+"\} (\S+)', page)
        assert backlog is not None, page
        demo.send_signal(signal.SIGINT)
        assert demo.wait(timeout=30) == 0
