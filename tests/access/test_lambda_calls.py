"""Every boto3 call in lambdas/ is listed in calls.yaml for the function that makes it.

The handlers' source is scanned: a handler package's files and the lambdas/ modules they
import (e.g. grocery_common, whose functions receive the handler's clients). Each
`boto3.client("<service>")` names the services, and every call of a method of those
clients (an API operation, or a transfer helper such as `upload_file`) must have an
entry with that `method:` under the role of the function whose handler lives in the
package. Stale entries fail too.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import botocore.session
from botocore import xform_name

from tests.access.policies import AccessModel

LAMBDAS = Path(__file__).resolve().parents[2] / "lambdas"
# boto3's injected client methods (boto3.s3.inject and the paginator/waiter API).
HELPERS = {
    "upload_file",
    "upload_fileobj",
    "download_file",
    "download_fileobj",
    "copy",
    "get_paginator",
    "get_waiter",
    "generate_presigned_url",
}


def _module_path(module: str) -> Path | None:
    path = LAMBDAS.joinpath(*module.split("."))
    for candidate in (path.with_suffix(".py"), path / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def _imports(path: Path) -> Iterator[Path]:
    for node in ast.walk(ast.parse(path.read_text())):
        names = []
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module, *(f"{node.module}.{a.name}" for a in node.names)]
        elif isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        for name in names:
            found = _module_path(name)
            if found is not None:
                yield found


def _python_files(package: Path) -> list[Path]:
    """The package's files and every lambdas/ module they import, transitively."""
    files, pending = set(), list(package.rglob("*.py"))
    while pending:
        path = pending.pop()
        if path not in files:
            files.add(path)
            pending.extend(_imports(path))
    return sorted(files)


def _services(package: Path) -> set[str]:
    services = set()
    for path in _python_files(package):
        for node in ast.walk(ast.parse(path.read_text())):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr == "client"
                and node.args
                and isinstance(node.args[0], ast.Constant)
            ):
                services.add(node.args[0].value)
    return services


def _client_methods(services: set[str]) -> set[str]:
    session = botocore.session.get_session()
    methods = set(HELPERS)
    for service in services:
        methods |= {xform_name(op) for op in session.get_service_model(service).operation_names}
    return methods


def client_calls(package: Path, methods: set[str]) -> dict[str, list[str]]:
    """method -> ["file:line", ...] for every call of one of `methods` in the package."""
    found: dict[str, list[str]] = {}
    for path in _python_files(package):
        for node in ast.walk(ast.parse(path.read_text())):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr in methods
            ):
                where = f"{path.relative_to(LAMBDAS)}:{node.lineno}"
                found.setdefault(node.func.attr, []).append(where)
    return found


# Functions only some configs deploy (not in the default app): their roles' calls.yaml
# entries are `only_with` that config and evaluated on the app built with it
# (tests/infrastructure/test_serving_modes.py); their source is scanned here all the same.
MODE_ONLY_FUNCTIONS = {"release_smoke": "Grocery-Release/ServerlessSmoke/Role"}


def _function_packages(model: AccessModel) -> dict[str, str]:
    """Handler package in lambdas/ -> construct path of its function's role."""
    packages = {}
    for _, _, resource in model.resources_of_type("AWS::Lambda::Function"):
        props = resource["Properties"]
        package = props["Handler"].split(".", 1)[0]
        if (LAMBDAS / package).is_dir():
            packages[package] = model.role_named(props["Role"].rsplit("/", 1)[1]).path
    return packages


def _listed_methods(document: dict[str, Any]) -> dict[str, set[str]]:
    listed: dict[str, set[str]] = {}
    for entry in document["calls"]:
        if "method" in entry:
            listed.setdefault(entry["who"], set()).add(entry["method"])
    return listed


def test_every_function_of_the_app_has_its_package_scanned(model: AccessModel) -> None:
    packages = _function_packages(model)
    assert set(packages) == {
        "batch_decode",
        "batch_trigger",
        "classify_api",
        "drift_check",
        "retrain_trigger",
        "training_evaluate",
    }


def test_every_handler_package_is_deployed_by_some_config(model: AccessModel) -> None:
    handlers = {p.parent.name for p in LAMBDAS.glob("*/handler.py")}
    assert handlers == set(_function_packages(model)) | set(MODE_ONLY_FUNCTIONS)


def test_every_boto3_call_of_a_handler_is_listed(
    model: AccessModel, calls_document: dict[str, Any]
) -> None:
    listed = _listed_methods(calls_document)
    missing, stale = [], []
    for package, role in {**_function_packages(model), **MODE_ONLY_FUNCTIONS}.items():
        found = client_calls(LAMBDAS / package, _client_methods(_services(LAMBDAS / package)))
        assert found, f"no boto3 call found in lambdas/{package}: is the scanner broken?"
        missing += [
            f"{role}: {method} at {', '.join(where)}"
            for method, where in sorted(found.items())
            if method not in listed.get(role, set())
        ]
        stale += [f"{role}: {m}" for m in sorted(listed.get(role, set()) - set(found))]
    assert not missing, "add these calls to tests/access/calls.yaml:\n" + "\n".join(missing)
    assert not stale, "calls.yaml lists methods no handler calls:\n" + "\n".join(stale)
