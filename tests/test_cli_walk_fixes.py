"""What a newcomer's walk through the command line found: ``atlas elites`` of a campaign with
no elite, ``status NAME --json``'s shape, hints that name the storage they were printed for,
the line a stopped run ends with, a finished campaign run again, a QD-score that ranks maps
backwards, a campaign file and a name swapped, and the elites' CSV, JSON and headers."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from entropy_atlas.errors import AtlasError
from search import api
from search import cli as cli_module
from tests.conftest import quadratic_spec

FAILS = {"kind": "python", "target": "tests.support.evaluators:always_fails"}


def atlas(*args: str, width: int = 100) -> Any:
    """``atlas ARGS`` in this process at ``width`` columns; stdout and stderr apart."""
    return CliRunner().invoke(cli_module.app, list(args), env={"COLUMNS": str(width)}, terminal_width=width,
                              catch_exceptions=False)


@pytest.fixture
def wide(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cli_module.console, "_width", 100)


@pytest.fixture(scope="module")
def walked(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A storage (not the default) with ``broken`` (every evaluation failed: no elite) and
    ``quad`` (finished, 20 evaluations)."""
    url = f"sqlite:///{tmp_path_factory.mktemp('walk') / 'walk.db'}"
    with pytest.raises(AtlasError, match="all failed"):
        api.run(quadratic_spec(name="broken", evaluator=FAILS, search__budget=30), storage=url, executor="inline")
    api.run(quadratic_spec(search__budget=20), storage=url, executor="inline")
    return url


# -- 1. atlas elites of a campaign with no elite
def test_elites_of_a_campaign_whose_evaluations_all_failed_is_one_line(walked: str, wide: None) -> None:
    """It had laid out a table of no rows: ``ValueError: max() arg is an empty sequence``, exit 1."""
    done = atlas("elites", "broken", "--storage", walked)
    assert done.exit_code == 0, done.output
    assert done.stdout.strip() == (f"broken: no elites (20 evaluations, all failed: see "
                                   f"`atlas failures broken --storage {walked}`)")
    assert json.loads(atlas("elites", "broken", "--storage", walked, "--format", "json").stdout) == []


def test_no_elites_says_why() -> None:
    from archive.records import Stats

    def stats(done: int, failed: int) -> Stats:
        return Stats({"done": done, "failed": failed}, done + failed, done + failed, 0, 25, 0.0, 0.0, None, None)

    assert cli_module._no_elites_text("c", stats(0, 0)) == "c: no elites (no evaluation finished yet)"
    assert cli_module._no_elites_text("c", stats(0, 1)) == "c: no elites (1 evaluation, all failed: see " \
                                                          "`atlas failures c`)"
    assert cli_module._no_elites_text("c", stats(3, 1)) == "c: no elites (4 evaluations, 1 failed: see " \
                                                          "`atlas failures c`)"


def test_the_shared_params_layout_of_no_rows_is_the_header_alone() -> None:
    from search.cli_tables import _shared_params_layouts

    ((headers, rows, _right, widths), _narrow) = _shared_params_layouts(["cell"], [], [], wraps=True)
    assert headers == ["cell", "params"] and rows == [] and widths[-1] == 0


# -- 2. status NAME --json: an object
def test_status_of_one_campaign_as_json_is_an_object_and_the_list_a_list(walked: str) -> None:
    """``jq .qd_score`` of ``status NAME --json`` had failed on a one-element list, where
    ``law --json`` and ``failures --format json`` are objects."""
    row = json.loads(atlas("status", "quad", "--storage", walked, "--json").stdout)
    assert isinstance(row, dict) and row["name"] == "quad" and row["finished"] == 20
    listed = json.loads(atlas("status", "--storage", walked, "--json").stdout)
    assert isinstance(listed, list) and [r["name"] for r in listed] == ["broken", "quad"]


# -- 3. hints name the storage
def test_every_hint_names_the_storage_it_was_printed_for() -> None:
    """``--storage`` goes into each `` `atlas COMMAND NAME` `` of the campaign (and the
    placeholder ``NAME``), ``--executor``/``--address`` into `` `atlas resume NAME` `` alone,
    each once, the password hidden; nothing once the command is over."""
    cli = cli_module
    with cli._resume_words():
        cli._note_resume_flags("quad", "sqlite:///x.db", "sqlite:///x.db", "inline", None)
        assert cli.hinted("(see `atlas failures quad`; or `atlas status quad` says which bounds to widen; "
                              "`atlas map quad --out FILE`; `atlas status NAME`; `atlas status quadratic`)") == (
            "(see `atlas failures quad --storage sqlite:///x.db`; or `atlas status quad --storage sqlite:///x.db` "
            "says which bounds to widen; `atlas map quad --storage sqlite:///x.db --out FILE`; "
            "`atlas status NAME --storage sqlite:///x.db`; `atlas status quadratic`)")
        assert cli.hinted("`atlas resume quad`") == "`atlas resume quad --storage sqlite:///x.db --executor inline`"
        once = cli.hinted("`atlas failures quad`")
        assert cli.hinted(once) == once
        cli._note_resume_flags("quad", "postgresql+psycopg://u:secret@h/db", "postgresql+psycopg://u:secret@h/db",
                               "ray", None)
        assert "secret" not in cli.hinted("`atlas status quad`") and "--storage" in cli.hinted(
            "`atlas status quad`")
    assert cli.hinted("`atlas failures quad`") == "`atlas failures quad`"


def test_a_read_commands_hints_name_its_storage(walked: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """The campaigns' list's caption at a narrow console (``see `atlas status NAME` ``) too."""
    monkeypatch.setattr(cli_module.console, "_width", 60)
    shown = atlas("status", "--storage", walked, width=60)
    assert "not shown at 60 columns" in shown.stdout
    assert "".join(f"(see `atlas status NAME --storage {walked}`)".split()) in "".join(shown.stdout.split())


def test_the_outside_the_map_warning_names_the_storage(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """``atlas run``'s closing warning on elites outside the axes had said `atlas status NAME`
    alone, which read the default storage."""
    monkeypatch.chdir(tmp_path)
    spec = quadratic_spec(name="past", search__budget=10,
                          measures=[{"name": "ma", "low": 0.0, "high": 0.5, "bins": 5},
                                    {"name": "mb", "low": 0.0, "high": 1.0, "bins": 5}])
    (tmp_path / "past.yaml").write_text(yaml.safe_dump(spec))
    url = f"sqlite:///{tmp_path / 'elsewhere.db'}"
    done = atlas("run", "past.yaml", "--storage", url, "--executor", "inline")
    assert done.exit_code == 0, done.output
    assert f"`atlas status past --storage {url}` says which bounds to widen" in " ".join(done.stderr.split())


# -- 4. the line a stopped run ends with
def test_a_stopped_run_says_what_it_kept(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """After a Ctrl-C the last progress line had shown fewer finished evaluations than the
    campaign kept (``evaluating 8/100`` where status said 10), then ``stopped; continue with …``.
    The stop line says what was kept, read from the storage once the run stopped."""
    from tests.support import evaluators

    monkeypatch.chdir(tmp_path)
    spec = quadratic_spec(search__budget=12, search__batch_size=6, search__max_in_flight=6,
                          evaluator={"kind": "python", "target": "tests.support.evaluators:interrupts_once"})
    (tmp_path / "q.yaml").write_text(yaml.safe_dump(spec))
    url = f"sqlite:///{tmp_path / 'q.db'}"
    evaluators.INTERRUPT_AT.update(call=4, calls=0)
    try:
        done = atlas("run", "q.yaml", "--storage", url, "--executor", "inline")
    finally:
        evaluators.INTERRUPT_AT.update(call=0, calls=0)
    assert done.exit_code == 130, done.output
    assert done.stderr.strip().splitlines()[-1] == (
        f"stopped after 3 of 12 evaluations (3 to run again); continue with "
        f"`atlas resume quad --storage {url} --executor inline`")


# -- 5. atlas run of a finished campaign
def test_run_of_a_finished_campaign_says_so_as_resume_does(walked: str, tmp_path: Path,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    """It had started the workers, shown ``evaluating 20/20`` and drawn the map again, where
    ``atlas resume`` said the campaign was finished. No executor is built, no map written."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "q.yaml").write_text(yaml.safe_dump(quadratic_spec(search__budget=20)))

    def no_executor(*_args: Any, **_kwargs: Any) -> None:
        raise AssertionError("an executor was built")

    built = api.built_executor
    monkeypatch.setattr(api, "built_executor", no_executor)
    said = (f"campaign quad is already finished: 20 of 20 evaluations; raise the budget to go on "
            f"(`atlas resume quad --storage {walked} --executor inline --budget N`)")
    done = atlas("run", "q.yaml", "--storage", walked, "--executor", "inline")
    assert (done.exit_code, done.stdout.strip(), done.stderr) == (0, said, "")
    assert not (tmp_path / "atlas-maps").exists()
    resumed = atlas("resume", "quad", "--storage", walked, "--executor", "inline")
    assert (resumed.exit_code, resumed.stdout.strip()) == (0, said)
    # a file that changed the campaign is still refused, as before
    monkeypatch.setattr(api, "built_executor", built)
    (tmp_path / "q.yaml").write_text(yaml.safe_dump(quadratic_spec(search__budget=20, search__seed=4)))
    changed = atlas("run", "q.yaml", "--storage", walked, "--executor", "inline")
    assert changed.exit_code == 2 and "already exists with a different spec" in changed.stderr


# -- 6. elites below the QD-score's zero
def test_elites_below_qd_offset_are_warned_of_in_status_and_the_runs_summary(
        walked: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every objective below ``archive.qd_offset`` (all negative at the default 0): the
    QD-score ranked a map of more cells below one of fewer, and nothing said so."""
    monkeypatch.chdir(tmp_path)
    spec = quadratic_spec(name="low", search__budget=12, archive={"type": "grid", "qd_offset": 2.0})
    (tmp_path / "low.yaml").write_text(yaml.safe_dump(spec))
    url = f"sqlite:///{tmp_path / 'low.db'}"
    ran = atlas("run", "low.yaml", "--storage", url, "--executor", "inline")
    assert ran.exit_code == 0, ran.output
    said = [line for line in ran.stderr.splitlines() if "archive.qd_offset (2)" in line]
    assert len(said) == 1
    assert said[0].startswith("warning: QD-score counts each elite's score − archive.qd_offset (2); ")
    elites = json.loads(atlas("elites", "low", "--storage", url, "--format", "json").stdout)
    lowest = min(e["objective"] for e in elites)
    assert f"{len(elites)} of {len(elites)} elites lie below it" in said[0]
    assert f"set archive.qd_offset below the lowest score ({lowest:.6g})" in said[0]
    shown = atlas("status", "low", "--storage", url)
    assert shown.exit_code == 0 and said[0] in shown.stderr
    assert atlas("status", "quad", "--storage", walked).stderr == ""  # every objective above 0


def test_the_qd_offset_warning_follows_the_objectives_direction() -> None:
    from types import SimpleNamespace

    from search.cli_tables import qd_offset_warning

    maximised = SimpleNamespace(objective="acc", maximize=True, qd_offset=0.0)
    assert qd_offset_warning([0.5, 0.1], maximised) is None
    assert qd_offset_warning([], maximised) is None
    assert "1 of 2 elites lie below it" in qd_offset_warning([0.5, -0.25], maximised)
    minimised = SimpleNamespace(objective="loss", maximize=False, qd_offset=-1.0)  # fitness = −loss
    assert qd_offset_warning([-0.5, -0.9], minimised) is None  # losses 0.5 and 0.9: above the zero −1
    said = qd_offset_warning([-0.5, -3.0], minimised)  # a loss of 3
    assert said is not None and "each elite's −loss (loss is minimised) − archive.qd_offset (-1); 1 of 2" in said
    assert said.endswith("set archive.qd_offset below minus the highest loss (-3) to rank maps by it")


# -- 7. a campaign file and a campaign's name swapped
def test_resume_of_a_campaign_file_names_its_campaign(walked: str, tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """``atlas resume bo.yaml`` had said ``no campaign named 'bo.yaml'`` and listed others."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "q.yaml").write_text(yaml.safe_dump(quadratic_spec(search__budget=20)))
    (tmp_path / "other.yaml").write_text(yaml.safe_dump(quadratic_spec(name="other")))
    (tmp_path / "bad.yaml").write_text("name: [\n")
    done = atlas("resume", "q.yaml", "--storage", walked, "--executor", "inline")
    assert (done.exit_code, done.stderr.strip()) == (
        2, f"error: q.yaml is a campaign file; its campaign is quad: `atlas resume quad --storage {walked} "
           f"--executor inline`")
    other = atlas("resume", "other.yaml", "--storage", walked)
    assert (other.exit_code, other.stderr.strip()) == (
        2, f"error: other.yaml is a campaign file; its campaign other is not in this storage: "
           f"`atlas run other.yaml --storage {walked}` runs it")
    for given in ("bad.yaml", "gone.yaml"):
        line = atlas("resume", given, "--storage", walked).stderr.strip()
        assert line.startswith(f"error: no campaign named '{given}'") and line.endswith(
            f"; resume takes a campaign's NAME (`atlas run {given} --storage {walked}` runs a campaign file)")
    assert "resume takes" not in atlas("resume", "gone", "--storage", walked).stderr


def test_run_of_a_campaigns_name_says_that_campaign_exists(walked: str, tmp_path: Path,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    """``atlas run walk-bo`` had said ``no such file: walk-bo`` alone."""
    monkeypatch.chdir(tmp_path)
    done = atlas("run", "quad", "--storage", walked)
    assert (done.exit_code, done.stderr.strip()) == (
        2, f"error: quad: no such file; a campaign named quad exists: "
           f"`atlas resume quad --storage {walked}`")
    assert atlas("run", "nothing", "--storage", walked).stderr.strip() == \
        "error: nothing: no such file"


# -- 8. the elites' CSV, JSON and headers; one QD-score format
def test_the_elites_csv_heads_the_objective_objective_as_json_and_export_do(walked: str) -> None:
    """The CSV had headed it with the objective's name (``score``) where ``--format json``
    and ``atlas export`` (DESIGN.md's contract) say ``objective``."""
    header = atlas("elites", "quad", "--storage", walked, "--format", "csv").stdout.splitlines()[0]
    assert header == "cell,evaluation_id,objective,ma,mb,a,b,seq,proposer"
    assert set(json.loads(atlas("elites", "quad", "--storage", walked, "--format", "json").stdout)[0]) >= {
        "objective"}


def test_every_json_output_is_indented_by_two(walked: str) -> None:
    """``elites --format json`` and ``failures --format json`` had indented by 1, ``status`` and ``law`` by 2."""
    for args in (("elites", "quad", "--top", "1", "--format", "json"), ("failures", "broken", "--format", "json"),
                 ("status", "quad", "--json")):
        out = atlas(*args, "--storage", walked).stdout
        assert out.splitlines()[1].startswith('  "') or out.splitlines()[1].startswith("  {"), (args, out[:80])
        assert not out.splitlines()[1].startswith("   "), args


def test_a_header_folds_at_a_dot_or_not_at_all() -> None:
    """``measures.width`` had been split ``measures.wid`` over ``th`` in a narrow table."""
    from search.plain_table import column_widths, folded, longest_word, plain_table

    assert folded("measures.width", 12) == ["measures.", "width"]
    assert longest_word("measures.width") == 9 and longest_word("mean_entropy (nat / s)") == 7
    assert column_widths(["measures.width", "post_activation"], [6, 3], fold=8) == [9, 10]
    text = plain_table("t", ["cell", "measures.width"], [["1", "0.6"]], [True, True], fold=8)
    assert "measures." in text and "wid\n" not in text


def test_the_qd_score_reads_the_same_in_the_summary_the_list_and_the_campaign(tmp_path: Path,
                                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    """The same QD-score was ``18579.6`` in the run's summary and ``1.858e+04`` in the
    campaigns' list and the progress bar."""
    from search.cli_tables import CAMPAIGN_COLUMNS, qd_text

    assert qd_text(18579.6012) == "18579.6" and qd_text(None) == "—"
    (cell,) = [c for header, c, _ in CAMPAIGN_COLUMNS if header == "QD-score"]
    assert cell({"qd_score": 18579.6012}) == "18579.6"
    monkeypatch.setattr(cli_module.console, "_width", 200)
    monkeypatch.chdir(tmp_path)
    spec = quadratic_spec(name="big", search__budget=10, archive={"type": "grid", "qd_offset": -2000.0})
    (tmp_path / "big.yaml").write_text(yaml.safe_dump(spec))
    url = f"sqlite:///{tmp_path / 'big.db'}"
    ran = atlas("run", "big.yaml", "--storage", url, "--executor", "inline", width=200)
    row = json.loads(atlas("status", "big", "--storage", url, "--json").stdout)
    shown = qd_text(row["qd_score"])
    assert "e+" not in shown and f"QD-score {shown}," in ran.stdout
    assert f"  {shown}  " in atlas("status", "--storage", url, width=200).stdout
    campaign = atlas("status", "big", "--storage", url, width=200).stdout
    assert [line.split()[1] for line in campaign.splitlines() if line.split()[:1] == ["QD-score"]] == [shown]
