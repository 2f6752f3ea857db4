"""The ``botsession`` command, run in process through ``main(argv)`` (a few smoke tests run the
real entry points as subprocesses), and against the real daemons for probe."""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import jsonschema
import pytest
import trustme
import yaml

from botsession.cli import main

from .faultproxy import FaultProxy
from .servers import BackgroundLoop, BotApiStandIn, StreamServer
from .support import SENTINEL, TOKEN, free_port
from .tls_relay import TlsRelay, server_context

SAMPLES = Path(__file__).resolve().parent.parent / "sample_configs"


@dataclass
class Result:
    returncode: int
    stdout: str
    stderr: str


def botsession(*args: str, env: dict[str, str] | None = None) -> Result:
    """Run the command in this process (``main(argv)``) with a clean BOT_* environment plus
    ``env``, capturing what it prints; argparse's exits become the exit code."""
    saved = dict(os.environ)
    out, err = io.StringIO(), io.StringIO()
    try:
        for name in [name for name in os.environ if name.upper().startswith("BOT_")]:
            del os.environ[name]
        os.environ.update(env or {})
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                code = main(list(args))
            except SystemExit as exit_:
                code = exit_.code if isinstance(exit_.code, int) else 1
    finally:
        os.environ.clear()
        os.environ.update(saved)
    return Result(code, out.getvalue(), err.getvalue())


def write(path: Path | str, text: str) -> Path:
    path = Path(path)
    path.write_text(text)
    return path


@pytest.mark.parametrize("sample", sorted(SAMPLES.glob("*.yaml")), ids=lambda p: p.name)
def test_check_accepts_every_sample(sample: Path) -> None:
    """check exits 0 with a summary line and a line of names resolved here, for each sample."""
    result = botsession("check", str(sample), env={"PROXY_PASSWORD": "x"})
    assert result.returncode == 0, result.stderr
    summary, lookups = result.stdout.splitlines()
    profile = " (profile production)" if sample.name == "profiles.yaml" else ""
    assert summary.startswith(f"{sample}{profile}: valid; client → ")
    assert lookups.startswith("resolved on this machine: ")
    assert result.stderr == ""


def test_check_quiet_prints_nothing_when_valid() -> None:
    """check --quiet is silent on success (for CI)."""
    result = botsession("check", "--quiet", str(SAMPLES / "chain.yaml"))
    assert (result.returncode, result.stdout, result.stderr) == (0, "", "")


def test_check_reports_every_problem_with_locations(tmp_path: Path) -> None:
    """An invalid config exits 1 with every problem on stderr, located, and no traceback."""
    config = write(
        tmp_path / "bad.yaml",
        f"proxy:\n  - socks5://u:{SENTINEL}@127.0.0.1:1\n  - socks6://127.0.0.1:2\nlimit: 0\ntimout: 5\n",
    )
    result = botsession("check", "--quiet", str(config), env={"BOT_CONNECT_TIMEOUT": "soon"})
    assert result.returncode == 1
    assert result.stdout == ""
    assert f"{config}:3:5: proxy[1]: unsupported protocol 'socks6'" in result.stderr
    assert f"{config}:4:8: limit: expected greater than or equal to 1, found 0" in result.stderr
    assert (
        f"{config}:5:1: timout: unknown setting 'timout'; did you mean 'timeout'?" in result.stderr
    )
    assert (
        "environment variable BOT_CONNECT_TIMEOUT: connect_timeout: expected a valid number"
        in result.stderr
    )
    assert "Traceback" not in result.stderr
    assert SENTINEL not in result.stderr


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (b"proxy: [unclosed\n", "YAML syntax error"),
        (b"proxy: !!python/object/apply:os.system ['echo pwned']\n", "is not allowed in a config"),
        (b"\xff\xfe\x00b\x00i\x00n", "not UTF-8 text (byte 0 is invalid); is it binary?"),
        (b"limit: 1\x00\x01", "characters are not allowed at character 9"),
    ],
)
def test_check_never_shows_a_traceback_for_broken_files(
    tmp_path: Path, text: bytes, expected: str
) -> None:
    """Broken YAML, unsafe tags and binary files are exit 1 with a clear message."""
    config = tmp_path / "bot.yaml"
    config.write_bytes(text)
    result = botsession("check", str(config))
    assert result.returncode == 1
    assert expected in result.stderr
    assert "Traceback" not in result.stderr
    assert "pwned" not in result.stdout


def test_check_warns_about_names_resolved_here_on_stderr(tmp_path: Path) -> None:
    """A socks4 hop before a named hop is valid but warned about, on stderr, even with --quiet."""
    config = write(
        tmp_path / "bot.yaml",
        "proxy:\n  - socks4://192.0.2.10:1080\n  - socks4a://exit.example.org:1080\n",
    )
    result = botsession("check", str(config))
    assert result.returncode == 0
    assert result.stdout.splitlines()[1] == (
        "resolved on this machine: proxy: exit.example.org (hop 1 is socks4)"
    )
    assert result.stderr == (
        "warning: proxy: hop 1 (socks4://192.0.2.10:1080) is socks4, so this machine resolves "
        "the name of hop 2 (exit.example.org) itself, in the clear; use socks4a:// or socks5 "
        "with remote DNS (rdns) for hop 1, or give hop 2 as an IP address\n"
    )
    quiet = botsession("check", "--quiet", str(config))
    assert (quiet.returncode, quiet.stdout, quiet.stderr) == (0, "", result.stderr)


def test_check_missing_file_and_config_variable(tmp_path: Path) -> None:
    """A missing file is exit 1; $BOT_CONFIG names the file when no path is given."""
    assert botsession("check", "nope.yaml").returncode == 1
    good = write(tmp_path / "x.yaml", "limit: 3\n")
    result = botsession("check", env={"BOT_CONFIG": str(good)})
    assert result.returncode == 0
    assert "limit 3" in result.stdout


def test_show_redacts_and_names_the_source_of_each_value(tmp_path: Path) -> None:
    """show masks every secret and says a YAML value was overridden by the environment."""
    secret_file = write(tmp_path / "pw", SENTINEL)
    config = write(
        tmp_path / "bot.yaml",
        "proxy:\n"
        f"  - socks5://alice:{SENTINEL}@127.0.0.1:1080\n"
        f"  - url: http://bob@127.0.0.1:3128\n    password_file: {secret_file}\n"
        "  - url: socks5://carol@127.0.0.1:1081\n"
        "limit: 5\n"
        "timeout: 30\n",
    )
    env = {"BOT_LIMIT": "9", "BOT_PROXY__2__PASSWORD": SENTINEL}
    result = botsession("show", str(config), env=env)
    assert result.returncode == 0, result.stderr
    assert SENTINEL not in result.stdout + result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == f"config file: {config}"
    assert (
        lines[1]
        == "proxy: client → socks5 127.0.0.1:1080 (auth) → http 127.0.0.1:3128 (auth) → socks5 127.0.0.1:1081 (auth) → api.telegram.org"
    )
    rows = {line.split()[0]: line.split(maxsplit=2)[1:] for line in lines[2:]}
    assert rows["limit"] == ["9", "environment variable BOT_LIMIT"]
    assert rows["timeout"] == ["30", f"{config}:7:10"]
    assert rows["proxy[0]"] == ["socks5://alice:***@127.0.0.1:1080", f"{config}:2:5"]
    assert rows["proxy[2].password"] == ["***", "environment variable BOT_PROXY__2__PASSWORD"]
    assert rows["connect_timeout"] == ["10", "default"]

    as_json = botsession("show", "--json", str(config), env=env)
    assert SENTINEL not in as_json.stdout
    document = json.loads(as_json.stdout)
    assert document["settings"]["limit"] == {
        "value": 9,
        "source": "environment variable BOT_LIMIT",
        "kind": "env",
    }
    assert document["settings"]["timeout"]["kind"] == "yaml"
    assert [hop["password"] for hop in document["proxy"]] == ["***", "***", "***"]
    assert (
        document["proxy"][2]["field_sources"]["password"]
        == "environment variable BOT_PROXY__2__PASSWORD"
    )


def test_show_marks_dotenv_values(tmp_path: Path) -> None:
    """Values from .env are shown with the file, line and variable."""
    write(tmp_path / ".env", "# comment\nBOT_TIMEOUT=20\n")
    result = subprocess.run(
        [sys.executable, "-m", "botsession", "show"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        check=True,
        env={k: v for k, v in os.environ.items() if not k.startswith("BOT_")},
    )
    rows = {line.split()[0]: line.split(maxsplit=2)[1:] for line in result.stdout.splitlines()[2:]}
    assert rows["timeout"] == ["20", ".env:2 (BOT_TIMEOUT)"]


def test_profile_option_and_show_of_profiles_fallbacks_and_trust_env(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """--profile selects a profile; show names the profile, the fallback routes and trust_env."""
    sample = str(SAMPLES / "profiles.yaml")
    staging = botsession("check", "--profile", "staging", sample)
    assert staging.stdout.startswith(
        f"{sample} (profile staging): valid; client → socks5 127.0.0.1:1080 → "
    )
    unknown = botsession("check", "--profile", "nope", sample)
    assert unknown.returncode == 1
    assert "unknown profile 'nope'; the profiles in" in unknown.stderr
    shown = botsession("show", sample, env={"BOT_PROFILE": "production"}).stdout.splitlines()
    assert shown[1] == "profile: production (environment variable BOT_PROFILE)"
    assert shown[3] == "fallback[0]: client → http backup.example.net:3128 → api.telegram.org"
    assert any(
        line.split()[:2] == ["fallback[0]", "http://backup.example.net:3128"] for line in shown
    )
    environment = {
        "BOT_TRUST_ENV": "1",
        "HTTPS_PROXY": "socks5://127.0.0.1:9050",
        "https_proxy": "",
    }
    trusted = botsession("show", env=environment).stdout.splitlines()
    assert trusted[1] == "proxy: client → socks5 127.0.0.1:9050 → api.telegram.org"
    assert trusted[2] == "resolved on this machine: proxy: none"
    assert trusted[3].split(maxsplit=2)[2] == "environment variable HTTPS_PROXY (trust_env)"


def test_probe_checks_every_route(bot_api: BotApiStandIn, proxy: object) -> None:
    """With fallbacks, probe walks each route and exits 3 if any of them is broken."""
    backup = proxy("socks5")  # type: ignore[operator]
    dead = free_port()
    env = {
        "BOT_PROXY": f"socks5://127.0.0.1:{dead}",
        "BOT_FALLBACK": json.dumps([backup.url()]),
        "BOT_API__BASE": bot_api.base,
    }
    result = botsession("probe", env=env)
    assert result.returncode == 3
    lines = result.stdout.splitlines()
    assert lines[0] == "route proxy"
    assert "route fallback[0]" in lines
    assert lines[-4].startswith(f"[2/2] GET {bot_api.base} through the route … HTTP 404")
    assert (
        result.stderr.strip()
        == f"probe failed: route proxy: hop 1 of 1 (socks5://127.0.0.1:{dead}): connection refused; is the proxy running and listening there?"
    )
    env["BOT_PROXY"] = backup.url()
    assert botsession("probe", env=env).stdout.splitlines()[-1] == "all 2 routes ok"


def test_schema_validates_the_samples_and_rejects_typos() -> None:
    """schema prints a JSON Schema that accepts every sample and refuses an unknown key or bad route."""
    result = botsession("schema")
    assert result.returncode == 0
    schema = json.loads(result.stdout)
    jsonschema.Draft202012Validator.check_schema(schema)
    validator = jsonschema.Draft202012Validator(schema)
    for sample in SAMPLES.glob("*.yaml"):
        assert list(validator.iter_errors(yaml.safe_load(sample.read_text()))) == [], sample
    assert list(validator.iter_errors({"limt": 3}))
    assert list(validator.iter_errors({"proxy": [{"url": "socks5://h:1", "pasword": "x"}]}))
    assert list(validator.iter_errors({"proxy": []}))
    assert list(validator.iter_errors({"profiles": {"a": {"limt": 1}}}))
    assert list(validator.iter_errors({"profiles": {"a": {"profiles": {}}}}))
    assert not list(
        validator.iter_errors({"proxy": {"url": "socks5://h:1", "password": "x", "rdns": False}})
    )


def test_version_help_and_usage_errors() -> None:
    """--version and --help exit 0; no command or a bad option is a usage error (exit 2)."""
    version = botsession("--version")
    assert (version.returncode, version.stdout.strip()) == (0, "botsession 0.1.0")
    help_text = botsession("--help")
    assert help_text.returncode == 0
    assert "examples:" in help_text.stdout
    assert (
        "exit codes: 0 ok, 1 invalid configuration, 2 usage error, 3 probe failed"
        in help_text.stdout
    )
    assert botsession().returncode == 2
    assert botsession("check", "--bogus").returncode == 2
    assert botsession("probe", "--timeout", "0").returncode == 2


def test_console_script_is_installed() -> None:
    """The ``botsession`` console script runs the same CLI."""
    script = Path(sys.executable).with_name("botsession")
    result = subprocess.run([str(script), "--version"], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "botsession 0.1.0"


@pytest.mark.parametrize("command", [["check"], ["show"], ["show", "--json"], ["schema"]])
def test_check_show_schema_do_not_import_aiogram(command: list[str]) -> None:
    """The quick commands never import aiogram or aiohttp."""
    code = (
        "import sys, contextlib, io\n"
        "from botsession.cli import main\n"
        "with contextlib.redirect_stdout(io.StringIO()):\n"
        f"    code = main({[*command, str(SAMPLES / 'chain.yaml')] if command != ['schema'] else command!r})\n"
        "print(code, 'aiogram' in sys.modules, 'aiohttp' in sys.modules)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "0 False False"


# --- probe, against the real daemons -------------------------------------------------------


def test_probe_direct_and_dead_first_hop(bot_api: BotApiStandIn) -> None:
    """Without a proxy probe does one direct request; a dead first hop is 'connection refused'."""
    direct = botsession("probe", "--url", f"{bot_api.base}/bot{TOKEN}/getMe")
    assert direct.returncode == 0, direct.stderr
    assert "[1/1] GET" in direct.stdout
    assert "directly … HTTP 200" in direct.stdout
    dead = free_port()
    failed = botsession(
        "probe", env={"BOT_PROXY": f"socks5://127.0.0.1:{dead}", "BOT_API__BASE": bot_api.base}
    )
    assert failed.returncode == 3
    assert (
        f"probe failed: hop 1 of 1 (socks5://127.0.0.1:{dead}): connection refused" in failed.stderr
    )


def test_probe_invalid_config_is_exit_1() -> None:
    """probe validates first: a bad config is exit 1, not a probe failure."""
    result = botsession("probe", env={"BOT_PROXY": "socks6://127.0.0.1:1"})
    assert result.returncode == 1
    assert "unsupported protocol 'socks6'" in result.stderr


@pytest.mark.parametrize("fault", ["close", "reset", "truncated", "garbage"])
def test_probe_reports_a_proxy_that_hangs_up_without_a_traceback(
    fault: str,
    bot_api: BotApiStandIn,
    background: BackgroundLoop,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """A SOCKS5 proxy that hangs up on the connect request (as ssh -D does when the server
    cannot reach the target) is a diagnosis naming the hop, never a traceback."""
    from botsession.cli import main

    faulty = FaultProxy(background, "socks5", "reply", fault).start()
    try:
        monkeypatch.setenv("BOT_PROXY", faulty.url())
        monkeypatch.setenv("BOT_CONNECT_TIMEOUT", "2")
        assert main(["probe", "--url", bot_api.base]) == 3
    finally:
        faulty.stop()
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err
    assert err.startswith(f"probe failed: hop 1 of 1 (socks5://127.0.0.1:{faulty.port}): ")
    expected = {
        "close": "the proxy closed the connection while botsession waited for the SOCKS5 "
        f"connect reply; some proxies (ssh -D among them) do this when they cannot reach or "
        f"resolve 127.0.0.1:{bot_api.port}",
        "reset": "the connection was reset while waiting for the SOCKS5 connect reply",
        "truncated": "the proxy closed the connection while botsession waited for the SOCKS5 "
        "connect reply",
        "garbage": "the reply is not SOCKS5: it starts with 'HTTP/1.1 400 Bad Request'; it "
        "answered like an HTTP proxy: is its scheme http:// rather than socks5://?",
    }[fault]
    assert expected in err
    assert bot_api.calls == []


def test_probe_names_the_hop_that_hangs_up_on_the_next_hop(
    bot_api: BotApiStandIn,
    background: BackgroundLoop,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """When hop 1 hangs up on the request for hop 2, the probe says hop 2 is unreachable from
    hop 1 or refused by it."""
    from botsession.cli import main

    first = FaultProxy(background, "socks5", "reply", "close").start()
    second = FaultProxy(background, "http").start()
    try:
        monkeypatch.setenv("BOT_PROXY", json.dumps([first.url(), second.url()]))
        assert main(["probe", "--url", bot_api.base]) == 3
    finally:
        first.stop()
        second.stop()
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err
    assert err.strip() == (
        f"probe failed: hop 1 of 2 (socks5://127.0.0.1:{first.port}) broke off while connecting "
        f"to hop 2 of 2 (http://127.0.0.1:{second.port}): either that hop is unreachable from it "
        "or it refuses the request"
    )


@dataclass
class RefusingHttpProxy(StreamServer):
    """An HTTP proxy that answers every CONNECT with 502 Bad Gateway (it cannot reach the
    address asked for)."""

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(OSError, asyncio.IncompleteReadError):
            await reader.readuntil(b"\r\n\r\n")
            writer.write(b"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\n\r\n")
            await writer.drain()
        writer.close()


@pytest.mark.parametrize("scheme", ["http", "https"])
def test_probe_says_the_target_is_unreachable_when_an_http_or_https_proxy_cannot_reach_it(
    scheme: str,
    *,
    background: BackgroundLoop,
    ca: trustme.CA,
    ca_file: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """A proxy's 502 to the CONNECT for the target is "the target is unreachable" (exit 3),
    for an https proxy as for an http one."""
    refusing = RefusingHttpProxy(background).start()
    relay = TlsRelay(background, refusing.port, server_context(ca)).start()
    target = f"http://127.0.0.1:{free_port()}"
    try:
        if scheme == "http":
            hop: dict[str, object] = {"url": f"http://127.0.0.1:{refusing.port}"}
        else:
            hop = {"url": f"https://127.0.0.1:{relay.port}", "ca_file": str(ca_file)}
        monkeypatch.setenv("BOT_PROXY", json.dumps(hop))
        assert main(["probe", "--url", target]) == 3
    finally:
        relay.stop()
        refusing.stop()
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err
    assert err.startswith("probe failed: the target is unreachable: hop 1 could not connect to it")
    assert "502 Bad Gateway" in err


# --- errors that point at the mistake (issue #19) --------------------------------------------


def test_show_credits_a_default_to_default_even_inside_a_written_mapping(tmp_path: Path) -> None:
    """show names the YAML line of a value written there, and "default" for a setting of the
    same mapping that was not written."""
    config = write(tmp_path / "bot.yaml", "api:\n  base: http://127.0.0.1:8081\n")
    result = botsession("show", str(config))
    assert result.returncode == 0, result.stderr
    rows = {line.split()[0]: line.split(maxsplit=2)[1:] for line in result.stdout.splitlines()}
    assert rows["api.base"] == ["http://127.0.0.1:8081", f"{config}:2:9"]
    assert rows["api.is_local"] == ["false", "default"]
    document = json.loads(botsession("show", "--json", str(config)).stdout)
    assert document["settings"]["api.is_local"]["kind"] == "default"


def test_show_json_of_an_invalid_config_prints_its_problems_as_json(tmp_path: Path) -> None:
    """show --json on an invalid config prints JSON listing each problem (exit 1)."""
    config = write(tmp_path / "bot.yaml", f"proxy: socks5://u:{SENTINEL}@127.0.0.1:0\nlimt: 1\n")
    result = botsession("show", "--json", str(config))
    assert result.returncode == 1
    document = json.loads(result.stdout)
    assert document == {
        "valid": False,
        "problems": [
            {
                "where": f"{config}:1:8",
                "path": "proxy",
                "message": "the port must be a number from 1 to 65535, found 0",
            },
            {
                "where": f"{config}:2:1",
                "path": "limt",
                "message": "unknown setting 'limt'; did you mean 'limit'?",
            },
        ],
    }
    assert SENTINEL not in result.stdout + result.stderr
    assert "unknown setting 'limt'" in result.stderr


def test_an_env_prefix_without_its_underscore_is_a_usage_error() -> None:
    """--env-prefix MYBOT is refused (exit 2) with the sentence load_config gives."""
    result = botsession("check", "--env-prefix", "MYBOT")
    assert result.returncode == 2
    assert (
        "argument --env-prefix: the prefix 'MYBOT' does not end with '_': the variables would "
        "be named MYBOTPROXY, MYBOTLIMIT, …; give 'MYBOT_' for MYBOT_PROXY"
    ) in result.stderr
    valid = botsession("check", "--env-prefix", "MYBOT_", env={"MYBOT_LIMIT": "7"})
    assert (valid.returncode, "limit 7" in valid.stdout) == (0, True)


def test_a_near_miss_variable_is_a_warning_line_of_check() -> None:
    """check prints a warning line for BOT_LIMT and still validates (exit 0)."""
    result = botsession("check", env={"BOT_LIMT": "5"})
    assert result.returncode == 0
    assert result.stderr == (
        "warning: environment variable BOT_LIMT is ignored: no botsession setting is called "
        "LIMT; did you mean BOT_LIMIT?\n"
    )


def read_terminal(master: int) -> str:
    """Everything written to a pseudo-terminal whose other side is closed."""
    chunks = []
    while True:
        try:
            chunk = os.read(master, 4096)
        except OSError:  # EIO: the other side is closed and everything was read
            break
        if not chunk:
            break
        chunks.append(chunk)
    return b"".join(chunks).decode()


def test_probe_shows_time_passing_on_a_terminal_only(silent_server: object) -> None:
    """On a terminal a silent hop's line says every second how long probe has waited for it;
    written to a file it does not; a wait of more than a second is said in seconds."""
    import pty

    from botsession import load_config
    from botsession.cli.probe import probe

    port = silent_server.port  # type: ignore[attr-defined]
    config = load_config(proxy=f"socks5://127.0.0.1:{port}")
    master, follower = pty.openpty()
    with open(follower, "w", encoding="utf-8") as terminal:
        assert terminal.isatty()
        probed = asyncio.run(probe(config, "http://127.0.0.1:9", 2.5, terminal))
    shown = read_terminal(master)
    os.close(master)
    assert [number for number, _ in probed.failures] == [1]
    assert f"[1/2] hop 1 socks5://127.0.0.1:{port} → 127.0.0.1:9 … waiting for hop 1 … 1 s" in (
        shown
    )
    assert re.search(r"… FAILED after \d+\.\d s\r\n", shown), shown
    to_file = io.StringIO()
    asyncio.run(probe(config, "http://127.0.0.1:9", 1.5, to_file))
    assert "waiting" not in to_file.getvalue()
    assert re.fullmatch(
        rf"probing client → socks5 127.0.0.1:{port} → http://127.0.0.1:9\n"
        rf"\[1/2\] hop 1 socks5://127.0.0.1:{port} → 127.0.0.1:9 … FAILED after \d+\.\d s\n",
        to_file.getvalue(),
    )


def test_probe_of_an_api_base_that_answers_404_asks_whether_it_is_right(
    bot_api: BotApiStandIn,
) -> None:
    """An API base where no Bot API answers is "route ok, but the API base answered 404: is
    api.base right?"; the right base is a plain "route ok"."""
    wrong = botsession("probe", env={"BOT_API__BASE": f"{bot_api.base}/wrong"})
    assert wrong.returncode == 0, wrong.stderr
    assert wrong.stdout.splitlines()[-1] == (
        "route ok, but the API base answered 404: is api.base right?"
    )
    right = botsession("probe", env={"BOT_API__BASE": bot_api.base})
    assert right.stdout.splitlines()[-1] == "route ok"
    asked = botsession("probe", "--url", f"{bot_api.base}/wrong")
    assert asked.stdout.splitlines()[-1] == "route ok"  # a URL of one's own is not judged


@dataclass
class GarbageServer(StreamServer):
    """Answers every request with bytes that are not HTTP (aiohttp's error quotes the URL)."""

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(OSError, asyncio.IncompleteReadError):
            await reader.readuntil(b"\r\n\r\n")
            writer.write(b"garbage\r\n\r\n")
            await writer.drain()
        writer.close()


def test_probe_url_never_prints_the_token(background: BackgroundLoop) -> None:
    """probe --url with a bot token in it shows the token masked, in its steps and in the
    error that quotes the URL."""
    server = GarbageServer(background).start()
    try:
        result = botsession("probe", "--url", f"http://127.0.0.1:{server.port}/bot{TOKEN}/getMe")
    finally:
        server.stop()
    assert result.returncode == 3
    secret = TOKEN.partition(":")[2]
    assert secret not in result.stdout + result.stderr
    assert f"/bot{TOKEN.partition(':')[0]}:***/getMe" in result.stdout
    assert "probe failed: the request to http://127.0.0.1:" in result.stderr


def test_a_reader_that_goes_away_ends_the_command_quietly(tmp_path: Path) -> None:
    """`botsession show | head` with the reader gone before anything is written: exit 141 (as a
    shell tool killed by SIGPIPE), and no traceback on stderr."""
    config = write(tmp_path / "bot.yaml", "proxy: socks5://127.0.0.1:1080\n")
    env = {k: v for k, v in os.environ.items() if not k.upper().startswith("BOT_")}
    process = subprocess.Popen(
        [sys.executable, "-m", "botsession", "show", str(config)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
    )
    assert process.stdout is not None
    process.stdout.close()  # long before the command has imported anything, let alone printed
    _, err = process.communicate(timeout=60)
    assert process.returncode == 141
    assert b"Traceback" not in err
