"""Offline checks of one documented command against the code it names.

Each function returns the problems it finds (empty: the line works as written, as far as
can be told without an AWS account). Nothing here calls AWS or runs a deploy.
"""

from __future__ import annotations

import argparse
import contextlib
import fnmatch
import functools
import io
import json
import re
from collections.abc import Callable, Iterable

import botocore.session
import jmespath
from botocore import xform_name

from tests.docs.commands import ROOT, Command

CDK_CLI_REGISTRY = ROOT / "node_modules" / "aws-cdk" / "lib" / "cli" / "cli-type-registry.json"
CDK_JSON = json.loads((ROOT / "cdk.json").read_text(encoding="utf-8"))


# ---- python -m grocery / python -m preprocessing: the real argparse parsers -------------


def parsers() -> dict[str, Callable[[], argparse.ArgumentParser]]:
    from grocery.__main__ import build_parser as grocery_parser
    from preprocessing.cli import build_parser as preprocessing_parser

    return {"grocery": grocery_parser, "preprocessing": preprocessing_parser}


def subcommands(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    return {}


def parse(parser: argparse.ArgumentParser, argv: list[str]) -> tuple[int, str]:
    """(exit code, what it printed): 0 and "" when argv parses, 0 and the text for --help."""
    out, err = io.StringIO(), io.StringIO()
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            parser.parse_args(argv)
    except SystemExit as exit_:
        code = exit_.code if isinstance(exit_.code, int) else 1
        return code, (out.getvalue() + err.getvalue()).strip()
    return 0, ""


def _without_usage_brackets(argv: Iterable[str]) -> list[str]:
    """Usage lines write optional parts in brackets: `[--prefix PREFIX]` is left out."""
    kept, depth = [], 0
    for token in argv:
        opens, closes = token.count("["), token.count("]")
        if depth == 0 and not opens:
            kept.append(token)
        depth += opens - closes
    return kept


def check_python_module(command: Command) -> list[str]:
    argv = list(command.argv)
    module, args = argv[2], _without_usage_brackets(argv[3:])
    parser = parsers()[module]()
    if command.inline and len(args) <= 1:  # a mention: `python -m grocery train`
        if args and args[0] not in subcommands(parser):
            return [f"python -m {module} has no command {args[0]!r}"]
        return []
    code, output = parse(parser, args)
    if code != 0:
        return [f"python -m {module} refuses it (exit {code}): {output}"]
    return []


# ---- npx cdk: the installed CDK CLI's own option registry, the app's stack ids ----------


@functools.cache
def cdk_registry() -> dict:
    return json.loads(CDK_CLI_REGISTRY.read_text(encoding="utf-8"))


def _cdk_command(name: str) -> tuple[str, dict] | None:
    for command, spec in cdk_registry()["commands"].items():
        if name == command or name in (spec.get("aliases") or []):
            return command, spec
    return None


def _cdk_options(spec: dict) -> dict[str, dict]:
    """Every spelling (--long, -a, --no-long) -> its option spec."""
    spelled: dict[str, dict] = {}
    for options in (cdk_registry()["globalOptions"], spec.get("options", {})):
        for name, option in options.items():
            spelled[f"--{name}"] = option
            aliases = option.get("alias") or []
            for alias in [aliases] if isinstance(aliases, str) else aliases:
                spelled[f"-{alias}" if len(alias) == 1 else f"--{alias}"] = option
            if option.get("type") == "boolean":
                spelled[f"--no-{name}"] = option
    return spelled


def cdk_arguments(argv: list[str]) -> tuple[str, list[str], list[str]] | str:
    """`npx [--no-install] cdk ...` -> (command, positional args, problems), or a problem."""
    if argv[0] == "cdk":
        return "cdk is not on PATH after make synth: write `npx cdk ...`"
    rest = argv[1:]
    while rest and rest[0].startswith("-"):  # npx's own flags: --no-install, --yes
        rest = rest[1:]
    if not rest or rest[0] != "cdk":
        return f"npx runs {rest[:1]}, not cdk"
    rest = rest[1:]
    if not rest:
        return ""
    found = _cdk_command(rest[0])
    if found is None:
        return f"the CDK CLI has no command {rest[0]!r}"
    command, spec = found
    options = _cdk_options(spec)
    positional, problems = [], []
    index = 1
    while index < len(rest):
        token = rest[index]
        index += 1
        if not token.startswith("-"):
            positional.append(token)
            continue
        name, equals, value = token.partition("=")
        option = options.get(name)
        if option is None:
            problems.append(f"cdk {command} has no option {name}")
            continue
        takes_value = option.get("type") != "boolean" and not name.startswith("--no-")
        if takes_value and not equals:
            if index >= len(rest):
                problems.append(f"cdk {command} {name} needs a value")
                continue
            value = rest[index]
            index += 1
        choices = option.get("choices")
        if choices and takes_value and value not in choices:
            problems.append(f"cdk {command} {name} takes one of {choices}, not {value!r}")
    return command, positional, problems


def check_cdk(command: Command, stack_ids: Callable[[str], list[str]]) -> list[str]:
    argv = list(command.argv)
    if command.inline and argv[0] == "cdk" and len(argv) <= 2:  # a mention: "`cdk deploy` runs ..."
        return [] if len(argv) == 1 or _cdk_command(argv[1]) else [f"no cdk command {argv[1]}"]
    parsed = cdk_arguments(argv)
    if isinstance(parsed, str):
        return [parsed] if parsed else []
    name, positional, problems = parsed
    from stacks.config import ConfigError

    prefix = dict(_context_pairs(argv)).get("prefix", CDK_JSON["context"]["prefix"])
    try:
        ids = stack_ids(prefix)
    except ConfigError as error:
        return [*problems, f"the app refuses it: {error}"]
    arg = _cdk_command(name)[1].get("arg") or {}
    if arg.get("name") == "STACKS":
        for pattern in positional:
            if not fnmatch.filter(ids, pattern):
                problems.append(f"{pattern!r} is not a stack of the app (its stacks: {ids})")
        if name in ("deploy", "destroy") and not positional and "--all" not in argv:
            problems.append(
                f"cdk {name} without stack names or --all fails: the app has {len(ids)} stacks"
            )
    return problems


def _context_pairs(argv: list[str]) -> list[tuple[str, str]]:
    from tests.docs.commands import context_values

    return context_values(tuple(argv))


def check_context(command: Command) -> list[str]:
    """Every `-c key=value` is a configuration key and a value the app accepts."""
    from stacks.config import ConfigError, config_from_context

    pairs = _context_pairs(list(command.argv))
    context = {**CDK_JSON["context"], **dict(pairs)}
    try:
        config_from_context(context.get, [key for key, _ in pairs])
    except ConfigError as error:
        return [f"the app refuses it: {error}"]
    return []


# ---- make --------------------------------------------------------------------------------


@functools.cache
def make_targets() -> frozenset[str]:
    text = (ROOT / "Makefile").read_text(encoding="utf-8")
    targets = set(re.findall(r"^([A-Za-z][A-Za-z0-9_.-]*)\s*:(?!=)", text, flags=re.M))
    return frozenset(targets)


def check_make(command: Command) -> list[str]:
    goals = [arg for arg in command.argv[1:] if not arg.startswith("-") and "=" not in arg]
    return [f"the Makefile has no target {goal!r}" for goal in goals if goal not in make_targets()]


# ---- aws: botocore's service models (what the AWS CLI is generated from) -----------------

# The AWS CLI's own high-level `aws s3` commands (not in the service model).
AWS_S3_COMMANDS = {"cp", "ls", "mb", "mv", "presign", "rb", "rm", "sync", "website"}
AWS_GLOBAL_OPTIONS = {
    "--query",
    "--output",
    "--region",
    "--profile",
    "--endpoint-url",
    "--no-cli-pager",
    "--no-paginate",
    "--debug",
}
AWS_OUTPUTS = {"json", "text", "table", "yaml", "yaml-stream"}
AWS_PAGINATION = {"--max-items", "--starting-token", "--page-size"}


@functools.cache
def _botocore() -> botocore.session.Session:
    return botocore.session.get_session()


def check_aws(command: Command) -> list[str]:
    argv = list(command.argv)
    if len(argv) < 3:
        return [f"`{' '.join(argv)}` names no operation"]
    service, operation, args = argv[1], argv[2], argv[3:]
    problems = _check_aws_globals(args)
    if service == "s3":
        if operation not in AWS_S3_COMMANDS:
            problems.append(f"aws s3 has no command {operation!r}")
        return problems
    if service not in _botocore().get_available_services():
        return [f"the AWS CLI has no service {service!r}"]
    model = _botocore().get_service_model(service)
    operations = {xform_name(name, "-"): name for name in model.operation_names}
    if operation not in operations:
        return [f"aws {service} has no operation {operation!r}"]
    if (
        command.inline and not args
    ):  # a mention: `aws service-quotas request-service-quota-increase`
        return problems
    shape = model.operation_model(operations[operation]).input_shape
    members = {xform_name(name, "-"): name for name in (shape.members if shape else {})}
    given = {arg[2:].split("=", 1)[0] for arg in args if arg.startswith("--")}
    for option in sorted(given):
        known = option in members or option.removeprefix("no-") in members
        if not known and f"--{option}" not in AWS_GLOBAL_OPTIONS | AWS_PAGINATION:
            problems.append(f"aws {service} {operation} has no option --{option}")
    for required in shape.required_members if shape else []:
        if xform_name(required, "-") not in given:
            problems.append(f"aws {service} {operation} needs --{xform_name(required, '-')}")
    return problems


def _check_aws_globals(args: list[str]) -> list[str]:
    problems = []
    for index, arg in enumerate(args[:-1]):
        value = args[index + 1]
        if arg == "--query":
            try:
                jmespath.compile(value)
            except jmespath.exceptions.JMESPathError as error:
                problems.append(f"--query {value!r} is not JMESPath: {error}")
        if arg == "--output" and value not in AWS_OUTPUTS:
            problems.append(f"--output takes one of {sorted(AWS_OUTPUTS)}, not {value!r}")
    return problems


# ---- .venv/bin/python script.py, .venv/bin/pytest paths -----------------------------------


def check_paths(command: Command) -> list[str]:
    argv = list(command.argv)
    paths = argv[1:2] if argv[0] != ".venv/bin/pytest" else argv[1:]
    missing = [
        path
        for path in paths
        if not path.startswith("-") and not (ROOT / path.split("::")[0]).exists()
    ]
    return [f"{path} does not exist in the repository" for path in missing]
