"""The Django project of ``benchmarks/edge.py``: the test shop's models, a catalog page given to
the edge, settings from environment variables."""
