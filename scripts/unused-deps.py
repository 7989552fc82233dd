#!/usr/bin/env python3
"""Fails when a package of this repository declares a dependency that none of its sources names.

The same check as `cargo machete` (and the same opt-out: a package's
`[package.metadata.cargo-machete] ignored = [...]`, for crates used only by generated code, through
a macro or under another library name), without installing it: building cargo-machete took minutes
on CI machines, this takes well under a second. A dependency counts as used when a Rust file of the
package (its folder, minus nested packages and `target/`) writes `name::`, `use name` or
`extern crate name`, with `-` read as `_` and a renamed dependency under its new name.

Usage: scripts/unused-deps.py   (from anywhere in the repository; exit code 1 when something is unused)
"""

import re
import subprocess
import sys
import tomllib
from pathlib import Path

DEP_TABLES = ("dependencies", "dev-dependencies", "build-dependencies")


def manifests(root: Path) -> list[Path]:
    """Every Cargo.toml git knows of (tracked or not ignored), that declares a package."""
    out = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard", "*Cargo.toml"],
        cwd=root, check=True, capture_output=True, text=True,
    ).stdout.split()
    return [root / p for p in out if "package" in tomllib.loads((root / p).read_text())]


def declared(manifest: dict) -> set[str]:
    """Dependency keys of every table, target-specific ones included."""
    tables = [manifest.get(t, {}) for t in DEP_TABLES]
    for target in manifest.get("target", {}).values():
        tables += [target.get(t, {}) for t in DEP_TABLES]
    return {name for table in tables for name in table}


def sources(pkg_dir: Path, nested: set[Path]) -> str:
    """The text of every .rs file of the package, nested packages and target/ left out."""
    texts = []
    for path in pkg_dir.rglob("*.rs"):
        parents = set(path.parents)
        if pkg_dir / "target" in parents or parents & nested:
            continue
        texts.append(path.read_text(errors="replace"))
    return "\n".join(texts)


def used(name: str, text: str) -> bool:
    ident = re.escape(name.replace("-", "_"))
    pattern = rf"(?<![\w:]){ident}\s*::|\buse\s+::?{ident}\b|\bextern\s+crate\s+{ident}\b"
    return re.search(pattern, text) is not None


def unused(manifest_path: Path, all_dirs: set[Path]) -> list[str]:
    manifest = tomllib.loads(manifest_path.read_text())
    meta = manifest["package"].get("metadata", {}).get("cargo-machete", {})
    ignored = set(meta.get("ignored", []))
    pkg_dir = manifest_path.parent
    nested = {d for d in all_dirs if d != pkg_dir and pkg_dir in d.parents}
    text = sources(pkg_dir, nested)
    return sorted(d for d in declared(manifest) - ignored if not used(d, text))


def main() -> int:
    root = Path(
        subprocess.run(["git", "rev-parse", "--show-toplevel"], check=True,
                       capture_output=True, text=True).stdout.strip()
    )
    paths = manifests(root)
    dirs = {p.parent for p in paths}
    failed = False
    for path in paths:
        names = unused(path, dirs)
        if names:
            failed = True
            print(f"{path.relative_to(root)}: unused dependencies: {', '.join(names)}")
    if failed:
        print("Remove them, or list them in [package.metadata.cargo-machete] ignored = [...] "
              "with a comment saying why.")
        return 1
    print(f"no unused dependencies ({len(paths)} packages)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
