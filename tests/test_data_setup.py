"""Data set-up: link the shared copy, or download pinned files with checksums and a cache.

Downloads go to a real HTTP server on 127.0.0.1 that serves a few files laid out like the
upstream repository, so the tests need no internet and count the requests the code makes.
"""

from __future__ import annotations

import dataclasses
import functools
import http.server
import os
import re
import shutil
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from ragrouter.data import setup as data_setup
from ragrouter.data.setup import (
    DataSetupError,
    Manifest,
    default_cache_dir,
    load_manifest,
    main,
    setup_data,
    verify_data,
)

SUBSET = (
    "gsm8k/contaminated_prompts.jsonl",
    "mmlu/contaminated_prompts.jsonl",
    "mmlu/mmlu_global_facts.csv",
    "mt_bench/question.jsonl",
)


@pytest.fixture(scope="module")
def small_manifest() -> Manifest:
    """The real manifest cut down to a few small files, to keep the tests fast."""
    full = load_manifest()
    return dataclasses.replace(full, files=tuple(e for e in full.files if e.path in SUBSET))


@pytest.fixture
def shared_copy(tmp_path: Path, routellm_data: Path, small_manifest: Manifest) -> Path:
    root = tmp_path / "shared"
    for entry in small_manifest.files:
        (root / entry.path).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(routellm_data / entry.path, root / entry.path)
    return root


@dataclasses.dataclass
class Upstream:
    url: str
    root: Path
    requests: list[str]
    fail_next: list[int]


@pytest.fixture
def upstream(tmp_path: Path, routellm_data: Path, small_manifest: Manifest) -> Iterator[Upstream]:
    """A local raw-file server over the subset, laid out by upstream path."""
    root = tmp_path / "upstream"
    for entry in small_manifest.files:
        (root / entry.upstream_path).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(routellm_data / entry.path, root / entry.upstream_path)
    requests: list[str] = []
    fail_next: list[int] = []

    class Handler(http.server.SimpleHTTPRequestHandler):
        def do_GET(self) -> None:
            requests.append(self.path)
            if fail_next:
                self.send_error(fail_next.pop())
                return
            super().do_GET()

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), functools.partial(Handler, directory=str(root))
    )
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield Upstream(f"http://127.0.0.1:{server.server_address[1]}", root, requests, fail_next)
    finally:
        server.shutdown()
        server.server_close()


def _download(tmp_path: Path, upstream: Upstream, manifest: Manifest) -> str:
    return setup_data(
        dest=tmp_path / "data" / "routellm",
        shared=tmp_path / "no-shared",
        base_url=upstream.url,
        cache_dir=tmp_path / "cache",
        mode="auto",
        manifest=manifest,
    )


def test_manifest_pins_every_shared_file(routellm_data: Path) -> None:
    manifest = load_manifest()
    assert re.fullmatch(r"[0-9a-f]{40}", manifest.commit)
    assert len(manifest.files) == 64
    assert sum(e.path.startswith("mmlu/mmlu_") for e in manifest.files) == 57
    assert all(e.upstream_path.startswith("routellm/evals/") for e in manifest.files)
    assert verify_data(routellm_data, manifest) == []
    entry = manifest.files[0]
    assert manifest.url(entry) == (
        f"https://raw.githubusercontent.com/lm-sys/RouteLLM/{manifest.commit}/"
        f"{entry.upstream_path}"
    )


def test_link_mode_links_once(tmp_path: Path, shared_copy: Path, small_manifest: Manifest) -> None:
    dest = tmp_path / "repo" / "data" / "routellm"
    kwargs = dict(dest=dest, shared=shared_copy, cache_dir=tmp_path / "cache", mode="auto",
                  manifest=small_manifest)
    first = setup_data(**kwargs)
    assert dest.is_symlink() and "(link)" in first
    assert not os.path.isabs(os.readlink(dest))  # moves with the checkout
    assert dest.resolve() == shared_copy.resolve()
    assert verify_data(dest, small_manifest) == []
    assert "already set up" in setup_data(**kwargs)
    assert not (tmp_path / "cache").exists()


def test_copy_mode_copies_once(tmp_path: Path, shared_copy: Path, small_manifest: Manifest) -> None:
    dest = tmp_path / "data" / "routellm"
    kwargs = dict(dest=dest, shared=shared_copy, mode="copy", manifest=small_manifest)
    assert "copy, 4 files" in setup_data(**kwargs)
    assert not dest.is_symlink() and verify_data(dest, small_manifest) == []
    assert "already set up" in setup_data(**kwargs)


def test_auto_copies_where_symlinks_fail(
    tmp_path: Path, shared_copy: Path, small_manifest: Manifest, monkeypatch: pytest.MonkeyPatch
) -> None:
    def refuse(*args: object, **kwargs: object) -> None:
        raise OSError("symlinks not permitted")

    monkeypatch.setattr(Path, "symlink_to", refuse)
    dest = tmp_path / "data" / "routellm"
    assert "(copy, 4 files)" in setup_data(dest, shared_copy, manifest=small_manifest)
    assert not dest.is_symlink() and verify_data(dest, small_manifest) == []
    with pytest.raises(DataSetupError, match="cannot symlink"):
        setup_data(tmp_path / "other", shared_copy, mode="link", manifest=small_manifest)


def test_download_verifies_and_reuses_cache(
    tmp_path: Path, upstream: Upstream, small_manifest: Manifest
) -> None:
    first = _download(tmp_path, upstream, small_manifest)
    assert first.startswith("downloaded 4 files")
    assert sorted(upstream.requests) == sorted(f"/{e.upstream_path}" for e in small_manifest.files)
    dest = tmp_path / "data" / "routellm"
    assert verify_data(dest, small_manifest) == []
    assert dest.resolve() == (tmp_path / "cache").resolve()

    second = _download(tmp_path, upstream, small_manifest)
    assert len(upstream.requests) == 4  # served from the cache, no network
    assert "all 4 files from cache" in second and "already set up" in second


def test_corrupted_download_is_rejected_and_leaves_nothing(
    tmp_path: Path, upstream: Upstream, small_manifest: Manifest
) -> None:
    bad = small_manifest.files[0]
    (upstream.root / bad.upstream_path).write_bytes(b"not the pinned bytes\n")
    with pytest.raises(DataSetupError, match=re.escape(bad.path)) as info:
        _download(tmp_path, upstream, small_manifest)
    assert "checksum mismatch" in str(info.value) and bad.sha256 in str(info.value)
    assert len(upstream.requests) == 1  # a mismatch is not retried
    assert not (tmp_path / "data").exists()
    assert [p for p in (tmp_path / "cache").rglob("*") if p.is_file()] == []


def test_missing_upstream_file_gives_clear_error(
    tmp_path: Path, upstream: Upstream, small_manifest: Manifest
) -> None:
    gone = small_manifest.files[-1]
    (upstream.root / gone.upstream_path).unlink()
    with pytest.raises(DataSetupError, match=rf"cannot download {re.escape(gone.path)}: HTTP 404"):
        _download(tmp_path, upstream, small_manifest)
    assert not (tmp_path / "data").exists()


def test_server_error_is_retried(
    tmp_path: Path, upstream: Upstream, small_manifest: Manifest, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(data_setup, "RETRY_PAUSE_S", 0.0)
    upstream.fail_next.append(503)
    assert _download(tmp_path, upstream, small_manifest).startswith("downloaded 4 files")
    assert len(upstream.requests) == 5


def test_cli_fails_cleanly(
    tmp_path: Path, upstream: Upstream, capsys: pytest.CaptureFixture[str]
) -> None:
    shutil.rmtree(upstream.root)  # every request now answers 404
    argv = ["--mode", "download", "--base-url", upstream.url, "--dest", str(tmp_path / "d"),
            "--cache-dir", str(tmp_path / "cache")]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "data setup failed" in err and "HTTP 404" in err and "Traceback" not in err

    assert main(["--verify", "--dest", str(tmp_path / "d")]) == 2
    assert "does not exist" in capsys.readouterr().err


def test_cache_dir_follows_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RAGROUTER_CACHE_DIR", str(tmp_path))
    assert default_cache_dir("abc") == tmp_path / "routellm" / "abc"
