"""Put the RouteLLM ground truth into `data/routellm`: link the shared copy, or download it.

The data files are never committed. `manifest.json` pins each file to one upstream commit and
sha256, so a download anywhere gives exactly the bytes the reference figures were measured on.
The download is pooch's: the manifest becomes its registry (file -> URL and sha256), it keeps
the files in a cache, checks each against its hash before moving it into place and retries a
failed try. Design: docs/data.md.

    python -m ragrouter.data.setup [--mode auto|link|copy|download] [--base-url URL]
                                   [--dest data/routellm] [--verify]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import urllib.parse
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Literal, get_args

import pooch
import requests

from ragrouter.errors import RAGRouterError

Mode = Literal["auto", "link", "copy", "download"]
MANIFEST_PATH = Path(__file__).with_name("manifest.json")
REPO_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_DEST = REPO_ROOT / "data" / "routellm"
TIMEOUT_S = 30.0
RETRIES = 3  # tries per file; pooch waits 1 s, then 2 s, between them
_CHUNK = 1 << 16


class DataSetupError(RAGRouterError):
    """The data could not be put in place (missing source, bad download, checksum mismatch)."""


@dataclass(frozen=True)
class FileEntry:
    """One pinned file: where it goes under data/routellm and where it lives upstream."""

    path: str
    upstream_path: str
    sha256: str
    size: int


@dataclass(frozen=True)
class Manifest:
    """The pinned upstream commit, its raw-file base URL (may hold `{commit}`) and the files."""

    commit: str
    base_url: str
    files: tuple[FileEntry, ...]

    def url(self, entry: FileEntry, base_url: str | None = None) -> str:
        """Where to download `entry`: `{base_url}/{upstream_path}`, base defaulting to ours."""
        base = (base_url or self.base_url).format(commit=self.commit).rstrip("/")
        return f"{base}/{urllib.parse.quote(entry.upstream_path)}"

    def registry(self, cache_dir: Path, base_url: str | None = None) -> pooch.Pooch:
        """The files as a pooch registry kept in `cache_dir`: each one's URL and sha256."""
        return pooch.create(
            path=cache_dir,
            base_url=(base_url or self.base_url).format(commit=self.commit),
            registry={e.path: f"sha256:{e.sha256}" for e in self.files},
            urls={e.path: self.url(e, base_url) for e in self.files},
            retry_if_failed=RETRIES - 1,
        )


def load_manifest(path: Path = MANIFEST_PATH) -> Manifest:
    """Read the manifest shipped with the package."""
    raw = json.loads(path.read_text())
    files = tuple(FileEntry(**f) for f in raw["files"])
    return Manifest(commit=raw["commit"], base_url=raw["base_url"], files=files)


def default_shared() -> Path:
    """The team's shared copy: $RAGROUTER_SHARED_DATA, else ../shared/data/routellm."""
    env = os.environ.get("RAGROUTER_SHARED_DATA")
    return Path(env) if env else REPO_ROOT.parent / "shared" / "data" / "routellm"


def default_cache_dir(commit: str) -> Path:
    """Downloads are kept per commit under $RAGROUTER_CACHE_DIR (default: the user cache's
    `ragrouter`, ~/.cache/ragrouter on Linux)."""
    root = os.environ.get("RAGROUTER_CACHE_DIR") or pooch.os_cache("ragrouter")
    return Path(root) / "routellm" / commit


def _problem(root: Path, entry: FileEntry) -> str | None:
    """Why `root/entry.path` is not the pinned file (size first: it is free), or None."""
    path = root / entry.path
    if not path.is_file():
        return f"missing: {entry.path}"
    size = path.stat().st_size
    if size != entry.size:
        return f"size mismatch: {entry.path} has {size} bytes, expected {entry.size}"
    got = pooch.file_hash(str(path), alg="sha256")
    if got != entry.sha256:
        return f"checksum mismatch: {entry.path} has sha256 {got}, expected {entry.sha256}"
    return None


def verify_data(dest: Path = DEFAULT_DEST, manifest: Manifest | None = None) -> list[str]:
    """Every way `dest` differs from the manifest (missing files, wrong checksums); [] if none."""
    manifest = manifest or load_manifest()
    if not dest.is_dir():
        return [f"{dest} does not exist: run `python -m ragrouter.data.setup`"]
    return [p for e in manifest.files if (p := _problem(dest, e)) is not None]


def _http_get(entry: FileEntry) -> Callable[[str, str, pooch.Pooch], None]:
    """pooch's HTTP download of `entry`, except that an answer a retry would not change (a 4xx
    other than 429) ends the tries at once: pooch retries only ValueErrors (its checksum
    check) and requests' errors, so a DataSetupError goes straight through."""
    http = pooch.HTTPDownloader(timeout=TIMEOUT_S, chunk_size=_CHUNK)

    def get(url: str, output_file: str, registry: pooch.Pooch) -> None:
        try:
            http(url, output_file, registry)
        except requests.HTTPError as e:
            status = e.response.status_code
            if status < 500 and status != 429:
                raise DataSetupError(
                    f"cannot download {entry.path}: HTTP {status} {e.response.reason} from {url}"
                ) from None
            raise

    return get


def _action(path: str, action: str, registry: pooch.Pooch) -> str:
    """pooch processor that makes `fetch` return what it did: "fetch" (the cached file matched),
    "download" or "update" (the cached file did not match)."""
    return action


def download(manifest: Manifest, base_url: str | None, cache_dir: Path) -> tuple[int, int, int]:
    """Fill `cache_dir` with every manifest file; returns (downloaded, reused, bytes downloaded).

    A cached file whose checksum matches is reused without touching the network.
    """
    registry = manifest.registry(cache_dir, base_url)
    fetched = reused = nbytes = 0
    for entry in manifest.files:
        url = registry.get_url(entry.path)
        try:
            action = registry.fetch(entry.path, processor=_action, downloader=_http_get(entry))
        except ValueError as e:  # pooch's checksum check failed on every try
            raise DataSetupError(
                f"checksum mismatch for {entry.path} from {url} after {RETRIES} tries: {e}"
            ) from None
        except requests.RequestException as e:
            raise DataSetupError(
                f"cannot download {entry.path} from {url} after {RETRIES} tries: {e}"
            ) from None
        if action == "fetch":
            reused += 1
        else:
            fetched += 1
            nbytes += entry.size
    return fetched, reused, nbytes


def _copy_into(src: Path, dest: Path, manifest: Manifest) -> int:
    """Copy the manifest files that `dest` lacks or has wrong; returns how many were copied."""
    if dest.is_symlink():
        dest.unlink()
    copied = 0
    for entry in manifest.files:
        if _problem(dest, entry) is None:
            continue
        target = dest / entry.path
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(f".{target.name}.part")
        shutil.copyfile(src / entry.path, tmp)
        os.replace(tmp, target)
        copied += 1
    return copied


def _install(src: Path, dest: Path, manifest: Manifest, how: Mode, relative: bool) -> str:
    """Make `dest` show the files of `src`: a symlink (auto/download fall back to a copy when
    symlinks fail, e.g. on Windows without privileges) or a copy. Returns what was done."""
    shown = _shown(dest)
    if how != "copy":
        if dest.is_symlink() and dest.resolve() == src.resolve():
            return f"{shown} -> {os.readlink(dest)} (link, already set up)"
        if dest.exists() and not dest.is_symlink():
            if not verify_data(dest, manifest):
                return f"{shown} is a complete copy (already set up)"
            raise DataSetupError(
                f"{shown} exists and is neither a link to {src} nor a complete copy; "
                "remove it and run again"
            )
        dest.parent.mkdir(parents=True, exist_ok=True)
        target = os.path.relpath(src, dest.parent) if relative else str(src)
        try:
            if dest.is_symlink():
                dest.unlink()
            dest.symlink_to(target, target_is_directory=True)
            return f"{shown} -> {target} (link)"
        except OSError as e:
            if how == "link":
                raise DataSetupError(f"cannot symlink {shown} -> {target}: {e}") from None
    copied = _copy_into(src, dest, manifest)
    if copied == 0:
        return f"{shown} holds all {len(manifest.files)} files (copy, already set up)"
    return f"{shown} <- {src} (copy, {copied} files)"


def setup_data(
    dest: Path = DEFAULT_DEST,
    shared: Path | None = None,
    base_url: str | None = None,
    cache_dir: Path | None = None,
    mode: Mode = "auto",
    manifest: Manifest | None = None,
) -> str:
    """Put the pinned files at `dest` and return one line saying what was done.

    Source: the shared folder when it exists (None: `default_shared()`), else - or always
    with mode "download" - a checksummed download into `cache_dir` (None:
    `default_cache_dir`). Then "copy" copies, "link" symlinks, and "auto"/"download" symlink
    or copy where symlinks fail. Safe to repeat: a second run changes nothing and says so.
    """
    if mode not in get_args(Mode):
        raise DataSetupError(f"unknown mode {mode!r}; choose one of {', '.join(get_args(Mode))}")
    manifest = manifest or load_manifest()
    shared = shared or default_shared()
    if mode != "download" and shared.is_dir():
        missing = [e.path for e in manifest.files if not (shared / e.path).is_file()]
        if missing:
            raise DataSetupError(
                f"shared data {shared} lacks {len(missing)} file(s), e.g. {missing[0]}; "
                "fix it or use --mode download"
            )
        return _install(shared, dest, manifest, mode, relative=True)
    cache_dir = cache_dir or default_cache_dir(manifest.commit)
    fetched, reused, nbytes = download(manifest, base_url, cache_dir)
    done = _install(cache_dir, dest, manifest, mode, relative=False)
    if fetched == 0:
        return f"all {reused} files from cache {cache_dir}; {done}"
    return f"downloaded {fetched} files ({nbytes / 1e6:.1f} MB), {reused} from cache; {done}"


def _shown(path: Path) -> str:
    """`path` relative to the working directory when it is inside it, for short messages."""
    try:
        return str(path.absolute().relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def main(argv: list[str] | None = None) -> int:
    """CLI entry: one line on success; exit 2 with the reason (no traceback) on failure."""
    parser = argparse.ArgumentParser(
        prog="python -m ragrouter.data.setup",
        description="Link or download the pinned RouteLLM ground truth into data/routellm.",
    )
    parser.add_argument("--mode", choices=get_args(Mode), default="auto",
                        help="auto: link the shared copy if present, else download (default)")
    parser.add_argument("--dest", type=Path, default=DEFAULT_DEST)
    parser.add_argument("--shared", type=Path, default=None,
                        help="default: $RAGROUTER_SHARED_DATA or ../shared/data/routellm")
    parser.add_argument("--base-url", default=None,
                        help="raw-file base URL, may contain {commit} (default: the manifest's)")
    parser.add_argument("--cache-dir", type=Path, default=None,
                        help="default: ($RAGROUTER_CACHE_DIR or the user cache's ragrouter,"
                             " ~/.cache/ragrouter on Linux)/routellm/<commit>")
    parser.add_argument("--verify", action="store_true",
                        help="only check dest against the manifest's checksums")
    args = parser.parse_args(argv)
    try:
        if args.verify:
            problems = verify_data(args.dest)
            if problems:
                lines = "".join(f"\n  {p}" for p in problems)
                print(f"{_shown(args.dest)}: {len(problems)} problem(s){lines}", file=sys.stderr)
                return 2
            print(f"{_shown(args.dest)}: all {len(load_manifest().files)} files match the manifest")
            return 0
        print(setup_data(args.dest, args.shared, args.base_url, args.cache_dir, args.mode))
        return 0
    except (RAGRouterError, OSError) as e:
        print(f"data setup failed: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
