"""The weights registry: listing, download from a local HTTP server (progress, resume, checksums), adding a
hand-downloaded file, and registry names wherever weights are accepted. No test reaches the internet:
every entry used here has its address replaced by one on 127.0.0.1."""

import dataclasses
import http.server
import json
import threading
from pathlib import Path

import pytest
import torch

import hrnet
from hrnet.cli.main import build_parser, main
from hrnet.engine.checkpoint import load_model_weights
from hrnet.errors import CheckpointError
from hrnet.models import zoo
from hrnet.models.download import cached_weights, download_file, fetch_weights, sha256_file, weights_cache_dir
from hrnet.models.weights import save_weights

TINY = {"width": 4, "blocks": 1, "modules": [1, 1, 1], "stage1_blocks": 1}
TIMM = "timm_hrnet_w18_small.ms_in1k"  # no published checksum: recorded at the first download
MMPOSE = "mmpose_hrnet_w32_coco_256x192"  # its file name publishes a SHA-256 prefix
OFFICIAL = "pose_hrnet_w32_coco_256x192"  # share pages only


class Server:
    """Files over HTTP on 127.0.0.1, with Range support; ``cut`` paths lose the connection mid-body once."""

    def __init__(self) -> None:
        self.files: dict[str, bytes] = {}
        self.cut: set[str] = set()
        self.requests: list[tuple[str, str | None]] = []
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:
                pass

            def do_GET(self) -> None:  # noqa: N802 (http.server's name)
                range_header = self.headers.get("Range")
                server.requests.append((self.path, range_header))
                body = server.files.get(self.path)
                if body is None:
                    self.send_error(404)
                    return
                start = int(range_header.split("=")[1].split("-")[0]) if range_header else 0
                self.send_response(206 if range_header else 200)
                if range_header:
                    self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
                self.send_header("Content-Length", str(len(body) - start))
                self.end_headers()
                if self.path in server.cut:
                    server.cut.discard(self.path)
                    self.wfile.write(body[start:start + (len(body) - start) // 2])
                    self.wfile.flush()
                    self.connection.shutdown(2)  # the connection drops before the rest of the body
                    return
                self.wfile.write(body[start:])

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def server():
    s = Server()
    yield s
    s.close()


@pytest.fixture
def cache(tmp_path, monkeypatch) -> Path:
    monkeypatch.setenv("HRNET_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.delenv("HRNET_WEIGHTS_MIRROR", raising=False)
    return tmp_path / "cache"


def serve(server: Server, monkeypatch, name: str, body: bytes) -> zoo.WeightsEntry:
    """Serve ``body`` as the registry entry ``name``'s file, and point the entry at the server only."""
    entry = zoo.WEIGHTS[name]
    server.files[f"/{entry.file_name}"] = body
    local = dataclasses.replace(entry, urls=(f"{server.url}/{entry.file_name}",), downloadable=True)
    monkeypatch.setitem(zoo.WEIGHTS, name, local)
    return local


def tiny_cls_file(tmp_path: Path, seed: int = 0) -> tuple[bytes, torch.nn.Module]:
    torch.manual_seed(seed)
    model = hrnet.build_model("cls_hrnet_w18_small_v1", **TINY)
    path = save_weights(model, tmp_path / f"made_up_{seed}.safetensors")
    return path.read_bytes(), model


def test_every_task_is_in_the_list(capsys):
    assert main(["weights", "list"]) == 0
    out = capsys.readouterr().out
    for name in (OFFICIAL, "pose_hrnet_w48_mpii_256x256", "seg_hrnetv2_w48_ocr_cocostuff", "seg_hrnetv2_w48_lip",
                 "seg_hrnetv2_w48_ade20k", "seg_hrnetv2_w48_pascal_context_59", "cls_hrnet_w64_imagenet",
                 "cls_hrnet_w18_small_v1_imagenet", "timm_hrnet_w48_ssld.paddle_in1k", MMPOSE,
                 "mmseg_ocrnet_hr48_512x1024_160k_cityscapes", "mmdet_mask_rcnn_hrnetv2p_w32_1x_coco",
                 "mmdet_fcos_hrnetv2p_w18_gn-head_4x4_1x_coco"):
        assert name in out
    assert main(["weights", "list", "--task", "det"]) == 0
    det = capsys.readouterr().out
    assert "mmdet_faster_rcnn_hrnetv2p_w18_1x_coco" in det and MMPOSE not in det


def test_every_entry_names_a_buildable_preset_and_its_sources():
    from hrnet.tasks.detection import list_detectors

    for entry in zoo.list_weights():
        assert entry.preset in hrnet.list_models() or entry.preset in list_detectors(), entry.name
        assert entry.urls and entry.file_name and entry.licence, entry.name
        assert entry.downloadable == entry.urls[0].endswith(entry.file_name.split("/")[-1]) or \
            entry.origin == "timm", entry.name


def test_download_shows_progress_records_the_checksum_and_converts(server, cache, monkeypatch, tmp_path, capsys):
    body, model = tiny_cls_file(tmp_path)
    entry = serve(server, monkeypatch, TIMM, body)
    path = fetch_weights(entry)
    assert path == cached_weights(entry) and path.suffix == ".safetensors"
    progress = capsys.readouterr().err
    assert TIMM in progress and "100%" in progress
    records = json.loads((weights_cache_dir() / "checksums.json").read_text())
    assert records[TIMM] == sha256_file(cache / TIMM / entry.file_name)
    built = hrnet.build_model("cls_hrnet_w18_small_v1", weights=TIMM, **TINY)
    assert torch.equal(built.classifier.weight, model.classifier.weight)
    assert len(server.requests) == 1  # the second use reads the cache


def test_resume_after_a_cut_connection(server, cache, monkeypatch, tmp_path):
    body, model = tiny_cls_file(tmp_path)
    entry = serve(server, monkeypatch, TIMM, body)
    server.cut.add(f"/{entry.file_name}")
    fetch_weights(entry, progress=False)
    (first, no_range), (_, resumed) = server.requests
    assert no_range is None and resumed == f"bytes={len(body) // 2}-"
    assert (cache / TIMM / entry.file_name).read_bytes() == body


def test_a_partial_file_is_kept_and_resumed_by_the_next_call(server, tmp_path):
    server.files["/big.bin"] = bytes(range(256)) * 1000
    server.cut.add("/big.bin")
    part = tmp_path / "big.bin.part"
    with pytest.raises(CheckpointError, match="partial file .* is kept"):
        download_file(f"{server.url}/big.bin", part, progress=False, attempts=1)
    assert 0 < part.stat().st_size < 256_000
    download_file(f"{server.url}/big.bin", part, progress=False, attempts=1)
    assert part.read_bytes() == server.files["/big.bin"]
    assert server.requests[-1][1] == "bytes=128000-"


def test_checksum_mismatch_is_a_clear_error_and_caches_nothing(server, cache, monkeypatch, tmp_path):
    body, _ = tiny_cls_file(tmp_path)
    entry = serve(server, monkeypatch, MMPOSE, body)
    with pytest.raises(CheckpointError, match=rf"checksum mismatch for {MMPOSE}: .* file name publishes "
                                              rf"{entry.sha256_prefix}.*nothing was cached"):
        fetch_weights(entry, progress=False)
    assert not any(p.is_file() for p in cache.rglob("*"))


def test_a_recorded_checksum_is_checked_from_then_on(server, cache, monkeypatch, tmp_path):
    body, _ = tiny_cls_file(tmp_path, seed=0)
    entry = serve(server, monkeypatch, TIMM, body)
    fetch_weights(entry, progress=False)
    other, _ = tiny_cls_file(tmp_path, seed=1)
    bad = tmp_path / "other.safetensors"
    bad.write_bytes(other)
    with pytest.raises(CheckpointError, match="was recorded at its first download"):
        main_or_raise(["weights", "add", TIMM, str(bad)])


def main_or_raise(argv: list[str]) -> None:
    args = build_parser().parse_args(argv)
    args.run(args)


def test_share_page_only_entries_say_where_to_download_and_how_to_add(cache, tmp_path, capsys):
    assert main(["weights", "get", OFFICIAL]) == 2
    message = capsys.readouterr().err
    assert "drive.google.com" in message and f"hrnet weights add {OFFICIAL}" in message
    torch.manual_seed(3)
    model = hrnet.build_model("pose_hrnet_w32", **TINY)
    file = tmp_path / "pose_hrnet_w32_256x192.pth"
    torch.save(model.state_dict(), file)
    assert main(["weights", "add", OFFICIAL, str(file)]) == 0
    built = hrnet.build_model("pose_hrnet_w32", weights=OFFICIAL, **TINY)
    assert torch.equal(built.final_layer.weight, model.final_layer.weight)


def test_weights_option_takes_a_registry_name(server, cache, monkeypatch, tmp_path):
    from hrnet.cli.common import model_from_source

    body, model = tiny_cls_file(tmp_path)
    serve(server, monkeypatch, TIMM, body)
    sets = [arg for k, v in TINY.items() for arg in ("--set", f"{k}={v}")]
    args = build_parser().parse_args(["bench", "cls_hrnet_w18_small_v1", "--weights", TIMM, *sets])
    loaded = model_from_source(args)
    assert torch.equal(loaded.classifier.weight, model.classifier.weight)
    fresh = hrnet.build_model("cls_hrnet_w18_small_v1", **TINY)
    load_model_weights(fresh, Path(TIMM))  # what eval / predict do with --weights
    assert torch.equal(fresh.classifier.weight, model.classifier.weight)
