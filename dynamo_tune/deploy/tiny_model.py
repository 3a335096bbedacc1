"""The tiny model directory the local stack serves. Does I/O: writes files under a cache dir.

The mocker simulates the engine; the frontend still needs a tokenizer, a chat template and a
llama-like `config.json`. Everything is generated here from `dynamo_tune.vocab` (no hub):

- `tokenizer.json`: a `tokenizers` WordLevel model over SPECIAL_TOKENS then `w0 … w{N-1}`,
  WhitespaceSplit pre-tokenizer, no normalizer and no post-processor, so one whitespace
  separated word is exactly one token (an unknown word is one `<unk>`).
- `tokenizer_config.json`: a chat template that joins the messages' contents with single
  spaces and adds nothing else, so `usage.prompt_tokens` equals the prompt's word count.
- `config.json`: a small llama-like model description.

The directory is cached under `~/.cache/dynamo-tune/tiny-model-<hash>` (hash of the content),
written to a temporary sibling and renamed into place, so concurrent callers are safe.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

from dynamo_tune.vocab import SPECIAL_TOKENS, VOCAB_SIZE, word

MAX_POSITION_EMBEDDINGS = 131072

# Jinja: contents of every message (a string, or a list of {type: text} parts) joined by " ".
CHAT_TEMPLATE = (
    "{%- for message in messages -%}"
    "{%- if not loop.first %} {% endif -%}"
    "{%- if message['content'] is string -%}{{ message['content'] }}"
    "{%- else -%}{%- for part in message['content'] -%}"
    "{%- if not loop.first %} {% endif -%}{{ part['text'] }}"
    "{%- endfor -%}{%- endif -%}"
    "{%- endfor -%}"
)


def tokenizer_json() -> dict[str, Any]:
    """The `tokenizer.json` document (WordLevel, WhitespaceSplit). Pure."""
    vocab = {token: i for i, token in enumerate(SPECIAL_TOKENS)}
    offset = len(SPECIAL_TOKENS)
    vocab.update({word(i): i + offset for i in range(VOCAB_SIZE)})
    added = [
        {
            "id": i,
            "content": token,
            "single_word": False,
            "lstrip": False,
            "rstrip": False,
            "normalized": False,
            "special": True,
        }
        for i, token in enumerate(SPECIAL_TOKENS)
    ]
    return {
        "version": "1.0",
        "truncation": None,
        "padding": None,
        "added_tokens": added,
        "normalizer": None,
        "pre_tokenizer": {"type": "WhitespaceSplit"},
        "post_processor": None,
        "decoder": None,
        "model": {"type": "WordLevel", "vocab": vocab, "unk_token": SPECIAL_TOKENS[0]},
    }


def tokenizer_config_json() -> dict[str, Any]:
    """The `tokenizer_config.json` document with the space-joining chat template. Pure."""
    unk, bos, eos = SPECIAL_TOKENS
    return {
        "tokenizer_class": "PreTrainedTokenizerFast",
        "model_max_length": MAX_POSITION_EMBEDDINGS,
        "add_bos_token": False,
        "add_eos_token": False,
        "bos_token": bos,
        "eos_token": eos,
        "unk_token": unk,
        "pad_token": eos,
        "clean_up_tokenization_spaces": False,
        "chat_template": CHAT_TEMPLATE,
    }


def config_json() -> dict[str, Any]:
    """A small llama-like `config.json`. Pure."""
    return {
        "architectures": ["LlamaForCausalLM"],
        "model_type": "llama",
        "vocab_size": VOCAB_SIZE + len(SPECIAL_TOKENS),
        "hidden_size": 256,
        "intermediate_size": 512,
        "num_hidden_layers": 2,
        "num_attention_heads": 4,
        "num_key_value_heads": 4,
        "head_dim": 64,
        "max_position_embeddings": MAX_POSITION_EMBEDDINGS,
        "rms_norm_eps": 1e-5,
        "rope_theta": 10000.0,
        "tie_word_embeddings": True,
        "torch_dtype": "bfloat16",
        "bos_token_id": 1,
        "eos_token_id": 2,
    }


def generation_config_json() -> dict[str, Any]:
    """`generation_config.json` (eos only). Pure."""
    return {"bos_token_id": 1, "eos_token_id": 2}


def model_files() -> dict[str, str]:
    """File name -> text of every file of the model dir. Pure."""
    docs = {
        "tokenizer.json": tokenizer_json(),
        "tokenizer_config.json": tokenizer_config_json(),
        "config.json": config_json(),
        "generation_config.json": generation_config_json(),
    }
    return {name: json.dumps(doc, indent=1, sort_keys=True) + "\n" for name, doc in docs.items()}


def content_hash(files: dict[str, str]) -> str:
    """A short hash of the model files (names and texts). Pure."""
    digest = hashlib.sha256()
    for name in sorted(files):
        digest.update(name.encode())
        digest.update(b"\0")
        digest.update(files[name].encode())
        digest.update(b"\0")
    return digest.hexdigest()[:12]


def default_cache_dir() -> Path:
    """`$XDG_CACHE_HOME/dynamo-tune` (default `~/.cache/dynamo-tune`)."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "dynamo-tune"


def ensure_tiny_model(cache_dir: Path | None = None) -> Path:
    """Return the tiny model dir under `cache_dir`, generating it on first use."""
    files = model_files()
    root = cache_dir if cache_dir is not None else default_cache_dir()
    target = root / f"tiny-model-{content_hash(files)}"
    if all((target / name).is_file() for name in files):
        return target
    root.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".tiny-model-", dir=root))
    try:
        for name, text in files.items():
            (tmp / name).write_text(text)
        try:
            tmp.rename(target)
        except OSError:
            # Another process won the race (target exists and is complete) or a partial
            # leftover is in the way: replace a partial one, keep a complete one.
            if not all((target / name).is_file() for name in files):
                shutil.rmtree(target, ignore_errors=True)
                tmp.rename(target)
    finally:
        if tmp.exists():
            with contextlib.suppress(OSError):
                shutil.rmtree(tmp)
    return target
