"""The rubric's TeX as HTML text, for pages: ``P_{i,j}`` → P<sub>i,j</sub>, ``\\sum`` → ∑.

Hints and labels are written in the quiz's notation, which the terminal shows as it is;
the class summary page and each student's page show it as text with sub- and
superscripts instead of raw TeX. Everything is HTML-escaped on the way.
"""

from __future__ import annotations

import html
import re

TEX_SYMBOLS = {
    r"\sum": "∑", r"\top": "ᵀ", r"\cdot": "·", r"\odot": "⊙", r"\times": "×", r"\le": "≤", r"\ge": "≥",
    r"\neq": "≠", r"\partial": "∂", r"\nabla": "∇", r"\in": "∈", r"\mathbb{1}": "𝟙", r"\mathbf{1}": "1",
}  # fmt: skip
SUB_SUP = re.compile(r"(?<=[A-Za-z0-9)\]ᵀ∑])([_^])(?:\{([^{}]{1,20})\}|([A-Za-z0-9])(?![A-Za-z0-9_]))")


def esc(value: object) -> str:
    return html.escape(str(value), quote=True)


def math_text(text: str) -> str:
    """Escaped HTML of a hint, its TeX as text: ``P_{i,j}`` → P<sub>i,j</sub>, ``\\sum`` → ∑, `code` kept.

    Only a single letter or digit (or a closing bracket) takes a subscript, so the
    underscores of names like ``my_var2`` stay as they are.
    """
    parts = re.split(r"(`[^`]*`)", text)
    out = []
    for i, part in enumerate(parts):
        if i % 2:
            out.append(f"<code>{esc(part[1:-1])}</code>")
            continue
        part = part.replace("$", "")
        for command, symbol in sorted(TEX_SYMBOLS.items(), key=lambda item: -len(item[0])):
            part = re.sub(re.escape(command) + r"(?![A-Za-z])", symbol, part)
        part = re.sub(r"\\(?:mathrm|text|operatorname)\{([^{}]*)\}", r"\1", part)
        pieces, last = [], 0
        for match in SUB_SUP.finditer(part):
            start = match.start()
            if start > 1 and (part[start - 2].isalnum() or part[start - 2] == "_") and part[start - 1].isalnum():
                continue  # inside a name such as my_var2
            tag = "sub" if match.group(1) == "_" else "sup"
            pieces += [esc(part[last:start]), f"<{tag}>{esc(match.group(2) or match.group(3))}</{tag}>"]
            last = match.end()
        out.append("".join(pieces) + esc(part[last:]))
    return "".join(out)
