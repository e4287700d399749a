"""The Jinja2 set-up shared by the app and by code that renders outside a request.

`configure_environment` adds translations, globals and the form filters to an environment;
`render_form` renders a form schema to HTML with the same macros the pages use (benchmarks,
e-mails, previews).
"""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

import jinja2

from forms import FormSchema
from storage.access import Permission
from web import i18n
from web.form_filters import FILTERS

TEMPLATES = Path(__file__).parent / "templates"


def configure_environment(env: jinja2.Environment) -> None:
    env.add_extension("jinja2.ext.i18n")
    env.install_gettext_callables(i18n.gettext, i18n.ngettext, newstyle=True)  # type: ignore[attr-defined]
    env.globals["current_locale"] = i18n.current_locale
    env.globals["LOCALES"] = i18n.LOCALES
    env.globals["Permission"] = Permission
    env.filters.update(FILTERS)


@cache
def standalone_environment() -> jinja2.Environment:
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(TEMPLATES), autoescape=True)
    configure_environment(env)
    return env


def render_form(
    schema: FormSchema,
    values: dict[str, Any] | None = None,
    *,
    errors: dict[str, list[str]] | None = None,
    readonly: bool = False,
    directory: dict[str, list[dict[str, str]]] | None = None,
) -> str:
    """The fields of `schema` as HTML, as the form page shows them."""
    template = standalone_environment().from_string(
        '{% from "forms/_render.html" import render_fields with context %}{{ render_fields() }}'
    )
    return template.render(
        schema=schema,
        values=values or {},
        errors=errors or {},
        state={},
        access={},
        readonly=readonly,
        directory=directory or {},
    )
