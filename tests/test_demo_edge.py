"""``scripts/demo.sh --edge``: each shop demo runs behind a real Varnish
(example_project/edge/cacheplug.vcl), which answers the catalog page's second request itself
and, after a write's purge, asks the shop again and shows the new name."""

from __future__ import annotations

import re
import signal
import urllib.request

import pytest
from test_example_project import EDITS, run_demo, serving_demo

THROUGH_VARNISH = (
    r"Through Varnish \(http://127\.0\.0\.1:\d+/\), the catalog page:\n"
    r"  GET: X-Cache MISS; GET again: X-Cache HIT, Age \d+ \(the app not asked\)\n"
    r"  {edit} renaming 'Kettle' \(the purge sent\): X-Cache MISS, shows Electric kettle\n"
)


@pytest.mark.parametrize("shop", ["django_shop", "flask_shop"])
def test_the_demo_behind_varnish_shows_a_hit_and_a_purge(shop: str) -> None:
    output = run_demo(shop, "--edge")  # exit code 0 and nothing on stderr
    assert f"{EDITS[shop]} renaming 'Grinder': the cached page shows Burr grinder\n" in output
    through = THROUGH_VARNISH.format(edit=re.escape(EDITS[shop]))
    assert re.search(through, output) is not None, output


@pytest.mark.parametrize("shop", ["django_shop", "flask_shop"])
def test_the_demo_keeps_serving_through_varnish_until_ctrl_c(shop: str) -> None:
    with serving_demo(shop, "--edge") as (demo, printed):
        found = re.search(r"Through Varnish: (http://127\.0\.0\.1:\d+)/ \(in front of ", printed)
        assert found is not None, printed
        with urllib.request.urlopen(found.group(1) + "/catalog/", timeout=10) as response:
            assert response.headers["X-Cache"] == "HIT"  # the demo left it in Varnish
            assert "Electric kettle" in response.read().decode()
        demo.send_signal(signal.SIGINT)  # Ctrl-C: Varnish stops with the demo
        assert demo.wait(timeout=30) == 0
