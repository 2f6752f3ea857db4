"""Installing botsession with one extra, or none: what works and what says which extra it needs.

The tests marked ``install`` build a wheel of this checkout and install it into fresh venvs, as a
user installs from PyPI (the dependencies come from PyPI or pip's cache); in each,
tests/install_check.py reports what the installation offers. They run under CI, elsewhere only
with ``BOTSESSION_INSTALL_TESTS=1``. The tests without the mark run here, with a framework
hidden from the import system (``sys.modules[name] = None``) in a subprocess.
"""

from __future__ import annotations

import json
import os
import pickle
import pydoc
import re
import shutil
import subprocess
import sys
import time
import tomllib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

import botsession
from botsession import MissingExtraError

from .conftest import ProxyFactory
from .e2e.daemons import under_ci
from .servers import BotApiStandIn

ROOT = Path(__file__).resolve().parent.parent
CHECK = Path(__file__).resolve().parent / "install_check.py"

NEEDS = {
    "build_session_from_config": "aiogram",
    "AiohttpSession": "aiogram",
    "build_ptb_request": "ptb",
    "build_httpx_client": "httpx",
    "telethon_connection": "telethon",
    "kurigram_connection": "kurigram",
}
"""The extra each framework builder of install_check.py needs."""

MISSING = {
    "aiogram": "needs aiogram 3: pip install 'botsession[aiogram]' "
    "(or: pip install -e '.[aiogram]' from a checkout)",
    "ptb": "needs python-telegram-bot 22: pip install 'botsession[ptb]' "
    "(or: pip install -e '.[ptb]' from a checkout)",
    "httpx": "needs httpx: pip install 'botsession[httpx]' "
    "(or: pip install -e '.[httpx]' from a checkout)",
    "telethon": "needs Telethon: pip install 'botsession[telethon]' "
    "(or: pip install -e '.[telethon]' from a checkout)",
    "kurigram": "needs kurigram: pip install 'botsession[kurigram]' "
    "(or: pip install -e '.[kurigram]' from a checkout)",
}
"""What follows the builder's name in the error of a builder whose extra is not installed."""

BUILT = {
    "build_client_session": "ClientSession",
    "build_session_from_config": "AiohttpSession",
    "AiohttpSession": "AiohttpSession",
    "build_ptb_request": "BotSessionRequest",
    "build_httpx_client": "RouteClient",
    "telethon_connection": "RouteConnectionTcpFull",
    "kurigram_connection": "RouteConnection",
}


def run_python(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=False, timeout=60
    )


def hiding(*modules: str) -> str:
    """Code that makes ``modules`` unimportable, as if they were not installed."""
    return "".join(f"import sys; sys.modules[{module!r}] = None\n" for module in modules)


# --- a framework missing, simulated -----------------------------------------------------------


def test_aiogram_builders_without_aiogram_name_the_extra() -> None:
    """Without aiogram, build_session_from_config, AiohttpSession and botsession.session raise an
    ImportError that names the builder and the aiogram extra."""
    result = run_python(
        hiding("aiogram") + "import botsession\n"
        "for build in ('botsession.build_session_from_config(proxy=\"socks5://127.0.0.1:9\")',\n"
        "              'botsession.AiohttpSession', 'importlib.import_module(\"botsession.session\")'):\n"
        "    try:\n"
        "        import importlib; eval(build)\n"
        "    except ImportError as error:\n"
        "        print(type(error).__name__, error, '|', error.__cause__)\n"
    )
    assert result.stdout.splitlines() == [
        f"MissingExtraError {name} {MISSING['aiogram']} | No module named 'aiogram.client'; 'aiogram' is not a package"
        for name in ("build_session_from_config", "AiohttpSession", "botsession.session")
    ], result.stderr


def test_from_import_of_an_adapter_without_its_framework_names_the_extra() -> None:
    """``from botsession import build_ptb_request`` without python-telegram-bot fails with the
    message naming the ptb extra (not Python's "cannot import name")."""
    result = run_python(hiding("telegram") + "from botsession import build_ptb_request\n")
    assert result.returncode == 1
    assert result.stderr.splitlines()[-1] == (
        f"botsession.errors.MissingExtraError: build_ptb_request {MISSING['ptb']}"
    )


def test_httpx_builders_without_httpx_name_the_extra() -> None:
    """Without httpx, botsession.build_httpx_client and build_httpx_transport name the extra."""
    result = run_python(
        hiding("httpx") + "import botsession\n"
        "for name in ('build_httpx_client', 'build_httpx_transport'):\n"
        "    try:\n"
        "        getattr(botsession, name)\n"
        "    except ImportError as error:\n"
        "        print(error)\n"
    )
    assert result.stdout.splitlines() == [
        f"build_httpx_client {MISSING['httpx']}",
        f"build_httpx_transport {MISSING['httpx']}",
    ], result.stderr


def test_telethon_connection_without_telethon_names_the_extra() -> None:
    """Without Telethon, botsession.telethon_connection and botsession.telethon name the
    telethon extra."""
    result = run_python(
        hiding("telethon") + "import importlib, botsession\n"
        "for get in (lambda: botsession.telethon_connection,\n"
        "            lambda: importlib.import_module('botsession.telethon')):\n"
        "    try:\n"
        "        get()\n"
        "    except ImportError as error:\n"
        "        print(type(error).__name__, error)\n"
        "print('telethon_connection' in dir(botsession))\n"
    )
    assert result.stdout.splitlines() == [
        f"MissingExtraError telethon_connection {MISSING['telethon']}",
        f"MissingExtraError botsession.telethon {MISSING['telethon']}",
        "False",
    ], result.stderr


def test_kurigram_connection_without_kurigram_names_the_extra() -> None:
    """Without kurigram (the pyrogram package), botsession.kurigram_connection and
    botsession.kurigram name the kurigram extra."""
    result = run_python(
        hiding("pyrogram") + "import importlib, botsession\n"
        "for get in (lambda: botsession.kurigram_connection,\n"
        "            lambda: importlib.import_module('botsession.kurigram')):\n"
        "    try:\n"
        "        get()\n"
        "    except ImportError as error:\n"
        "        print(type(error).__name__, error)\n"
        "print('kurigram_connection' in dir(botsession))\n"
    )
    assert result.stdout.splitlines() == [
        f"MissingExtraError kurigram_connection {MISSING['kurigram']}",
        f"MissingExtraError botsession.kurigram {MISSING['kurigram']}",
        "False",
    ], result.stderr


def test_without_any_framework_the_core_works_and_lists_only_what_it_has() -> None:
    """With aiogram, python-telegram-bot and httpx all missing, load_config, a plain aiohttp
    session, dir(), help() and ``from botsession import *`` work and list no adapter's names."""
    result = run_python(
        hiding("aiogram", "telegram", "httpx", "telethon", "pyrogram")
        + "import asyncio, pydoc, botsession\n"
        "config = botsession.load_config(proxy='socks5://127.0.0.1:9')\n"
        "async def main():\n"
        "    async with botsession.build_client_session(config) as session:\n"
        "        return type(session.connector).__name__\n"
        "print(config.proxy, asyncio.run(main()))\n"
        "names = ('AiohttpSession', 'build_ptb_request', 'build_httpx_client',\n"
        "         'telethon_connection', 'kurigram_connection', 'RouteStatus')\n"
        "print([name for name in names if name in dir(botsession)])\n"
        "text = pydoc.render_doc(botsession, renderer=pydoc.plaintext)\n"
        "print('class RouteStatus(' in text, 'class AiohttpSession(' in text)\n"
        "star = {}; exec('from botsession import *', star)\n"
        "print([name for name in names if name in star])\n"
    )
    assert result.stdout.splitlines() == [
        "socks5://127.0.0.1:9 RouteConnector",
        "['RouteStatus']",
        "True False",
        "['RouteStatus']",
    ], result.stderr


def test_dir_and_help_list_the_lazily_loaded_names() -> None:
    """With every framework installed, dir(botsession) and help(botsession) list the adapters'
    names, which are loaded only on first use."""
    lazy = [
        "AiohttpSession",
        "BotSessionRequest",
        "RouteStatus",
        "build_httpx_client",
        "build_httpx_transport",
        "build_ptb_request",
        "configure_application",
        "kurigram_connection",
        "telethon_connection",
    ]
    assert [name for name in lazy if name in dir(botsession)] == lazy
    assert {"Any", "TYPE_CHECKING", "annotations", "importlib"}.isdisjoint(dir(botsession))
    text = pydoc.render_doc(botsession, renderer=pydoc.plaintext)
    documented = set(re.findall(r"^    (?:class )?(\w+)\(", text, re.MULTILINE))
    assert [name for name in lazy if name in documented] == lazy


def test_missing_extra_error_pickles() -> None:
    """A MissingExtraError pickles back to one with the same message and fields."""
    error = MissingExtraError("build_ptb_request", "python-telegram-bot 22", "ptb", "telegram")
    copy = pickle.loads(pickle.dumps(error))  # noqa: S301 - our own bytes
    assert isinstance(copy, ImportError)
    assert (str(copy), copy.extra, copy.name) == (
        f"build_ptb_request {MISSING['ptb']}",
        "ptb",
        "telegram",
    )


# --- fresh venvs, as a user installs ----------------------------------------------------------

install = pytest.mark.skipif(
    not (under_ci() or os.environ.get("BOTSESSION_INSTALL_TESTS") == "1"),
    reason="installs into fresh venvs from PyPI: set BOTSESSION_INSTALL_TESTS=1 (CI runs it)",
)


def clean_environment() -> dict[str, str]:
    """This environment without what would let a venv's Python see this checkout or this venv
    (PYTHONPATH, VIRTUAL_ENV) or start coverage; pip's own settings stay."""
    dropped = ("PYTHONPATH", "PYTHONHOME", "PYTHONSTARTUP", "VIRTUAL_ENV", "COVERAGE_", "COV_")
    return {key: value for key, value in os.environ.items() if not key.startswith(dropped)}


def run(command: list[str], **kwargs: Any) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        command,
        capture_output=True,
        text=True,
        check=False,
        env=kwargs.pop("env", clean_environment()),
        timeout=900,
        **kwargs,
    )
    assert result.returncode == 0, f"{command}\n{result.stdout}\n{result.stderr}"
    return result


def builds_without_isolation() -> bool:
    """Whether this Python's setuptools meets the build requirement (then pip builds with it,
    not with a fresh copy from PyPI)."""
    try:
        from importlib.metadata import version

        return int(version("setuptools").split(".")[0]) >= 68
    except (ImportError, ValueError):
        return False


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A wheel of this checkout, built from a copy of what the build reads (the checkout is
    left as it was: no build/ or egg-info in it)."""
    source = tmp_path_factory.mktemp("source")
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    for name in ("pyproject.toml", project["readme"]):
        shutil.copy2(ROOT / name, source / name)
    ignore = shutil.ignore_patterns("__pycache__")
    shutil.copytree(ROOT / "botsession", source / "botsession", ignore=ignore)
    out = tmp_path_factory.mktemp("wheel")
    build = [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--wheel-dir", str(out)]
    if builds_without_isolation():
        build.append("--no-build-isolation")
    run([*build, str(source)])
    (built,) = out.glob("botsession-*.whl")
    return built


@pytest.fixture(scope="module")
def installed(
    wheel: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Callable[[str | None], Path]]:
    """The Python of a fresh venv with botsession installed from ``wheel`` with an extra (None:
    without), made once per extra; the seconds each took (venv and pip install) are printed."""
    pythons: dict[str | None, Path] = {}
    seconds: dict[str, float] = {}

    def install(extra: str | None) -> Path:
        if extra not in pythons:
            where = tmp_path_factory.mktemp(f"venv-{extra or 'core'}")
            started = time.monotonic()
            run([sys.executable, "-m", "venv", str(where)])
            python = where / "bin" / "python"
            wanted = f"{wheel}[{extra}]" if extra else str(wheel)
            run([str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check", wanted])
            seconds[extra or "core"] = time.monotonic() - started
            pythons[extra] = python
        return pythons[extra]

    yield install
    each = ", ".join(f"{extra} {taken:.1f} s" for extra, taken in seconds.items())
    print(f"\ninstalls (venv + pip install): {each}; {sum(seconds.values()):.1f} s in all")


LAZY = {
    "AiohttpSession": "aiogram",
    "BotSessionRequest": "ptb",
    "RouteStatus": None,
    "build_httpx_client": "httpx",
    "build_httpx_transport": "httpx",
    "build_ptb_request": "ptb",
    "configure_application": "ptb",
    "kurigram_connection": "kurigram",
    "telethon_connection": "telethon",
}
"""The lazily loaded names, in install_check.py's order, and the extra each needs."""


@install
@pytest.mark.install
@pytest.mark.parametrize(
    ("extra", "frameworks"),
    [
        (None, []),
        ("aiogram", ["aiogram"]),
        ("ptb", ["telegram", "httpx"]),  # python-telegram-bot is built on httpx
        ("httpx", ["httpx"]),
        ("telethon", ["telethon"]),
        ("kurigram", ["pyrogram", "python_socks"]),  # kurigram needs python-socks for its proxy=
    ],
    ids=["core", "aiogram", "ptb", "httpx", "telethon", "kurigram"],
)
def test_an_installation_has_its_framework_and_names_the_extras_it_lacks(
    extra: str | None,
    frameworks: list[str],
    installed: Callable[[str | None], Path],
    tmp_path: Path,
) -> None:
    """``pip install 'botsession[<extra>]'`` (or none) installs that framework and no other;
    its builders work, dir(), help() and ``import *`` list their names, and every other
    framework's builder raises an ImportError naming the extra it needs."""
    python = installed(extra)
    seen = json.loads(run([str(python), "-I", str(CHECK)], cwd=tmp_path).stdout)
    assert seen["installed"] == frameworks
    usable = {
        "aiogram": "aiogram" in frameworks,
        "ptb": "telegram" in frameworks,
        "httpx": "httpx" in frameworks,
        "telethon": "telethon" in frameworks,
        "kurigram": "pyrogram" in frameworks,
    }
    assert seen["builders"] == {
        name: built
        if name not in NEEDS or usable[NEEDS[name]]
        else f"MissingExtraError: {name} {MISSING[NEEDS[name]]}"
        for name, built in BUILT.items()
    }
    listed = [name for name, needs in LAZY.items() if needs is None or usable[needs]]
    assert (seen["dir"], seen["help"], seen["star"]) == (listed, listed, listed)


@install
@pytest.mark.install
def test_the_command_line_works_with_only_the_core_installed(
    installed: Callable[[str | None], Path],
    tmp_path: Path,
    proxy: ProxyFactory,
    bot_api: BotApiStandIn,
) -> None:
    """With no extra, ``botsession check`` validates, ``show`` explains and ``probe`` connects
    through a SOCKS5 proxy to the (stand-in) Bot API."""
    command = installed(None).parent / "botsession"
    env = clean_environment() | {"BOT_PROXY": proxy("socks5").url(), "BOT_API__BASE": bot_api.base}
    check = run([str(command), "check"], env=env, cwd=tmp_path)
    assert check.stdout.startswith("environment and defaults (no config file): valid; ")
    show = run([str(command), "show"], env=env, cwd=tmp_path)
    assert show.stdout.splitlines()[0] == "config file: (none: environment and defaults only)"
    probe = run([str(command), "probe", "--timeout", "5"], env=env, cwd=tmp_path)
    assert probe.stdout.splitlines()[-1] == "route ok"


def test_every_public_name_has_a_docstring_and_builders_say_what_config_may_be() -> None:
    """Every name botsession offers has a docstring, and each builder's says what ``config``
    and the other shared arguments may be and that bad input raises ConfigError."""
    offered = [name for name in dir(botsession) if not name.startswith("_")]
    undocumented = [name for name in offered if not (getattr(botsession, name).__doc__ or "")]
    assert undocumented == []
    builders = [
        "load_config",
        "build_session_from_config",
        "build_client_session",
        "build_ptb_request",
        "build_httpx_client",
        "build_httpx_transport",
    ]
    for name in builders:
        doc = getattr(botsession, name).__doc__
        assert "config: Where the settings are." in doc, name
        assert "**overrides:" in doc, name
        assert "ConfigError:" in doc, name
