"""The baseline a course would write by hand: a plain unittest autograder for quiz 4, no sandbox.

Issue 15 compares `grade FILE` with this. It is written the way Gradescope's sample
Python autograder is: the submission is imported into the grader's own process, each
of the eight functions is a test method run on five random cases against the
reference with ``np.allclose``, and a small result writer turns unittest's outcomes
into a Gradescope-style ``results.json``. Nothing here is isolated: a submission that
calls ``os._exit`` or edits the reference ends the grade or fakes it, which is what the
sandboxed grader's extra cost buys.

    python bench/unittest_autograder.py SUBMISSION.py results.json
"""

from __future__ import annotations

import importlib.util
import json
import sys
import unittest
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
CASES = 5


def load(name: str, path: Path):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


reference = load("reference", REPO / "solutions" / "quiz4.py")
submission = None  # set by main() before the tests run


def dims(rng: np.random.Generator) -> tuple[int, int, int, int]:
    return tuple(int(d) for d in rng.choice(np.arange(2, 10), size=4, replace=False))


def draw(rng: np.random.Generator, function: str) -> tuple:
    """Five cases' arguments for one function, shaped as quiz 4 says."""
    n, d, h, c = dims(rng)
    normal = rng.standard_normal
    if function == "grad_X":
        return normal((n, h)), normal((d, h))
    if function == "grad_S":
        return reference.softmax(normal((n, c))), rng.integers(0, c, size=n)
    if function == "grad_W2":
        return rng.uniform(0, 2, (n, h)), normal((n, c))
    if function in ("grad_b2", "grad_b1"):
        return (normal((n, c)),)
    if function == "grad_H":
        return normal((n, c)), normal((h, c))
    if function == "grad_Z":
        return normal((n, h)), normal((n, h))
    if function == "grad_W1":
        return normal((n, d)), normal((n, h))
    raise KeyError(function)


class Quiz4Tests(unittest.TestCase):
    """One test per gradient, as a course's hand-written autograder has it."""

    points = {
        "grad_X": 2,
        "grad_S": 2,
        "grad_W2": 1,
        "grad_b2": 1,
        "grad_H": 1,
        "grad_Z": 2,
        "grad_W1": 1,
        "grad_b1": 1,
    }

    def check(self, function: str) -> None:
        rng = np.random.default_rng(sum(map(ord, function)))
        for _ in range(CASES):
            args = draw(rng, function)
            expected = getattr(reference, function)(*[np.copy(a) for a in args])
            got = getattr(submission, function)(*[np.copy(a) for a in args])
            self.assertEqual(np.shape(got), expected.shape, f"{function}: wrong shape")
            self.assertTrue(np.allclose(got, expected, rtol=1e-5, atol=1e-8), f"{function}: wrong values")

    def test_grad_X(self):
        self.check("grad_X")

    def test_grad_S(self):
        self.check("grad_S")

    def test_grad_W2(self):
        self.check("grad_W2")

    def test_grad_b2(self):
        self.check("grad_b2")

    def test_grad_H(self):
        self.check("grad_H")

    def test_grad_Z(self):
        self.check("grad_Z")

    def test_grad_W1(self):
        self.check("grad_W1")

    def test_grad_b1(self):
        self.check("grad_b1")


class JSONResult(unittest.TextTestResult):
    """Collects each test's outcome for results.json (what gradescope_utils' JSONTestRunner does)."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.tests: list[dict] = []

    def record(self, test, passed: bool, output: str = "") -> None:
        function = test.id().rsplit(".", 1)[-1].removeprefix("test_")
        points = Quiz4Tests.points[function]
        self.tests.append({"name": function, "score": points if passed else 0, "max_score": points, "output": output})

    def addSuccess(self, test):
        super().addSuccess(test)
        self.record(test, True)

    def addFailure(self, test, err):
        super().addFailure(test, err)
        self.record(test, False, str(err[1]))

    def addError(self, test, err):
        super().addError(test, err)
        self.record(test, False, f"{err[0].__name__}: {err[1]}")


def main(argv: list[str]) -> int:
    global submission
    submission_path, results_path = Path(argv[0]), Path(argv[1])
    submission = load("submission", submission_path)
    suite = unittest.defaultTestLoader.loadTestsFromTestCase(Quiz4Tests)
    runner = unittest.TextTestRunner(stream=open("/dev/null", "w"), resultclass=JSONResult, verbosity=0)
    result = runner.run(suite)
    tests = result.tests
    document = {"score": sum(t["score"] for t in tests), "tests": tests}
    results_path.write_text(json.dumps(document, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
