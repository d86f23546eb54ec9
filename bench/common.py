"""What every benchmark shares: the fair comparison, the report lines and the machine description.

Fairness rules, applied by :func:`interleave`:

- the candidate and its baseline run in the same process, on the same data, in rounds;
- inside a round every measure runs once, and the order is rotated from round to round, so a slow
  period of the machine (other processes, frequency scaling) hits each measure alike;
- a ratio is computed per round (candidate / baseline of that same round) and the report gives the
  median of those ratios with its spread (the 10th and 90th percentiles), never a best case.
"""

from __future__ import annotations

import os
import platform
import statistics
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

#: The PostgreSQL database the request and data-scale benchmarks create and reuse.
DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/cobee_bench"


def database_url() -> str:
    """``BENCH_DATABASE_URL`` if set, else a ``cobee_bench`` database on the local PostgreSQL."""
    return os.environ.get("BENCH_DATABASE_URL") or DEFAULT_DATABASE_URL


def interleave(measures: Mapping[str, Callable[[], float]], rounds: int) -> dict[str, list[float]]:
    """Run every measure once per round, rotating the order each round; each returns one value."""
    names = list(measures)
    results: dict[str, list[float]] = {name: [] for name in names}
    for index in range(rounds):
        shift = index % len(names)
        order = names[shift:] + names[:shift]
        if index % 2:
            order.reverse()
        for name in order:
            results[name].append(measures[name]())
    return results


def quantile(values: list[float], q: float) -> float:
    """The ``q`` quantile (0..1) of ``values``, interpolated."""
    ordered = sorted(values)
    if len(ordered) == 1:
        return ordered[0]
    position = (len(ordered) - 1) * q
    low = int(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


@dataclass(frozen=True)
class Ratio:
    """A candidate against its baseline: the median of per-round ratios and their spread."""

    median: float
    low: float
    high: float
    candidate: float
    baseline: float


def ratio(candidate: list[float], baseline: list[float]) -> Ratio:
    """Per-round ratios of two interleaved series (same length), summarised."""
    per_round = [c / b for c, b in zip(candidate, baseline, strict=True)]
    return Ratio(
        median=statistics.median(per_round),
        low=quantile(per_round, 0.1),
        high=quantile(per_round, 0.9),
        candidate=statistics.median(candidate),
        baseline=statistics.median(baseline),
    )


def verdict(value: float, target: float, higher_is_better: bool = False) -> str:
    met = value >= target if higher_is_better else value <= target
    return "met" if met else "MISSED"


def report(
    label: str,
    result: Ratio,
    *,
    unit: str,
    target: float | None = None,
    higher_is_better: bool = False,
    scale: float = 1.0,
) -> None:
    """One ratio line: ``RATIO <label>: <ratio>x [p10-p90] (<candidate> vs <baseline> <unit>) target``."""
    goal = ""
    if target is not None:
        sign = ">=" if higher_is_better else "<="
        goal = f"  target {sign} {target:g}x: {verdict(result.median, target, higher_is_better)}"
    print(
        f"RATIO {label}: {result.median:.3f}x [{result.low:.3f}-{result.high:.3f}]"
        f" ({result.candidate * scale:,.2f} vs {result.baseline * scale:,.2f} {unit}){goal}",
        flush=True,
    )


def figure(label: str, text: str) -> None:
    """A line for a figure that is not a ratio (counts, sizes)."""
    print(f"FIGURE {label}: {text}", flush=True)


def _version(distribution: str) -> str:
    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return "not installed"


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def postgres_version(url: str | None = None) -> str:
    """The server's version, or why it is not known (the benchmarks that need it say so again)."""
    try:
        import psycopg

        with psycopg.connect(_admin_url(url or database_url()), connect_timeout=3) as conn:
            row = conn.execute("SHOW server_version").fetchone()
            return str(row[0]) if row else "unknown"
    except Exception as exc:
        return f"unavailable ({type(exc).__name__})"


def _admin_url(url: str) -> str:
    # The maintenance database always exists; the bench database may not yet.
    base, _, _ = url.rpartition("/")
    return base + "/postgres"


def environment() -> list[str]:
    """The machine and the versions of everything on the measured path, one line each."""
    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:
        usable = os.cpu_count() or 0
    try:
        from cryptography.hazmat.backends.openssl.backend import backend

        openssl = backend.openssl_version_text()
    except Exception:
        openssl = "unknown"
    try:
        load = "load average " + " ".join(f"{value:.2f}" for value in os.getloadavg())
    except OSError:
        load = "load average unknown"
    return [
        f"machine: {cpu_model()}, {os.cpu_count()} cores ({usable} usable), {platform.system()} "
        f"{platform.release()}, {load}",
        f"python: {platform.python_implementation()} {platform.python_version()}",
        "versions: "
        + ", ".join(
            f"{name} {_version(dist)}"
            for name, dist in (
                ("Django", "django"),
                ("DRF", "djangorestframework"),
                ("josepy", "josepy"),
                ("cryptography", "cryptography"),
                ("psycopg", "psycopg"),
            )
        )
        + f", {openssl}",
        f"postgresql: {postgres_version()}",
    ]


def print_environment() -> None:
    for line in environment():
        print(line, flush=True)


def configure_without_database(**cobee: object) -> None:
    """Configure Django for the benchmarks that need no database (token verification, key fetches)."""
    import django
    from django.conf import settings

    settings.configure(
        INSTALLED_APPS=["cobee_django"],
        COBEE_DJANGO=cobee,
        CACHES={"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}},
        USE_TZ=True,
    )
    django.setup()
