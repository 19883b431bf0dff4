"""Every command in README.md and docs/*.md works as written, as far as it can offline.

`python -m grocery|preprocessing ...` parses with the real parsers; every command's
`--help` runs; `npx cdk ...` uses commands and options the installed CDK CLI has and names
stacks of the app built here; `make x` is a Makefile target; `-c key=value` is a key and a
value the app accepts; `aws ...` names a service, operation and options of botocore's
models (which the AWS CLI is generated from); scripts and test paths exist. A failure
names the file and line of the doc. No AWS call is made.
"""

from __future__ import annotations

import functools
import re

import pytest

from tests.docs import checks
from tests.docs.commands import DOCS, ROOT, Command, all_commands, context_values

COMMANDS = all_commands()
PYTHON = ("python", "python3", ".venv/bin/python")
DATASET = "~/data/GroceryStoreDataset"


def _kind(command: Command) -> str:
    argv = command.argv
    if argv[0] in PYTHON and len(argv) > 2 and argv[1] == "-m":
        return "module" if argv[2] in ("grocery", "preprocessing") else "other"
    if argv[0] in PYTHON or argv[0] == ".venv/bin/pytest":
        return "path"
    return {"make": "make", "npx": "cdk", "cdk": "cdk", "aws": "aws"}.get(argv[0], "other")


def _of(kind: str) -> list:
    return [pytest.param(c, id=c.where) for c in COMMANDS if _kind(c) == kind]


def _fail_with(command: Command, problems: list[str]) -> None:
    if problems:
        pytest.fail(f"{command}\n  " + "\n  ".join(problems), pytrace=False)


@functools.cache
def stack_ids(prefix: str) -> list[str]:
    """The stacks `npx cdk ls` lists for this prefix: the app built in-process."""
    from aws_cdk import App

    from stacks.application import build
    from stacks.config import config_from_context

    app = App(context={**checks.CDK_JSON["context"], "prefix": prefix})
    stacks = build(app, config_from_context(app.node.try_get_context, []))
    return [stack.node.path for stack in stacks.all()]


def test_the_docs_are_read():
    kinds = {_kind(command) for command in COMMANDS}
    assert {"module", "make", "cdk", "aws", "path"} <= kinds
    assert all(command.argv[0] != "<unparsable>" for command in COMMANDS), [
        str(command) for command in COMMANDS if command.argv[0] == "<unparsable>"
    ]


@pytest.mark.parametrize("command", _of("module"))
def test_python_module_command_parses(command):
    _fail_with(command, checks.check_python_module(command))


HELP_ARGVS = [
    pytest.param(module, argv, id=f"{module} {' '.join(argv)}")
    for module, build in checks.parsers().items()
    for argv in [["--help"]] + [[name, "--help"] for name in checks.subcommands(build())]
]


@pytest.mark.parametrize(("module", "argv"), HELP_ARGVS)
def test_every_help_runs(module, argv):
    code, output = checks.parse(checks.parsers()[module](), argv)
    assert code == 0
    assert output.startswith("usage: python -m ")


@pytest.mark.parametrize("command", _of("cdk"))
def test_cdk_command_works_as_written(command):
    _fail_with(command, checks.check_cdk(command, stack_ids))


def test_cdk_ls_lists_the_stacks_users_see():
    """What `npx cdk ls` prints: the CloudFormation names, for any prefix."""
    from stacks.names import stack_name

    parts = ["Storage", "Training", "Serving", "Batch", "Monitoring", "Release"]
    assert stack_ids("grocery") == [stack_name("grocery", part) for part in parts]
    assert stack_ids("shop") == [f"Shop-{part}" for part in parts]
    interpreter = checks.CDK_JSON["app"].split()[0]  # cdk.json runs the project's Python
    assert (ROOT / interpreter).exists()
    assert checks.CDK_CLI_REGISTRY.exists()


@pytest.mark.parametrize("command", _of("make"))
def test_make_target_exists(command):
    _fail_with(command, checks.check_make(command))


@pytest.mark.parametrize(
    "command", [pytest.param(c, id=c.where) for c in COMMANDS if context_values(c.argv)]
)
def test_context_value_is_a_valid_config_key_and_value(command):
    _fail_with(command, checks.check_context(command))


@pytest.mark.parametrize("command", _of("aws"))
def test_aws_cli_command_exists(command):
    _fail_with(command, checks.check_aws(command))


@pytest.mark.parametrize("command", _of("path"))
def test_script_or_test_path_exists(command):
    _fail_with(command, checks.check_paths(command))


# ---- the docs stand alone ------------------------------------------------------------------


def _lines(pattern: str) -> list[str]:
    found = []
    for path in DOCS:
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            found += [f"{path.relative_to(ROOT)}:{number}: {m}" for m in re.findall(pattern, line)]
    return found


def test_the_docs_cite_no_file_a_user_does_not_have():
    assert _lines(r"REFERENCE\.md|\.\./shared\b|/work/") == []


def test_every_dataset_path_is_the_one_path():
    paths = _lines(r"[^\s`'\"(]*/GroceryStoreDataset\b")
    wrong = [p for p in paths if "github.com/" not in p and not p.endswith(f" {DATASET}")]
    assert wrong == []


def test_classify_examples_send_images_the_api_takes():
    """The API takes JPEG and PNG; the docs show those (HEIC needs a plugin Pillow lacks)."""
    images = [
        (command.where, arg)
        for command in COMMANDS
        if _kind(command) == "module" and command.argv[2:4] == ("grocery", "classify")
        for arg in command.argv[4:]
        if re.search(r"\.[A-Za-z0-9]{3,4}$", arg) and not arg.endswith(".json")
    ]
    assert images
    assert [image for image in images if not re.search(r"\.(jpe?g|png)$", image[1], re.I)] == []


def _slug(heading: str) -> str:
    """GitHub's anchor of a heading: lowercase, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"[`*_]", "", heading.strip().lower())
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


def _anchors(path) -> set[str]:
    text = re.sub(r"```.*?```", "", path.read_text(encoding="utf-8"), flags=re.S)
    return {_slug(h) for h in re.findall(r"^#{1,6} (.+)$", text, flags=re.M)}


def test_every_relative_link_and_anchor_resolves():
    broken = []
    for path in DOCS:
        text = path.read_text(encoding="utf-8")
        for number, line in enumerate(text.splitlines(), 1):
            for target in re.findall(r"\]\(([^)\s]+)\)", line):
                if re.match(r"[a-z]+:", target):  # https:, mailto:
                    continue
                file, _, anchor = target.partition("#")
                linked = (path.parent / file).resolve() if file else path
                if not linked.exists():
                    broken.append(f"{path.relative_to(ROOT)}:{number}: {target} (no such file)")
                elif anchor and linked.suffix == ".md" and anchor not in _anchors(linked):
                    broken.append(f"{path.relative_to(ROOT)}:{number}: {target} (no such heading)")
    assert broken == []
