"""Batch throughput (timepoints per minute) with 1 and 2 workers, and the batch overhead.

On the bundled sample study (``flr_volumetry.phantoms.sample_study()``; a
generated tiny study when the phantoms are not available), replicated
``--replicas`` times (symbolic links, so every timepoint is measured) to
get a stable count, it prints:

- timepoints per minute, serial and with 2 worker processes, and the speed-up;
- the per-timepoint overhead of the batch machinery beyond ``measure_files``
  itself (discovery, content hashing, saving masks, cache, tables, JSON, HTML),
  without and with the overlay figures. Target: < 10 % without figures.

Each figure is the best of ``--repeats`` runs (the machine is shared).
Run: .venv/bin/python benchmarks/batch_throughput.py [--replicas 4] [--repeats 3]
"""

import argparse
import os
import shutil
import sys
import tempfile
import time

from flr_volumetry import BatchOptions, measure_files, run_batch
from flr_volumetry.batch import _remnant_kwargs, _tasks
from flr_volumetry.study import discover_study


def _source_study(tmp):
    try:
        from flr_volumetry.phantoms import sample_study
    except ImportError:
        sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "tests"))
        import _tiny_study

        print("phantoms not available: using a generated tiny study")
        return _tiny_study.good_study(os.path.join(tmp, "tiny"))
    # A private copy: the shared cached study may be regenerated while we time.
    dst = os.path.join(tmp, "sample")
    shutil.copytree(sample_study(), dst, ignore=shutil.ignore_patterns("truth*"))
    return dst


def _replicate(src, dst, replicas):
    os.makedirs(dst)
    for entry in sorted(os.listdir(src)):
        full = os.path.join(src, entry)
        if not os.path.isdir(full) or entry.startswith((".", "_", "truth")):
            continue
        for r in range(replicas):
            os.symlink(full, os.path.join(dst, f"{entry}_r{r}"))
    return dst


def _direct_seconds(study_dir, out):
    """measure_files alone on every timepoint, with the inputs the batch gives it."""
    study = discover_study(study_dir)
    t0 = time.perf_counter()
    for task in _tasks(study, out, BatchOptions()):
        tp = task.timepoint
        flr_kwargs, _ = _remnant_kwargs(task)
        measure_files(tp.image, liver=tp.liver, tumor=tp.tumor, segments=tp.segments,
                      patient=task.patient, options=task.options, scan_date=tp.scan_date,
                      **flr_kwargs)
    return time.perf_counter() - t0, len(study.timepoints)


def _spin(n):
    total = 0
    for i in range(n):
        total += i * i
    return total


def _machine_speedup(n=3_000_000):
    """Speed-up of pure CPU work with 2 processes: what the machine can give right now."""
    from concurrent.futures import ProcessPoolExecutor

    t0 = time.perf_counter()
    for _ in range(4):
        _spin(n)
    serial = time.perf_counter() - t0
    with ProcessPoolExecutor(2) as pool:
        list(pool.map(_spin, [1, 1]))
        t0 = time.perf_counter()
        list(pool.map(_spin, [n] * 4))
        parallel = time.perf_counter() - t0
    return serial / parallel


def _batch_seconds(study_dir, out, **kw):
    shutil.rmtree(out, ignore_errors=True)
    t0 = time.perf_counter()
    r = run_batch(study_dir, out, BatchOptions(progress=False, **kw))
    wall = time.perf_counter() - t0
    if not r.ok:
        raise SystemExit(f"the batch failed: {r.summary_line()}")
    return wall, r


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--replicas", type=int, default=4)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    load = os.getloadavg()
    tmp = tempfile.mkdtemp(prefix="flr-batch-bench-")
    try:
        study = _replicate(_source_study(tmp), os.path.join(tmp, "study"), args.replicas)
        out = os.path.join(tmp, "out")
        _batch_seconds(study, out, figures=False)  # warm caches and imports
        n = len(discover_study(study).timepoints)
        # Interleaved repeats, best of each: the load of a shared machine drifts.
        direct, nofig, fig = [], [], []
        for _ in range(args.repeats):
            direct.append(_direct_seconds(study, out)[0])
            nofig.append(_batch_seconds(study, out, figures=False))
            fig.append(_batch_seconds(study, out))
        # The first parallel run also starts the fork server (imports included).
        two_runs = [_batch_seconds(study, out, workers=2)[0] for _ in range(args.repeats)]
        two, two_cold = min(two_runs), two_runs[0]
        machine = _machine_speedup()
        direct = min(direct)
        serial_nofig, r_nofig = min(nofig, key=lambda x: x[0])
        serial, r = min(fig, key=lambda x: x[0])

        print(f"study: {n} timepoints ({args.replicas} replicas of the sample study), "
              f"{os.cpu_count()} CPUs, best of {args.repeats}; load average before: "
              f"{load[0]:.1f}, after: {os.getloadavg()[0]:.1f}")
        print(f"measure_files alone:            {direct:7.2f} s  "
              f"({60.0 * n / direct:6.1f} timepoints/min)")
        print(f"batch, 1 worker, no figures:    {serial_nofig:7.2f} s  "
              f"({60.0 * n / serial_nofig:6.1f} timepoints/min)")
        print(f"batch, 1 worker, with figures:  {serial:7.2f} s  "
              f"({60.0 * n / serial:6.1f} timepoints/min)")
        print(f"batch, 2 workers, with figures: {two:7.2f} s  "
              f"({60.0 * n / two:6.1f} timepoints/min)")
        print(f"  first 2-worker run (starts the fork server): {two_cold:.2f} s "
              f"({60.0 * n / two_cold:.1f} timepoints/min)")
        print(f"speed-up with 2 workers:        {serial / two:7.2f} x "
              f"(first run: {serial / two_cold:.2f} x; pure CPU work on this machine now: "
              f"{machine:.2f} x, the ceiling while others share the cores)")
        print("batch overhead beyond measure_files (target < 10 %):")
        print(f"  wall clock vs measure_files alone: without figures "
              f"{100.0 * (serial_nofig - direct) / direct:+5.1f} %, with figures "
              f"{100.0 * (serial - direct) / direct:+5.1f} %")
        for label, wall, res in (("without figures", serial_nofig, r_nofig),
                                 ("with figures", serial, r)):
            recs = [t for p in res.results["patients"] for t in p["timepoints"]]
            measure = sum(t["measure_seconds"] for t in recs)
            worker = sum(t["seconds"] for t in recs)
            figures = sum(t["figure_seconds"] or 0.0 for t in recs)
            saving = sum(t["save_seconds"] or 0.0 for t in recs)
            hashing = sum(t["hash_seconds"] or 0.0 for t in recs)
            machinery = (worker - measure - figures - saving) + (wall - worker)
            # Timed inside one run, so the machine's drifting load cancels out.
            print(f"  {label}, per timepoint, timed inside the run: measure_files "
                  f"{1000 * measure / n:.1f} ms; batch machinery {1000 * machinery / n:.1f} ms "
                  f"= {100.0 * machinery / measure:.1f} % (content hash {1000 * hashing / n:.1f}"
                  f" ms, then dispatch, cache, tables, JSON, HTML); saving the masks it made "
                  f"{1000 * saving / n:.1f} ms = {100.0 * saving / measure:.1f} %; overlay "
                  f"figures {1000 * figures / n:.1f} ms = {100.0 * figures / measure:.1f} %")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
