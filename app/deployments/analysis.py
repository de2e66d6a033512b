"""Analysis checks: HTTP probes, a Prometheus query and a pass/fail webhook.

A check takes `count` measurements (default 1), `interval` seconds apart (default 1).
It fails as soon as more than `failureLimit` measurements (default 0) have failed.
`should_stop()` is asked between requests, so an abort never waits for a whole check.

http: {"type": "http", "on": "preview" | "public" | an URL, "path": "/", "requests": 20,
       "expectStatus": [200, 399], "maxLatencyMs": 1000, "maxErrorRate": 0.0}
      One measurement sends `requests` requests; it passes when the share of answers outside
      `expectStatus` (an inclusive range) is at most `maxErrorRate` and the 95th percentile
      latency is at most `maxLatencyMs`. A request that gets no answer counts as an error.
prometheus: {"type": "prometheus", "url": "http://prometheus:9090", "query": "...", "max": 0.01}
      Runs an instant query (GET /api/v1/query); the first sample's value must be at most `max`
      and at least `min`. `{{release}}` in the query is replaced by the release name.
webhook: {"type": "webhook", "url": "https://..."}
      POSTs the deployment as JSON; an answer {"result": "pass"} (or any 2xx without a result)
      passes, {"result": "fail"} or another status fails.
"""

import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import requests

log = logging.getLogger(__name__)

# Seconds one request of a check may take.
REQUEST_TIMEOUT = 10


@dataclass
class Measurement:
    """One measurement of a check."""

    passed: bool
    summary: str
    details: dict = field(default_factory=dict)


@dataclass
class Context:
    """The release a check measures, its addresses, and the callbacks it reports through."""

    release: str
    environment: str
    deployment_id: int
    weight: int
    preview_url: str | None
    public_url: str | None
    record: Callable[[Measurement], None]
    should_stop: Callable[[], bool]


def run_check(check: dict, context: Context) -> tuple[bool | None, str]:
    """Run a check's measurements; return whether it passed (None when `should_stop` ended it) and why."""
    count, limit = int(check.get("count", 1)), int(check.get("failureLimit", 0))
    failures = 0
    measure = MEASURES[check["type"]]
    for number in range(max(count, 1)):
        if number and _sleep(float(check.get("interval", 1)), context.should_stop):
            return None, "stopped"
        measurement = measure(check, context)
        context.record(measurement)
        if context.should_stop():
            return None, "stopped"
        if not measurement.passed:
            failures += 1
            if failures > limit:
                return False, f"{check['type']} check failed {failures} time(s), more than its failureLimit " \
                              f"of {limit}: {measurement.summary}"
    return True, f"{check['type']} check passed ({failures} of {max(count, 1)} measurements failed)"


def measure_http(check: dict, context: Context) -> Measurement:
    url = _probe_url(check, context)
    total = int(check.get("requests", 20))
    low, high = check.get("expectStatus", [200, 399])
    errors, latencies, statuses = 0, [], {}
    for _ in range(total):
        if context.should_stop():
            break
        started = time.monotonic()
        try:
            status = requests.get(url, timeout=REQUEST_TIMEOUT).status_code
        except requests.RequestException:
            status = None
        latencies.append((time.monotonic() - started) * 1000)
        statuses[str(status)] = statuses.get(str(status), 0) + 1
        errors += status is None or not low <= status <= high
    sent = max(len(latencies), 1)
    error_rate = errors / sent
    p95 = sorted(latencies)[max(math.ceil(0.95 * len(latencies)) - 1, 0)] if latencies else 0.0
    passed = error_rate <= float(check.get("maxErrorRate", 0)) and p95 <= float(check.get("maxLatencyMs", 1000))
    summary = f"{url}: {errors} of {sent} requests failed, p95 latency {p95:.0f} ms"
    return Measurement(passed, summary, {"url": url, "errorRate": error_rate, "p95Ms": round(p95, 1),
                                         "statuses": statuses})


def measure_prometheus(check: dict, context: Context) -> Measurement:
    query = check["query"].replace("{{release}}", context.release)
    url = check["url"].rstrip("/") + "/api/v1/query"
    try:
        response = requests.get(url, params={"query": query}, timeout=REQUEST_TIMEOUT)
        body = response.json()
        value = float(body["data"]["result"][0]["value"][1])
    except (requests.RequestException, ValueError, KeyError, IndexError, TypeError) as error:
        return Measurement(False, f"Prometheus query {query!r} at {check['url']} gave no value: {error}",
                           {"query": query})
    passed = value <= float(check.get("max", math.inf)) and value >= float(check.get("min", -math.inf))
    bounds = " and ".join(f"{word} {check[key]}" for key, word in (("min", "at least"), ("max", "at most"))
                          if key in check)
    return Measurement(passed, f"query {query!r} = {value:g}, expected {bounds}", {"query": query, "value": value})


def measure_webhook(check: dict, context: Context) -> Measurement:
    body = {"deployment": context.deployment_id, "release": context.release, "environment": context.environment,
            "weight": context.weight}
    try:
        response = requests.post(check["url"], json=body, timeout=REQUEST_TIMEOUT)
    except requests.RequestException as error:
        return Measurement(False, f"webhook {check['url']} did not answer: {error}")
    try:
        result = response.json().get("result")
    except (ValueError, AttributeError):
        result = None
    passed = response.ok and result in (None, "pass")
    return Measurement(passed, f"webhook answered {response.status_code} with result {result!r}",
                       {"status": response.status_code, "result": result})


MEASURES = {"http": measure_http, "prometheus": measure_prometheus, "webhook": measure_webhook}


def _probe_url(check: dict, context: Context) -> str:
    on = check.get("on", "preview" if context.preview_url else "public")
    base = {"preview": context.preview_url, "public": context.public_url}.get(on, on)
    if not base:
        return "http://unknown-address.invalid/"
    path = check.get("path")
    return base.rstrip("/") + path if path else base


def _sleep(seconds: float, should_stop: Callable[[], bool]) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if should_stop():
            return True
        time.sleep(min(0.1, max(deadline - time.monotonic(), 0)))
    return False
