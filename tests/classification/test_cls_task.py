"""The classification task inside the engine: config, model, loss, evaluation, prediction, training."""

from __future__ import annotations

import json
import shutil

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader

from hrnet.engine.config import load_config, validate_config
from hrnet.engine.task import get_task_class
from hrnet.engine.trainer import train
from hrnet.errors import ConfigError, DataError
from hrnet.tasks.classification import ClassificationTask


@pytest.fixture
def make_task(cls_data, tmp_path, tiny_config):
    def make(**sections) -> ClassificationTask:
        return ClassificationTask(validate_config(tiny_config(cls_data, tmp_path / "run", **sections)))

    return make


def test_task_is_registered_and_data_config_is_strict(cls_data, tmp_path, tiny_config):
    assert get_task_class("classification") is ClassificationTask
    with pytest.raises(ConfigError, match=r"unknown key 'data.image_sise'.*'image_size'"):
        validate_config(tiny_config(cls_data, tmp_path, data={"image_sise": 64}))
    with pytest.raises(ConfigError, match=r"data.scale"):
        validate_config(tiny_config(cls_data, tmp_path, data={"scale": [0.9, 0.1]}))
    with pytest.raises(ConfigError, match=r"unknown key 'loss.smoothing'"):
        validate_config(tiny_config(cls_data, tmp_path, loss={"smoothing": 0.1}))


def test_model_takes_the_number_of_classes_from_the_data(cls_data, tmp_path, make_task):
    task = make_task()
    assert task.class_names == sorted(p.name for p in (cls_data / "train").iterdir())
    model = task.build_model()
    assert model(torch.zeros(2, 3, 64, 64)).shape == (2, 8)
    with pytest.raises(ConfigError, match="num_classes is 10 but the dataset has 8 classes"):
        overrides = {"name": "cls_hrnet_w18", "overrides": {"width": 8, "num_classes": 10}}
        make_task(model=overrides).build_model()
    with pytest.raises(ConfigError, match="is a pose model"):
        make_task(model={"name": "pose_hrnet_w32", "overrides": {"width": 8}}).build_model()


def test_class_names_file_fixes_the_order(cls_data, tmp_path, make_task):
    names = list(reversed(sorted(p.name for p in (cls_data / "train").iterdir())))
    (tmp_path / "names.txt").write_text("\n".join(names))
    task = make_task(data={"classes": str(tmp_path / "names.txt")})
    dataset = task.build_dataset("val")
    assert dataset.classes == names
    assert all(names[label] == path.parent.name for path, label in dataset.samples)


def test_missing_split_is_named(cls_data, tmp_path, make_task):
    with pytest.raises(DataError, match=r"data.train: .*nowhere not found"):
        make_task(data={"train": "nowhere"}).build_dataset("train")


def test_loss_is_cross_entropy_with_label_smoothing(cls_data, tmp_path, make_task):
    task = make_task(loss={"label_smoothing": 0.1})
    model = nn.Sequential(nn.Flatten(), nn.Linear(3 * 4 * 4, 8))
    images, labels = torch.randn(6, 3, 4, 4), torch.tensor([0, 1, 2, 3, 4, 5])
    loss, extras = task.compute_loss(model, {"image": images, "label": labels})
    logits = model(images)
    smoothed = torch.full((6, 8), 0.1 / 8) + 0.9 * F.one_hot(labels, 8)
    expected = -(smoothed * logits.log_softmax(dim=1)).sum(dim=1).mean()
    torch.testing.assert_close(loss, expected)
    assert extras["top1"] == (logits.argmax(1) == labels).float().mean().item()


def test_mixup_and_cutmix_mix_training_batches(cls_data, tmp_path, make_task):
    task = make_task(data={"mixup_alpha": 0.4, "cutmix_alpha": 1.0})
    seen = {}

    def model(images):
        seen["images"] = images
        return torch.zeros(len(images), 8, requires_grad=True)

    images, labels = torch.randn(4, 3, 8, 8), torch.tensor([0, 1, 2, 3])
    torch.manual_seed(0)
    loss, extras = task.compute_loss(model, {"image": images, "label": labels})
    assert not torch.equal(seen["images"], images)  # the batch was mixed
    assert loss.item() == pytest.approx(torch.log(torch.tensor(8.0)).item())  # uniform logits
    assert "top1" not in extras


class _FixedScores(nn.Module):
    """A stand-in model whose logits for image i are ``scores[i]`` (looked up by the image's mean)."""

    def __init__(self, scores: torch.Tensor) -> None:
        super().__init__()
        self.scores = scores
        self.anchor = nn.Parameter(torch.zeros(1))

    def forward(self, images):
        return self.scores[images.flatten(1).mean(1).round().long()]


def test_evaluate_counts_top1_top5_and_writes_predictions(cls_data, tmp_path, make_task):
    task = make_task()
    dataset = task.build_dataset("val")
    dataset.transform = None
    n = len(dataset)
    generator = torch.Generator().manual_seed(0)
    scores = torch.randn(n, 8, generator=generator)
    labels = torch.tensor([label for _, label in dataset.samples])

    def collate(items):
        return {
            "image": torch.stack([torch.full((1, 2, 2), float(item["index"])) for item in items]),
            "label": torch.tensor([item["label"] for item in items]),
            "index": torch.tensor([item["index"] for item in items]),
        }

    loader = DataLoader(dataset, batch_size=3, collate_fn=collate)
    metrics = task.evaluate(_FixedScores(scores), loader, tmp_path / "eval")
    rank = (scores > scores.gather(1, labels[:, None])).sum(1)
    assert metrics["top1"] == pytest.approx(float((rank < 1).float().mean()))
    assert metrics["top5"] == pytest.approx(float((rank < 5).float().mean()))
    assert metrics["loss"] == pytest.approx(F.cross_entropy(scores, labels).item(), rel=1e-5)
    written = json.loads((tmp_path / "eval" / "predictions.json").read_text())
    assert written["classes"] == task.class_names and len(written["predictions"]) == n
    first = written["predictions"][0]
    assert first["top5"] == scores[0].topk(5).indices.tolist() and first["label"] == labels[0].item()


def test_predict_prints_top5_with_class_names(cls_data, tmp_path, capsys, make_task):
    task = make_task()
    model = task.build_model()
    images = sorted((cls_data / "val" / "disc").iterdir())
    written = task.predict(model, [images[0], cls_data / "val" / "ring"], tmp_path / "pred")
    printed = capsys.readouterr().out
    results = json.loads(written[0].read_text())
    assert len(results) == 1 + len(list((cls_data / "val" / "ring").iterdir()))
    first = results[0]
    assert first["file"] == str(images[0]) and len(first["top"]) == 5
    assert [t["class"] for t in first["top"]] == [task.class_names[t["index"]] for t in first["top"]]
    scores = [t["score"] for t in first["top"]]
    assert scores == sorted(scores, reverse=True) and 0 < sum(scores) <= 1 + 1e-6
    assert str(images[0]) in printed and f"1. {first['top'][0]['class']}" in printed

    (tmp_path / "names.txt").write_text("\n".join(f"name{i}" for i in range(8)))
    task.predict(model, [images[0]], tmp_path / "pred2", classes=tmp_path / "names.txt", topk=3)
    assert "name" in capsys.readouterr().out
    (tmp_path / "names.txt").write_text("a\nb\n")
    with pytest.raises(DataError, match="2 class names are given but the model predicts 8 classes"):
        task.predict(model, [images[0]], tmp_path / "pred3", classes=tmp_path / "names.txt")
    with pytest.raises(DataError, match="input not found"):
        task.predict(model, [tmp_path / "missing.jpg"], tmp_path / "pred4")


def test_unreadable_image_in_predict_is_named(cls_data, tmp_path, make_task):
    task = make_task()
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"\xff\xd8 truncated")
    with pytest.raises(DataError, match=f"cannot read image {broken}"):
        task.predict(task.build_model(), [broken], tmp_path / "pred")


def test_training_runs_from_a_yaml_config_with_the_modern_recipe(cls_data, tmp_path, tiny_config):
    import yaml

    raw = tiny_config(cls_data, tmp_path / "run", data={"mixup_alpha": 0.2, "cutmix_alpha": 1.0})
    raw["loss"] = {"label_smoothing": 0.1}
    raw["train"].update(optimizer={"name": "sgd", "lr": 0.05, "nesterov": True}, schedule={"name": "cosine"})
    (tmp_path / "cfg.yaml").write_text(yaml.safe_dump(raw))
    summary = train(load_config(tmp_path / "cfg.yaml"))
    assert summary["steps"] == 2 and summary["main_metric"] == "top1"
    assert 0 <= summary["last_metrics"]["top1"] <= summary["last_metrics"]["top5"] <= 1
    assert (tmp_path / "run" / "eval" / "predictions.json").is_file()
    shutil.rmtree(tmp_path / "run")
