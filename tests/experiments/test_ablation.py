"""The ablation runner: studies build, a tiny study runs end to end, the report is honest."""

import json

import pytest
import torch

import hrnet
from hrnet.experiments.ablation import (
    _ranking_verdict,
    combined_report,
    pairwise_agreement,
    reference_spread,
    render_report,
    run_study,
)
from hrnet.experiments.studies import STUDIES


@pytest.mark.parametrize("study", sorted(STUDIES))
def test_every_variant_builds_for_its_tasks(study):
    presets = {"pose": "pose_hrnet_w32", "segmentation": "seg_hrnetv2_w18"}
    for variant in STUDIES[study].variants:
        for task in STUDIES[study].tasks:
            with torch.device("meta"):
                model = hrnet.build_model(presets[task], **variant.options)
            assert hrnet.complexity(model, (256, 192)).params > 0


def _row(name, ours, paper, reference=False):
    return {"variant": name, "options": {}, "metric": "AP", "ours": ours, "paper": paper, "reference": reference,
            "full_scale": {"params_m": 28.5, "gflops": 7.1}}


def test_ranking_verdict_agrees_and_disagrees():
    agree = _ranking_verdict([_row("a", 0.5, 70.0), _row("b", 0.6, 72.0), _row("c", 0.7, 73.0)])
    assert "agrees with" in agree and "3 of 3" in agree
    disagree = _ranking_verdict([_row("a", 0.7, 70.0), _row("b", 0.6, 72.0), _row("c", 0.5, 73.0)])
    assert "disagrees with" in disagree and "0 of 3" in disagree
    assert "fewer than two" in _ranking_verdict([_row("a", 0.5, None), _row("b", 0.6, 70.0)])


def test_orderings_within_the_run_to_run_spread_are_undecided():
    rows = [_row("a", 0.50, 70.0), _row("b", 0.51, 72.0), _row("c", 0.40, 73.0)]
    assert pairwise_agreement(rows) == (1, 2, 0)  # a<b agrees; a>c and b>c disagree
    assert pairwise_agreement(rows, noise=0.02) == (0, 2, 1)  # a vs b is within the spread
    assert "0 agree, 2 disagree, 1 undecided" in _ranking_verdict(rows, noise=0.02)


def test_every_study_names_the_published_configuration():
    for study in STUDIES.values():
        for task in study.tasks:
            assert sum(task in v.reference_for for v in study.variants) == 1, (study.name, task)


def test_combined_report_measures_the_spread_of_repeated_runs(tmp_path):
    for name, base in [("fusion", 0.50), ("operators", 0.46)]:
        results = {"study": name, "title": name, "source": "paper", "seed": 0,
                   "machine": {"device": "CPU", "torch": "x"},
                   "tasks": {"pose": [_row("variant", 0.30, 70.0), _row("HRNet", base, 73.4, reference=True)]}}
        (tmp_path / name).mkdir()
        (tmp_path / name / "results.json").write_text(json.dumps(results))
    saved = [json.loads((tmp_path / n / "results.json").read_text()) for n in ["fusion", "operators"]]
    assert reference_spread(saved) == {"pose": [0.50, 0.46]}
    text = combined_report(tmp_path, ["fusion", "operators"], assets=tmp_path / "docs")
    assert "50.0, 46.0 (spread 4.0 points)" in text
    assert "| fusion | pose | 1 | 0 | 0 |" in text and "Trained on CPU with torch x" in text


def test_report_only_needs_existing_results(tmp_path, capsys):
    from hrnet.cli.main import main

    assert main(["ablate", "fusion", "--out", str(tmp_path), "--report-only", "--report", str(tmp_path / "r.md")]) == 2
    assert "fusion/results.json" in capsys.readouterr().err


def test_report_labels_small_scale(tmp_path):
    results = {"study": "fusion", "title": "Fusion", "source": "Table 12", "seed": 0,
               "tasks": {"pose": [_row("final", 0.4, 70.8), _row("within", 0.5, 73.4)]}}
    text = render_report(results, chart=tmp_path / "fusion.png")
    assert "small-scale" in text and "| final | — | 28.50 | 7.10 | 40.0 | 70.8 |" in text
    assert (tmp_path / "fusion.png").stat().st_size > 1000


@pytest.mark.slow
def test_tiny_study_end_to_end(tmp_path):
    extra = ["train.max_iters_per_epoch=2", "train.batch_size=4", "train.workers=0", "eval.batch_size=8",
             "eval.flip_test=false", "train.log_every=1"]
    results = run_study("operators", tmp_path / "operators", tasks=["pose"], epochs=1, extra=extra,
                        data_sizes={"num_train": 8, "num_val": 4})
    rows = results["tasks"]["pose"]
    assert [r["variant"] for r in rows] == [v.name for v in STUDIES["operators"].variants]
    assert all(0.0 <= r["ours"] <= 1.0 for r in rows)
    saved = json.loads((tmp_path / "operators" / "results.json").read_text())
    assert saved["tasks"]["pose"][1]["options"] == {"downsample": "bilinear"}
    report = (tmp_path / "operators" / "report.md").read_text()
    assert "multiplication" in report and "54.7" in report
    assert (tmp_path / "operators" / "operators.png").exists()
