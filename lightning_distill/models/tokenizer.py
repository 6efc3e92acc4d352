"""The exact SD1.5 tokenizer (OpenAI CLIP's BPE, 49408 tokens, 77 positions), built offline.

SD1.5 checkpoints ship their tokenizer files, but single-file checkpoints and the toy world do not; the
BPE merges ship inside open_clip (`bpe_simple_vocab_16e6.txt.gz`), so the same tokenizer is built here
without touching the network. Padding uses the end-of-text token, as SD1.5's tokenizer does.
"""

from __future__ import annotations

import gzip
import importlib.resources
from functools import lru_cache

MAX_LENGTH = 77


def _bytes_to_unicode() -> dict[int, str]:
    """GPT-2 / CLIP's reversible byte -> printable character table, the alphabet of the BPE vocabulary."""
    printable = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1))
    printable += list(range(ord("®"), ord("ÿ") + 1))
    chars = printable[:]
    extra = 0
    for byte in range(256):
        if byte not in printable:
            printable.append(byte)
            chars.append(256 + extra)
            extra += 1
    return dict(zip(printable, map(chr, chars), strict=True))


@lru_cache(maxsize=1)
def sd15_tokenizer():
    """A transformers CLIPTokenizer equal to SD1.5's (same ids as open_clip's tokenizer)."""
    from transformers import CLIPTokenizer

    bpe = importlib.resources.files("open_clip").joinpath("bpe_simple_vocab_16e6.txt.gz")
    merges = gzip.decompress(bpe.read_bytes()).decode("utf-8").split("\n")[1 : 49152 - 256 - 2 + 1]
    symbols = list(_bytes_to_unicode().values())
    vocab = symbols + [s + "</w>" for s in symbols] + ["".join(m.split()) for m in merges]
    vocab += ["<|startoftext|>", "<|endoftext|>"]
    return CLIPTokenizer(
        vocab={token: i for i, token in enumerate(vocab)},
        merges=[tuple(m.split()) for m in merges],
        model_max_length=MAX_LENGTH,
        pad_token="<|endoftext|>",
    )


def token_ids(prompts: list[str]):
    """(B, 77) int64 ids, padded and truncated as SD1.5's pipelines do."""
    return sd15_tokenizer()(
        list(prompts), padding="max_length", max_length=MAX_LENGTH, truncation=True, return_tensors="pt"
    ).input_ids
