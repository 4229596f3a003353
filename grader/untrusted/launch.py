"""How the untrusted folder gets into a sandboxed process: the one file run as ``python -I -c``.

The parent never lets a sandboxed process import the ``grader`` package (inside the
minimal root it isn't even there). Instead it compiles every module of this folder
(``grader/sandbox/zygote_client.py``'s ``untrusted_code``) and starts Python with this
file's source as its program:

* a child spawned directly: ``run_child(code)``, with the compiled modules written
  into the program text, reads requests on argv[1] and replies on argv[2];
* the zygote: ``run_zygote()`` imports numpy at once (so its import overlaps the
  grader's own start-up), then gets the same compiled modules in its boot message.

Either way the modules are served under a stand-in package ``untrusted`` by a finder
that knows only them, so they import each other relatively (``from .protocol import
...``) exactly as they do inside the grader's package. Before any of the submission
runs, ``forget`` removes the finder and the modules from ``sys.modules``: an ``import
untrusted`` or ``import grader`` in a submission finds nothing.
"""

import base64
import ctypes
import importlib.util
import json
import marshal
import os
import signal
import socket
import sys
import types
import zlib

PACKAGE = "untrusted"
PR_SET_PDEATHSIG = 1


class CodeFinder:
    """Serves ``untrusted.*`` from code objects the grader compiled (marshalled, zlib, base64)."""

    def __init__(self, code):
        self.code = code

    def find_spec(self, name, path=None, target=None):
        if name in self.code:
            return importlib.util.spec_from_loader(name, self)
        return None

    def create_module(self, spec):
        return None

    def exec_module(self, module):
        exec(marshal.loads(zlib.decompress(base64.b64decode(self.code[module.__name__]))), module.__dict__)


def install(code):
    """Make the compiled modules importable as ``untrusted.<name>``."""
    package = types.ModuleType(PACKAGE)
    package.__path__ = []  # nothing but the finder's modules can be found through it
    sys.modules[PACKAGE] = package
    sys.meta_path.insert(0, CodeFinder(code))


def forget():
    """Remove the finder and every module of the folder, before the submission runs."""
    sys.meta_path[:] = [finder for finder in sys.meta_path if not isinstance(finder, CodeFinder)]
    for name in [n for n in sys.modules if n == PACKAGE or n.startswith(PACKAGE + ".")]:
        del sys.modules[name]


def as_main(module):
    """What a submission finds as ``__main__``: the child's module, as in a fresh ``python`` child."""
    module.__name__ = "__main__"
    sys.modules["__main__"] = module


def run_child(code):
    """A directly spawned child: load the folder, then the child's serve loop (never returns)."""
    install(code)
    child = importlib.import_module(PACKAGE + ".child")
    forget()
    as_main(child)
    child.run(int(sys.argv[1]), int(sys.argv[2]))


def run_zygote():
    """The zygote: die with the grader, import numpy, then serve once booted (never returns)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is for the grader to handle
    socket_fd, grader_pid = int(sys.argv[1]), int(sys.argv[2])
    try:
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    except (OSError, AttributeError):
        pass
    if os.getppid() != grader_pid:  # the grader died before the line above
        os._exit(0)
    os.chdir("/")
    import numpy  # noqa: F401 - loaded once here, shared by every forked child

    sock = socket.socket(fileno=socket_fd)
    try:
        boot = json.loads(sock.recv(1 << 20) or b"{}")
        install(boot["code"])
        zygote = importlib.import_module(PACKAGE + ".zygote")
    except Exception as err:  # noqa: BLE001 - say why, then end: the grader spawns children directly
        try:
            sock.sendall(json.dumps({"ok": False, "error": f"{type(err).__name__}: {err}"}).encode())
        except OSError:
            pass
        os._exit(1)
    zygote.serve(sock, forget, as_main)
    os._exit(0)
