"""The README as a package index shows it (a hatchling metadata hook, run when a wheel or an
sdist is built).

README.md links to files of the repository (`docs/store.md`, `screenshots/running.png`) by
relative paths: right on the repository's own page, pointing nowhere on a package index. Here
each relative link becomes absolute when the repository's addresses are set in pyproject.toml
(`[tool.hatch.metadata.hooks.custom]`: `files-url` for links, `images-url` for images, each
the address the file's path is appended to). Without them, an image becomes its caption and a
link its text followed by the file's path (the files are in the sdist), so nothing on the
package's page points nowhere.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from hatchling.metadata.plugin.interface import MetadataHookInterface

# [text](target) or ![caption](target); the target has no spaces or parentheses
LINK = re.compile(r"(?P<image>!?)\[(?P<text>[^\]]*)\]\((?P<target>[^)\s]+)\)")
ABSOLUTE = ("http://", "https://", "mailto:", "#")


def absolute_links(markdown: str, files_url: str | None, images_url: str | None) -> str:
    """`markdown` with every relative link made absolute (or, without an address, made text)."""

    def replace(m: re.Match[str]) -> str:
        image, text, target = m["image"], m["text"], m["target"]
        if target.startswith(ABSOLUTE):
            return m[0]
        path = target.removeprefix("./")
        if image:
            return f"![{text}]({images_url}{path})" if images_url else f"*({text})*"
        if files_url:
            return f"[{text}]({files_url}{path})"
        return f"{text} (`{path.partition('#')[0]}`)"

    return LINK.sub(replace, markdown)


class ReadmeHook(MetadataHookInterface):
    """Sets `readme` (declared dynamic in pyproject.toml) from README.md, links absolute."""

    PLUGIN_NAME = "custom"

    def update(self, metadata: dict[str, Any]) -> None:
        text = (Path(self.root) / "README.md").read_text(encoding="utf-8")
        files_url = self.config.get("files-url") or None
        images_url = self.config.get("images-url") or None
        metadata["readme"] = {
            "content-type": "text/markdown",
            "text": absolute_links(text, files_url, images_url),
        }
