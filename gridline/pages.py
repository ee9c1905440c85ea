"""The pages people open on a phone, rendered from template files.

A service keeps its pages in its own `templates/` folder; each extends `page.html` here, the
document every page shares (Chinese, the phone viewport, a title, a style and a body block).
Jinja2 escapes every value put into the HTML, so a page never builds markup from strings.
"""

from __future__ import annotations

from pathlib import Path

from fastapi.responses import HTMLResponse
from jinja2 import Environment, FileSystemLoader, StrictUndefined

_SHARED = Path(__file__).resolve().parent / "templates"


class Pages:
    """A service's page templates: its own folder first, then the shared `page.html`."""

    def __init__(self, folder: Path) -> None:
        self._env = Environment(
            loader=FileSystemLoader([folder, _SHARED]),
            autoescape=True,
            # A value the page names but was not given is a fault, not an empty string.
            undefined=StrictUndefined,
            trim_blocks=True,
            lstrip_blocks=True,
        )

    def render(self, name: str, **values: object) -> str:
        """The page `name` with `values`."""
        return self._env.get_template(name).render(**values)

    def response(self, name: str, status_code: int = 200, **values: object) -> HTMLResponse:
        """The page `name` with `values` as an HTML response."""
        return HTMLResponse(self.render(name, **values), status_code=status_code)
