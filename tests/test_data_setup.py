"""Data set-up: link the shared copy, or download pinned files through pooch (checksums, retries,
a cache).

Downloads come from a real HTTP server on 127.0.0.1 serving a small fake upstream tree that a
manifest written by the test pins, so the tests need neither internet nor the real data, and
count the requests the code makes. Only the real manifest's own checks read the real data.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import http.server
import json
import os
import re
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

COMMIT = "0123456789abcdef0123456789abcdef01234567"
# path under data/routellm -> (path upstream, bytes): laid out differently, as upstream's are
FAKE_TREE = {
    "gsm8k/test.jsonl": ("routellm/evals/gsm8k/test.jsonl", b'{"question": "1 + 1?"}\n'),
    "mmlu/contaminated_prompts.jsonl": ("routellm/evals/mmlu/contaminated_prompts.jsonl", b'"Q?"\n'),
    "mmlu/mmlu_global_facts.csv": (
        "routellm/evals/mmlu/responses/mmlu_global_facts.csv", b"prompt,weak,strong\nQ?,False,True\n"
    ),
    "mt_bench/question.jsonl": ("routellm/evals/mt_bench/question.jsonl", b'{"turns": ["Hi"]}\n'),
}


@dataclasses.dataclass
class Upstream:
    url: str  # the server, without the commit
    root: Path  # what it serves: <root>/<commit>/<upstream path>
    requests: list[str]
    fail_next: list[int]  # HTTP statuses to answer the next requests with, in order


@pytest.fixture
def upstream(tmp_path: Path) -> Iterator[Upstream]:
    """A local raw-file server over the fake tree, laid out by commit and upstream path."""
    root = tmp_path / "upstream"
    for upstream_path, content in FAKE_TREE.values():
        (root / COMMIT / upstream_path).parent.mkdir(parents=True, exist_ok=True)
        (root / COMMIT / upstream_path).write_bytes(content)
    requests: list[str] = []
    fail_next: list[int] = []

    class Handler(http.server.SimpleHTTPRequestHandler):
        def do_GET(self) -> None:
            requests.append(self.path)
            if fail_next:
                self.send_error(fail_next.pop(0))
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


@pytest.fixture
def manifest(tmp_path: Path, upstream: Upstream) -> Manifest:
    """A manifest in the shipped format pinning the fake tree, its base URL the local server's."""
    files = [
        {"path": path, "upstream_path": upstream_path,
         "sha256": hashlib.sha256(content).hexdigest(), "size": len(content)}
        for path, (upstream_path, content) in FAKE_TREE.items()
    ]
    path = tmp_path / "manifest.json"
    path.write_text(json.dumps({"commit": COMMIT, "base_url": f"{upstream.url}/{{commit}}",
                                "files": files}))
    return load_manifest(path)


@pytest.fixture
def shared_copy(tmp_path: Path) -> Path:
    root = tmp_path / "shared"
    for path, (_, content) in FAKE_TREE.items():
        (root / path).parent.mkdir(parents=True, exist_ok=True)
        (root / path).write_bytes(content)
    return root


def _download(tmp_path: Path, manifest: Manifest) -> str:
    return setup_data(
        dest=tmp_path / "data" / "routellm",
        shared=tmp_path / "no-shared",
        cache_dir=tmp_path / "cache",
        mode="auto",
        manifest=manifest,
    )


def _cached_files(tmp_path: Path) -> list[Path]:
    return [p for p in (tmp_path / "cache").rglob("*") if p.is_file()]


def test_the_shipped_manifest_is_a_pooch_registry_of_pinned_upstream_files(tmp_path: Path) -> None:
    manifest = load_manifest()
    assert re.fullmatch(r"[0-9a-f]{40}", manifest.commit)
    assert len(manifest.files) == 64
    assert sum(e.path.startswith("mmlu/mmlu_") for e in manifest.files) == 57
    assert all(e.upstream_path.startswith("routellm/evals/") for e in manifest.files)
    entry = manifest.files[0]
    url = f"https://raw.githubusercontent.com/lm-sys/RouteLLM/{manifest.commit}/{entry.upstream_path}"
    assert manifest.url(entry) == url
    registry = manifest.registry(tmp_path / "cache")
    assert registry.get_url(entry.path) == url
    assert registry.registry[entry.path] == f"sha256:{entry.sha256}"
    assert set(registry.registry) == {e.path for e in manifest.files}
    assert not (tmp_path / "cache").exists()  # nothing touched before a fetch


def test_the_shipped_manifest_pins_every_shared_file(routellm_data: Path) -> None:
    assert verify_data(routellm_data, load_manifest()) == []


def test_link_mode_links_once(tmp_path: Path, shared_copy: Path, manifest: Manifest) -> None:
    dest = tmp_path / "repo" / "data" / "routellm"
    kwargs = dict(dest=dest, shared=shared_copy, cache_dir=tmp_path / "cache", mode="auto",
                  manifest=manifest)
    first = setup_data(**kwargs)
    assert dest.is_symlink() and "(link)" in first
    assert not os.path.isabs(os.readlink(dest))  # moves with the checkout
    assert dest.resolve() == shared_copy.resolve()
    assert verify_data(dest, manifest) == []
    assert "already set up" in setup_data(**kwargs)
    assert not (tmp_path / "cache").exists()


def test_a_shared_copy_that_lacks_a_file_is_refused_naming_it(
    tmp_path: Path, shared_copy: Path, manifest: Manifest
) -> None:
    (shared_copy / "mt_bench/question.jsonl").unlink()
    with pytest.raises(DataSetupError, match=r"lacks 1 file\(s\), e\.g\. mt_bench/question\.jsonl"):
        setup_data(tmp_path / "data", shared_copy, mode="link", manifest=manifest)


def test_copy_mode_copies_once(tmp_path: Path, shared_copy: Path, manifest: Manifest) -> None:
    dest = tmp_path / "data" / "routellm"
    kwargs = dict(dest=dest, shared=shared_copy, mode="copy", manifest=manifest)
    assert "copy, 4 files" in setup_data(**kwargs)
    assert not dest.is_symlink() and verify_data(dest, manifest) == []
    assert "already set up" in setup_data(**kwargs)


def test_auto_copies_where_symlinks_fail(
    tmp_path: Path, shared_copy: Path, manifest: Manifest, monkeypatch: pytest.MonkeyPatch
) -> None:
    def refuse(*args: object, **kwargs: object) -> None:
        raise OSError("symlinks not permitted")

    monkeypatch.setattr(Path, "symlink_to", refuse)
    dest = tmp_path / "data" / "routellm"
    assert "(copy, 4 files)" in setup_data(dest, shared_copy, manifest=manifest)
    assert not dest.is_symlink() and verify_data(dest, manifest) == []
    with pytest.raises(DataSetupError, match="cannot symlink"):
        setup_data(tmp_path / "other", shared_copy, mode="link", manifest=manifest)


def test_verify_names_each_missing_resized_or_altered_file(
    tmp_path: Path, shared_copy: Path, manifest: Manifest
) -> None:
    (shared_copy / "gsm8k/test.jsonl").unlink()
    (shared_copy / "mt_bench/question.jsonl").write_bytes(b"longer than the pinned file\n")
    (shared_copy / "mmlu/contaminated_prompts.jsonl").write_bytes(b'"R?"\n')  # same size
    problems = verify_data(shared_copy, manifest)
    assert problems[0] == "missing: gsm8k/test.jsonl"
    assert problems[1].startswith("checksum mismatch: mmlu/contaminated_prompts.jsonl has sha256")
    assert problems[2].startswith("size mismatch: mt_bench/question.jsonl has 28 bytes")
    assert len(problems) == 3


def test_download_verifies_reuses_the_cache_and_replaces_a_damaged_cached_file(
    tmp_path: Path, upstream: Upstream, manifest: Manifest
) -> None:
    first = _download(tmp_path, manifest)
    assert first.startswith("downloaded 4 files")
    assert sorted(upstream.requests) == sorted(f"/{COMMIT}/{e.upstream_path}" for e in manifest.files)
    dest = tmp_path / "data" / "routellm"
    assert verify_data(dest, manifest) == []
    assert dest.resolve() == (tmp_path / "cache").resolve()

    second = _download(tmp_path, manifest)
    assert len(upstream.requests) == 4  # served from the cache, no network
    assert "all 4 files from cache" in second and "already set up" in second

    (tmp_path / "cache" / "gsm8k/test.jsonl").write_bytes(b"damaged\n")
    assert _download(tmp_path, manifest).startswith("downloaded 1 files")
    assert upstream.requests[-1] == f"/{COMMIT}/routellm/evals/gsm8k/test.jsonl"
    assert verify_data(dest, manifest) == []


def test_corrupted_download_is_rejected_and_leaves_nothing(
    tmp_path: Path, upstream: Upstream, manifest: Manifest
) -> None:
    bad = manifest.files[0]
    (upstream.root / COMMIT / bad.upstream_path).write_bytes(b"not the pinned bytes\n")
    with pytest.raises(DataSetupError, match=re.escape(bad.path)) as info:
        _download(tmp_path, manifest)
    assert "checksum mismatch" in str(info.value) and bad.sha256 in str(info.value)
    # pooch retries a mismatch like a cut-off transfer (docs/data.md)
    assert len(upstream.requests) == data_setup.RETRIES
    assert not (tmp_path / "data").exists()
    assert _cached_files(tmp_path) == []


def test_missing_upstream_file_gives_clear_error_at_once(
    tmp_path: Path, upstream: Upstream, manifest: Manifest
) -> None:
    gone = manifest.files[0]
    (upstream.root / COMMIT / gone.upstream_path).unlink()
    with pytest.raises(DataSetupError, match=rf"cannot download {re.escape(gone.path)}: HTTP 404"):
        _download(tmp_path, manifest)
    assert len(upstream.requests) == 1  # a 404 is not retried: it would answer the same
    assert not (tmp_path / "data").exists()
    assert _cached_files(tmp_path) == []


def test_server_error_is_retried(tmp_path: Path, upstream: Upstream, manifest: Manifest) -> None:
    upstream.fail_next.append(503)
    assert _download(tmp_path, manifest).startswith("downloaded 4 files")
    assert len(upstream.requests) == 5


def test_cli_downloads_verifies_and_fails_cleanly(
    tmp_path: Path,
    upstream: Upstream,
    manifest: Manifest,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setattr(data_setup, "load_manifest", lambda: manifest)
    dest = tmp_path / "d"
    argv = ["--mode", "download", "--base-url", f"{upstream.url}/{{commit}}", "--dest", str(dest),
            "--cache-dir", str(tmp_path / "cache")]
    assert main(argv) == 0
    assert capsys.readouterr().out.startswith("downloaded 4 files")
    assert main(["--verify", "--dest", str(dest)]) == 0
    assert "all 4 files match the manifest" in capsys.readouterr().out

    (tmp_path / "cache" / "gsm8k/test.jsonl").write_bytes(b"damaged\n")
    assert main(["--verify", "--dest", str(dest)]) == 2
    assert "size mismatch: gsm8k/test.jsonl" in capsys.readouterr().err

    argv[3] = f"{upstream.url}/elsewhere"  # every request now answers 404
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "data setup failed" in err and "HTTP 404" in err and "Traceback" not in err
    assert main(["--verify", "--dest", str(tmp_path / "nowhere")]) == 2
    assert "does not exist" in capsys.readouterr().err


def test_cache_dir_follows_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RAGROUTER_CACHE_DIR", str(tmp_path))
    assert default_cache_dir("abc") == tmp_path / "routellm" / "abc"
    monkeypatch.delenv("RAGROUTER_CACHE_DIR")
    assert default_cache_dir("abc").parts[-3:] == ("ragrouter", "routellm", "abc")
