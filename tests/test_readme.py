"""The README stays true: its Python examples run as written, its command lines exist."""

import re
from pathlib import Path


from flr_volumetry.cli import build_parser

README = Path(__file__).resolve().parents[1] / "README.md"


def _blocks(language):
    text = README.read_text(encoding="utf-8")
    return re.findall(rf"^```{language}\n(.*?)^```", text, flags=re.S | re.M)


def test_readme_python_examples_run_as_written(tmp_path, monkeypatch):
    blocks = _blocks("python")
    assert len(blocks) >= 2
    monkeypatch.chdir(tmp_path)
    namespace = {}
    for block in blocks:  # later blocks use the names of earlier ones, as a reader would
        exec(compile(block, str(README), "exec"), namespace)
    assert 1000 < namespace["m"].total_liver_ml < 3000
    assert namespace["report"].dice > 0.8


def _options(sub):
    parser = build_parser()
    action = next(a for a in parser._actions if a.dest == "command")
    return {o for a in action.choices[sub]._actions for o in a.option_strings}


def test_readme_command_lines_name_only_options_that_exist():
    usage = [b for b in _blocks("") if "flr-volumetry measure" in b]
    assert usage
    checked = 0
    for block in _blocks(""):
        for command in re.split(r"^(?=flr-volumetry )", block, flags=re.M):
            match = re.match(r"flr-volumetry (\w+)", command)
            if not match or match.group(1) not in {"measure", "hypertrophy", "segment", "batch",
                                                   "demo", "phantom"}:
                continue
            known = _options(match.group(1))
            for option in re.findall(r"(?<![\w-])(--?[a-z][\w-]*)", command.split("#")[0]):
                assert option in known, f"README names {option} for {match.group(1)}"
                checked += 1
    assert checked > 30


def test_readme_gives_the_results_schema_version_written():
    # It had said 1.0 for two versions after the writer moved to 1.1.
    from flr_volumetry.report import RESULTS_SCHEMA_VERSION

    versions = re.findall(r"batch-results` version (\d+\.\d+)", README.read_text())
    assert versions == [RESULTS_SCHEMA_VERSION]
