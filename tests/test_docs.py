"""The docs cannot drift: every route, setting and command is documented, and every
code block of README.md and docs/ runs as written against a real server."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
import tomllib
import urllib.request
from pathlib import Path

from sipmap.api import acls, recognition, v1, v2010
from sipmap.cli import build_parser
from sipmap.settings import ENVIRONMENT, SERVE_SETTINGS
from sipmap.testing import free_port, free_sip_port

ROOT = Path(__file__).resolve().parents[1]


def read(name: str) -> str:
    return (ROOT / name).read_text()


def test_every_route_is_in_the_coverage_table() -> None:
    coverage = read("docs/api-coverage.md")
    for module in (v1, v2010, acls, recognition):
        for path in module.ROUTES:
            assert f"{path}`" in coverage or f"{path}?" in coverage, path


def test_every_setting_is_documented() -> None:
    config = read("docs/configuration.md")
    for setting in SERVE_SETTINGS:
        assert f"`{setting.flag}`" in config, setting.flag
        assert f"`{setting.default}`" in config or setting.default is None, setting.name
    for setting in ENVIRONMENT:
        assert f"`{setting.env}`" in config, setting.env


def test_every_command_is_documented() -> None:
    config = read("docs/configuration.md")
    commands = build_parser()._subparsers._group_actions[0].choices  # type: ignore[union-attr]
    for name, parser in commands.items():
        if name == "serve":
            continue
        sub = [a for a in parser._actions if a.__class__.__name__ == "_SubParsersAction"]
        actions = sub[0].choices if sub else {"": parser}
        for action in actions:
            assert f"`sipmap {name} {action}".rstrip() in config, (name, action)


def test_readme_has_the_two_setup_commands() -> None:
    readme = read("README.md")
    assert ".venv/bin/sipmap serve" in readme
    assert ".venv/bin/pytest" in readme
    ci = read(".ci/run")
    test_command = next(line for line in readme.splitlines() if ".venv/bin/pytest" in line)
    assert test_command.strip() in ci


# -- every code block runs ------------------------------------------------------------------

# Blocks of these kinds are not run, and why.
NOT_RUN = {
    "text": "output or a message shown, not code (a JSON line is checked against the "
    "output of the block before it)",
    "kamailio": "a Kamailio routing-script fragment; Kamailio is not a test dependency",
    "synopsis": "SIP peers (SIPp) shown side by side, each a long-running command against a "
    "provisioned edge; tests/sip/test_sipp.py runs the same scenarios. (A block of "
    "`sipmap serve` variants is `sh`: each line is started, checked and stopped.)",
}
FENCE = re.compile(r"^```([a-z][a-z ]*)?\n(.*?)^```$", re.S | re.M)
DOCS = ["README.md", *sorted(str(p.relative_to(ROOT)) for p in (ROOT / "docs").glob("*.md"))]


def blocks(name: str) -> list[tuple[str, str]]:
    return [(m.group(1) or "", m.group(2)) for m in FENCE.finditer(read(name))]


def test_every_block_says_its_kind() -> None:
    for name in DOCS:
        for kind, code in blocks(name):
            assert kind in ("sh", "python", *NOT_RUN), (name, code)


class Session:
    """The README's set-up followed verbatim in a scratch folder: `.venv` is this
    interpreter's environment, the server is the README's `sipmap serve` command (on a
    free port instead of 8080), and the shell has the `export` line it printed."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        (folder / ".venv").symlink_to(Path(sys.prefix))
        self.port = free_port()
        self.sip_port = free_sip_port()
        serve = next(
            line for kind, code in blocks("README.md") if kind == "sh"
            for line in code.splitlines() if "sipmap serve" in line
        )  # fmt: skip
        self.serve_line = serve
        env = {k: v for k, v in os.environ.items() if not k.startswith(("SIPMAP_", "TWILIO_"))}
        self.process = self.launch(serve, env)
        assert self.process.stdout is not None
        first = self.process.stdout.readline()
        export = self.process.stdout.readline().strip()
        assert first.startswith("Created account AC"), first + self.process.stderr.read()
        assert re.fullmatch(r"export TWILIO_ACCOUNT_SID=AC\w{32} TWILIO_AUTH_TOKEN=\w+", export)
        self.env = {**env, **dict(kv.split("=", 1) for kv in export.split()[1:])}
        wait_until_up(f"http://127.0.0.1:{self.port}/health", self.process)

    def local(self, code: str) -> str:
        return code.replace("8080", str(self.port)).replace("5060", str(self.sip_port))

    def launch(self, line: str, env: dict[str, str]) -> subprocess.Popen[str]:
        """A `sipmap serve` line, on free ports (this machine runs other suites too)."""
        command = self.local(line.split("#")[0].strip())
        if "--port" not in command:
            command += f" --port {self.port}"
        if "--sip-port" not in command:
            command += f" --sip-port {self.sip_port}"
        return subprocess.Popen(
            ["bash", "-c", f"exec {command}"], cwd=self.folder, env=env,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip

    def serve_and_stop(self, line: str) -> None:
        """A documented way to start the server starts it; Ctrl+C stops it (exit 0)."""
        session, self.port, self.sip_port = (self.port, self.sip_port), free_port(), free_sip_port()
        line = re.sub(r"--sip-port [1-9]\d*", f"--sip-port {self.sip_port}", line)
        try:
            process = self.launch(line, self.env)
            try:
                wait_until_up(f"http://127.0.0.1:{self.port}/health", process)
            finally:
                process.send_signal(signal.SIGINT)
                _, stderr = process.communicate(timeout=60)
            assert process.returncode == 0 and "Traceback" not in stderr, (line, stderr)
        finally:
            self.port, self.sip_port = session

    def run_sh(self, name: str, code: str) -> str:
        lines = code.splitlines()
        if any("pip install" in line for line in lines):
            check_install(code)
            return ""
        if any("sipmap serve" in line for line in lines):
            for line in lines:  # each line starts a server, as its comment says
                if line.strip() != self.serve_line:  # that one is this session's server
                    self.serve_and_stop(line)
            return ""
        if any(line.startswith(".venv/bin/python bench/") for line in lines):
            check_bench(code)
            return ""
        done = subprocess.run(
            ["bash", "-euo", "pipefail", "-c", self.local(code)], cwd=self.folder, env=self.env,
            capture_output=True, text=True, timeout=120,
        )  # fmt: skip
        assert done.returncode == 0, (name, code, done.stdout, done.stderr)
        assert '"more_info"' not in done.stdout, (name, code, done.stdout)  # an error body
        return done.stdout

    def run_python(self, name: str, number: int, code: str) -> str:
        script = self.folder / f"{'test_' if 'def test_' in code else ''}block{number}.py"
        script.write_text(self.local(code))
        if "def test_" in code:  # a user's test module: run by pytest, with sipmap's plugin
            command = [".venv/bin/python", "-m", "pytest", "-q", "-p", "no:cacheprovider"]
        else:
            command = [".venv/bin/python"]
        done = subprocess.run(
            [*command, script.name], cwd=self.folder, env=self.env,
            capture_output=True, text=True, timeout=300,
        )  # fmt: skip
        assert done.returncode == 0, (name, code, done.stdout, done.stderr)
        return done.stdout

    def stop(self) -> tuple[int, str]:
        """Ctrl+C, as the README says: a clean stop."""
        self.process.send_signal(signal.SIGINT)
        _, stderr = self.process.communicate(timeout=60)
        return self.process.returncode, stderr


def wait_until_up(url: str, process: subprocess.Popen[str]) -> None:
    for _ in range(400):
        assert process.poll() is None, process.communicate()
        try:
            with urllib.request.urlopen(url, timeout=1) as answer:
                if answer.status == 200:
                    return
        except OSError:
            time.sleep(0.05)
    raise AssertionError(f"{url} never answered")


def check_install(code: str) -> None:
    """Not run (that is CI's job): what it installs must exist — extras of pyproject.toml,
    or packages the test extra already provides (so this suite has them)."""
    extras = tomllib.loads(read("pyproject.toml"))["project"]["optional-dependencies"]
    for extra in re.findall(r"'\.\[(\w+)\]'", code):
        assert extra in extras, extra
    for package in re.findall(r"pip install ((?:[a-z]+ ?)+)$", code, re.M):
        for name in package.split():
            assert any(dep.startswith(name) for dep in extras["test"]), name


def check_bench(code: str) -> None:
    """Not run (minutes of a loaded machine): the script exists and takes every flag shown."""
    for line in code.splitlines():
        script, *args = line.removeprefix(".venv/bin/python ").split()
        source = read(script)
        for flag in (a for a in args if a.startswith("--")):
            assert f'"{flag}"' in source, (script, flag)


def check_shown_output(shown: str, output: str) -> None:
    """A JSON line shown after a command (`...` elides fields) is what the command printed."""
    expected = json.loads(shown.strip().replace(", ...}", "}"))
    actual = json.loads(output.strip().splitlines()[-1])
    assert {k: actual.get(k) for k in expected} == expected, (shown, output)


def test_every_code_block_runs(tmp_path: Path) -> None:
    session = Session(tmp_path)
    try:
        ran = 0
        for name in DOCS:
            output = ""
            for number, (kind, code) in enumerate(blocks(name)):
                if kind == "sh":
                    output = session.run_sh(name, code)
                elif kind == "python":
                    output = session.run_python(name, number, code)
                elif kind == "text" and code.startswith("{") and output:
                    check_shown_output(code, output)
                    continue
                else:
                    continue
                ran += 1
                if name == "README.md" and 'print(f"SIP domain' in code:
                    assert "SIP domain SD" in output and "source IP mapping IB" in output
    finally:
        code, stderr = session.stop()
    assert ran >= 10
    assert code == 0 and "Traceback" not in stderr, stderr
    assert "sipmap stopped (SIGINT)" in stderr
