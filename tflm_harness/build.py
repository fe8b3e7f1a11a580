"""Build TFLM (only what our models need), our kernel and core, and the host runner, into a cache.

TFLM's own Makefile stays the source of truth for *what* to compile and *how*: it is asked (in a
read-only way, with ``BASE_GENDIR`` pointing into the cache) for its library sources, compilers,
flags and include paths for the target. Then only the framework and the kernels of
:data:`KERNELS` are compiled, by a small job pool, into ``~/.cache/hyper_tinypw_tf/`` keyed by
the tree, the flags and the sources, so repeated test runs and CI do not rebuild TFLM.
The full ``microlite`` library takes about 18 minutes on 2 cores; this subset a few minutes.

Nothing is ever written into ``TFLM_DIR`` (default: ``../shared/third_party/tflite-micro``
beside the checkout; the environment variable ``TFLM_DIR`` overrides it).
"""

from __future__ import annotations

import concurrent.futures
import hashlib
import json
import os
import resource
import shlex
import shutil
import subprocess
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

HARNESS = Path(__file__).resolve().parent
DEFAULT_TFLM_DIR = HARNESS.parents[1] / "shared" / "third_party" / "tflite-micro"
MAKEFILE = "tensorflow/lite/micro/tools/make/Makefile"

# Builtin kernels the exported models use (CONV_2D, DEPTHWISE_CONV_2D, MEAN, PACK, RESHAPE, SHAPE,
# STRIDED_SLICE: GlobalAveragePooling2D and Reshape lower to MEAN and SHAPE/STRIDED_SLICE/PACK/RESHAPE),
# by source stem; "<stem>_common" files come along. kernel_util and micro_tensor_utils are helpers.
# DECODE (the custom op "TFLM_DECODE" that tflite_micro.compression inserts before each LUT-compressed
# tensor) is a graph op: it needs no USE_TFLM_COMPRESSION build, only its sources (decode_state.cc
# dispatches to the LUT, Huffman and pruning states, so all of them link).
# Every other library source (framework, tensorflow/lite/kernels/internal helpers) is compiled.
KERNELS = ("conv", "depthwise_conv", "reduce", "pack", "reshape", "shape", "strided_slice",
           "decode", "decode_state", "decode_state_lut", "decode_state_huffman", "decode_state_prune")
_KERNEL_HELPERS = ("kernel_util", "micro_tensor_utils")
# Framework sources of list_library_sources that only TFLM's own tests use.
_TEST_ONLY = ("fake_micro_context", "mock_micro_graph", "test_helpers", "test_helper_custom_ops")
# What TFLM's flatbuffers.patch sets in base.h and util.h. The pinned tree's downloads/flatbuffers
# does not carry that patch (its headers are upstream v25.9.23), so without these flexbuffers'
# AsInt64 links against flatbuffers::ClassicLocale, which TFLM does not build.
FLATBUFFERS_PATCH_DEFINES = ("-DFLATBUFFERS_LOCALE_INDEPENDENT=0", "-DFLATBUFFERS_PREFER_PRINTF=1")


@dataclass(frozen=True)
class Target:
    """A build target: the TFLM Makefile arguments that select it."""

    name: str
    make_args: tuple[str, ...]
    third_party_filter: str  # path part of the third-party sources to compile ("" = none)


TARGETS = {
    "host": Target("host", (), ""),
    # Debian's arm toolchain through TARGET_TOOLCHAIN_ROOT (third_party/README.md), CMSIS-NN kernels.
    "cortex-m4": Target(
        "cortex-m4",
        ("TARGET=cortex_m_generic", "TARGET_ARCH=cortex-m4+fp", "OPTIMIZED_KERNEL_DIR=cmsis_nn",
         "TARGET_TOOLCHAIN_ROOT=/usr/bin/"),
        "downloads/cmsis_nn/",
    ),
}


class BuildError(RuntimeError):
    """A compiler, archiver or Makefile query failed; the message holds the command and its output."""


@dataclass(frozen=True)
class Toolchain:
    """What TFLM's Makefile says for one target: tools, flags (absolute include paths) and sources."""

    target: str
    tflm_dir: str
    cxx: tuple[str, ...]
    cc: tuple[str, ...]
    ar: str
    cxxflags: tuple[str, ...]
    ccflags: tuple[str, ...]
    includes: tuple[str, ...]
    core_opt: str
    kernel_opt: str
    sources: tuple[str, ...]  # relative to tflm_dir: framework + our kernels' TFLM sources + third party


@dataclass(frozen=True)
class Library:
    """A built static library and how it came to be."""

    path: Path
    toolchain: Toolchain
    seconds: float  # wall time of the compile that produced it (as recorded at build time)
    cached: bool  # True when this call compiled nothing


def tflm_dir() -> Path:
    """``$TFLM_DIR`` if set, else the pinned tree beside the checkout; it must hold TFLM's Makefile."""
    path = Path(os.environ.get("TFLM_DIR") or DEFAULT_TFLM_DIR).resolve()
    if not (path / MAKEFILE).is_file():
        raise BuildError(f"TFLM_DIR={path} is not a tflite-micro tree ({MAKEFILE} not found); set TFLM_DIR")
    return path


def cache_dir() -> Path:
    """``$XDG_CACHE_HOME/hyper_tinypw_tf`` (default ``~/.cache/hyper_tinypw_tf``), outside the clone."""
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "hyper_tinypw_tf"


def _digest(payload: object) -> str:
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()[:16]


def _stat_fingerprint(paths: Sequence[Path]) -> list[tuple[str, int, int]]:
    out = []
    for path in paths:
        st = path.stat()
        out.append((str(path), st.st_size, st.st_mtime_ns))
    return out


def _make_query(tree: Path, target: Target, gendir: Path, goals: Sequence[str]) -> list[str]:
    """stdout lines of TFLM's Makefile for ``goals`` (run from the tree root, outputs under ``gendir``)."""
    cmd = ["make", "-s", "-f", MAKEFILE, f"BASE_GENDIR={gendir}", *target.make_args, *goals]
    proc = subprocess.run(cmd, cwd=tree, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise BuildError(f"TFLM Makefile query failed ({' '.join(cmd)} in {tree}):\n{proc.stderr[-2000:]}")
    return proc.stdout.splitlines()


def _printed(lines: Sequence[str], var: str) -> str:
    for line in lines:
        if line.startswith(var + "="):
            return line[len(var) + 1:]
    raise BuildError(f"TFLM Makefile did not print {var}")


def _select_sources(library: Sequence[str], third_party: Sequence[str], target: Target) -> list[str]:
    wanted = set(_KERNEL_HELPERS) | set(KERNELS) | {f"{k}_common" for k in KERNELS}
    chosen = []
    for src in library:
        path = Path(src)
        if src.startswith("signal/") or path.stem in _TEST_ONLY:
            continue
        if src.startswith("tensorflow/lite/micro/kernels/"):
            if path.stem in wanted and path.parts[-2] in ("kernels", "cmsis_nn"):
                chosen.append(src)
            continue
        chosen.append(src)
    if target.third_party_filter:
        chosen += [s for s in third_party if target.third_party_filter in s and s.endswith(".c")]
    return chosen


def toolchain(target: str = "host") -> Toolchain:
    """Ask TFLM's Makefile (cached by the Makefile fragments' stats) for the target's tools and sources."""
    if target not in TARGETS:
        raise BuildError(f"unknown target {target!r}; expected one of {tuple(TARGETS)}")
    spec = TARGETS[target]
    tree = tflm_dir()
    make_files = sorted((tree / "tensorflow/lite/micro/tools/make").rglob("*.inc"))
    key = _digest([str(tree), spec.make_args, _stat_fingerprint([tree / MAKEFILE, *make_files])])
    record = cache_dir() / "queries" / f"{target}-{key}.json"
    if not record.is_file():
        record.parent.mkdir(parents=True, exist_ok=True)
        tmp = record.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps(_query(tree, spec), indent=1))
        tmp.replace(record)
    raw = json.loads(record.read_text())
    library, third_party = raw.pop("library_sources"), raw.pop("third_party_sources")
    raw = {k: tuple(v) if isinstance(v, list) else v for k, v in raw.items()}
    raw["cxxflags"] += FLATBUFFERS_PATCH_DEFINES
    raw["ccflags"] += FLATBUFFERS_PATCH_DEFINES
    return Toolchain(target=target, tflm_dir=str(tree), sources=tuple(_select_sources(library, third_party, spec)),
                     **raw)


def _query(tree: Path, spec: Target) -> dict[str, object]:
    """The Makefile's answers for ``spec``: tools, flags, absolute include paths, all library sources."""
    gendir = cache_dir() / "make_gen"
    gendir.mkdir(parents=True, exist_ok=True)
    lib_line = _make_query(tree, spec, gendir, ["list_library_sources"])[-1]
    lines = _make_query(tree, spec, gendir, [
        "list_third_party_sources", "print-CXX", "print-CC", "print-AR", "print-CXXFLAGS", "print-CCFLAGS",
        "print-INCLUDES", "print-CORE_OPTIMIZATION_LEVEL", "print-KERNEL_OPTIMIZATION_LEVEL",
    ])
    third_party = next((ln for ln in lines if ln.endswith((".c", ".cc")) and "=" not in ln), "").split()
    includes = []
    for flag in shlex.split(_printed(lines, "INCLUDES")):
        rel = flag[2:]
        if "genfiles" in rel:  # generated sources are never needed by the library subset
            continue
        includes.append("-I" + str((tree / rel).resolve()))

    def flags(var: str) -> list[str]:
        # -MD writes dependency files beside the objects; the cache key already covers the headers.
        return [f for f in shlex.split(_printed(lines, var)) if f != "-MD"]

    return {
        "cxx": shlex.split(_printed(lines, "CXX")), "cc": shlex.split(_printed(lines, "CC")),
        "ar": _printed(lines, "AR").strip(), "cxxflags": flags("CXXFLAGS"), "ccflags": flags("CCFLAGS"),
        "includes": list(dict.fromkeys(includes)),
        "core_opt": _printed(lines, "CORE_OPTIMIZATION_LEVEL").strip(),
        "kernel_opt": _printed(lines, "KERNEL_OPTIMIZATION_LEVEL").strip(),
        "library_sources": lib_line.split(), "third_party_sources": third_party,
    }


def _tree_fingerprint(tc: Toolchain) -> list[tuple[str, int, int]]:
    """Stats of every compiled source and every header TFLM's include paths can reach."""
    tree = Path(tc.tflm_dir)
    files = [tree / s for s in tc.sources]
    for root in ("tensorflow", "third_party", "signal"):
        if (tree / root).is_dir():
            files += [p for p in (tree / root).rglob("*.h")]
    downloads = tree / "tensorflow/lite/micro/tools/make/downloads"
    for sub in ("flatbuffers/include", "gemmlowp", "cmsis_nn/Include", "cmsis/CMSIS/Core/Include"):
        if (downloads / sub).is_dir():
            files += [p for p in (downloads / sub).rglob("*.h")]
    return _stat_fingerprint(sorted(files))


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _run(cmd: Sequence[str], cwd: Path) -> None:
    proc = subprocess.run(list(cmd), cwd=cwd, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise BuildError(f"command failed ({proc.returncode}): {shlex.join(cmd)}\n{proc.stderr[-4000:]}")


def _compile_all(jobs: list[tuple[list[str], Path]], cwd: Path, n_jobs: int) -> None:
    """Run compile commands (each writes ``obj``) in a pool; an existing object is kept (resumable)."""
    todo = [(cmd, obj) for cmd, obj in jobs if not obj.is_file()]

    def one(cmd: list[str], obj: Path) -> None:
        obj.parent.mkdir(parents=True, exist_ok=True)
        tmp = obj.with_suffix(f".{os.getpid()}.tmp.o")
        _run([*cmd, "-o", str(tmp)], cwd)
        tmp.replace(obj)

    with concurrent.futures.ThreadPoolExecutor(max_workers=max(1, n_jobs)) as pool:
        for future in [pool.submit(one, cmd, obj) for cmd, obj in todo]:
            future.result()


def _archive(tc: Toolchain, objects: Sequence[Path], lib: Path) -> None:
    tmp = lib.with_suffix(f".{os.getpid()}.tmp.a")  # concurrent builds of one key each write their own
    tmp.unlink(missing_ok=True)
    _run([tc.ar, "rcs", str(tmp), *map(str, objects)], lib.parent)
    tmp.replace(lib)


def _compile_command(tc: Toolchain, src: Path, opt: str, extra: Sequence[str] = ()) -> list[str]:
    if src.suffix == ".c":
        return [*tc.cc, *tc.ccflags, opt, *tc.includes, *extra, "-c", str(src)]
    return [*tc.cxx, *tc.cxxflags, opt, *tc.includes, *extra, "-c", str(src)]


def build_tflm(target: str = "host", jobs: int = 2) -> Library:
    """TFLM's framework plus :data:`KERNELS` as ``libtflm.a`` in the cache (compiled once per key)."""
    tc = toolchain(target)
    key = _digest(["tflm", asdict(tc), _tree_fingerprint(tc)])
    out = cache_dir() / f"tflm-{target}-{key}"
    lib, record = out / "libtflm.a", out / "build.json"
    if lib.is_file() and record.is_file():
        return Library(lib, tc, json.loads(record.read_text())["seconds"], True)
    tree = Path(tc.tflm_dir)
    start, cpu_start = time.monotonic(), _children_cpu()
    jobs_list = []
    for src in tc.sources:
        opt = tc.kernel_opt if ("kernels" in Path(src).parts or "downloads" in Path(src).parts) else tc.core_opt
        jobs_list.append((_compile_command(tc, tree / src, opt), out / "obj" / (src + ".o")))
    _compile_all(jobs_list, tree, jobs)
    _archive(tc, [obj for _, obj in jobs_list], lib)
    seconds = round(time.monotonic() - start, 1)
    # Wall time depends on what else the machine runs; the compilers' CPU time does not (much).
    record.write_text(json.dumps({"seconds": seconds, "cpu_seconds": round(_children_cpu() - cpu_start, 1),
                                  "sources": len(jobs_list), "target": target, "jobs": jobs}))
    return Library(lib, tc, seconds, False)


def core_sources() -> list[Path]:
    """The C core (every core/*.c: primitives, one file per strategy, op, file check): the one list
    every build reads (targets, Arduino sketch, the M4 synthesis bench, the host tests and fuzzers)."""
    return sorted((HARNESS / "core").glob("*.c"))


def harness_sources() -> list[Path]:
    """Our C/C++ sources shared by every target: the core, kernel, runner."""
    return [*core_sources(), *sorted((HARNESS / "kernel").glob("*.cc")), HARNESS / "runner" / "htpw_runner.cc"]


def harness_includes() -> list[str]:
    """-I flags for our headers (sources include them by file name, as the Arduino sketch does)."""
    return [f"-I{HARNESS / d}" for d in ("core", "kernel", "runner")]


def _sanitize_flags(sanitize: bool) -> list[str]:
    return ["-fsanitize=address,undefined", "-fno-sanitize-recover=all", "-g"] if sanitize else []


def build_harness(target: str = "host", jobs: int = 2, sanitize: bool = False,
                  defines: Sequence[str] = ()) -> tuple[Library, Path]:
    """(TFLM library, ``libhtpw.a`` with our core + kernel + shared runner), both cached.

    ``sanitize`` (host only) builds our code with AddressSanitizer and UBSan; TFLM stays as is.
    ``defines`` (``-D`` flags) configure our code, e.g. ``-DHTPW_RUNNER_NO_VERIFIER`` (htpw_runner.h).
    """
    if sanitize and target != "host":
        raise BuildError("sanitize=True is for target='host' only")
    tflm = build_tflm(target, jobs)
    tc = tflm.toolchain
    sources = harness_sources()
    extra = [*harness_includes(), *_sanitize_flags(sanitize), *defines]
    # Every file of ours (host_main.cc and fuzz/htpw_load_fuzz.cc included: their executables live beside the library).
    ours = sorted(p for d in ("core", "kernel", "runner") for p in (HARNESS / d).iterdir() if p.is_file())
    ours.append(HARNESS / "fuzz" / "htpw_load_fuzz.cc")
    key = _digest(["htpw", str(tflm.path), extra, [(p.name, hashlib.sha256(p.read_bytes()).hexdigest()) for p in ours]])
    out = cache_dir() / f"htpw-{target}-{key}"
    lib = out / "libhtpw.a"
    if lib.is_file():
        return tflm, lib
    objects = []
    jobs_list = []
    for src in sources:
        obj = out / "obj" / (src.name + ".o")
        objects.append(obj)
        flags = [*extra, "-Wall", "-Wextra", "-Werror"]
        jobs_list.append((_compile_command(tc, src, tc.kernel_opt, flags), obj))
    _compile_all(jobs_list, Path(tc.tflm_dir), jobs)
    _archive(tc, objects, lib)
    return tflm, lib


def _host_executable(main: Path, name: str, sanitize: bool, jobs: int) -> Path:
    """``main`` linked with our host library and TFLM's into ``name`` beside the library, cached."""
    tflm, lib = build_harness("host", jobs, sanitize)
    tc = tflm.toolchain
    exe = lib.parent / name
    if exe.is_file():
        return exe
    obj = lib.parent / "obj" / (main.stem + ".o")
    flags = [*harness_includes(), *_sanitize_flags(sanitize), "-Wall", "-Wextra", "-Werror"]
    _compile_all([(_compile_command(tc, main, tc.kernel_opt, flags), obj)], Path(tc.tflm_dir), 1)
    tmp = exe.with_suffix(f".{os.getpid()}.tmp")
    _run([*tc.cxx, *_sanitize_flags(sanitize), str(obj), str(lib), str(tflm.path), "-lm", "-o", str(tmp)], lib.parent)
    tmp.replace(exe)
    return exe


def build_host_runner(sanitize: bool = False, jobs: int = 2) -> Path:
    """The host runner executable (runner/host_main.cc linked with our library and TFLM's), cached."""
    return _host_executable(HARNESS / "runner" / "host_main.cc", "htpw_host_runner", sanitize, jobs)


def build_load_fuzzer(jobs: int = 2) -> Path:
    """``fuzz/htpw_load_fuzz.cc`` (the runners' load path on mutated files), our code under ASan + UBSan."""
    return _host_executable(HARNESS / "fuzz" / "htpw_load_fuzz.cc", "htpw_load_fuzz", True, jobs)


def clean(target: str | None = None) -> None:
    """Remove cached builds (all targets, or one): the next build is a cold one (its time lands in build.json)."""
    root = cache_dir()
    if not root.is_dir():
        return
    for path in root.iterdir():
        if path.is_dir() and (target is None or path.name.startswith((f"tflm-{target}-", f"htpw-{target}-"))):
            shutil.rmtree(path)
