"""What ``--edge`` adds to the Django and Flask shop demos: a real Varnish
(``example_project/edge/cacheplug.vcl``, with vmod_xkey) in front of the shop's first worker,
named to the shop by ``SHOP_EDGE_URL`` (its settings then give the catalog page to the edge and
purge Varnish by key after each write), and the part of the demo shown through it.
"""

from __future__ import annotations

import contextlib
import os
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from cacheplug.testing import VarnishServer

EDGE_ENV = "SHOP_EDGE_URL"
"""The Varnish URL the shops' settings read (worker processes inherit it): the edge's
purge URL, and the catalog page is given to the edge."""
EDGE_VCL = Path(__file__).resolve().parent / "edge" / "cacheplug.vcl"


def plan_edge(port: int) -> tuple[int, int]:
    """For ``--edge``, before the shop is set up (its settings read ``EDGE_ENV``): the first
    worker's port (``port``, or a free one) and Varnish's, which ``EDGE_ENV`` then names."""
    from cacheplug.testing import free_port

    port = port or free_port()
    varnish_port = free_port()
    os.environ[EDGE_ENV] = f"http://127.0.0.1:{varnish_port}/"
    return port, varnish_port


def start_varnish(
    cleanup: contextlib.ExitStack, backend_port: int, varnish_port: int
) -> VarnishServer:
    """A varnishd in front of ``backend_port``, stopped and removed when ``cleanup`` closes.
    Started before the shop's rows are written: each write's purge reaches it."""
    from cacheplug.testing import VarnishServer

    varnish = VarnishServer(backend_port, vcl=EDGE_VCL, port=varnish_port)
    cleanup.callback(varnish.discard)
    cleanup.callback(varnish.stop)  # first, then discard
    return varnish.start()


def fetch_edge(url: str) -> tuple[str, str, str]:
    """GET ``url`` through Varnish: its body, X-Cache and Age."""
    with urllib.request.urlopen(url, timeout=10) as response:
        body = response.read().decode()
        return body, response.headers.get("X-Cache", "-"), response.headers.get("Age", "-")


def through_varnish(
    varnish_url: str,
    *,
    rename: Callable[[str, str], None],
    renamed_by: str,
    flush: Callable[[float], bool],
) -> bool:
    """The catalog page through Varnish: a miss, then a hit Varnish answers alone; ``rename``
    purges it (``flush``: wait for the edge purges), so the next request misses and shows the
    new name. True if all of it happened."""
    page = varnish_url + "/catalog/"
    print(f"\nThrough Varnish ({varnish_url}/), the catalog page:")
    settled = flush(10)  # the demo's earlier writes purged before the page is stored
    _, first, _ = fetch_edge(page)
    time.sleep(1)  # so that its Age shows
    _, second, age = fetch_edge(page)
    print(f"  GET: X-Cache {first}; GET again: X-Cache {second}, Age {age} (the app not asked)")
    rename("Kettle", "Electric kettle")
    purged = flush(10)
    body, third, _ = fetch_edge(page)
    shown = "Electric kettle" in body
    how = "the purge sent" if purged else "the purge NOT sent in 10 s"
    name = "shows Electric kettle" if shown else "still shows the OLD name"
    print(f"  After {renamed_by} renaming 'Kettle' ({how}): X-Cache {third}, {name}")
    return settled and purged and shown and (first, second, third) == ("MISS", "HIT", "MISS")
