"""Notebook 00's exercises: the checks accept the notebook's own solutions and refuse wrong answers."""

import json
import re
from pathlib import Path

import torch
from torch import nn

import course_utils as cu

NOTEBOOK = Path(__file__).resolve().parent.parent / "notebooks" / "00_background.ipynb"


def solutions(path=NOTEBOOK) -> list[str]:
    """The code of every <details> solution block in a notebook's markdown, in order."""
    cells = json.loads(path.read_text(encoding="utf-8"))["cells"]
    text = "\n".join("".join(c["source"]) for c in cells if c["cell_type"] == "markdown")
    return re.findall(r"<details><summary>Solution</summary>\s*```python\n(.*?)```", text, flags=re.S)


def run(code: str) -> dict:
    namespace = {"torch": torch, "nn": nn, "cu": cu}
    exec(code, namespace)
    return namespace


def test_the_notebook_has_both_solutions():
    assert len(solutions()) == 2


def test_parameter_count_exercise(capsys):
    answer = run(solutions()[0])["answer"]
    assert cu.checks.background.article_net_parameters(answer)
    assert "Correct" in capsys.readouterr().out
    assert not cu.checks.background.article_net_parameters(...)
    assert not cu.checks.background.article_net_parameters(784 * 128 + 128 * 10)
    assert "biases" in capsys.readouterr().out
    assert not cu.checks.background.article_net_parameters("many")
    assert not cu.checks.background.article_net_parameters(100_000)


def test_l1_penalty_exercise(capsys):
    solution = run(solutions()[1])["l1_penalty"]
    assert cu.checks.background.l1_penalty(solution)
    with_bias = lambda m: sum(p.abs().sum() for p in m.parameters())  # noqa: E731
    assert not cu.checks.background.l1_penalty(with_bias)
    assert "biases" in capsys.readouterr().out
    detached = lambda m: torch.tensor(sum(l.weight.abs().sum().item() for l in m.modules() if isinstance(l, nn.Linear)))  # noqa: E731,E741
    assert not cu.checks.background.l1_penalty(detached)
    assert not cu.checks.background.l1_penalty(lambda m: None)
    assert not cu.checks.background.l1_penalty(lambda m: 1 / 0)
    assert "ZeroDivisionError" in capsys.readouterr().out
    l2 = lambda m: sum(l.weight.pow(2).sum() for l in m.modules() if isinstance(l, nn.Linear))  # noqa: E731,E741
    assert not cu.checks.background.l1_penalty(l2)


def test_a_verdict_is_silent_in_a_notebook_and_behaves_like_a_bool(capsys):
    verdict = cu.checks.report(False, "try again")
    assert capsys.readouterr().out == "Not yet: try again\n"
    assert not verdict and verdict == False and verdict != True  # noqa: E712
    assert verdict._ipython_display_() is None
