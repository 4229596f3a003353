"""Reading secrets through the installed package: grad_S imports `grader` (and asks
importlib.metadata where it lives) to find the bundled rubric and the reference.
"""

import importlib.metadata

import numpy as np


def succeeded(what):
    """The attack worked: fail loudly, so the expected `passed` turns into an error."""
    raise RuntimeError("ATTACK SUCCEEDED: " + str(what)[:300])


def through_the_package():
    try:
        import grader.rubric

        rubric = grader.rubric.load_rubric(grader.rubric.resolve_rubric_path(None))
        succeeded(f"loaded the rubric, seed {rubric.seed}, reference {rubric.reference}")
    except ImportError:
        pass
    except Exception as err:
        if "ATTACK" in str(err):
            raise
    try:
        dist = importlib.metadata.distribution("grader")
    except importlib.metadata.PackageNotFoundError:
        return
    for file in dist.files or ():
        if str(file).endswith((".yaml", "quiz4.py", "direct_url.json")):
            try:
                text = file.read_text()
            except OSError:
                continue
            if "file://" in text:
                folder = text.split("file://", 1)[1].split('"', 1)[0]
                for rest in ("/rubrics/quiz4.yaml", "/solutions/quiz4.py"):
                    try:
                        with open(folder + rest) as handle:
                            succeeded(f"read {folder + rest}: {handle.read(40)!r}")
                    except OSError:
                        pass
            elif text:
                succeeded(f"read {file}")


def grad_X(dY, W):
    return dY @ W.T


def grad_S(P, y):
    through_the_package()
    dS = P.copy()
    dS[np.arange(P.shape[0]), y] -= 1.0
    return dS


def grad_W2(H, dS):
    return H.T @ dS


def grad_b2(dS):
    return dS.sum(axis=0, keepdims=True)


def grad_H(dS, W2):
    return dS @ W2.T


def grad_Z(dH, Z):
    return np.where(Z > 0, dH, 0.0)


def grad_W1(X, dZ):
    return X.T @ dZ


def grad_b1(dZ):
    return dZ.sum(axis=0, keepdims=True)
