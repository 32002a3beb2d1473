"""Run the benchmarks and print their tables:

    python -m bench                     # everything, about 10 minutes on 2 cores; writes bench/results.json
    python -m bench --smoke             # a few steps at tiny sizes: checks that every benchmark runs
    python -m bench --only engine,threads --repeats 5 --out /tmp/results.json
    python -m bench --readme            # also put the tables into bench/README.md
"""

from __future__ import annotations

import argparse
import json
import re
import time
from pathlib import Path

from bench import common

PARTS = ("engine", "threads", "latency", "classroom", "memory", "startup", "class-page", "score", "ray")
RESULTS = Path(__file__).with_name("results.json")
README = Path(__file__).with_name("README.md")
BEGIN, END = "<!-- results: begin -->", "<!-- results: end -->"


def run(parts=PARTS, smoke: bool = False, repeats: int = 3) -> dict:
    started = time.perf_counter()
    out = {"machine": common.machine(), "smoke": smoke, "repeats": repeats, "tables": {}}
    with common.OtherLoad() as load:
        _run_parts(parts, smoke, repeats, out["tables"])
    out["seconds"] = time.perf_counter() - started
    out["other_cpu"] = 100 * load.share
    return out


def _run_parts(parts, smoke: bool, repeats: int, tables: dict) -> None:
    from bench import (  # noqa: E402 (--help quick)
        class_page,
        classroom,
        engine,
        latency,
        memory,
        ray_backend,
        score,
        startup,
        threads,
    )

    if "engine" in parts:
        print("engine throughput and snapshot share ...", flush=True)
        tables["throughput"] = engine.run(smoke, repeats)
        tables["snapshots"] = engine.snapshot_table(tables["throughput"])
    if "threads" in parts:
        print("thread effects ...", flush=True)
        tables["threads"] = threads.run(smoke, repeats)
    if "latency" in parts:
        print("time to the first point and snapshot ...", flush=True)
        tables["latency"] = latency.run(smoke, repeats)
    if "classroom" in parts:
        print("classroom load on a Streamlit server ...", flush=True)
        tables["classroom"] = classroom.run(smoke, repeats)
        tables["classroom_cpu"] = classroom.cpu_table(tables["classroom"])
    if "memory" in parts:
        print("memory of a session ...", flush=True)
        tables["memory"] = memory.run(smoke)
    if "startup" in parts:
        print("start-up and the CLI's whole run ...", flush=True)
        tables["startup"] = startup.startup_table(smoke, repeats)
        tables["startup_cli"] = startup.cli_table(smoke, repeats)
    if "class-page" in parts:
        print("the Class page's live board ...", flush=True)
        tables["class_page"] = class_page.run(smoke, repeats)
    if "score" in parts:
        print("the final score's cost ...", flush=True)
        tables["score"] = score.run(smoke, repeats)
    if "ray" in parts:
        print("the Ray backend against the process backend ...", flush=True)
        tables["ray"] = ray_backend.run(smoke, repeats)


def report(results: dict) -> str:
    m = results["machine"]
    head = (f"Machine: {m['nproc']} cores ({m['cpu']}), Python {m['python']}, torch {m['torch']} "
            f"(default {m['torch_default_threads']} intra-op threads), numpy {m['numpy']}; thread variables: "
            f"{m['thread_env'] or 'none set'}; {m['date']}, commit {m['commit'] or '?'}; "
            f"{results['repeats']} repeats; whole run {results['seconds']:.0f} s, during which other processes "
            f"used {results['other_cpu']:.0f} % of the CPUs.\n")
    return "\n".join([head] + [common.markdown(t) for t in results["tables"].values()])


def update_readme(text: str) -> None:
    readme = README.read_text()
    block = f"{BEGIN}\n{text}\n{END}"
    new, n = re.subn(re.escape(BEGIN) + ".*?" + re.escape(END), lambda _: block, readme, flags=re.S)
    if n != 1:
        raise SystemExit(f"{README} has no {BEGIN} ... {END} block to replace")
    README.write_text(new)


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(prog="python -m bench", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--smoke", action="store_true", help="tiny sizes and a few steps (CI)")
    ap.add_argument("--repeats", type=int, default=None, help="repeats per figure (default 3; 2 with --smoke)")
    ap.add_argument("--only", default=",".join(PARTS), help=f"comma-separated parts of {', '.join(PARTS)}")
    ap.add_argument("--out", type=Path, default=None,
                    help=f"JSON results file (default {RESULTS.relative_to(common.REPO)}; none with --smoke)")
    ap.add_argument("--readme", action="store_true", help="write the tables into bench/README.md")
    ap.add_argument("--quiet-wait", type=float, default=0.0, metavar="SECONDS",
                    help="before each measurement, wait up to this long for other processes to leave the CPUs "
                         "(under 10 %% use); for shared machines")
    args = ap.parse_args(argv)
    parts = [p.strip() for p in args.only.split(",") if p.strip()]
    unknown = set(parts) - set(PARTS)
    if unknown:
        ap.error(f"unknown part(s): {', '.join(sorted(unknown))}")
    repeats = args.repeats or (2 if args.smoke else 3)  # smoke: a second repeat takes the paths a first one does not
    if repeats < 1:
        ap.error("--repeats must be at least 1")
    common.QUIET_WAIT = args.quiet_wait
    results = run(parts, args.smoke, repeats)
    text = report(results)
    print("\n" + text)
    out = args.out or (None if args.smoke else RESULTS)
    if out is not None:
        out.write_text(json.dumps(results, indent=1) + "\n")
        print(f"results written to {out}")
    if args.readme:
        update_readme(text)
        print(f"tables written to {README}")


if __name__ == "__main__":
    main()
