"""Markdown for student-facing feedback: text that any CommonMark renderer shows as that text, and nothing more.

Feedback mixes the grader's words with strings a student chose (file names, and on
visible cases what their code printed or raised). Rendered as Markdown by Gradescope
(and later PrairieLearn), such a string must never become a link, an image, raw HTML
or a block that swallows what follows. The rules below follow the CommonMark spec
(https://spec.commonmark.org/0.31.2/), not a guess at it, and the tests render the
output with a real CommonMark parser:

* outside code spans, every ASCII punctuation character that can open an inline or
  block construct is backslash-escaped (any ASCII punctuation may be, per spec 2.4);
* a code span is kept only where CommonMark itself would see one: a backtick run closed
  by the next run of the same length (spec 6.1), and only within one line, because
  block structure is parsed before inlines (a line inside a would-be span can start an
  HTML block or a heading); every other backtick is escaped;
* the start of each line is escaped where it would open a list, heading or rule.
"""

from __future__ import annotations

import re

from grader.grading.report import display_text

LINE_ENDING = re.compile(r"\r\n|\r|\n")  # CommonMark's line endings (not str.splitlines's wider set)
BACKTICK_RUN = re.compile(r"`+")
# The backslash itself, and what opens emphasis, links and images, raw HTML and autolinks,
# entity references, headings, block quotes, tables and strikethrough.
INLINE_SPECIAL = re.compile(r"([\\*_\[\]<>#|~&])")
# At a line's start: a bullet-list marker or setext underline, or an ordered-list number.
LINE_START = re.compile(r"^( {0,3})([-+=]|\d{1,9}(?=[.)](?:[ \t]|$)))")


def escape_text(text: str, line_start: bool = False) -> str:
    """Literal text (part of one line, or its start) with no code spans in it."""
    escaped = INLINE_SPECIAL.sub(r"\\\1", text).replace("`", "\\`")
    return LINE_START.sub(_escape_line_start, escaped) if line_start else escaped


def _escape_line_start(match: re.Match) -> str:
    spaces, marker = match.groups()
    if marker.isdigit():  # "12." opens an ordered list; escaping its delimiter is enough: "12\."
        return f"{spaces}{marker}\\"
    return f"{spaces}\\{marker}"


def escape_line(line: str) -> str:
    """One line: its well-formed code spans kept verbatim, everything else escaped."""
    runs = list(BACKTICK_RUN.finditer(line))
    out, done, i = [], 0, 0
    while i < len(runs):
        opener = runs[i]
        closer = next((j for j in range(i + 1, len(runs)) if len(runs[j].group()) == len(opener.group())), None)
        if closer is None:
            i += 1  # an opener with no closer is literal backticks (escaped with the text around it)
            continue
        out.append(escape_text(line[done : opener.start()], line_start=done == 0))
        out.append(line[opener.start() : runs[closer].end()])
        done, i = runs[closer].end(), closer + 1
    out.append(escape_text(line[done:], line_start=done == 0))
    return "".join(out)


def escape_markdown(text: str) -> str:
    """Plain text made safe for Markdown, keeping the `code spans` feedback uses (within a line) as they are."""
    return "\n".join(escape_line(line) for line in LINE_ENDING.split(display_text(text)))


def code_span(text: str) -> str:
    """``text`` (a file name, say) as one inline code span that nothing in it can end early."""
    content = " ".join(LINE_ENDING.split(display_text(text)))
    if not content:
        return ""
    fence = "`" * (max((len(run) for run in BACKTICK_RUN.findall(content)), default=0) + 1)
    if content[0] in "` " or content[-1] in "` ":  # CommonMark strips one space from each end
        content = f" {content} "
    return f"{fence}{content}{fence}"


def code_block(text: str) -> str:
    """A fenced block that the text itself can't close."""
    longest = max((len(run) for run in BACKTICK_RUN.findall(text)), default=0)
    fence = "`" * max(3, longest + 1)
    return f"{fence}text\n{text.rstrip()}\n{fence}"
