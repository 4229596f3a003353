"""grader: an autograder for gradient homework in numpy.

The parent process (this package) generates cases, computes expected values with a
reference module and finite differences, and scores; the submission runs only in a
sandboxed child (``grader/untrusted/``). An assignment is data: a rubric, a reference
module and a template.
"""

__version__ = "0.1.0"
