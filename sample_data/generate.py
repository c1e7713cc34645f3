"""Generate (or refresh) the bundled sample study into sample_data/generated/study.

The study is deterministic (seed 0) and cached: it is rebuilt only when it is
missing, when the generator's code changed, or with ``--force``. Nothing here
is committed: ``sample_data/generated/`` is git-ignored.

Run: ``.venv/bin/python sample_data/generate.py [--force] [PATH]``
"""

import argparse
import time

from flr_volumetry.phantoms import GENERATOR_VERSION, sample_study


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("path", nargs="?", help="where to write it (default: sample_data/generated/"
                                            "study, or $FLR_SAMPLE_STUDY)")
    ap.add_argument("--force", action="store_true", help="regenerate even if current")
    args = ap.parse_args(argv)
    t0 = time.perf_counter()
    path = sample_study(args.path, force=args.force)
    print(f"{path} (generator {GENERATOR_VERSION}, {time.perf_counter() - t0:.1f} s)")


if __name__ == "__main__":
    main()
