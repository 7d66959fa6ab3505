"""The 3D motion viewer's static files, shared by ``free3d serve`` and ``--format html``.

``viewer.js`` and ``viewer.css`` are the viewer; ``app.*`` the web app around it;
``export.html`` the template of a self-contained HTML file. They are package data,
read from the installed package: nothing is fetched from the network.
"""

from __future__ import annotations

from functools import cache
from importlib import resources

# what the web app serves under /static/, with its media type
SERVED = {"viewer.js": "text/javascript", "viewer.css": "text/css",
          "app.js": "text/javascript", "app.css": "text/css"}
FILES = (*SERVED, "app.html", "export.html")


@cache
def read_asset(name: str) -> str:
    """The text of one of the viewer's files (a KeyError for any other name)."""
    if name not in FILES:
        raise KeyError(f"no viewer file {name!r}; the files are {', '.join(FILES)}")
    return resources.files(__name__).joinpath(name).read_text(encoding="utf-8")
