"""The program that imports a submission and calls it, inside the sandbox.

It runs in a child the parent spawns directly or one the zygote forks (both through
``launch.py``), so it imports only the standard library, numpy and its own folder,
never ``grader`` (the package is not even there in the child's filesystem). The frames
it reads and writes are ``protocol.py``'s.

Nothing here is trusted by the parent: a submission can rewrite any of it at run time,
and the only thing that buys it is a wrong answer for its own calls. That includes the
``mutated`` list: a submission can patch numpy so in-place edits go unreported, so the
rubric's mutation penalty can be dodged (never a gain over a correct, copying answer).
What it sends are codes and facts (a status, a problem kind, a line number); the
parent words them (``grader/grading/feedback.py``).
"""

import os
import signal
import sys
import time
import traceback

import numpy as np

from .arrays import load_array, unchanged
from .protocol import Inbox, encode_float64, write_frame

IN_FD, OUT_FD = 3, 4


def safe_str(value, limit):
    """str() of something the submission made, which may raise or be huge."""
    try:
        return str(value)[:limit]
    except BaseException:  # noqa: BLE001 - a hostile __str__ must not kill the child
        return "<unprintable>"


def describe(value):
    try:
        if isinstance(value, np.ndarray):
            return f"{type(value).__name__} of dtype {value.dtype} and shape {value.shape}"
        return type(value).__name__
    except BaseException:  # noqa: BLE001
        return "<unprintable>"


def to_float64(value):
    """Convert a return value to float64, or say why it can't be graded: (array, problem code, detail).

    The problem is one of ``protocol.BAD_RETURN_PROBLEMS``; the detail is a fact (a dtype,
    a type name, an exception class) that the parent words, for visible cases only.
    """
    if value is None:
        return None, "none", ""
    try:
        if isinstance(value, np.ndarray):
            if value.dtype.kind not in "biuf":
                if value.dtype.kind == "c":
                    return None, "complex", ""
                return None, "dtype", safe_str(value.dtype, 100)
            # subok=False: a subclass's data as a plain array, none of its methods.
            return np.array(value, dtype="<f8", order="C", subok=False), None, ""
        if isinstance(value, (list, tuple, int, float, np.generic)) and not isinstance(value, (bool, complex)):
            try:
                arr = np.array(value, dtype="<f8")
            except (TypeError, ValueError, OverflowError):
                return None, "not_rectangular", type(value).__name__
            return np.array(arr, order="C"), None, ""  # not ascontiguousarray: it turns 0-d into 1-d
    except BaseException as err:  # noqa: BLE001 - e.g. a subclass whose conversion raises
        return None, "unconvertible", type(err).__name__
    return None, "type", type(value).__name__


def fault_location(tb, filename):
    """The deepest frame of the traceback that is in the submission: (line number, text)."""
    where = None
    try:
        for frame in traceback.extract_tb(tb):
            if frame.filename == filename:
                where = {"lineno": frame.lineno, "line": (frame.line or "").strip()[:200]}
    except BaseException:  # noqa: BLE001
        pass
    return where


def exception_reply(err, filename):
    try:
        return describe_exception(err, filename)
    except BaseException:  # noqa: BLE001 - an exception object built to break its describer
        return {"status": "exception", "type": "Exception", "message": "<unprintable>", "where": None}


def describe_exception(err, filename):
    reply = {
        "status": "exception",
        "type": type(err).__name__[:100],
        "message": safe_str(err, 500),
        "where": fault_location(err.__traceback__, filename),
    }
    if isinstance(err, MemoryError):
        reply["status"] = "memory"
    elif isinstance(err, NotImplementedError):
        reply["status"] = "not_implemented"
    elif isinstance(err, SystemExit):
        reply["status"] = "exit"
        code = err.code if type(err.code) in (int, type(None)) else safe_str(err.code, 100)
        reply["message"] = repr(code)[:200]  # the argument only: the parent words the sentence
    elif isinstance(err, RecursionError):
        reply["status"] = "recursion"
    return reply


class ForbiddenImportFinder:
    """Refuses imports the rubric forbids (the parent also checks the source statically)."""

    def __init__(self, forbidden):
        self.forbidden = set(forbidden)
        self.attempted = []

    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in self.forbidden:
            self.attempted.append(name)
            raise ImportError(f"importing {name} is not allowed in this assignment")
        return None


def load_submission(request, source):
    filename = request["filename"]
    finder = ForbiddenImportFinder(request.get("forbidden", []))
    sys.meta_path.insert(0, finder)
    module = type(sys)("submission")
    module.__file__ = filename
    sys.modules["submission"] = module  # dataclasses, pickle and typing look a class's module up there
    import linecache

    linecache.cache[filename] = (len(source), None, source.decode("utf-8", "replace").splitlines(True), filename)
    try:
        code = compile(source, filename, "exec")
        exec(code, module.__dict__)
    except SyntaxError as err:
        return None, {
            "status": "import_error",
            "type": type(err).__name__,
            "message": str(err.msg)[:300],
            "where": {"lineno": err.lineno, "line": (err.text or "").strip()[:200]},
        }
    except BaseException as err:  # noqa: BLE001 - anything the import does is the student's fault
        reply = exception_reply(err, filename)
        reply["phase_status"] = reply["status"]
        reply["status"] = "import_error"
        return None, reply
    names = sorted(
        k for k, v in list(module.__dict__.items()) if type(k) is str and callable(v) and not k.startswith("__")
    )
    return module, {"status": "ready", "names": names}


def fresh(value):
    """What one call receives: a writable copy of an array; a dict or a setup result as it is."""
    return np.array(value) if isinstance(value, np.ndarray) else value


def unpack(value, count):
    """(values, None) or (None, (problem, detail)) for a return that must be a tuple of ``count``."""
    try:
        if not isinstance(value, (tuple, list)):
            return None, ("not_tuple", describe(value))
        if len(value) != count:
            return None, ("arity", str(len(value)))
        return tuple(value), None
    except BaseException as err:  # noqa: BLE001 - a tuple subclass whose len() raises
        return None, ("unconvertible", type(err).__name__)


def bad_return(problem, detail, value, **extra):
    return {"status": "bad_return", "problem": problem, "detail": detail, "returned": describe(value), **extra}


def run_setup(module, request, names, filename):
    """The setup steps before the graded call; a reply naming the failed step, or None when all ran.

    Their results (a cache) stay in ``names``, in this process: nothing of them is sent.
    """
    for index, step in enumerate(request.get("setup", ())):
        if "update" in step:
            target = names.get(step["update"])
            if isinstance(target, dict):
                target.update(step["with"])
            continue
        func = getattr(module, step["function"], None)
        if not callable(func):
            return {"status": "missing", "setup": index}
        try:
            result = func(*(fresh(names[n]) for n in step["args"]))
        except BaseException as err:  # noqa: BLE001 - the submission's own fault, in its setup call
            reply = exception_reply(err, filename)
            reply["setup"] = index
            return reply
        bind = step.get("as") or []
        if len(bind) == 1:
            names[bind[0]] = result
        elif bind:
            values, problem = unpack(result, len(bind))
            if problem is not None:
                return bad_return(*problem, result, setup=index)
            names.update(zip(bind, values))
    return None


def graded_value(request, value, args):
    """The value to send: a slot of a returned tuple, or an entry the call left in a dict argument."""
    if "slots" in request:
        values, problem = unpack(value, request["slots"])
        if problem is not None:
            return None, problem
        if "slot" in request:
            value = values[request["slot"]]
    if "argument" in request:
        holder = args[request["argument"]]
        try:
            if not isinstance(holder, dict) or request["key"] not in holder:
                return None, ("missing_key", "")
            value = holder[request["key"]]
        except BaseException as err:  # noqa: BLE001 - a dict subclass with a hostile __contains__
            return None, ("unconvertible", type(err).__name__)
    return value, None


def several_outputs(request, names, value, mutated):
    """The reply to a call that sends back several named values (setup results, the call's own
    ``as``): each converted on its own, then all flattened and joined into one payload, with
    each one's shape in ``parts``; the first that can't be sent is named by ``output``."""
    if request.get("as"):
        names[request["as"]] = value
    arrays = []
    for index, name in enumerate(request["outputs"]):
        graded = names.get(name)
        arr, problem, detail = to_float64(graded)
        if problem is not None:
            return bad_return(problem, detail, graded, mutated=mutated, output=index), b""
        arrays.append(arr)
    payload = encode_float64(np.concatenate([arr.ravel() for arr in arrays]))
    reply = {
        "status": "ok",
        "shape": [sum(arr.size for arr in arrays)],
        "parts": [list(arr.shape) for arr in arrays],
        "returned": describe(value),
        "mutated": mutated,
        "len": len(payload),
    }
    return reply, payload


def call_function(module, request, payloads, filename):
    name = request["function"]
    func = getattr(module, name, None)
    if not callable(func):
        return {"status": "missing"}, b""
    names = {spec["name"]: load_array(p) for spec, p in zip(request["args"], payloads)}
    names.update(request.get("values", {}))  # hyperparameters: the instructor's JSON, fresh per request
    for dotted in [n for n in names if "." in n]:  # an array that belongs in a dict: `params.key`
        holder, key = dotted.split(".", 1)
        if isinstance(names.get(holder), dict):
            names[holder][key] = names.pop(dotted)
    failed = run_setup(module, request, names, filename)
    if failed is not None:
        return failed, b""
    call = request.get("call") or [spec["name"] for spec in request["args"]]
    args = [fresh(names[n]) for n in call]
    originals = [(n, a, a.copy()) for n, a in zip(call, args) if isinstance(a, np.ndarray)]
    started = time.perf_counter()
    try:
        value = func(*args)
    except BaseException as err:  # noqa: BLE001
        return exception_reply(err, filename), b""
    elapsed = time.perf_counter() - started
    try:
        mutated = [n for n, after, before in originals if not unchanged(after, before)]
    except BaseException:  # noqa: BLE001 - the submission may have patched numpy
        mutated = []
    if "outputs" in request:
        reply, payload = several_outputs(request, names, value, mutated)
        reply["elapsed"] = elapsed
        return reply, payload
    graded, problem = graded_value(request, value, args)
    if problem is not None:
        return bad_return(*problem, value, mutated=mutated), b""
    arr, problem, detail = to_float64(graded)
    if problem is not None:
        return bad_return(problem, detail, graded, mutated=mutated), b""
    payload = encode_float64(arr)
    reply = {
        "status": "ok",
        "shape": list(arr.shape),
        "returned": describe(graded),
        "mutated": mutated,
        "elapsed": elapsed,
        "len": len(payload),
    }
    return reply, payload


def serve():
    inbox = Inbox(IN_FD)
    request = inbox.read_frame()
    source = inbox.read_exact(request["source_len"])
    filename = request["filename"]
    module, reply = load_submission(request, source)
    write_frame(OUT_FD, reply)
    if module is None:
        return
    while True:
        request = inbox.read_frame()
        if request.get("op") != "call":
            return
        payloads = [inbox.read_exact(spec["len"]) for spec in request["args"]]
        reply, payload = call_function(module, request, payloads, filename)
        reply["id"] = request["id"]
        write_frame(OUT_FD, reply, payload)


def run(in_fd, out_fd):
    """The child's whole life once Python and numpy are loaded; never returns.

    The descriptors stay module globals, so a child forked by the zygote (which makes
    this module ``__main__``) looks exactly like one started with ``python -c``.
    """
    global IN_FD, OUT_FD
    IN_FD, OUT_FD = in_fd, out_fd
    # Python ignores SIGXFSZ; by default it kills, so output over the limit ends the
    # child with a cause the parent can name (and the next child gets a fresh file).
    signal.signal(signal.SIGXFSZ, signal.SIG_DFL)
    try:
        write_frame(OUT_FD, {"status": "started"})
        serve()
    except EOFError:
        pass
    # Skip atexit handlers and buffered-output tricks: the submission gets no last word.
    os._exit(0)
