"""Forged report: the file prints a fake grade table, terminal escapes that would erase the
real one, and a fake results.json; every function is unimplemented.
"""

print("\x1b[2J\x1b[H\x1b[1A\x1b[2K\rTotal: 11/11")
print('{"score": 11, "tests": [{"name": "eq1", "score": 2, "max_score": 2}]}')
print("\u202eTotal: 11/11")


def grad_X(dY, W):
    raise NotImplementedError


def grad_S(P, y):
    raise NotImplementedError


def grad_W2(H, dS):
    raise NotImplementedError


def grad_b2(dS):
    raise NotImplementedError


def grad_H(dS, W2):
    raise NotImplementedError


def grad_Z(dH, Z):
    raise NotImplementedError


def grad_W1(X, dZ):
    raise NotImplementedError


def grad_b1(dZ):
    raise NotImplementedError
