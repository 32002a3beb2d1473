"""The shared fixtures themselves: a missing MNIST folder skips a test locally and fails it in CI."""

from pathlib import Path

import pytest

pytest_plugins = ["pytester"]
TESTS = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("ci,outcome", [("", "skipped"), ("1", "errors")])
def test_a_missing_mnist_folder_fails_in_ci_and_skips_elsewhere(pytester, monkeypatch, ci, outcome):
    monkeypatch.setenv("CI", ci)
    pytester.makeconftest(f"""
import importlib.util
from pathlib import Path

spec = importlib.util.spec_from_file_location("shared_conftest", {str(TESTS / "conftest.py")!r})
shared = importlib.util.module_from_spec(spec)
spec.loader.exec_module(shared)
shared.MNIST_DIR = Path("no-such-folder")
mnist = shared.mnist
""")
    pytester.makepyfile("def test_uses_mnist(mnist):\n    pass\n")
    result = pytester.runpytest_inprocess("-p", "no:cacheprovider", "-rsE")
    result.assert_outcomes(**{outcome: 1})
    result.stdout.fnmatch_lines(["*the real MNIST test set is not at no-such-folder*"])
