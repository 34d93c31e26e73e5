"""Sphinx configuration: API pages from the docstrings (autodoc + napoleon, Google style).

Build: ``sphinx-build -W -b html docs docs/_build/html`` (warnings are errors;
``tests/test_docs.py`` does the same). Everything is local: no intersphinx,
no web fonts, no analytics.
"""

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from decompvae import __version__  # noqa: E402

project = "decompvae"
author = "the decompvae developers"
copyright = "the decompvae developers"  # noqa: A001 (Sphinx's name)
release = version = __version__

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.napoleon",
    "sphinx.ext.viewcode",
    "myst_parser",  # the guide (docs/guide.md) is Markdown
]
source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
myst_heading_anchors = 3

exclude_patterns = ["_build", "README.md"]
templates_path = []
root_doc = "index"

# Google-style docstrings ("Args:", "Returns:", "Attributes:"), as the code writes them.
napoleon_google_docstring = True
napoleon_numpy_docstring = False
napoleon_use_rtype = False
napoleon_attr_annotations = True
# "Attributes:" of NamedTuples as fields of the class, not attribute directives
# (autodoc describes the tuple's fields too: two descriptions of one name).
napoleon_use_ivar = True

autodoc_default_options = {
    "members": True,  # honours each module's __all__
    "show-inheritance": False,
}
autodoc_member_order = "bysource"
autodoc_typehints = "signature"

html_theme = "alabaster"
html_title = f"decompvae {release}"
html_static_path = []
html_theme_options = {"page_width": "1200px", "sidebar_width": "230px", "fixed_sidebar": False}


def _skip_tuple_fields(app, what, name, obj, skip, options):
    """Leave out NamedTuple fields ("Alias for field number 0"): the class's Attributes list them."""
    doc = getattr(obj, "__doc__", None) or ""
    return True if doc.startswith("Alias for field number") else None


def setup(app):
    app.connect("autodoc-skip-member", _skip_tuple_fields)
