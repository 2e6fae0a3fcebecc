"""Three small projects that use cacheplug's pytest plugin as its users do: each is a
project of its own, run by ``tests/test_pytest_plugin.py`` in a pytest subprocess with its
own rootdir and configuration, never collected by this test suite."""

collect_ignore = ["django_bookstore", "flask_bakery", "core_weather"]
