# SPDX-License-Identifier: MIT
"""A Griffe extension: read wsfast's reST-flavoured docstrings as Markdown.

The docstrings are Google style (``Args:``, ``Returns:``), but cross-references
use Sphinx roles (:class:`Server`) and code examples reST literal blocks
(``Usage::`` and an indented block), which Markdown would print as they are.
This rewrites both at load time, for the API reference only: roles become code
spans, literal blocks become fenced Python blocks.
"""

from __future__ import annotations

import re
import textwrap
from typing import Any

import griffe

_ROLE = re.compile(r":(?:class|meth|func|attr|data|mod|exc|obj):`~?([^`]+)`")
# "text::", a blank line, then the indented block, up to the next unindented line.
_LITERAL = re.compile(r"(?m)^(?P<lead>.*?)::\n\n(?P<body>(?:(?:[ \t]+.*)?\n)+?)(?=\S|\Z)")


def _fence(match: re.Match[str]) -> str:
    lead = match["lead"].rstrip()
    # "Usage::" introduces the block; a line of just "::" introduces nothing.
    intro = f"{lead}:\n\n" if lead.strip() else ""
    body = textwrap.dedent(match["body"]).strip("\n")
    indent = lead[: len(lead) - len(lead.lstrip())]
    code = textwrap.indent(f"```python\n{body}\n```", indent)
    return f"{intro}{code}\n\n"


def markdown(text: str) -> str:
    """The docstring ``text`` with roles and literal blocks turned into Markdown.

    Args:
        text: a docstring.

    Returns:
        The rewritten docstring.
    """
    text = _ROLE.sub(lambda m: f"`{m[1].split(' <')[0]}`", text)
    return _LITERAL.sub(_fence, text + "\n").rstrip("\n")


class RstToMarkdown(griffe.Extension):
    """Rewrite every docstring as it is loaded."""

    def on_instance(self, *, obj: griffe.Object, **kwargs: Any) -> None:
        """Rewrite the docstring of one object (module, class, function, attribute).

        Args:
            obj: the object just loaded.
            **kwargs: the rest of Griffe's hook arguments.
        """
        if obj.docstring is not None:
            obj.docstring.value = markdown(obj.docstring.value)
