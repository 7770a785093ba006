"""The docs cannot drift: every route, setting and command is documented, and the
README's quickstart runs as written against a real server."""

from __future__ import annotations

import re
from pathlib import Path

from sipmap.api import acls, recognition, v1, v2010
from sipmap.cli import build_parser
from sipmap.settings import ENVIRONMENT, SERVE_SETTINGS

from .conftest import Server

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


def test_readme_quickstart_runs(server: Server, subaccount: tuple[str, str]) -> None:
    block = re.search(r"```python\n(.*?)```", read("README.md"), re.S)
    assert block is not None
    code = block.group(1).replace("http://127.0.0.1:8080", server.base_url)
    sid, token = subaccount
    scope: dict[str, object] = {"ACCOUNT_SID": sid, "AUTH_TOKEN": token}
    exec(compile(code, "README.md", "exec"), scope)
    with server.http(sid, token) as http:
        result = http.get("/sipmap/v1/Recognition", params={"SourceIp": "203.0.113.9"}).json()
    assert result["recognized"] and result["allowed"], result
    assert result["domain_name"] == "acme.sip.twilio.com"
