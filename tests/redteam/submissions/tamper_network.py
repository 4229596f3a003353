"""Network: grad_Z tries a TCP connection to a listener the test runs on 127.0.0.1, UDP to a
public resolver, and the system D-Bus socket; any success is reported.
"""

import socket

import numpy as np


def succeeded(what):
    """The attack worked: fail loudly, so the expected `passed` turns into an error."""
    raise RuntimeError("ATTACK SUCCEEDED: " + str(what)[:300])


LISTENER_PORT = 47474


def phone_home():
    attempts = [
        (socket.AF_INET, socket.SOCK_STREAM, ("127.0.0.1", LISTENER_PORT)),
        (socket.AF_INET, socket.SOCK_DGRAM, ("1.1.1.1", 53)),
        (socket.AF_INET6, socket.SOCK_STREAM, ("::1", LISTENER_PORT)),
        (socket.AF_UNIX, socket.SOCK_STREAM, "/run/dbus/system_bus_socket"),
        (socket.AF_UNIX, socket.SOCK_STREAM, "\0/org/freedesktop/systemd1/private"),
    ]
    for family, kind, address in attempts:
        try:
            with socket.socket(family, kind) as sock:
                sock.settimeout(0.5)
                sock.connect(address)
                sock.sendall(b"hello from the sandbox")
        except OSError:
            continue
        succeeded(f"connected to {address}")


def grad_X(dY, W):
    return dY @ W.T


def grad_S(P, y):
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
    phone_home()
    return np.where(Z > 0, dH, 0.0)


def grad_W1(X, dZ):
    return X.T @ dZ


def grad_b1(dZ):
    return dZ.sum(axis=0, keepdims=True)
