"""match_eval on generated held-out books meets the product's targets.

Each book's model is fitted on that book's own history and open records (nothing is shipped but
a cautious prior). The engine was tuned looking at seeds 7, 8, 41 and 61 and at the public
bank-transactions pair; seeds 51, 52 and 53 were first evaluated after the last change to the
engine and are used here only.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import fields, replace
from io import StringIO

import numpy as np
import pytest
from django.core.management import call_command

from matching.core import engine, io
from matching.core.compare import Columns, record_columns
from matching.core.fuzzy import TextShapes
from matching.core.io import run
from matching.core.model import load_prior
from matching.datasets.generate import generate

HELD_OUT_SEEDS = (51, 52, 53)
AUTO = 0.85


def _right(decision: dict, truth: dict) -> bool:
    return (decision["action"], decision["target"]) == (truth["action"], truth["target"])


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    found = []
    for seed in HELD_OUT_SEEDS:
        folder = generate(tmp_path_factory.mktemp(f"held-out-{seed}"), seed, 2000, 20000)
        out = StringIO()
        call_command(
            "match_eval",
            str(folder),
            out=str(folder / "decisions.jsonl"),
            truth=str(folder / "truth.jsonl"),
            stdout=out,
        )
        summary = json.loads(out.getvalue())
        summary["folder"] = folder
        found.append(summary)
    return found


@pytest.mark.slow
def test_match_eval_writes_one_decision_per_record(runs):
    summary = runs[0]
    lines = (summary["folder"] / "decisions.jsonl").read_text().splitlines()
    assert len(lines) == summary["records"] == 2000
    first = json.loads(lines[0])
    assert {
        "type",
        "id",
        "action",
        "target",
        "confidence",
        "alternatives",
        "counterparty",
        "reasons",
    } <= set(first)
    assert {"seconds", "peak_rss_mb", "records_per_second"} <= set(summary)


@pytest.mark.slow
def test_auto_precision_meets_the_target_on_held_out_books(runs):
    auto = right = 0
    for summary in runs:
        folder = summary["folder"]
        truth = {
            (row["type"], row["id"]): row
            for row in map(json.loads, (folder / "truth.jsonl").read_text().splitlines())
        }
        for line in (folder / "decisions.jsonl").read_text().splitlines():
            decision = json.loads(line)
            if decision["confidence"] >= AUTO:
                auto += 1
                right += _right(decision, truth[(decision["type"], decision["id"])])
        # The product target on every book.
        assert summary["figures"]["auto_precision"] >= 0.995
    assert right / auto >= 0.995


@pytest.mark.slow
def test_match_eval_meets_the_other_targets_on_held_out_books(runs):
    for summary in runs:
        figures = summary["figures"]
        assert figures["auto_coverage"] >= 0.85
        assert figures["ece"] <= 0.02
        assert figures["review_recall_top4"] >= 0.95
        assert figures["ledger_account_accuracy_with_history"] >= 0.90
        assert figures["blocking_recall"] >= 0.99


def test_match_eval_decides_with_a_given_model_file(tmp_path):
    """`--model` replays a stored model instead of fitting one (the prior here)."""
    folder = generate(tmp_path / "book", 5, 60, 300)
    model_file = tmp_path / "model.json"
    model_file.write_text(load_prior().to_json())
    out = StringIO()
    call_command(
        "match_eval",
        str(folder),
        out=str(tmp_path / "decisions.jsonl"),
        truth=str(folder / "truth.jsonl"),
        model=str(model_file),
        stdout=out,
    )
    summary = json.loads(out.getvalue())
    assert summary["model_version"] == "prior"
    assert summary["records"] == 60 and summary["figures"]["records"] == 60


def test_a_batch_explained_in_two_processes_is_written_as_one_process_writes_it(
    tmp_path, monkeypatch
):
    """Large batches are scored and explained in pieces shared with a forked helper: same
    lines, same order, same figures (the blocking recall included) as in one process."""
    folder = generate(tmp_path / "book", 11, 300, 3000)
    monkeypatch.setattr(engine, "PIECE", 7)  # many pieces, taken by both processes
    written = {}
    for name, smallest in (("alone", 10**9), ("pieces", 2)):
        monkeypatch.setattr(engine, "PARALLEL_MIN", smallest)
        monkeypatch.setattr(io, "PARALLEL_MIN", smallest)
        out = tmp_path / f"{name}.jsonl"
        figures = run(folder, out, folder / "truth.jsonl")["figures"]
        written[name] = (out.read_text(), figures)
    assert written["pieces"] == written["alone"]
    assert len(written["alone"][0].splitlines()) == figures["records"] == 300
    assert not list(tmp_path.glob("pieces.jsonl.*"))  # no piece left behind


def test_a_catalog_worked_out_with_a_helper_is_the_one_built_alone(tmp_path, monkeypatch):
    """Large catalogs have their numeric columns worked out by a forked helper: every column
    is the one this process would have built, and currency codes stay this process's own (a
    record's currency met afterwards never takes the number of an entry's)."""
    data = io.read_dataset(generate(tmp_path / "book", 13, 100, 3000))
    unseen = uuid.uuid4().hex[:6].upper()
    entries = [
        replace(e, currency=f"E{unseen}") if k % 7 == 0 else e for k, e in enumerate(data.entries)
    ]
    monkeypatch.setattr(engine, "CATALOG_PARALLEL_MIN", 1)
    helped = engine.catalog_of(entries, workers=2)
    record = record_columns([replace(data.incoming[0], currency=f"R{unseen}")])
    assert record.currency[0] not in helped.columns.currency[::7]
    alone = engine.catalog_of(entries)
    for column in fields(Columns):
        ours, theirs = getattr(helped.columns, column.name), getattr(alone.columns, column.name)
        if isinstance(ours, TextShapes):
            for shape in fields(TextShapes):
                assert np.array_equal(getattr(ours, shape.name), getattr(theirs, shape.name))
        else:
            assert ours.dtype == theirs.dtype, column.name
            assert np.array_equal(ours, theirs, equal_nan=ours.dtype.kind == "f"), column.name
    assert helped.keys == alone.keys and helped.positions == alone.positions


def test_a_piece_that_fails_leaves_no_piece_behind(tmp_path, monkeypatch):
    """A batch written in pieces by two processes: when one piece fails, the error reaches the
    caller and the pieces already written are removed, not left beside the output."""
    folder = generate(tmp_path / "book", 12, 300, 3000)
    monkeypatch.setattr(engine, "PIECE", 7)
    monkeypatch.setattr(engine, "PARALLEL_MIN", 2)
    monkeypatch.setattr(io, "PARALLEL_MIN", 2)
    written = io._write_range

    def failing(start: int, stop: int, path):
        if start == 140:
            raise OSError("disk full")
        written(start, stop, path)

    monkeypatch.setattr(io, "_write_range", failing)
    with pytest.raises(OSError, match="disk full"):
        run(folder, tmp_path / "out.jsonl", folder / "truth.jsonl")
    assert not list(tmp_path.glob("out.jsonl.*"))
