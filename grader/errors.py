"""The grader's one exception tree: faults of the grader or of its configuration.

A student's submission never raises these: its faults are data (see ``CallOutcome``).
``GraderError`` subclasses carry a one-line message a person can act on; the CLI prints
it and exits 2.
"""


class GraderError(Exception):
    """Base class for every error the grader reports about itself or its inputs."""


class UsageError(GraderError):
    """Wrong command-line words: the command's name and what to fix."""


class RubricError(GraderError):
    """A rubric file is missing, unreadable, or does not match the schema."""


class UnsoundRubricError(GraderError):
    """A rubric that loads but fails ``grade validate`` (its reference disagrees with finite differences, ...)."""


class ReferenceModuleError(GraderError):
    """The reference module cannot be loaded or disagrees with its own rubric."""


class SubmissionFileError(GraderError):
    """The submission path cannot be read (not the submission's content: that is data)."""


class RosterError(GraderError):
    """The batch input cannot be read as a class (not a single submission's fault)."""


class BatchError(GraderError):
    """A batch cannot run or merge as asked (not one submission's fault)."""


class ExportError(GraderError):
    """A gradebook export can't be written as asked (the roster can't be read or matched, the batch is unfinished)."""


class SandboxError(GraderError):
    """The sandbox could not be set up (not a fault of the submission)."""


class ProtocolError(GraderError):
    """The child sent bytes that break the protocol; the sandbox turns this into a call fault."""


class OutputFileError(GraderError):
    """A file the grader was asked to write (a report, a page) cannot be written."""
