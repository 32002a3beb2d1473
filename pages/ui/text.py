"""Students' text (names, titles, notes) shown as text: markdown and HTML in it never render."""

import re

_SPECIAL = re.compile(r"([\\`*_{}\[\]()#+\-.!|~<>:$&])")


def plain(text: str) -> str:
    """`text` escaped for st.markdown and widget labels: every markdown character shown as itself."""
    return _SPECIAL.sub(r"\\\1", text)
