"""Sphinx configuration for stellarai (offline: intersphinx is disabled)."""

import datetime
import sys
from importlib.metadata import version as _version
from pathlib import Path

from sphinx_astropy.conf.v2 import *  # noqa: F403 - the astropy-affiliate defaults

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

project = "stellarai"
author = "The stellarai developers"
copyright = f"{datetime.datetime.now().year}, {author}"  # noqa: A001
release = _version("stellarai")
version = ".".join(release.split(".")[:2])

extensions += ["sphinx_automodapi.automodapi"]  # noqa: F405
automodapi_toctreedirnm = "api"
automodsumm_inherited_members = False
numpydoc_show_class_members = False

# Offline builds: no inventories are fetched; nitpicky stays off because external
# references cannot resolve without them.
intersphinx_mapping = {}
disable_intersphinx = 1
nitpicky = False

html_theme_options = {
    "github_url": "https://github.com/stellarai/stellarai",
    "use_edit_page_button": False,
}
html_title = f"stellarai {release}"
exclude_patterns = ["_build", "includes/*"]  # includes/ holds pieces pulled in by .. include::
