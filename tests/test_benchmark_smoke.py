"""The speed benchmark (benchmarks/speed.py) still runs: nano, eager, two rounds, a few seconds.

The benchmark itself is not part of the suite (it takes tens of minutes); this only keeps it
from rotting: every contender runs, agrees with the others, and lands in the JSON and the table.
"""

from __future__ import annotations

import json

import pytest

pytest.importorskip("torch")
pytest.importorskip("timm")

import ref  # noqa: E402
from benchmarks import speed  # noqa: E402


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    out = tmp_path_factory.mktemp("bench")
    code = speed.main(["--preset", "nano", "--frames", "8", "--only", "eager", "--repeats", "2",
                       "--min-repeats", "1", "--out", str(out)])
    return code, out


def test_writes_json_and_markdown(run):
    code, out = run
    assert code == 0
    report = json.loads((out / "results.json").read_text())
    table = (out / "results.md").read_text()
    assert [r["id"] for r in report["rows"]] == ["nano-T8-b1-f32-eager", "nano-T8-b1-bf16-eager"]
    for key in ("cpu", "cores", "torch", "torch_threads"):
        assert report["machine"][key] not in (None, "")
    assert report["machine"]["torch_threads"] == report["machine"]["cores"]
    assert "| case | dtype | mode |" in table and "nano T8 b1" in table and "Targets" in table


def test_every_contender_timed_and_checked(run):
    _, out = run
    rows = {r["id"]: r for r in json.loads((out / "results.json").read_text())["rows"]}
    f32, bf16 = rows["nano-T8-b1-f32-eager"], rows["nano-T8-b1-bf16-eager"]
    assert set(f32["contenders"]) == {"naive", "inti", "timm", "merge", "ref"}
    assert set(bf16["contenders"]) == {"naive", "inti", "timm", "merge"}  # ref runs in float32 only
    for row in (f32, bf16):
        assert row["repeats"] == 2
        for c in row["contenders"].values():
            assert len(c["times_s"]) == 2 and all(t > 0 for t in c["times_s"])
            assert c["median_s"] > 0 and c["peak_mib"] >= 0
        assert all(check["ok"] for check in row["checks"].values())
        assert {"naive_vs_timm"} <= set(row["checks"])
        for key in ("speedup", "fraction_of_ideal", "merge_share", "naive_vs_timm"):
            assert row[key] is not None and row[key] > 0
    assert "inti_vs_ref" in f32["checks"] and f32["ref_vs_torch"] > 0


def test_predicted_ratio_is_the_mac_ratio(run):
    _, out = run
    row = json.loads((out / "results.json").read_text())["rows"][0]
    cfg = ref.preset("nano")
    naive, inti = ref.count_macs(cfg.replace(schedule=()), 8)["total"], ref.count_macs(cfg, 8)["total"]
    assert row["predicted"] == pytest.approx(naive / inti)
    assert row["fraction_of_ideal"] == pytest.approx(row["speedup"] / row["predicted"])


def test_plan_and_flags():
    full = [r.id for r in speed.plan(speed.parse_args([]))]
    assert "vit_b16-T16-b1-f32-eager" in full and "vit_l14-T16-b1-f32-compile" in full
    assert "vit_b16-T16-b4-f32-eager" in full
    assert [r.id for r in speed.plan(speed.parse_args(["--quick"]))] == ["vit_b16-T8-b1-f32-eager"]
    assert [r.id for r in speed.plan(speed.parse_args(["--only", "vit_l14*bf16-eager"]))] == ["vit_l14-T16-b1-bf16-eager"]
    with pytest.raises(SystemExit):
        speed.parse_args(["--contenders", "naive,bogus"])


def test_the_training_benchmark_runs(tmp_path):
    from benchmarks import train_speed

    assert train_speed.main(["--quick", "--rounds", "1", "--out", str(tmp_path)]) == 0
    report = json.loads((tmp_path / "train_results.json").read_text())
    row = report["rows"][0]
    assert row["preset"] == "nano" and row["speedup"] > 0 and row["activation_ratio"] == 2.0
    assert report["loader"]["clips"] == 64 and "| nano T8 b2 |" in (tmp_path / "train_results.md").read_text()
