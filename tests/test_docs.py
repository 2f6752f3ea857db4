"""The documentation site (mkdocs.yml, docs/) builds with ``mkdocs build --strict``: no broken
link or anchor, no missing snippet, no API reference object that cannot be found.

It needs the ``docs`` extra (MkDocs, mkdocs-material, mkdocstrings). Without it these tests are
skipped, except under CI, where a missing tool fails them (as a missing proxy daemon does).
"""

from __future__ import annotations

import html
import importlib.util
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from .e2e.daemons import unavailable

ROOT = Path(__file__).resolve().parent.parent
CONFIG = ROOT / "mkdocs.yml"
TOOLS = ("mkdocs", "material", "mkdocstrings", "mkdocstrings_handlers.python")
# A guard against a hung build, not a measurement: the build takes a few seconds.
BUILD_GUARD = 600


def installed(module: str) -> bool:
    """Whether ``module`` can be imported (a submodule's package is imported to find it)."""
    try:
        return importlib.util.find_spec(module) is not None
    except ModuleNotFoundError:  # its package is missing
        return False


def require_docs_tools() -> None:
    """Skip (fail under CI) when the ``docs`` extra is not installed."""
    missing = [name for name in TOOLS if not installed(name)]
    if missing:
        unavailable(f"{', '.join(missing)} not installed; pip install -e '.[docs]'")


def mkdocs_build(config: Path, site: Path) -> subprocess.CompletedProcess[str]:
    """``mkdocs build --strict`` as a contributor runs it, from the repository's root."""
    environment = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}  # material's banner, not ours
    return subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "-f", str(config), "-d", str(site)],
        cwd=ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=BUILD_GUARD,
        check=False,
    )


def nav_pages(entries: list[object]) -> list[str]:
    """The Markdown files of mkdocs.yml's ``nav``, sections flattened."""
    pages: list[str] = []
    for entry in entries:
        for value in entry.values() if isinstance(entry, dict) else [entry]:
            pages.extend(nav_pages(value) if isinstance(value, list) else [str(value)])
    return pages


def built_path(page: str) -> str:
    """Where mkdocs writes a page: ``a/b.md`` becomes ``a/b/index.html``."""
    stem = page.removesuffix(".md")
    return "index.html" if stem == "index" else f"{stem}/index.html"


def page_text(site: Path, page: str) -> str:
    """The visible text of a built page, tags and whitespace removed (signatures are laid out
    on one line or several, depending on whether a formatter is installed)."""
    markup = (site / page / "index.html").read_text(encoding="utf-8")
    return re.sub(r"\s+", "", html.unescape(re.sub(r"<[^>]+>", "", markup)))


def test_the_documentation_site_builds_in_strict_mode(tmp_path: Path) -> None:
    """The site builds without a single warning, every page and the API reference in it."""
    require_docs_tools()
    site = tmp_path / "site"

    built = mkdocs_build(CONFIG, site)

    assert built.returncode == 0, built.stderr
    pages = nav_pages(yaml.safe_load(CONFIG.read_text(encoding="utf-8"))["nav"])
    assert len(pages) >= 15
    unbuilt = [page for page in pages if not (site / built_path(page)).is_file()]
    assert unbuilt == []
    reference = page_text(site, "reference")
    # The builders show the arguments they take, not the loaded configuration they are written
    # with (docs/griffe_builders.py).
    assert "load_config(config:ConfigInput=None,*,env_prefix:str=" in reference
    assert "profile:str|None=None,**overrides:Any" in reference
    assert "build_httpx_client(config:ConfigInput=None" in reference
    assert "build_ptb_request(loaded" not in reference
    # Each builder documents the shared arguments; each configuration field its description.
    assert "configConfigInputWherethesettingsare." in reference  # the Parameters table
    assert reference.count("Theconfigurationisinvalid:problemslistseveryproblem") >= 6
    assert "Verifytheservercertificate." in reference  # TlsSettings.verify, from its Field
    changelog = page_text(site, "changelog")
    assert "##[Unreleased]" not in changelog  # CHANGELOG.md itself, included and rendered
    assert "[Unreleased]" in changelog


@pytest.mark.parametrize(
    ("link", "complaint"),
    [
        ("other.md#nowhere", "does not contain an anchor '#nowhere'"),
        ("missing.md", "'missing.md', but the target is not found"),
    ],
)
def test_a_broken_link_fails_the_build(tmp_path: Path, link: str, complaint: str) -> None:
    """mkdocs.yml's validation settings make a link to a missing page or anchor fail the build."""
    require_docs_tools()
    settings = yaml.safe_load(CONFIG.read_text(encoding="utf-8"))
    pages = tmp_path / "docs"
    pages.mkdir()
    (pages / "index.md").write_text(f"# Home\n\nSee [the other page]({link}).\n", encoding="utf-8")
    (pages / "other.md").write_text("# Other\n\n## Somewhere\n", encoding="utf-8")
    config = tmp_path / "mkdocs.yml"
    small_site = {
        "site_name": "links",
        "docs_dir": str(pages),
        "validation": settings["validation"],
        "plugins": [],
    }
    config.write_text(yaml.safe_dump(small_site), encoding="utf-8")

    built = mkdocs_build(config, tmp_path / "site")

    assert built.returncode != 0
    assert complaint in built.stderr
