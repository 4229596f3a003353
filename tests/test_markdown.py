"""Feedback Markdown, rendered by a real CommonMark parser: a student's string never becomes HTML, a link or a block.

Every hostile string below is rendered with markdown-it-py in its CommonMark preset
(raw HTML allowed, as a permissive renderer would); the HTML may hold only paragraphs,
code and line breaks, and its text must be the string itself.
"""

from __future__ import annotations

import html
import re

import pytest

from conftest import REPO, grade
from grader.frontends.choice import choose_file
from grader.frontends.gradescope.results import results_from_report
from grader.frontends.markdown import code_block, code_span, escape_markdown

markdown_it = pytest.importorskip("markdown_it", reason="markdown-it-py (the [test] extra) renders the CommonMark")

SAFE_TAGS = {"p", "code", "br", "strong", "pre", "table", "thead", "tbody", "tr", "th", "td"}
TAG = re.compile(r"<\s*(/?)\s*([A-Za-z][A-Za-z0-9-]*)([^>]*)>")

HOSTILE = [
    "a `` b ` <img src=x onerror=alert(1)> ` c",
    "``` <img src=x onerror=alert(1)> `` x `",
    "x ``` <http://evil.example> `",
    "`a\n<div onmouseover=alert(1)>x</div>\n`",
    "`a\r<div onmouseover=alert(1)>x</div>\r`",
    "`x\n\n<img src=x onerror=alert(1)>\n\n`",
    "`x`` <b>bold</b> ``y`",
    "``[click](http://evil.example)`",
    "[click](javascript:alert(1))",
    "![x](http://evil.example/t.png)",
    "<script>alert(1)</script>",
    "<https://evil.example> and <me@evil.example>",
    "&lt;img src=x onerror=alert(1)&gt; &#60;b&#62;",
    "\\`<img src=x onerror=alert(1)>`",
    "\\\\`<img src=x onerror=alert(1)>`",
    "[a]: http://evil.example\n\n[a]",
    "[a]\n\n[a]: http://evil.example",
    "*em* _em_ **strong** ~~gone~~",
    "# heading\n- list\n+ list\n1. one\n2) two\n> quote\n---\n===",
    "```\n<img src=x onerror=alert(1)>\n```",
    "~~~\n<img src=x onerror=alert(1)>\n~~~",
    "<!-- hidden --> <?php ?> <![CDATA[x]]>",
    "a | b\n--|--\n<i>c</i> | d",
    "line\\\n<img src=x onerror=alert(1)>",
]


def render(text: str) -> str:
    return markdown_it.MarkdownIt("commonmark").render(text)


def unsafe_tags(rendered: str) -> list[str]:
    """Tags other than the harmless ones, or with attributes (but a fence's language class)."""
    return [
        m.group(0)
        for m in TAG.finditer(rendered)
        if m.group(2).lower() not in SAFE_TAGS or m.group(3).strip() not in ("", 'class="language-text"')
    ]


def shown_text(rendered: str) -> str:
    """What a reader sees: the text without tags, entities decoded, whitespace collapsed."""
    return " ".join(html.unescape(TAG.sub(" ", rendered)).split())


@pytest.mark.parametrize("text", HOSTILE)
def test_a_hostile_string_renders_as_text_with_no_tag_or_link(text):
    rendered = render(escape_markdown(text))
    assert unsafe_tags(rendered) == [], rendered
    assert "<a " not in rendered and "<img" not in rendered


@pytest.mark.parametrize("text", [t for t in HOSTILE if "`" not in t])
def test_text_without_backticks_reads_exactly_as_written(text):
    assert shown_text(render(escape_markdown(text))) == " ".join(text.split())


def test_backticks_that_do_not_pair_within_a_line_are_shown_as_backticks():
    assert shown_text(render(escape_markdown("a ` b `` c"))) == "a ` b `` c"
    assert shown_text(render(escape_markdown("`a\nb`"))) == "`a b`"


def test_the_feedbacks_own_code_spans_stay_code():
    assert (
        render(escape_markdown("use `x.copy()`, not `x`")) == "<p>use <code>x.copy()</code>, not <code>x</code></p>\n"
    )


@pytest.mark.parametrize(
    "name",
    [
        "quiz4.py",
        "a`<img src=x onerror=alert(1)>`.py",
        "``x`` <b>.py",
        "` lead.py",
        "new\nline<img src=x>.py",
        "\udcff.py",
    ],
)
def test_a_file_name_becomes_one_code_span_showing_the_name(name):
    rendered = render(f"Graded {code_span(name)}.")
    assert unsafe_tags(rendered) == [], rendered
    [code] = re.findall(r"<code>(.*?)</code>", rendered, flags=re.S)
    expected = name.replace("\n", " ").encode("utf-8", "surrogateescape").decode("utf-8", "replace")
    assert html.unescape(code) == expected


def test_printed_output_in_a_fence_cannot_close_it():
    printed = "```\n<img src=x onerror=alert(1)>\n````\n[x](http://evil.example)"
    rendered = render(f"Your file printed:\n\n{code_block(printed)}\n\nafter")
    assert unsafe_tags(rendered) == [] and "<p>after</p>" in rendered


def test_a_file_choice_problem_names_hostile_files_safely(tmp_path):
    for name in ("a`<img src=x onerror=alert(1)>`.py", "b.py"):
        (tmp_path / name).write_text("x = 1\n")
    rendered = render(choose_file(tmp_path, "quiz4.py").problem)
    assert unsafe_tags(rendered) == [] and "&lt;img" in rendered


def test_every_output_of_a_graded_submission_renders_safely_whatever_the_file_is_called(quiz4):
    report, _ = grade(REPO / "examples" / "quiz4_submission.py", quiz4)
    document = results_from_report(report, "x`` <img src=x onerror=alert(1)> ``.py", 0.5)
    for output in [document["output"], *(t["output"] for t in document["tests"] if t["output_format"] == "md")]:
        assert unsafe_tags(render(output)) == [], output
    pictured = [t["output"] for t in document["tests"] if t["output_format"] == "html"]
    assert pictured, "the example's wrong visible cases bring heatmaps, in HTML"
    for output in pictured:
        assert unsafe_html_tags(output) == [], output


HEATMAP_TAGS = {"figure", "figcaption", "svg", "title", "rect"}
HEATMAP_ATTRIBUTES = {"xmlns", "class", "role", "width", "height", "viewbox", "aria-label", "x", "y", "fill", "stroke"}
HEATMAP_ATTRIBUTES |= {"stroke-width"}


def unsafe_html_tags(text: str) -> list[str]:
    """In HTML output: tags other than the harmless ones and a heatmap's, or attributes a heatmap doesn't use."""
    unsafe = []
    for m in TAG.finditer(text):
        name, attributes = m.group(2).lower(), re.findall(r'([A-Za-z-]+)="[^"<>]*"', m.group(3))
        if name in SAFE_TAGS and not m.group(3).strip():
            continue
        if name in HEATMAP_TAGS and {a.lower() for a in attributes} <= HEATMAP_ATTRIBUTES:
            if re.sub(r'[A-Za-z-]+="[^"<>]*"', "", m.group(3)).strip(" /") == "":
                continue
        unsafe.append(m.group(0))
    return unsafe
