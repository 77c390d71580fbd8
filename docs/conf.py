"""Sphinx configuration of the docs site (``./run-docs``): the README as its front page, docs/*.md as guides (MyST),
and the API reference from the docstrings (pydoctor, built into ``api/`` by its Sphinx extension)."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# One source for the version: txrealtime/__init__.py (read, not imported, as setuptools does).
release = version = re.findall(r'__version__ = "([^"]+)"', (ROOT / "txrealtime" / "__init__.py").read_text())[0]

project = "txrealtime"
author = "The txrealtime authors"
copyright = "The txrealtime authors"

extensions = ["myst_parser", "sphinx.ext.intersphinx", "pydoctor.sphinx_ext.build_apidocs"]
source_suffix = {".md": "markdown"}
root_doc = "index"
exclude_patterns: list[str] = []

# GitHub's anchors for headings, so that links such as operations.md#the-admin-ui work on the site too.
myst_heading_anchors = 4
# ::: fences for the site's own directives (index.md), which the docs tests, reading ``` fences, leave alone.
myst_enable_extensions = ["colon_fence"]

html_theme = "furo"
html_title = f"txrealtime {version}"
html_static_path: list[str] = []

# No inventories from the network: the one intersphinx reads is pydoctor's, for links from the guides to the API.
intersphinx_mapping: dict[str, tuple[str, str | None]] = {}
intersphinx_disabled_reftypes = ["*"]
pydoctor_url_path = "api/"
pydoctor_args = [
    "--project-name=txrealtime",
    f"--project-version={version}",
    "--project-url=../index.html",  # the API pages' header leads back to the guides
    "--docformat=restructuredtext",
    "--html-output={outdir}/api",
    f"--project-base-dir={ROOT}",
    str(ROOT / "txrealtime"),
]
