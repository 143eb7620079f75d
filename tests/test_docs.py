"""The documentation cannot go stale: every public name has a docstring and an API entry,
every config key a meaning, the README names only commands and options that exist,
the example configs load, and ``ebmlab config --defaults`` gives a config that trains.
The built site's check in a real browser (headless Chromium) runs where Chromium and a
built site (``make docs``) exist."""

from __future__ import annotations

import ast
import importlib
import importlib.util
import inspect
import re
import shutil
import sys
import types
from pathlib import Path

import pytest
import yaml

from ebmlab.cli import build_parser, main
from ebmlab.config import RunConfig, load_config, parse_config

ROOT = Path(__file__).parents[1]
COMMON = {"--seed", "--device", "--dtype", "--quiet", "-h", "--help"}


def _public_modules() -> dict[str, types.ModuleType]:
    """The modules the API reference documents (the site's own list)."""
    return _hooks()._public_modules()


def _attribute_docs(mod: types.ModuleType) -> set[str]:
    """Module-level names with a docstring: a string right after the assignment, or
    a ``#:`` comment right above it (what griffe and Sphinx read)."""
    src = inspect.getsource(mod)
    lines = src.splitlines()
    body = ast.parse(src).body
    documented = set()
    for i, node in enumerate(body):
        if isinstance(node, ast.Assign):
            names = [t.id for t in node.targets if isinstance(t, ast.Name)]
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            names = [node.target.id]
        else:
            continue
        after = body[i + 1] if i + 1 < len(body) else None
        string_after = (
            isinstance(after, ast.Expr)
            and isinstance(after.value, ast.Constant)
            and isinstance(after.value.value, str)
        )
        comment_above = node.lineno >= 2 and lines[node.lineno - 2].strip().startswith("#:")
        if string_after or comment_above:
            documented.update(names)
    return documented


def _undocumented() -> list[str]:
    modules = _public_modules()
    attr_docs = {name: _attribute_docs(mod) for name, mod in modules.items()}
    missing = []
    for mod_name, mod in modules.items():
        for name in mod.__all__:
            obj = getattr(mod, name)
            if isinstance(obj, types.ModuleType) or inspect.isfunction(obj):
                doc = obj.__doc__
            elif inspect.isclass(obj):
                doc = obj.__dict__.get("__doc__")  # its own, not a base class's
            else:  # a constant: documented where it is assigned
                home = [
                    m for m in modules if name in attr_docs[m] and getattr(modules[m], name) is obj
                ]
                doc = "documented" if name == "__version__" or home else None
            if not (doc and doc.strip()):
                missing.append(f"{mod_name}.{name}")
    return missing


def test_every_public_name_has_a_docstring():
    missing = _undocumented()
    assert not missing, f"public names without a docstring: {missing}"


def test_docstring_check_sees_a_missing_docstring(monkeypatch):
    # The check itself can fail: a public function without a docstring is reported.
    from ebmlab import diagnostics

    def undocumented() -> None:
        pass

    monkeypatch.setattr(diagnostics, "undocumented", undocumented, raising=False)
    monkeypatch.setattr(diagnostics, "__all__", [*diagnostics.__all__, "undocumented"])
    assert "ebmlab.diagnostics.undocumented" in _undocumented()


# ------------------------------------------------------------------ README vs the CLI


def _subparsers() -> dict[str, object]:
    parser = build_parser()
    action = next(a for a in parser._actions if a.__class__.__name__ == "_SubParsersAction")
    return dict(action.choices)


def _options(sub: object) -> set[str]:
    return {s for a in sub._actions for s in a.option_strings}


def _command_lines(text: str) -> list[str]:
    """Every ``ebmlab COMMAND ...`` the text names: backticked spans and code-block lines."""
    spans = re.findall(r"`(ebmlab [a-z][^`]*)`", text)
    blocks = re.findall(r"```[a-z]*\n(.*?)```", text, re.S)
    lines = [ln.strip() for b in blocks for ln in b.splitlines()]
    return spans + [ln for ln in lines if ln.startswith("ebmlab ")]


def _options_named(line: str) -> set[str]:
    line = line.split("#", 1)[0]  # a shell comment
    return set(re.findall(r"(?<![\w-])(--?[a-z][a-z0-9-]*)", line))


@pytest.mark.parametrize(
    "doc", ["README.md", *sorted(p.name for p in (ROOT / "docs").glob("*.md"))]
)
def test_commands_and_options_named_in_the_docs_exist(doc):
    path = ROOT / doc if doc == "README.md" else ROOT / "docs" / doc
    subs = _subparsers()
    unknown = []
    for line in _command_lines(path.read_text(encoding="utf-8")):
        words = line.split()
        command = words[1]
        if not re.fullmatch(r"[a-z]+", command):
            continue  # "ebmlab --version" is the top-level parser's; prose such as "ebmlab's"
        if command not in subs:
            unknown.append(f"{line!r}: no command {command!r}")
            continue
        missing = _options_named(line) - _options(subs[command])
        unknown += [f"{line!r}: {command} has no option {o}" for o in sorted(missing)]
    assert not unknown, "\n".join(unknown)


def test_readme_command_table_lists_every_command_and_option():
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    table = [ln for ln in text.splitlines() if ln.startswith("| `ebmlab ")]
    subs = _subparsers()
    listed: dict[str, set[str]] = {}
    for row in table:
        first_cell = row.split("` |", 1)[0]
        for span in re.findall(r"`(ebmlab [a-z][^`]*)", first_cell):
            listed.setdefault(span.split()[1], set()).update(_options_named(span))
    assert set(listed) == set(subs), f"table {sorted(listed)} vs CLI {sorted(subs)}"
    gaps = {}
    for command, sub in subs.items():
        for action in sub._actions:
            names = set(action.option_strings)
            if names and not names & COMMON and not names & listed[command]:
                gaps.setdefault(command, []).append("/".join(sorted(names)))
    assert not gaps, f"options that --help lists and the README's table does not: {gaps}"


def test_readme_names_the_commands_with_common_options_correctly():
    text = " ".join((ROOT / "README.md").read_text(encoding="utf-8").split())
    m = re.search(r"The commands that build or read a model \(([^)]*)\) also take", text)
    assert m, "README: the sentence on the common options is gone"
    named = set(re.findall(r"`([a-z]+)`", m.group(1)))
    with_common = {c for c, s in _subparsers().items() if {"--dtype", "--quiet"} <= _options(s)}
    assert named == with_common


def test_readme_links_the_site_and_says_how_to_build_it():
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    assert "make docs" in text
    assert "(docs/index.md)" in text and (ROOT / "docs" / "index.md").is_file()


# ------------------------------------------------------------------ configuration


def test_every_config_key_has_a_meaning():
    def walk(model: type, prefix: str) -> list[str]:
        out = []
        for name, field in model.model_fields.items():
            if not (field.description and field.description.strip()):
                out.append(prefix + name)
            for sub in (field.annotation, *getattr(field.annotation, "__args__", ())):
                if isinstance(sub, type) and hasattr(sub, "model_fields"):
                    out += walk(sub, f"{prefix}{name}.")
        return out

    assert walk(RunConfig, "") == []


def test_config_defaults_prints_a_config_that_trains(tmp_path, capsys):
    assert main(["config", "--defaults"]) == 0
    text = capsys.readouterr().out
    assert "# " in text  # each key's meaning as a comment
    assert parse_config(yaml.safe_load(text)) == RunConfig()
    cfg = tmp_path / "defaults.yaml"
    cfg.write_text(text, encoding="utf-8")
    run = tmp_path / "run"
    assert (
        main(["train", str(cfg), "--steps", "2", "--no-eval", "--quiet", "--out", str(run)]) == 0
    )
    expected = RunConfig()
    expected.train.steps = 2
    assert load_config(run / "config.yaml") == expected


def test_config_validates_a_file_and_refuses_bad_ones(tmp_path, capsys):
    good = tmp_path / "good.yaml"
    good.write_text("train: {steps: 7}\n", encoding="utf-8")
    out = tmp_path / "resolved.yaml"
    assert main(["config", str(good), "-o", str(out)]) == 0
    assert load_config(out).train.steps == 7
    assert load_config(out).model == RunConfig().model
    bad = tmp_path / "bad.yaml"
    bad.write_text("train: {stesp: 7}\n", encoding="utf-8")
    assert main(["config", str(bad)]) == 2
    assert "did you mean 'steps'" in capsys.readouterr().err
    assert main(["config"]) == 2  # neither --defaults nor a file
    assert main(["config", str(good), "--defaults"]) == 2


EXAMPLE_CONFIGS = sorted((ROOT / "configs").glob("*.yaml"))


def test_example_configs_exist():
    names = {p.stem for p in EXAMPLE_CONFIGS}
    assert {"csv", "nce", "images"} <= names


@pytest.mark.parametrize("path", EXAMPLE_CONFIGS, ids=lambda p: p.name)
def test_example_config_loads_and_validates(path, monkeypatch):
    monkeypatch.chdir(ROOT)  # data.file paths are relative to the repository root
    cfg = load_config(path)
    if cfg.data.file is not None and not cfg.data.file.startswith("builtin:"):
        assert Path(cfg.data.file).is_file(), f"{path.name}: {cfg.data.file} is not in the tree"


def test_images_config_is_the_image_recipe():
    from ebmlab.runs.images import image_run_config

    assert load_config(ROOT / "configs" / "images.yaml") == image_run_config("builtin:digits")


@pytest.mark.parametrize("name", ["csv", "nce"])
def test_example_config_trains(name, tmp_path, monkeypatch):
    monkeypatch.chdir(ROOT)
    run = tmp_path / name
    argv = ["train", f"configs/{name}.yaml", "--steps", "2", "--no-eval", "--quiet"]
    assert main([*argv, "--out", str(run)]) == 0
    assert (run / "model.safetensors").is_file()


# ------------------------------------------------------------------ the site's generators


def _hooks() -> types.ModuleType:
    spec = importlib.util.spec_from_file_location(
        "mkdocs_hooks", ROOT / "tools" / "mkdocs_hooks.py"
    )
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_api_pages_have_an_entry_for_every_public_name():
    pages = "\n".join(_hooks().api_pages().values())
    entries = set(re.findall(r"^::: (\S+)$", pages, re.M))
    missing = []
    for mod_name, mod in _public_modules().items():
        parent = mod_name.rsplit(".", 1)[0]
        for name in mod.__all__:
            if isinstance(getattr(mod, name), types.ModuleType):
                continue
            here = {f"{mod_name}.{name}", f"{parent}.{name}"}
            if mod_name.count(".") >= 2:  # a submodule: its package may re-export it
                here.add(f"{'.'.join(mod_name.split('.')[:2])}.{name}")
            if not here & entries:
                missing.append(f"{mod_name}.{name}")
    assert not missing, f"public names without an API entry: {missing}"


def test_config_page_has_a_row_for_every_key():
    page = _hooks().config_page()
    rows = set(re.findall(r"^\| `([a-z_.]+)` \|", page, re.M))

    def keys(model: type, prefix: str) -> set[str]:
        out = set()
        for name, field in model.model_fields.items():
            sub = next(
                (
                    s
                    for s in (field.annotation, *getattr(field.annotation, "__args__", ()))
                    if isinstance(s, type) and hasattr(s, "model_fields")
                ),
                None,
            )
            if sub is None or field.default is None:
                out.add(prefix + name)
            if sub is not None:
                out |= keys(sub, f"{prefix}{name}.")
        return out

    assert keys(RunConfig, "") == rows


# ------------------------------------------------------------------ the site in a browser


@pytest.mark.skipif(
    shutil.which("chromium") is None and not Path("/usr/bin/chromium").exists(),
    reason="Chromium is not installed (make docs-check installs it)",
)
def test_built_site_loads_in_chromium_without_console_errors():
    site = ROOT / "site"
    if not (site / "index.html").is_file():
        pytest.skip("no built site: run make docs (make docs-check builds and checks it)")
    sys.path.insert(0, str(ROOT / "tools"))
    try:
        from check_site import DEFAULT_PAGES, check_site
    finally:
        sys.path.remove(str(ROOT / "tools"))
    results = check_site(site)
    assert set(results) == set(DEFAULT_PAGES)
    assert all(not problems for problems in results.values()), results
