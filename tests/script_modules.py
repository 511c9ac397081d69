"""The scripts in scripts/ are not a package: tests load one by its path, as a module of its own."""

import importlib.util
from pathlib import Path

SCRIPTS = Path(__file__).resolve().parents[1] / "scripts"


def load_script(file_name: str):
    """scripts/<file_name> run as a fresh module (its own folder goes on sys.path as it starts)."""
    path = SCRIPTS / file_name
    spec = importlib.util.spec_from_file_location(f"{path.stem}_script", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
