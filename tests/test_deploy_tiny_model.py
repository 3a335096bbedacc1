"""The generated tiny model: one word = one token, cached. (The chat template is checked on
the real frontend in test_deploy_local_stack: prompt tokens == words.)"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from tokenizers import Tokenizer

from dynamo_tune.deploy.tiny_model import ensure_tiny_model, model_files
from dynamo_tune.vocab import SPECIAL_TOKENS, VOCAB_SIZE, text


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return ensure_tiny_model(tmp_path_factory.mktemp("cache"))


def test_one_word_is_one_token(model_dir: Path) -> None:
    tok = Tokenizer.from_file(str(model_dir / "tokenizer.json"))
    ids = tok.encode(text([0, 5, VOCAB_SIZE - 1, 5])).ids
    offset = len(SPECIAL_TOKENS)
    assert ids == [offset, 5 + offset, VOCAB_SIZE - 1 + offset, 5 + offset]
    assert tok.get_vocab_size() == VOCAB_SIZE + offset
    assert tok.encode("w1   w2\nw3\tnot-a-word").ids == [4, 5, 6, 0]  # unknown word: one <unk>
    assert tok.decode([4, 5, 6]) == "w1 w2 w3"


def test_config_is_llama_like(model_dir: Path) -> None:
    config = json.loads((model_dir / "config.json").read_text())
    assert config["model_type"] == "llama"
    assert config["vocab_size"] == VOCAB_SIZE + len(SPECIAL_TOKENS)
    assert config["hidden_size"] == config["num_attention_heads"] * config["head_dim"]


def test_cached_dir_is_reused_and_repaired(tmp_path: Path) -> None:
    first = ensure_tiny_model(tmp_path)
    stamp = (first / "tokenizer.json").stat().st_mtime_ns
    assert ensure_tiny_model(tmp_path) == first
    assert (first / "tokenizer.json").stat().st_mtime_ns == stamp
    (first / "config.json").unlink()  # a damaged cache entry is regenerated
    assert ensure_tiny_model(tmp_path) == first
    assert set(p.name for p in first.iterdir()) == set(model_files())
    assert [p.name for p in tmp_path.iterdir()] == [first.name]  # no temp dirs left behind
