"""The module contract, checked on every custom execution module (as
saltext-mysql's pre-commit hook does): each public function has a
``CLI Example:`` in its docstring, and no module returns ``{"result": False}``
(errors raise CommandExecutionError)."""

import ast
import inspect

import pytest
from testlib import ROOT, load_module

# _modules/airflow_ha.py (settings/validate) belongs to the pillar-schema work.
MODULES = sorted(p.stem for p in (ROOT / "_modules").glob("*.py") if p.stem != "airflow_ha")


@pytest.mark.parametrize("name", MODULES)
def test_public_functions_have_a_cli_example(name):
    mod = load_module(name)
    missing = [
        fname
        for fname, func in vars(mod).items()
        if inspect.isfunction(func)
        and not fname.startswith("_")
        and func.__module__ == mod.__name__
        and "CLI Example:" not in (func.__doc__ or "")
    ]
    assert not missing, f"_modules/{name}.py: public functions without 'CLI Example:': {missing}"


@pytest.mark.parametrize("name", MODULES)
def test_no_result_false_returns(name):
    tree = ast.parse((ROOT / "_modules" / f"{name}.py").read_text())
    bad = [
        node.lineno
        for node in ast.walk(tree)
        if isinstance(node, ast.Dict)
        and any(
            isinstance(k, ast.Constant)
            and k.value == "result"
            and isinstance(v, ast.Constant)
            and v.value is False
            for k, v in zip(node.keys, node.values, strict=False)
        )
    ]
    assert not bad, f"_modules/{name}.py returns result False at lines {bad}: raise CommandExecutionError"
