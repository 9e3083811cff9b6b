#!/usr/bin/env python3
"""Builds a Python Tributary plugin into a WebAssembly component with componentize-py.

    python3 sdk/python/build.py --toolchain <dir componentize-py was pip-installed into with --target> \\
        --wit <proto/wit dir> --sdk <sdk/python dir> --plugin <plugin dir> --out <file.wasm>

The plugin directory holds ``plugin.json`` (``type`` connector or channel, ``entrypoint``
``wasm:<name>.wasm``) and ``src/app.py`` (module ``app``; more modules may sit beside it in
``src/``). The build

1. checks: every ``.py`` file of ``src/`` compiles (a syntax error is reported as
   ``file:line:col: message``) and ``app.py`` defines the export class of its world
   (``class Sync`` for a connector, ``class Messaging`` for a channel);
2. stages ``src/`` and the SDK package ``tributary_plugin`` into a temporary directory, the
   only place componentize-py looks for modules (so nothing else installed on the machine
   ends up in the component);
3. runs componentize-py against world = the manifest's ``type``, with ``--stub-wasi``: the
   component then imports nothing but ``tributary:plugin`` (the host refuses a component
   importing ``wasi:filesystem`` or ``wasi:sockets``, which CPython would otherwise import);
4. writes the component to ``--out``. (``tributary plugins build`` copies it to the plugin
   directory as ``<name>.wasm`` and writes its SHA-256 into ``plugin.json``.)

stdout is exactly one JSON line, ``{"checkMs":n,"bundleMs":n,"componentizeMs":n,"bytes":n}``
(``bundleMs`` is the staging); everything else goes to stderr. On failure it exits 1 with a
message saying what is wrong.

The toolchain is installed with
``pip install --target ~/.cache/tributary-pip/<first 16 hex of sha256 of sdk/python/requirements.txt>/ -r sdk/python/requirements.txt``.
"""

import argparse
import ast
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

#: The class componentize-py looks up in module ``app`` for each world's export.
EXPORT_CLASSES = {"connector": ("Sync", "Connector"), "channel": ("Messaging", "Channel")}

#: How componentize-py is started from a ``pip install --target`` directory: the package has
#: no ``__main__``, and the ``bin/`` script names the Python that installed it.
RUN_COMPONENTIZE_PY = "import sys; from componentize_py import script; sys.argv[0] = 'componentize-py'; sys.exit(script())"


class BuildError(Exception):
    """A problem with the plugin or the toolchain, said for the person building."""


def log(message: str) -> None:
    """Writes a line of the build's log to stderr."""
    print(f"build.py: {message}", file=sys.stderr, flush=True)


def read_manifest(plugin_dir: str) -> "tuple[dict, str, str]":
    """The manifest of ``plugin_dir``, its world and its component's file name."""
    path = os.path.join(plugin_dir, "plugin.json")
    try:
        with open(path, encoding="utf-8") as file:
            manifest = json.load(file)
    except FileNotFoundError:
        raise BuildError(f"{path} is missing: a plugin directory holds plugin.json") from None
    except ValueError as error:
        raise BuildError(f"{path} is not JSON: {error}") from None
    world = manifest.get("type")
    if world not in EXPORT_CLASSES:
        raise BuildError(f"{path}: `type` must be connector or channel, found {json.dumps(world)}")
    entrypoint = manifest.get("entrypoint")
    name = entrypoint[len("wasm:"):] if isinstance(entrypoint, str) and entrypoint.startswith("wasm:") else ""
    if not name.endswith(".wasm") or "/" in name or "\\" in name or name in (".wasm", ""):
        raise BuildError(f"{path}: `entrypoint` must be wasm:<name>.wasm, found {json.dumps(entrypoint)}")
    return manifest, world, name


def check_sources(src_dir: str, world: str) -> "list[str]":
    """The ``.py`` files of ``src_dir`` (relative paths), each compiled; ``BuildError`` listing
    every syntax error, or naming the export class ``app.py`` lacks."""
    app = os.path.join(src_dir, "app.py")
    if not os.path.isfile(app):
        raise BuildError(f"{app} is missing: a Python plugin's code is the module `app` in src/app.py")
    files, problems = [], []
    for root, dirs, names in os.walk(src_dir):
        dirs[:] = sorted(d for d in dirs if d != "__pycache__" and not d.startswith("."))
        for name in sorted(names):
            if not name.endswith(".py"):
                continue
            path = os.path.join(root, name)
            files.append(os.path.relpath(path, src_dir))
            with open(path, "rb") as file:
                source = file.read()
            try:
                tree = compile(source, path, "exec", ast.PyCF_ONLY_AST)
            except SyntaxError as error:
                problems.append(f"{path}:{error.lineno}:{error.offset or 0}: {error.msg}")
                continue
            if path == app:
                export, base = EXPORT_CLASSES[world]
                names_defined = {node.name for node in tree.body if isinstance(node, ast.ClassDef)}
                if export not in names_defined:
                    problems.append(
                        f"{path}: a {world} defines `class {export}({base})` at the top of app.py "
                        f"(componentize-py exports it), and there is none"
                    )
    if problems:
        raise BuildError("the plugin's code does not compile:\n  " + "\n  ".join(problems))
    return files


def stage(src_dir: str, sdk_dir: str, stage_dir: str) -> str:
    """Copies ``src/`` and the SDK package into ``stage_dir`` as a virtual environment's
    site-packages; answers that directory."""
    package = os.path.join(sdk_dir, "tributary_plugin")
    if not os.path.isfile(os.path.join(package, "__init__.py")):
        raise BuildError(f"{package} is not the SDK package (no __init__.py): pass --sdk <sdk/python dir>")
    py = f"python{sys.version_info[0]}.{sys.version_info[1]}"
    site = os.path.join(stage_dir, "venv", "lib", py, "site-packages")
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", ".*")
    shutil.copytree(src_dir, site, ignore=ignore)
    if os.path.exists(os.path.join(site, "tributary_plugin")):
        raise BuildError(f"{src_dir} has its own tributary_plugin: the SDK's name cannot be a module of the plugin")
    shutil.copytree(package, os.path.join(site, "tributary_plugin"), ignore=ignore)
    return site


def componentize(toolchain: str, wit: str, world: str, site: str, out: str) -> None:
    """Runs componentize-py from ``toolchain`` to build module ``app`` of ``site`` into ``out``."""
    if not os.path.isdir(os.path.join(toolchain, "componentize_py")):
        raise BuildError(
            f"{toolchain} holds no componentize_py: install it with "
            f"pip install --target {toolchain} -r sdk/python/requirements.txt"
        )
    if not os.path.isdir(wit):
        raise BuildError(f"--wit {wit} is not a directory (the proto/wit package)")
    env = dict(os.environ)
    env["PYTHONPATH"] = toolchain
    # The staged directory is the only place modules are looked for: without VIRTUAL_ENV,
    # componentize-py adds this Python's own site-packages to the component's path.
    env["VIRTUAL_ENV"] = os.path.dirname(os.path.dirname(os.path.dirname(site)))
    env["RUST_BACKTRACE"] = "0"
    env.pop("PYTHONHOME", None)
    command = [
        sys.executable, "-c", RUN_COMPONENTIZE_PY,
        "-d", wit, "-w", world,
        "componentize", "--stub-wasi", "-p", site, "app", "-o", out,
    ]
    result = subprocess.run(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    output = result.stdout.strip()
    if result.returncode != 0:
        raise BuildError(f"componentize-py failed (exit {result.returncode}):\n{trim_output(output)}")
    if output:
        log(output.replace("\n", " | "))


def trim_output(output: str) -> str:
    """componentize-py's failure without the Rust frames it adds, keeping Python's traceback."""
    lines = [line for line in output.splitlines() if not re.match(r"^\s+(\d+: |at )", line)]
    return "\n".join(lines).strip()


def build(args: argparse.Namespace) -> dict:
    """The whole build; answers the figures printed on stdout."""
    plugin_dir = os.path.abspath(args.plugin)
    manifest, world, wasm_name = read_manifest(plugin_dir)
    src_dir = os.path.join(plugin_dir, "src")

    started = time.monotonic()
    files = check_sources(src_dir, world)
    check_ms = round((time.monotonic() - started) * 1000)

    out = os.path.abspath(args.out)
    os.makedirs(os.path.dirname(out), exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="tributary-build-py-") as temp:
        started = time.monotonic()
        site = stage(src_dir, os.path.abspath(args.sdk), temp)
        bundle_ms = round((time.monotonic() - started) * 1000)

        started = time.monotonic()
        partial = os.path.join(temp, wasm_name)
        componentize(os.path.abspath(args.toolchain), os.path.abspath(args.wit), world, site, partial)
        componentize_ms = round((time.monotonic() - started) * 1000)
        with open(partial, "rb") as file:
            component = file.read()
        shutil.move(partial, out)

    sha256 = hashlib.sha256(component).hexdigest()
    log(
        f"{manifest.get('id', '?')}: {len(files)} module(s), {wasm_name} {len(component) / 1e6:.1f} MB, "
        f"sha256 {sha256}, componentized in {componentize_ms / 1000:.1f} s"
    )
    return {"checkMs": check_ms, "bundleMs": bundle_ms, "componentizeMs": componentize_ms, "bytes": len(component)}


def main() -> int:
    """Parses the arguments, builds, prints the figures; 1 on failure."""
    parser = argparse.ArgumentParser(description="Build a Python Tributary plugin into a WebAssembly component.")
    for name, meaning in [
        ("--toolchain", "the directory componentize-py was pip-installed into with --target"),
        ("--wit", "the WIT package directory (proto/wit)"),
        ("--sdk", "the SDK directory (sdk/python), holding tributary_plugin/"),
        ("--plugin", "the plugin directory (plugin.json, src/app.py)"),
        ("--out", "the component file to write"),
    ]:
        parser.add_argument(name, required=True, help=meaning)
    args = parser.parse_args()
    try:
        figures = build(args)
    except BuildError as error:
        print(f"build.py: {error}", file=sys.stderr)
        return 1
    except OSError as error:
        print(f"build.py: {error}", file=sys.stderr)
        return 1
    print(json.dumps(figures, separators=(",", ":")))
    return 0


if __name__ == "__main__":
    sys.exit(main())
