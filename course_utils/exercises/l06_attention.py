"""Lesson 06 (attention): the head explorer's functions and the exercise checkers (each returns Feedback).

The checkers compare a learner's function with the model's own numbers (`output_attentions`,
`hidden_states`, the modules' parameter counts) and name the usual mistakes: a forgotten
sqrt(head_dim), a transposed Conv1D weight, the mask applied after the softmax, heads merged in the
wrong order. Each "do not" of the exercises is enforced by `_forbidden_calls`, a private probe that
records (with sys.setprofile) whether the learner's code entered a forbidden function.
"""

from __future__ import annotations

import contextlib
import math
import sys
from typing import Any, Callable, Iterator, Optional

import pandas as pd
import torch
import torch.nn.functional as F

from .. import attention as course_attention
from ..feedback import Feedback, expect_int, expect_tensor, fail, guarded, right

# The texts the exercise notebook and the explorer use.
TEXT = "The cat sat on the mat because it was tired"
OTHER_TEXT = "After school the children went to the park"
MASK_SIZES = (1, 2, 5, 9)
ATOL = 1e-5  # relative to the largest value compared; float rounding is ~1e-7, each named mistake far more


# ---------- the head explorer ----------------------------------------------------------------

def token_labels(tokenizer: Any, ids: list[int]) -> list[str]:
    """'position: token' labels (repr, so spaces show) for the rows and columns of a heatmap."""
    return [f"{i}: {tokenizer.decode([t])!r}" for i, t in enumerate(ids)]


def attention_maps(model: Any, tokenizer: Any, text: str) -> tuple[list[str], tuple[torch.Tensor, ...]]:
    """(token labels, the model's attention weights per layer, each (heads, tokens, tokens))."""
    enc = tokenizer(text, return_tensors="pt").to(model.device)
    if enc["input_ids"].shape[1] == 0:
        raise ValueError("the text is empty: type at least one word")
    with torch.no_grad():
        out = model(**enc, output_attentions=True)
    if not out.attentions or out.attentions[0] is None:
        raise ValueError("the model returned no attention weights: load it with "
                         "attn_implementation='eager' (sdpa never materialises them)")
    labels = token_labels(tokenizer, enc["input_ids"][0].tolist())
    return labels, tuple(a[0].float().cpu() for a in out.attentions)


def head_pattern_table(model: Any, tokenizer: Any, text: str, layer: int = 0, head: int = 0) -> pd.DataFrame:
    """One head's attention weights for `text`: a row per query token, a column per key token."""
    n_layer, n_head = model.config.n_layer, model.config.n_head
    if not 0 <= layer < n_layer or not 0 <= head < n_head:
        raise ValueError(f"layer must be in 0..{n_layer - 1} and head in 0..{n_head - 1}")
    labels, maps = attention_maps(model, tokenizer, text)
    return pd.DataFrame(maps[layer][head].numpy().round(3), index=labels, columns=labels)


def head_scores(maps: tuple[torch.Tensor, ...]) -> pd.DataFrame:
    """Per layer and head: mean weight on the previous token, on the first token, and on itself."""
    rows = []
    for layer, weights in enumerate(maps):
        tokens = weights.shape[-1]
        for head in range(weights.shape[0]):
            w = weights[head]
            later = torch.arange(1, tokens)  # queries that have a previous token
            rows.append({"layer": layer, "head": head,
                         "previous token": float(w[later, later - 1].mean()) if tokens > 1 else float("nan"),
                         "first token": float(w[later, 0].mean()) if tokens > 1 else float("nan"),
                         "itself": float(w.diagonal().mean())})
    return pd.DataFrame(rows).round(3)


def plot_head_pattern(table: pd.DataFrame) -> Any:
    """Heatmap of a head_pattern_table(...): keys across, queries down, weight 0..1."""
    import matplotlib.pyplot as plt

    size = 2.5 + 0.35 * len(table)
    fig, ax = plt.subplots(figsize=(size + 1, size))
    image = ax.imshow(table.to_numpy(), cmap="viridis", vmin=0, vmax=1)
    ax.set_xticks(range(len(table.columns)), table.columns, rotation=90, fontsize=8)
    ax.set_yticks(range(len(table.index)), table.index, fontsize=8)
    ax.set_xlabel("key (the token attended to)")
    ax.set_ylabel("query (the token attending)")
    fig.colorbar(image, ax=ax, label="attention weight (0 to 1)")
    fig.tight_layout()
    return fig


# ---------- the probe: which forbidden functions did the learner's code enter? ----------------

def _functions_of(*objects: Any) -> dict[Any, str]:
    """Code objects (Python functions) and builtins to watch, keyed for identity, with their names."""
    found: dict[Any, str] = {}
    for obj in objects:
        if isinstance(obj, type(sys)):  # a module: every function defined in it
            for name, value in vars(obj).items():
                if callable(value) and getattr(value, "__module__", None) == obj.__name__ and \
                        hasattr(value, "__code__"):
                    found[value.__code__] = f"{obj.__name__}.{name}"
        elif hasattr(obj, "__code__"):
            found[obj.__code__] = getattr(obj, "__qualname__", repr(obj))
        else:
            found[obj] = getattr(obj, "__name__", repr(obj))
    return found


def _gpt2_forwards() -> list[Any]:
    from transformers.models.gpt2 import modeling_gpt2 as gpt2
    from transformers.pytorch_utils import Conv1D

    return [gpt2.GPT2Block.forward, gpt2.GPT2Attention.forward, gpt2.GPT2MLP.forward,
            gpt2.eager_attention_forward, Conv1D.forward, F.scaled_dot_product_attention,
            F.multi_head_attention_forward]


@contextlib.contextmanager
def forbidden_calls(watched: dict[Any, str]) -> Iterator[list[str]]:
    """Inside the block, record the names of watched functions that run (Python or builtin).

    The one probe of this lesson, kept here (course_utils/probes.py is the layout's generic home).
    """
    entered: list[str] = []

    def profile(frame: Any, event: str, arg: Any) -> None:
        if event == "call":
            name = watched.get(frame.f_code)
        elif event == "c_call":
            name = watched.get(arg) if _hashable(arg) else None
        else:
            return
        if name is not None and name not in entered:
            entered.append(name)

    previous = sys.getprofile()
    sys.setprofile(profile)
    try:
        yield entered
    finally:
        sys.setprofile(previous)


def _hashable(value: Any) -> bool:
    try:
        hash(value)
    except TypeError:
        return False
    return True


def run_watched(fn: Callable[..., Any], watched: dict[Any, str], rule: str, *args: Any) -> Any:
    """fn(*args) under the probe; fail naming the first forbidden function it entered."""
    with forbidden_calls(watched) as entered, torch.no_grad():
        result = fn(*args)
    if entered:
        fail(f"your function calls {entered[0]}, which the question rules out", rule)
    return result


def _expect_callable(fn: Any, name: str, signature: str) -> None:
    if fn is None:
        fail(f"{name} is None, expected a function", f"define it with def {signature}: ... and run the cell")
    if not callable(fn):
        fail(f"{name} is a {type(fn).__name__}, expected a function",
             "the answer is the function itself, not a value it returned")


def _gap(a: torch.Tensor, b: torch.Tensor) -> float:
    """Largest absolute difference, relative to b's largest magnitude when that exceeds 1."""
    a, b = a.detach().float().cpu(), b.detach().float().cpu()
    if a.shape != b.shape:
        return float("inf")
    if not a.numel():
        return 0.0
    return float((a - b).abs().max()) / max(1.0, float(b.abs().max()))


def _name_mistake(answer: torch.Tensor, variants: dict[str, torch.Tensor]) -> Optional[str]:
    """The name of the first wrong variant the answer equals, if any."""
    for why, value in variants.items():
        if _gap(answer, value) <= ATOL:
            return why
    return None


def _mask(n: int, like: torch.Tensor) -> torch.Tensor:
    """The additive causal mask, written here again so the references never enter course_utils.attention."""
    keep = torch.tril(torch.ones(n, n, dtype=torch.bool, device=like.device))
    zeros = torch.zeros(n, n, dtype=like.dtype, device=like.device)
    return zeros.masked_fill(~keep, torch.finfo(like.dtype).min)


def _gelu_new(x: torch.Tensor) -> torch.Tensor:
    return 0.5 * x * (1.0 + torch.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * x ** 3)))


# ---------- question 1: the causal mask -------------------------------------------------------

def mask_watch() -> dict[Any, str]:
    """What question 1 rules out: transformers' masking_utils and the course's mask helpers."""
    import transformers.masking_utils as masking

    return _functions_of(masking, course_attention.causal_mask, course_attention.attention_bias)


@guarded
def check_causal_mask(fn: Any) -> Feedback:
    """Does fn(n_tokens) return the additive (n, n) causal mask: 0 on and below the diagonal, -inf above?"""
    _expect_callable(fn, "my_causal_mask", "my_causal_mask(n_tokens)")
    rule = "build it yourself with torch.tril / torch.triu (not transformers' masking_utils or the course's)"
    for n in MASK_SIZES:
        mask = expect_tensor(run_watched(fn, mask_watch(), rule, n), f"my_causal_mask({n})")
        if mask.dtype == torch.bool:
            fail("your mask is boolean: it says where to look, but attention *adds* the mask to the "
                 "scores", "return a float tensor: 0.0 where allowed, float('-inf') (or the dtype's "
                 "min) where not")
        if not mask.is_floating_point():
            fail(f"your mask has dtype {mask.dtype}; it must be a float tensor added to the scores")
        if tuple(mask.shape) != (n, n):
            fail(f"my_causal_mask({n}) has shape {tuple(mask.shape)}, expected ({n}, {n})",
                 "one row per query, one column per key")
        mask = mask.detach().float().cpu()
        below = torch.tril(torch.ones(n, n, dtype=torch.bool))
        blocked_ok = bool((mask[~below] <= -1e4).all())
        allowed_ok = bool((mask[below] == 0).all())
        if allowed_ok and blocked_ok:
            continue
        strict_lower = below & ~torch.eye(n, dtype=torch.bool)
        if n > 1 and bool((mask[~below] == 0).all()) and bool((mask[strict_lower] <= -1e4).all()):
            fail("your mask hides the past and shows the future: it is transposed",
                 "torch.tril keeps the lower triangle (key j <= query i)")
        if bool((mask.diagonal() <= -1e4).all()):
            fail("your mask hides the diagonal: a token must be able to attend to itself (row 0 "
                 "would have nothing left and its softmax would be NaN)", "use torch.tril, which "
                 "keeps the diagonal (diagonal=0)")
        if bool(((mask == 0) | (mask == 1)).all()):
            fail("your mask holds 0s and 1s: that is a multiplicative mask, but attention adds the "
                 "mask to the scores before the softmax", "0.0 where allowed, float('-inf') where not")
        if allowed_ok:
            fail(f"above the diagonal your mask holds {float(mask[~below].max()):.3g}; that is not "
                 "negative enough for softmax to give exactly 0", "use float('-inf') or "
                 "torch.finfo(torch.float32).min")
        fail(f"my_causal_mask({n}) is not 0 on and below the diagonal and -inf above it",
             "0.0 on and below the diagonal (where torch.tril keeps ones), float('-inf') above it")
    return right(f"additive causal masks for n = {', '.join(map(str, MASK_SIZES))}: 0 where a "
                 "query may look, -inf where it may not")


# ---------- question 2: one head's attention weights ------------------------------------------

def _head_parts(block: Any, x: torch.Tensor, head: int, layer_norm: bool = True) -> tuple[torch.Tensor, ...]:
    width, n_head = x.shape[-1], block.attn.num_heads
    head_dim = width // n_head
    h = block.ln_1(x) if layer_norm else x
    qkv = h @ block.attn.c_attn.weight + block.attn.c_attn.bias
    q, k, v = (part[..., head * head_dim:(head + 1) * head_dim] for part in qkv.split(width, dim=-1))
    return q, k, v, torch.tensor(float(head_dim))


def head_weights_reference(block: Any, x: torch.Tensor, head: int) -> torch.Tensor:
    """Attention weights (batch, tokens, tokens) of one head of `block` for its input `x`."""
    q, k, _, head_dim = _head_parts(block, x, head)
    scores = q @ k.transpose(-1, -2) / head_dim.sqrt()
    return torch.softmax(scores + _mask(x.shape[1], scores), -1)


def _head_variants(block: Any, x: torch.Tensor, head: int) -> dict[str, torch.Tensor]:
    """The usual wrong answers for one head's weights, each named."""
    q, k, _, head_dim = _head_parts(block, x, head)
    n = x.shape[1]
    mask = _mask(n, q)
    keep = torch.tril(torch.ones(n, n, dtype=torch.bool, device=q.device))
    scores = q @ k.transpose(-1, -2)
    qr, kr, _, _ = _head_parts(block, x, head, layer_norm=False)
    whole = x.shape[-1] ** 0.5
    return {
        "you forgot to divide the scores by sqrt(head_dim)": torch.softmax(scores + mask, -1),
        "you divided by sqrt(n_embd), the whole width, instead of sqrt(head_dim)":
            torch.softmax(scores / whole + mask, -1),
        "you divided by head_dim instead of sqrt(head_dim)": torch.softmax(scores / head_dim + mask, -1),
        "you applied the mask after the softmax (zeroing the future), so the rows no longer sum to 1":
            torch.softmax(scores / head_dim.sqrt(), -1).masked_fill(~keep, 0.0),
        "there is no causal mask: every token attends to later tokens too":
            torch.softmax(scores / head_dim.sqrt(), -1),
        "you skipped block.ln_1: attention reads the layer-normalised input":
            torch.softmax(qr @ kr.transpose(-1, -2) / head_dim.sqrt() + mask, -1),
        "queries and keys are swapped (K Q^T instead of Q K^T)":
            torch.softmax(k @ q.transpose(-1, -2) / head_dim.sqrt() + mask, -1),
    }


def head_watch() -> dict[Any, str]:
    """What question 2 rules out: the attention modules, Conv1D, sdpa and course_utils.attention."""
    return _functions_of(course_attention, *_gpt2_forwards())


@guarded
def check_head_weights(fn: Any, model: Any, tokenizer: Any) -> Feedback:
    """Does fn(block, x, head) give the model's own output_attentions for that layer and head?"""
    _expect_callable(fn, "head_weights", "head_weights(block, x, head)")
    if getattr(model.config, "_attn_implementation", "eager") != "eager":
        fail("this model was loaded with sdpa attention, which returns no weights to compare with",
             "load it with attn_implementation='eager' (the setup cell does)")
    rule = ("compute it from block.attn.c_attn.weight and .bias (you may call block.ln_1), not by "
            "running the attention module, a Conv1D, scaled_dot_product_attention or course_utils.attention")
    n_layer, n_head = model.config.n_layer, model.config.n_head
    for text, layer, head in ((TEXT, 0, 0), (OTHER_TEXT, n_layer - 1, n_head - 1)):
        enc = tokenizer(text, return_tensors="pt").to(model.device)
        with torch.no_grad():
            out = model(**enc, output_attentions=True, output_hidden_states=True)
        block, x = model.transformer.h[layer], out.hidden_states[layer]
        want = out.attentions[layer][:, head]
        got = expect_tensor(run_watched(fn, head_watch(), rule, block, x, head),
                            f"head_weights(block {layer}, x, head {head})")
        if got.dim() == 4 and got.shape[1] == n_head:
            fail(f"you returned every head, shape {tuple(got.shape)}", "return only the head asked "
                 "for: weights[:, head], shape (batch, tokens, tokens)")
        if tuple(got.shape) != tuple(want.shape):
            fail(f"head_weights returned shape {tuple(got.shape)}, expected {tuple(want.shape)} "
                 "(batch, query tokens, key tokens)")
        if not bool(torch.isfinite(got).all()) or float(got.min()) < -1e-6:
            fail("your weights hold negative or infinite values: you added the mask after the "
                 "softmax", "add the -inf mask to the scores, then take the softmax")
        if _gap(got, want) <= ATOL:
            continue
        why = _name_mistake(got, _head_variants(block, x, head))
        if why:
            fail(f"layer {layer}, head {head}: {why}")
        fail(f"layer {layer}, head {head}: your weights differ from output_attentions by up to "
             f"{_gap(got, want):.3g}", "this head's q and k are columns head*head_dim to "
             "(head+1)*head_dim of the Q and K thirds of x @ W + b")
    return right("equal to the model's output_attentions for the first head of the first block "
                 "and the last head of the last block")


# ---------- question 3: a whole block ----------------------------------------------------------

def _block_variant(block: Any, x: torch.Tensor, scale: bool = True, transposed_proj: bool = False,
                   merge: str = "right", mask: str = "before", exact_gelu: bool = False) -> torch.Tensor:
    """A GPT-2 block computed with one named mistake (or none, with the defaults)."""
    attn, width = block.attn, x.shape[-1]
    n_head = attn.num_heads
    head_dim = width // n_head
    h = block.ln_1(x)
    qkv = h @ attn.c_attn.weight + attn.c_attn.bias
    batch, n = x.shape[:2]
    q, k, v = (p.view(batch, n, n_head, head_dim).transpose(1, 2) for p in qkv.split(width, dim=-1))
    scores = q @ k.transpose(-1, -2) / (math.sqrt(head_dim) if scale else 1.0)
    keep = torch.tril(torch.ones(n, n, dtype=torch.bool, device=x.device))
    if mask == "before":
        weights = torch.softmax(scores + _mask(n, scores), -1)
    elif mask == "after":
        weights = torch.softmax(scores, -1).masked_fill(~keep, 0.0)
    else:
        weights = torch.softmax(scores, -1)
    mixed = weights @ v  # (batch, heads, tokens, head_dim)
    if merge == "right":
        merged = mixed.transpose(1, 2).reshape(batch, n, width)
    elif merge == "no transpose":
        merged = mixed.reshape(batch, n, width)
    else:  # head_dim before head
        merged = mixed.permute(0, 2, 3, 1).reshape(batch, n, width)
    proj = attn.c_proj.weight.T if transposed_proj else attn.c_proj.weight
    x = x + merged @ proj + attn.c_proj.bias
    inner = block.ln_2(x) @ block.mlp.c_fc.weight + block.mlp.c_fc.bias
    act = F.gelu(inner) if exact_gelu else _gelu_new(inner)
    return x + act @ block.mlp.c_proj.weight + block.mlp.c_proj.bias


def _block_variants(block: Any, x: torch.Tensor) -> dict[str, torch.Tensor]:
    return {
        "you forgot to divide the scores by sqrt(head_dim)": _block_variant(block, x, scale=False),
        "attn.c_proj's weight is transposed: Conv1D stores (in, out), so it is x @ W, not x @ W.T "
        "as for nn.Linear": _block_variant(block, x, transposed_proj=True),
        "heads merged in the wrong order: (batch, heads, tokens, head_dim) was reshaped to (batch, "
        "tokens, width) without moving heads next to head_dim first (transpose(1, 2))":
            _block_variant(block, x, merge="no transpose"),
        "heads merged in the wrong order: head_dim ended up before the head index; the width must "
        "be head 0's head_dim values, then head 1's, ...": _block_variant(block, x, merge="dim first"),
        "you applied the mask after the softmax (zeroing the future), so the weights no longer sum "
        "to 1": _block_variant(block, x, mask="after"),
        "there is no causal mask: every token attends to later tokens too":
            _block_variant(block, x, mask="none"),
        "you used the exact GELU; GPT-2 uses gelu_new, its tanh approximation":
            _block_variant(block, x, exact_gelu=True),
    }


def block_watch() -> dict[Any, str]:
    """What question 3 rules out: the block and its modules' forwards, sdpa, course_utils.attention."""
    return _functions_of(course_attention, *_gpt2_forwards())


@guarded
def check_block(fn: Any, model: Any, tokenizer: Any) -> Feedback:
    """Does fn(block, x) equal the model's next hidden state for every block tried?"""
    _expect_callable(fn, "my_block", "my_block(block, x)")
    rule = ("use the weights (x @ W + b) and the layer norms block.ln_1 / block.ln_2; do not call "
            "block, block.attn, block.mlp, a Conv1D, scaled_dot_product_attention or course_utils.attention")
    n_layer = model.config.n_layer
    enc = tokenizer(TEXT, return_tensors="pt").to(model.device)
    with torch.no_grad():
        states = model(**enc, output_hidden_states=True).hidden_states
    for layer in sorted({0, n_layer - 1}):
        block, x = model.transformer.h[layer], states[layer]
        got = expect_tensor(run_watched(fn, block_watch(), rule, block, x),
                            f"my_block(block {layer}, x)", tuple(x.shape))
        last = layer == n_layer - 1
        with torch.no_grad():
            shown = model.transformer.ln_f(got) if last else got
        if _gap(shown, states[layer + 1]) <= ATOL:
            continue
        if last and _gap(got, states[layer + 1]) <= ATOL:
            fail("your last block applies ln_f", "ln_f belongs to the model, after the last block; "
                 "a block ends with its MLP's residual sum")
        if not bool(torch.isfinite(got).all()) or float(got.abs().max()) > 1e6:
            fail(f"block {layer}: your output holds huge or infinite values: the -inf mask was added "
                 "after the softmax", "add the mask to the scores, then take the softmax")
        with torch.no_grad():
            why = _name_mistake(got, _block_variants(block, x))
        if why:
            fail(f"block {layer}: {why}")
        fail(f"block {layer}: your output differs from hidden_states[{layer + 1}] by up to "
             f"{_gap(shown, states[layer + 1]):.3g}", "x = x + attention(ln_1(x)), then "
             "x = x + mlp(ln_2(x)); compare each step with block.attn(...) outside your function")
    return right(f"equal to hidden_states[1] (block 0) and, after ln_f, to hidden_states[{n_layer}] "
                 f"(block {n_layer - 1})")


# ---------- question 4: parameters of one block from the config -------------------------------

def probe_configs(config: Any) -> list[Any]:
    """The learner's config and two others (one with n_inner set), so a typed number cannot pass."""
    from transformers import GPT2Config

    small = dict(n_layer=2, vocab_size=100, bos_token_id=None, eos_token_id=None)
    return [config, GPT2Config(n_embd=48, n_head=4, **small),
            GPT2Config(n_embd=40, n_head=5, n_inner=100, **small)]


def counted_block_parameters(config: Any) -> int:
    """Parameters of one GPT-2 block, counted on a freshly built GPT2Block."""
    from transformers.models.gpt2.modeling_gpt2 import GPT2Block

    return sum(p.numel() for p in GPT2Block(config).parameters())


def _count_variants(config: Any) -> dict[str, int]:
    d = config.n_embd
    inner = config.n_inner if config.n_inner is not None else 4 * d
    attention, mlp, norms = 4 * d * d + 4 * d, 2 * d * inner + inner + d, 4 * d
    return {
        "you counted the weight matrices but not the biases (every Conv1D has one)":
            4 * d * d + 2 * d * inner + norms,
        "you left out the two layer norms (ln_1, ln_2: a weight and a bias of n_embd each)":
            attention + mlp,
        "each layer norm has a weight AND a bias: 2 * n_embd each, 4 * n_embd for the two":
            attention + mlp + 2 * d,
        "c_attn projects to Q, K and V at once: n_embd x 3 n_embd (+ 3 n_embd)":
            (d * d + d) * 2 + mlp + norms,
        "the MLP's inner width is config.n_inner when it is set (4 * n_embd only when it is None)":
            attention + 2 * d * 4 * d + 4 * d + d + norms,
    }


def count_watch() -> dict[Any, str]:
    """What question 4 rules out: building modules, parameters(), the course's counting helpers."""
    return _functions_of(course_attention.block_parameter_counts, torch.nn.Module.__init__,
                         torch.nn.Module.parameters, torch.nn.Module.named_parameters,
                         counted_block_parameters)


@guarded
def check_block_parameters(fn: Any, config: Any) -> Feedback:
    """Does fn(config) compute one block's parameter count, for this config and two others?"""
    _expect_callable(fn, "block_params", "block_params(config)")
    rule = "compute it from config.n_embd and config.n_inner; do not build a module or count its parameters()"
    for number, cfg in enumerate(probe_configs(config)):
        got = expect_int(run_watched(fn, count_watch(), rule, cfg), "block_params(config)")
        want = counted_block_parameters(cfg)
        if got == want:
            continue
        where = (f"for a config with n_embd={cfg.n_embd}, n_inner={cfg.n_inner}" if number else
                 "for the lesson's config")
        for why, value in _count_variants(cfg).items():
            if got == value:
                fail(f"{where}: {got:,} instead of {want:,}", why)
        if number:  # right for the lesson's config, wrong here
            fail(f"right for the lesson's config, but {where} your function returns {got:,} "
                 f"instead of {want:,}: the number looks typed, not computed",
                 "compute the count from config.n_embd and config.n_inner")
        fail(f"{where}: {got:,} instead of {want:,}", "attention: c_attn and c_proj; MLP: c_fc and "
             "c_proj; each with its bias; plus ln_1 and ln_2")
    return right("one block's parameters computed from the config, equal to the module's count "
                 "for three configs")
