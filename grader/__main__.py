"""``python -m grader`` is the ``grade`` command."""

from grader.frontends.cli import run

run()
