"""Templates and static files for the bottle apps.

Templates are bottle SimpleTemplate files in ``app/web/templates``; ``{{ x }}``
escapes, and only :func:`Templates.render`'s layout inserts already-rendered HTML.
Static files come only from ``app/web/static`` through :func:`static_file`, which
accepts plain file names (no directories, no dot files), so no path can escape.
All files are read with :mod:`importlib.resources`, so they work from a zip or an
executable too.
"""

import importlib.resources
import mimetypes
import re
from typing import Any

import bottle

import app

_STATIC_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]*\.(css|js|svg|png|ico)$")
_TEMPLATE_NAME = re.compile(r"^[a-z0-9_]+$")


class Templates:
    """Compiled templates of one app (built per app, never module state)."""

    def __init__(self, base: str) -> None:
        self.base = base  # URL path of the app, e.g. "/admin/"
        self._cache: dict[str, Any] = {}

    def _get(self, name: str) -> Any:
        tpl = self._cache.get(name)
        if tpl is None:
            if not _TEMPLATE_NAME.match(name):
                raise ValueError(f"bad template name {name!r}")
            res = importlib.resources.files("app.web.templates").joinpath(f"{name}.tpl")
            tpl = bottle.SimpleTemplate(source=res.read_text(encoding="utf-8"))
            self._cache[name] = tpl
        return tpl

    def render(
        self, name: str, *, title: str, nav: list[tuple[str, str]] | None = None, **kw: Any
    ) -> str:
        """Render template ``name`` inside the page layout."""
        body = self._get(name).render(base=self.base, **kw)
        return str(
            self._get("layout").render(
                base=self.base,
                title=title,
                body=body,
                nav=nav or [],
                csrf=kw.get("csrf", ""),
                logout=kw.get("logout", ""),
                version=app.__version__,
            )
        )


def static_file(name: str) -> tuple[bytes, str] | None:
    """Content and type of a file in app/web/static, or None for anything else."""
    if not _STATIC_NAME.match(name):
        return None
    res = importlib.resources.files("app.web.static").joinpath(name)
    if not res.is_file():
        return None
    ctype = mimetypes.guess_type(name)[0] or "application/octet-stream"
    if ctype.startswith("text/") or ctype.endswith("javascript"):
        ctype += "; charset=utf-8"
    return res.read_bytes(), ctype


def add_static_route(web: Any, prefix: str) -> None:
    """Serve ``prefix + name`` from the static directory on bottle app ``web``."""

    def static(name: str) -> bytes:
        found = static_file(name)
        if found is None:
            bottle.abort(404, "not found")
        assert found is not None
        data, ctype = found
        bottle.response.content_type = ctype
        bottle.response.set_header("Cache-Control", "max-age=3600")
        return data

    web.get(prefix + "<name>", callback=static)


def _plain(template: str) -> Any:
    def handler(err: Any) -> str:
        bottle.response.content_type = "text/plain; charset=utf-8"
        return template.format(err.body) + "\n"

    return handler


def new_app() -> Any:
    """A bottle app whose exceptions reach our HTTP front (logged once, 500 page)."""
    web = bottle.Bottle()
    web.config["catchall"] = False
    web.config["autojson"] = False
    web.error_handler.update(
        {
            400: _plain("bad request: {}"),
            403: _plain("forbidden: {}"),
            404: _plain("not found"),
            405: _plain("method not allowed"),
        }
    )
    return web


def form(name: str, default: str = "", *, strip: bool = True) -> str:
    """A form field as text (UTF-8), stripped unless ``strip`` is False (passwords)."""
    v = bottle.request.forms.getunicode(name, default=default)
    text = str(v if v is not None else default)
    return text.strip() if strip else text
