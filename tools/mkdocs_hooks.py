"""MkDocs hooks of the documentation site (``mkdocs.yml``: ``hooks:``).

Generated at build time, so that they cannot go stale:

* ``api/<package>.md``: one API page per public package or module of ebmlab, an
  entry for every name in its ``__all__`` (and, under the module's heading, the
  names a submodule's ``__all__`` exports that its package does not re-export);
* ``api/index.md``: the packages with the first line of each docstring;
* ``reference/config.md``: every key of the training config (``ebmlab.config``)
  with its type, default and meaning, read from the pydantic models;
* ``reference/cli.md``: every command of ``ebmlab`` with its ``--help``, read from
  ``ebmlab.cli.build_parser()``.
"""

from __future__ import annotations

import importlib
import json
import pkgutil
import types
import typing
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # the page generators run without MkDocs too (tests/test_docs.py)
    from mkdocs.config.defaults import MkDocsConfig
    from mkdocs.structure.files import Files

#: Pages of the API reference, in the order of the layers (docs/architecture.md).
API_ORDER = (
    "ebmlab",
    "energies",
    "samplers",
    "partition",
    "objectives",
    "data",
    "train",
    "lattice",
    "boltzmann",
    "conditional",
    "estimators",
    "runs",
    "config",
    "diagnostics",
    "evaluation",
    "sample_quality",
    "plotting",
    "errors",
    "cli",
)


def _public_modules() -> dict[str, types.ModuleType]:
    """Every public module of ebmlab that has an ``__all__`` (the deprecated ``models`` aside)."""
    import ebmlab

    out = {"ebmlab": ebmlab}
    for info in pkgutil.walk_packages(ebmlab.__path__, "ebmlab."):
        parts = info.name.split(".")[1:]
        if any(p.startswith("_") for p in parts) or parts[0] == "models":
            continue
        mod = importlib.import_module(info.name)
        if hasattr(mod, "__all__"):
            out[info.name] = mod
    return out


def api_pages() -> dict[str, str]:
    """``{page name: Markdown}`` of the API reference."""
    modules = _public_modules()
    top = {name: mod for name, mod in modules.items() if name.count(".") <= 1}
    unknown = sorted(set(top) - {"ebmlab"} - {f"ebmlab.{p}" for p in API_ORDER})
    if unknown:
        raise RuntimeError(f"add {unknown} to API_ORDER in tools/mkdocs_hooks.py")
    pages: dict[str, str] = {}
    index = [
        "# API reference",
        "",
        "One page per package, an entry for every public name (every name in an "
        "`__all__`), generated from the docstrings when the site is built. "
        "Shapes are given as `(N, D)`; the sign convention is the library's: "
        "`p(x) = exp(-E(x)) / Z`, low energy = high probability.",
        "",
        "| package | what it holds |",
        "|---|---|",
    ]
    for short in API_ORDER:
        full = "ebmlab" if short == "ebmlab" else f"ebmlab.{short}"
        mod = modules[full]
        names = [n for n in mod.__all__ if not isinstance(getattr(mod, n), types.ModuleType)]
        lines = [
            f"# `{full}`",
            "",
            f"::: {full}",
            "    options:",
            "      members: false",
            "      show_root_heading: false",
            "      show_root_toc_entry: false",
            "",
        ]
        for name in names:
            lines += [f"::: {full}.{name}", ""]
        subs = sorted(n for n in modules if n.startswith(full + ".") and short != "ebmlab")
        for sub in subs:
            extra = [n for n in modules[sub].__all__ if n not in mod.__all__]
            if not extra:
                continue
            lines += [
                f"## `{sub}`",
                "",
                f"Also public in `{sub}` (import them from there):",
                "",
            ]
            for name in extra:
                lines += [f"::: {sub}.{name}", "    options:", "      heading_level: 3", ""]
        pages[short] = "\n".join(lines)
        summary = " ".join((mod.__doc__ or "").strip().split("\n\n")[0].split())
        index.append(f"| [`{full}`]({short}.md) | {summary.replace('|', '/')} |")
    pages["index"] = "\n".join(index) + "\n"
    return pages


def _type_name(annotation: Any) -> str:
    text = getattr(annotation, "__name__", None) if isinstance(annotation, type) else None
    if text is None:
        text = repr(annotation).replace("typing.", "").replace("NoneType", "None")
    for mod in ("ebmlab.config.",):
        text = text.replace(mod, "")
    return text


def config_page() -> str:
    """Markdown of the training-config reference, from ``ebmlab.config.RunConfig``."""
    from pydantic import BaseModel
    from pydantic_core import PydanticUndefined

    from ebmlab.config import RunConfig

    defaults = RunConfig().model_dump(mode="json")
    lines = [
        "# Configuration reference",
        "",
        "Every key of the training config that `ebmlab train CONFIG` reads (YAML), "
        "generated from the pydantic models of `ebmlab.config` when the site is built. "
        "Every section forbids unknown keys (a typo is an error naming the closest "
        "valid key); a key left out takes the default below. `ebmlab config --defaults` "
        "prints all of them as a YAML file to start from; the run directory's "
        "`config.yaml` is the same with the run's values. Example configs: "
        "[Example configs](../configs.md); data files: [Data files](../data-files.md).",
        "",
    ]

    def section(model: type[BaseModel], prefix: str, values: dict[str, Any]) -> None:
        nested: list[tuple[str, type[BaseModel], Any]] = []
        rows = ["| key | type | default | meaning |", "|---|---|---|---|"]
        for name, field in model.model_fields.items():
            annotation = field.annotation
            sub = _submodel(annotation)
            key = f"{prefix}{name}"
            if sub is not None:
                nested.append((key, sub, values.get(name) or {}))
                if field.default is not None:
                    continue  # a section: its keys follow under its own heading
            default = values.get(name) if name in values else field.default
            default = "(required)" if default is PydanticUndefined else json.dumps(default)
            meaning = (field.description or "").replace("\n", " ").replace("|", "/")
            rows.append(f"| `{key}` | `{_type_name(annotation)}` | `{default}` | {meaning} |")
        doc = (model.__doc__ or "").strip()
        lines.extend([f"## `{prefix.rstrip('.') or 'top level'}`", "", doc, "", *rows, ""])
        for key, sub, vals in nested:
            section(sub, key + ".", vals)

    section(RunConfig, "", defaults)
    return "\n".join(lines)


def cli_page() -> str:
    """Markdown of the command-line reference: each command's ``--help``."""
    import argparse

    from ebmlab.cli import build_parser

    parser = build_parser()
    subs = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    helps = {a.dest: a.help for a in subs._choices_actions}
    lines = [
        "# Command line",
        "",
        "Every command of `ebmlab` (also `python -m ebmlab`), with the text of its "
        "`--help`, generated from the parser when the site is built. User mistakes "
        "print one line and exit with status 2, without a traceback. Training "
        "configs: [Configuration reference](config.md); data files: "
        "[Data files](../data-files.md).",
        "",
    ]
    for name, sub in subs.choices.items():
        sub.formatter_class = lambda prog: argparse.HelpFormatter(prog, width=76)
        lines += [f"## `ebmlab {name}`", "", helps.get(name) or "", "", "```text"]
        lines += [sub.format_help().rstrip(), "```", ""]
    return "\n".join(lines)


def _submodel(annotation: Any) -> Any:
    from pydantic import BaseModel

    candidates = [annotation, *typing.get_args(annotation)]
    for c in candidates:
        if isinstance(c, type) and issubclass(c, BaseModel):
            return c
    return None


def _expand_api_nav(nav: list[Any]) -> bool:
    """Replace the nav entry ``api/index.md`` by a section: the index, then one page each."""
    for i, item in enumerate(nav):
        if isinstance(item, dict):
            ((title, value),) = item.items()
            if value == "api/index.md":
                pages: list[Any] = ["api/index.md"]
                for p in API_ORDER:
                    pages.append({p if p == "ebmlab" else f"ebmlab.{p}": f"api/{p}.md"})
                nav[i] = {title: pages}
                return True
            if isinstance(value, list) and _expand_api_nav(value):
                return True
    return False


def on_config(config: MkDocsConfig) -> MkDocsConfig:
    """Give every API page its place in the navigation."""
    if config.nav is not None and not _expand_api_nav(config.nav):
        raise RuntimeError("mkdocs.yml: the nav needs an entry 'api/index.md'")
    return config


def on_files(files: Files, config: MkDocsConfig) -> Files:
    """Add the generated pages to the site."""
    from mkdocs.structure.files import File

    for name, text in api_pages().items():
        files.append(File.generated(config, f"api/{name}.md", content=text))
    files.append(File.generated(config, "reference/config.md", content=config_page()))
    files.append(File.generated(config, "reference/cli.md", content=cli_page()))
    return files
