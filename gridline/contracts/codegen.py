"""Regenerates `gridline/contracts/v1` from the `.proto` files under `proto/`."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
PROTO_ROOT = REPO_ROOT / "proto"
PACKAGE_PATH = Path("gridline/contracts/v1")


def generate(out_root: Path) -> list[Path]:
    """Run protoc for every proto file into `out_root` (the repository root keeps the package)."""
    from grpc_tools import protoc  # a development dependency: only codegen needs it

    sources = sorted(
        str(p.relative_to(PROTO_ROOT)) for p in (PROTO_ROOT / PACKAGE_PATH).glob("*.proto")
    )
    include = Path(protoc.__file__).parent / "_proto"
    args = [
        "grpc_tools.protoc",
        f"-I{PROTO_ROOT}",
        f"-I{include}",
        f"--python_out={out_root}",
        f"--pyi_out={out_root}",
        f"--grpc_python_out={out_root}",
        *sources,
    ]
    if protoc.main(args) != 0:
        raise RuntimeError(f"protoc failed on {sources}")
    target = out_root / PACKAGE_PATH
    (target / "__init__.py").write_text("")
    return sorted(target.iterdir())


def regenerate() -> list[Path]:
    """Replace the committed generated package with freshly generated code."""
    with tempfile.TemporaryDirectory() as tmp:
        generated = generate(Path(tmp))
        target = REPO_ROOT / PACKAGE_PATH
        shutil.rmtree(target, ignore_errors=True)
        target.mkdir(parents=True)
        for path in generated:
            if path.is_file():
                shutil.copy2(path, target / path.name)
        return sorted(target.iterdir())
