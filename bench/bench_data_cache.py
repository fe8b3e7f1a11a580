"""Time a cold vs a warm load of the MIT-BIH beat windows (preprocessing cache).

Run from the repository root:  python -m bench.bench_data_cache
Writes the "data_cache" section of BENCHMARKS.md. Not a test: it reads all 26 shared
records and takes a few seconds.
"""

from __future__ import annotations

import statistics
import tempfile
import time

from bench._report import machine_line, write_section
from hyper_tinypw_tf.data import LoadOptions, default_data_dir, load_arrays

MITDB = default_data_dir("mitdb")
COMMAND = "python -m bench.bench_data_cache"
WARM_RUNS = 5


def _timed(cache_dir: str) -> tuple[float, int]:
    t0 = time.perf_counter()
    arrays, _ = load_arrays("mitdb_aami", MITDB, LoadOptions(cache_dir=cache_dir))
    return time.perf_counter() - t0, sum(len(a.y) for a in arrays.values())


def main() -> None:
    """Cold load into an empty temp cache, then repeated warm loads from it."""
    with tempfile.TemporaryDirectory() as cache_dir:
        cold, n = _timed(cache_dir)
        warm_runs = [_timed(cache_dir)[0] for _ in range(WARM_RUNS)]
    second, median = warm_runs[0], statistics.median(warm_runs)
    body = "\n".join([
        "## Data cache: MIT-BIH beat windows, cold vs warm load",
        "",
        f"Command: `{COMMAND}`  ",
        f"Machine: {machine_line()}  ",
        f"Data: ../shared/data/mitdb (patient_wise, AAMI labels, window 256 @ 360 Hz, "
        f"z-scored), {n} beats",
        "",
        "| load | seconds |",
        "|---|---|",
        f"| first (cold cache, temp dir) | {cold:.3f} |",
        f"| second (warm cache) | {second:.3f} |",
        f"| median of {WARM_RUNS} warm loads | {median:.3f} |",
        "",
        f"Ratio first/second: **{cold / second:.1f}x** (first/median warm: "
        f"{cold / median:.1f}x; target >= 5x). \"Cold\" means an empty preprocessing cache; "
        "the WFDB source files may already sit in the OS page cache.",
    ])
    write_section("data_cache", body)
    print(body)


if __name__ == "__main__":
    main()
