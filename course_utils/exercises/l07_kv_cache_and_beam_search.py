"""Checkers and the beam-tree explorer of lesson 07 (the key/value cache and beam search).

The probes here (a patched `model.generate` that counts calls, a forward pre-hook on the GPT-2
stack that records how many tokens each call reads, a hook on `lm_head` that forces tokens) are
private to this lesson.
"""

from __future__ import annotations

import contextlib
from typing import Any, Iterator

import pandas as pd
import torch

from ..beam_search import beam_search, beam_step
from ..decoding import eos_ids
from ..feedback import (Feedback, a_type, expect_number, expect_tensor, expect_tokens_and_logits, fail,
                        guarded, right)
from ..probes import forced_tokens  # lm_head forced to given tokens (also ex.forced_tokens)
from ..kv_cache import cache_bytes_for_config, cache_nbytes, greedy_generate, position_ids_from_mask

PROMPTS = ("After school the children went to", "The weather today is")
PADDED_PROMPTS = ("Thanks", "After school the children went to", "The weather today is")


def left_padded(tokenizer: Any, texts: tuple[str, ...], device: Any = "cpu") -> dict[str, torch.Tensor]:
    """A left-padded batch (pads: the EOS id, masked), whatever the tokenizer's padding settings."""
    rows = [tokenizer(text)["input_ids"] for text in texts]
    width, pad = max(map(len, rows)), tokenizer.eos_token_id
    ids = [[pad] * (width - len(r)) + r for r in rows]
    mask = [[0] * (width - len(r)) + [1] * len(r) for r in rows]
    return {"input_ids": torch.tensor(ids, device=device),
            "attention_mask": torch.tensor(mask, device=device)}


# ------------------------------------------------------------------ probes (private to this lesson)

@contextlib.contextmanager
def watched(model: Any, record: dict[str, list[int]]) -> Iterator[None]:
    """Record the input length of every pass through the stack, and count calls to model.generate."""

    def on_stack(module: Any, args: Any, kwargs: dict) -> None:
        ids = kwargs.get("input_ids", args[0] if args else None)
        if ids is None:
            ids = kwargs.get("inputs_embeds")
        record["lengths"].append(int(ids.shape[1]) if ids is not None else -1)

    def counting_generate(*args: Any, **kwargs: Any) -> Any:
        record["generate"].append(1)
        return type(model).generate(model, *args, **kwargs)

    handle = model.base_model.register_forward_pre_hook(on_stack, with_kwargs=True)
    model.generate = counting_generate  # an instance attribute shadows the method
    try:
        yield
    finally:
        handle.remove()
        del model.generate


# ------------------------------------------------------------------ question 1: the cached loop

@guarded
def check_cached_greedy(fn: Any, model: Any, tokenizer: Any, max_new_tokens: int = 6) -> Feedback:
    """Does fn(model, input_ids, attention_mask, max_new_tokens) match generate, with the cache?"""
    if not callable(fn):
        fail(f"my_greedy is {a_type(fn)}, expected a function",
             "define it with def my_greedy(model, input_ids, attention_mask, max_new_tokens): ...")
    eos = min(eos_ids(model))
    vocab = model.config.vocab_size
    forced = {1: 7 % vocab, 2: 11 % vocab, 3: eos}  # a varied path and an EOS, on both tiers
    for text, script in zip(PROMPTS, ({}, forced)):
        enc = tokenizer(text, return_tensors="pt").to(model.device)
        with forced_tokens(model, script):
            want = greedy_generate(model, enc["input_ids"], enc["attention_mask"], max_new_tokens)
        want_tokens, want_logits = want.tokens[0].tolist(), want.logits[0]
        record: dict[str, list[int]] = {"lengths": [], "generate": []}
        with forced_tokens(model, script), watched(model, record), torch.no_grad():
            answer = fn(model, enc["input_ids"], enc["attention_mask"], max_new_tokens)
        if record["generate"]:
            fail("my_greedy called model.generate()",
                 "write the loop yourself: call model(...) once per new token")
        tokens, logits = expect_tokens_and_logits(answer, "my_greedy")
        prompt = enc["input_ids"].shape[1]
        if tokens[:prompt] == enc["input_ids"][0].tolist() and tokens[prompt:] == want_tokens:
            fail("your tokens start with the prompt", "return only the new tokens")
        if tokens != want_tokens:
            stop = " (did you stop right after EOS?)" if eos in want_tokens else ""
            fail(f"for {text!r} you chose {tokens}, greedy decoding chooses {want_tokens}{stop}",
                 "take the argmax of the last position's logits and feed that token back; stop once "
                 "EOS has been appended, or at max_new_tokens")
        if tuple(logits.shape) != tuple(want_logits.shape):
            fail(f"logits has shape {tuple(logits.shape)}, expected {tuple(want_logits.shape)}",
                 "one row of vocabulary logits per generated token: out.logits[0, -1] each step")
        gap = float((logits.detach().float().cpu() - want_logits.cpu()).abs().max())
        if gap > 1e-3:
            fail(f"the tokens are right but the logits differ by up to {gap:.3g}",
                 "keep the raw logits of the last position at every step (no softmax)")
        lengths = record["lengths"]
        if len(lengths) != len(tokens):
            fail(f"{len(tokens)} tokens took {len(lengths)} passes through the model",
                 "one forward pass per new token: the prompt once, then one token per step")
        if lengths[0] != prompt:
            fail(f"the first pass read {lengths[0]} tokens, the prompt has {prompt}",
                 "the first call (the prefill) reads the whole prompt")
        if any(n != 1 for n in lengths[1:]):
            fail(f"tokens and logits are right, but the passes read {lengths} tokens: you recompute "
                 "the prefix at every step instead of using the cache",
                 "keep out.past_key_values, pass it back as past_key_values=, and feed only the new "
                 "token (shape (1, 1)); extend the attention mask by one each step")
    return right("same tokens and logits as greedy generate(), the prompt read once and then one "
                 "token per cached step, a stop at EOS, and no call to generate()")


# ------------------------------------------------------------------ question 2: cache memory

def llama_like_config(kv_heads: int = 8) -> Any:
    """A config with Llama-2-7B's sizes (no weights), with grouped-query attention by default."""
    from transformers import LlamaConfig

    return LlamaConfig(num_hidden_layers=32, num_attention_heads=32, num_key_value_heads=kv_heads,
                       hidden_size=4096, intermediate_size=11008, vocab_size=32000)


@guarded
def check_cache_memory(fn: Any, model: Any, tokenizer: Any) -> Feedback:
    """Does fn(config, tokens, batch, bytes_per_value) give the cache's size, for GPT-2 and Llama?"""
    if not callable(fn):
        fail(f"cache_memory is {a_type(fn)}, expected a function",
             "define it with def cache_memory(config, tokens, batch, bytes_per_value): ...")
    enc = left_padded(tokenizer, PADDED_PROMPTS, model.device)
    with torch.no_grad():
        cache = model(**enc, use_cache=True).past_key_values
    batch, tokens = enc["input_ids"].shape
    measured = cache_nbytes(cache)
    got = expect_number(fn(model.config, tokens, batch, 4), "cache_memory(model.config, ...)")
    cfg = model.config
    if got != measured:
        wrongs = {measured / 2: "you counted the keys or the values, not both (the factor 2)",
                  measured * 8: "that is bits; the size is in bytes",
                  measured / cfg.num_hidden_layers: "you counted one layer; every layer has a cache",
                  measured / batch: "you left out the batch size",
                  measured / tokens: "you left out the number of tokens"}
        fail(f"for the model's cache ({batch} prompts, {tokens} tokens, float32) you computed "
             f"{got:,.0f} bytes; its tensors hold {measured:,}", wrongs.get(got, "2 x layers x heads "
             "x head_dim x tokens x batch x bytes_per_value"))
    for kv_heads in (32, 8):
        config = llama_like_config(kv_heads)
        want = cache_bytes_for_config(config, 4096, 1, 2)
        got = expect_number(fn(config, 4096, 1, 2), "cache_memory(llama_config, ...)")
        if got == want * 32 // kv_heads and kv_heads != 32:
            fail(f"with {kv_heads} key/value heads you computed {got:,.0f} bytes, {32 // kv_heads}x "
                 "too many", "grouped-query attention caches config.num_key_value_heads heads, "
                 "fewer than num_attention_heads; read it with getattr(config, "
                 "'num_key_value_heads', None) or config.num_attention_heads")
        if got != want:
            fail(f"for a Llama-2-7B-sized config ({kv_heads} key/value heads, 4096 tokens, float16) "
                 f"you computed {got:,.0f} bytes, expected {want:,}",
                 "head_dim = hidden_size // num_attention_heads; read every size from the config")
    return right(f"the formula equals the {measured:,} bytes of the model's cache, and gives "
                 f"{cache_bytes_for_config(llama_like_config(32), 4096, 1, 2) / 2**30:.1f} GiB for "
                 "a 7B model at 4,096 tokens (0.5 GiB with 8 key/value heads)")


# ------------------------------------------------------------------ question 3: one beam step

def _step_case(seed: int, beams: int = 3, vocab: int = 40) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    scores = -torch.rand(beams, generator=generator) * 3 - 0.5  # distinct, negative, as real scores
    log_probs = (torch.randn(beams, vocab, generator=generator) * 2).log_softmax(-1)
    return scores, log_probs


@guarded
def check_beam_step(fn: Any) -> Feedback:
    """Does fn(beam_scores, log_probs, k, length, length_penalty) rank continuations as beam search?"""
    if not callable(fn):
        fail(f"my_beam_step is {a_type(fn)}, expected a function",
             "def my_beam_step(beam_scores, log_probs, k, length, length_penalty): ...")
    for seed, k, length, penalty in ((0, 6, 3, 1.0), (1, 4, 5, 2.0), (2, 8, 2, 0.5)):
        scores, log_probs = _step_case(seed)
        answer = fn(scores.clone(), log_probs.clone(), k, length, penalty)
        if not isinstance(answer, tuple) or len(answer) != 4:
            fail(f"my_beam_step returned {a_type(answer)}; expected a tuple of four tensors",
                 "return top_scores, parents, tokens, finished_scores")
        got = [expect_tensor(t, name, (k,)) for t, name in
               zip(answer, ("top_scores", "parents", "tokens", "finished_scores"))]
        top, parents, tokens, ends = (t.detach().cpu() for t in got)
        want = beam_step(scores, log_probs, k, length, penalty)
        vocab = log_probs.shape[-1]
        if torch.allclose(top.float(), (scores[:, None] * log_probs).reshape(-1).topk(k).values, atol=1e-5):
            fail("you multiplied the beam's log-probability by the token's",
                 "log-probabilities add up (log(p q) = log p + log q): beam_scores[:, None] + log_probs")
        if torch.equal(parents.long(), want[1] * vocab + want[2]):
            fail("parents holds indices into the flattened (beams x vocab) scores",
                 "the beam is flat_index // vocab_size, the token flat_index % vocab_size")
        if not torch.allclose(top.float(), want[0], atol=1e-5):
            if torch.allclose(top.float(), want[0] / length ** penalty, atol=1e-5):
                fail("your top_scores are already divided by length ** length_penalty",
                     "open beams are ranked by their summed log-probability; only a beam that "
                     "finishes is divided, once")
            fail("top_scores are not the k best sums beam_scores + log_probs over all beams",
                 "(beam_scores[:, None] + log_probs).reshape(-1).topk(k)")
        if not (torch.equal(parents.long(), want[1]) and torch.equal(tokens.long(), want[2])):
            fail("the scores are right but parents or tokens are not",
                 "parents = flat_index // vocab_size, tokens = flat_index % vocab_size")
        if not torch.allclose(ends.float(), want[3], atol=1e-5):
            if torch.allclose(ends.float(), want[3] / length ** penalty, atol=1e-5):
                fail("you applied the length penalty twice", "finished_scores = top_scores / "
                     "length ** length_penalty, with top_scores the plain sums")
            if torch.allclose(ends.float(), want[0] / length, atol=1e-5) and penalty != 1.0:
                fail("finished_scores divide by length, ignoring length_penalty",
                     "divide by length ** length_penalty")
            fail("finished_scores are not top_scores / length ** length_penalty")
    return right("the k best continuations over all beams by summed log-probability, their parent "
                 "beams and tokens, and each one's length-penalised score if it finishes now")


# ------------------------------------------------------------------ question 4: padded positions

def _masks() -> list[torch.Tensor]:
    left = torch.tensor([[0, 0, 0, 1, 1], [1, 1, 1, 1, 1], [0, 1, 1, 1, 1]])
    grown = torch.cat([left, torch.ones(3, 2, dtype=torch.long)], dim=1)  # two generated tokens
    return [left, grown]


@guarded
def check_positions(fn: Any, model: Any, tokenizer: Any) -> Feedback:
    """Does fn(attention_mask, new_tokens) give the position ids of the last new_tokens columns?"""
    if not callable(fn):
        fail(f"positions_for is {a_type(fn)}, expected a function",
             "def positions_for(attention_mask, new_tokens): ...")
    for mask in _masks():
        for new in (mask.shape[1], 1):
            got = expect_tensor(fn(mask.clone(), new), f"positions_for(mask, {new})", (3, new))
            want = position_ids_from_mask(mask)[:, -new:]
            real = mask[:, -new:] == 1
            if torch.equal(got.long()[real], want[real]):
                continue
            if new == 1 and bool((got == 0).all()):
                fail("your positions restart at 0 at every step",
                     "the new token's position counts every real token before it: compute "
                     "cumsum over the WHOLE mask (prompt + generated), then take the last column")
            counted = torch.arange(mask.shape[1])[None, -new:].expand(3, -1)
            if torch.equal(got.long(), counted):
                fail("your positions count the pads: they are column numbers",
                     "count real tokens only: attention_mask.cumsum(-1) - 1")
            if torch.equal(got.long()[real], want[real] + 1):
                fail("your positions are one too large", "the first real token has position 0: "
                     "cumsum(-1) - 1")
            fail(f"for the mask {mask.tolist()} and new_tokens={new} you gave {got.tolist()}, "
                 f"expected {want.tolist()} (pads may be anything)",
                 "attention_mask.cumsum(-1) - 1, then the last new_tokens columns")
    # the model: a left-padded cached greedy loop with these positions equals each prompt alone
    enc = left_padded(tokenizer, PADDED_PROMPTS, model.device)
    mask, cache, new_input, tokens = enc["attention_mask"], None, enc["input_ids"], []
    with torch.no_grad():
        for _ in range(4):
            positions = fn(mask, new_input.shape[1]).to(model.device)
            out = model(input_ids=new_input, attention_mask=mask, position_ids=positions,
                        past_key_values=cache, use_cache=True)
            cache, token = out.past_key_values, out.logits[:, -1].argmax(-1)
            tokens.append(token)
            mask = torch.cat([mask, mask.new_ones(mask.shape[0], 1)], dim=1)
            new_input = token[:, None]
    batch_tokens = torch.stack(tokens, 1)
    for row, text in enumerate(PADDED_PROMPTS):
        alone = tokenizer(text, return_tensors="pt").to(model.device)
        want = greedy_generate(model, alone["input_ids"], max_new_tokens=4, stop_at_eos=False).tokens[0]
        if not torch.equal(batch_tokens[row], want):
            fail(f"with your positions, the padded row {row} generates {batch_tokens[row].tolist()}, "
                 f"alone it generates {want.tolist()}")
    return right("positions count real tokens only and continue from the mask at every step: each "
                 "row of a left-padded batch generates what its prompt generates alone")


# ------------------------------------------------------------------ the beam-tree explorer

def beam_tree_table(model: Any, tokenizer: Any, prompt: str, num_beams: int = 3, steps: int = 4,
                    length_penalty: float = 1.0) -> pd.DataFrame:
    """Explorer: every candidate beam search considered for `prompt`, step by step, with its fate."""
    if not prompt.strip():
        raise ValueError("type a prompt first")
    enc = tokenizer(prompt, return_tensors="pt").to(model.device)
    result = beam_search(model, enc["input_ids"], num_beams=int(num_beams), max_new_tokens=int(steps),
                         length_penalty=float(length_penalty))
    tree = result.tree.copy()
    tree.insert(4, "text", [repr(tokenizer.decode([t])) for t in tree["token"]])
    return tree.round({"log_prob": 3, "total": 3})


def beam_tree_text(tree: pd.DataFrame) -> str:
    """Plain-text view of a beam tree: per step, the kept, finished and dropped candidates."""
    lines = []
    for step, rows in tree.groupby("step"):
        lines.append(f"step {step}:")
        for row in rows.itertuples():
            lines.append(f"  #{row.rank} {row.status:8} {row.text:>14} from #{row.parent}  "
                         f"total log-prob {row.total:.3f}")
    return "\n".join(lines)
