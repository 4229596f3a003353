"""Cost without end: the import takes 2 s and every function ends its process (os._exit),
so every case restarts the child and imports the file again: 40 cases used to cost 40
imports. The submission's time limit and the rule for a child that keeps dying the same
way bound it.
"""

import os
import time

time.sleep(2.0)


def grad_X(dY, W):
    os._exit(3)


def grad_S(P, y):
    os._exit(3)


def grad_W2(H, dS):
    os._exit(3)


def grad_b2(dS):
    os._exit(3)


def grad_H(dS, W2):
    os._exit(3)


def grad_Z(dH, Z):
    os._exit(3)


def grad_W1(X, dZ):
    os._exit(3)


def grad_b1(dZ):
    os._exit(3)
