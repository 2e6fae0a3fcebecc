"""A small service on the cacheplug core alone: forecasts fetched from a slow source, cached
in Redis by a module-level cache."""

from __future__ import annotations

import os

from cacheplug import Cache

cache = Cache(
    os.environ["WEATHER_REDIS_URL"],
    namespace="weather",
    secret="weather-tests-secret-not-for-production",
)
fetched: list[str] = []  # one item per fetch from the source, for the tests to count


@cache.cached(ttl=300, key="forecast:{city}", tags=["city:{city}"])
def forecast(city: str) -> str:
    fetched.append(city)
    return f"sunny in {city}"


def report(cities: list[str]) -> dict[str, str]:
    return {city: forecast(city) for city in cities}
