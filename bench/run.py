"""Run every benchmark, each in its own process, and print each figure against its target.

    python -m bench                 # everything, full sizes (needs PostgreSQL for request and scale)
    python -m bench verify fetch    # only some (verify, dpop, fetch, memory, rls, request, server, scale, base-manager)
    python -m bench citus           # Citus against plain PostgreSQL (named only: needs a Citus cluster)
    python -m bench --quick         # tiny sizes: checks that they run, the figures mean nothing

Each benchmark is also a module of its own (``python -m bench.bench_verify --help``). The request
and data-scale benchmarks use ``BENCH_DATABASE_URL`` (default
``postgres://postgres@127.0.0.1:5432/cobee_bench``), a database they create, migrate and reuse.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time

from bench.common import ROOT, print_environment

#: name -> (module, full-size arguments, quick arguments)
BENCHMARKS: dict[str, tuple[str, list[str], list[str]]] = {
    "verify": ("bench.bench_verify", [], ["--tokens", "20", "--rounds", "3", "--cache-size", "20"]),
    "dpop": ("bench.bench_dpop", [], ["--requests", "20", "--rounds", "3"]),
    "fetch": ("bench.bench_fetch", [], ["--requests", "300", "--threads", "4", "--cooldown", "0.2", "--periods", "2"]),
    "memory": ("bench.bench_memory", [], ["--tokens", "300"]),
    "rls": ("bench.bench_rls", [], ["--statements", "20", "--rounds", "3"]),
    "request": ("bench.bench_request", [], ["--requests", "3", "--rounds", "2"]),
    "server": ("bench.bench_server", [], ["--requests", "3", "--rounds", "2", "--clients", "2"]),
    "scale": ("bench.bench_scale", [], ["--sizes", "300,600", "--rounds", "2", "--repeat", "2"]),
    "base-manager": ("bench.bench_base_manager", [], ["--operations", "5", "--rounds", "2"]),
    "citus": ("bench.bench_citus", [], ["--sizes", "3000,6000", "--rounds", "2", "--repeat", "2"]),
}
#: Run only when named: they need more than PostgreSQL (a Citus cluster).
OPT_IN = {"citus"}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("names", nargs="*", choices=[[], *BENCHMARKS], help="benchmarks to run (default: all)")
    parser.add_argument("--quick", action="store_true", help="tiny sizes, to check that the scripts run")
    args = parser.parse_args(argv)
    names = args.names or [name for name in BENCHMARKS if name not in OPT_IN]

    print_environment()
    failed = []
    for name in names:
        module, full, quick = BENCHMARKS[name]
        print(f"\n== {name} ({module})", flush=True)
        started = time.monotonic()
        command = [sys.executable, "-m", module, "--no-environment", *(quick if args.quick else full)]
        if subprocess.run(command, cwd=ROOT, check=False).returncode:
            failed.append(name)
        print(f"== {name} took {time.monotonic() - started:.1f} s", flush=True)
    if failed:
        print(f"\nfailed to run: {', '.join(failed)}", flush=True)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
