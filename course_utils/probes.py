"""Probes for checkers and tests: count the calls a piece of code makes, or script a model's choices.

An exercise that says "do not call generate()" or "run the encoder once" enforces it with these:

    with probes.count_calls(model) as calls:
        answer = learner_function(model, ...)
    if calls.generate:
        fail("you called model.generate()", "write the loop yourself")

Every probe removes its hooks and patches when the block ends, even when the code inside raises.
"""

from __future__ import annotations

import contextlib
import functools
import inspect
import sys
from dataclasses import dataclass, field
from typing import Any, Iterator

import torch


@dataclass
class CallCounts:
    """What count_calls saw: forward calls of the model and of named submodules, generate calls."""

    forward: int = 0  # calls of model.forward (generate() makes one per step)
    generate: int = 0  # calls of model.generate
    modules: dict[str, int] = field(default_factory=dict)  # forward calls per named submodule


@contextlib.contextmanager
def count_calls(model: torch.nn.Module, **modules: torch.nn.Module) -> Iterator[CallCounts]:
    """Count calls of `model`'s forward, of each named submodule's forward and of model.generate."""
    counts = CallCounts(modules={name: 0 for name in modules})

    def on_model(module: Any, args: Any) -> None:
        counts.forward += 1

    def on_module(name: str, module: Any, args: Any) -> None:
        counts.modules[name] += 1

    handles = [model.register_forward_pre_hook(on_model)]
    handles += [sub.register_forward_pre_hook(functools.partial(on_module, name))
                for name, sub in modules.items()]
    original = getattr(model, "generate", None)
    patched = original is not None and "generate" not in vars(model)
    if patched:
        @functools.wraps(original)
        def generate(*args: Any, **kwargs: Any) -> Any:
            counts.generate += 1
            return original(*args, **kwargs)

        model.generate = generate  # an instance attribute shadows the class's method
    try:
        yield counts
    finally:
        for handle in handles:
            handle.remove()
        if patched:
            del model.generate


@dataclass
class Seq2SeqCalls:
    """What watch_encoder_decoder saw: encoder runs, and the tokens each decoder call received."""

    encoder_runs: int = 0
    decoder_tokens: list[int] = field(default_factory=list)  # -1 when no ids or embeddings


@contextlib.contextmanager
def watch_encoder_decoder(model: Any) -> Iterator[Seq2SeqCalls]:
    """Record how often an encoder-decoder's encoder runs and how many tokens each decoder call gets."""
    calls = Seq2SeqCalls()

    def on_encoder(module: Any, args: Any, kwargs: dict) -> None:
        calls.encoder_runs += 1

    def on_decoder(module: Any, args: Any, kwargs: dict) -> None:
        ids = kwargs.get("input_ids", args[0] if args else None)
        if ids is None:
            ids = kwargs.get("inputs_embeds")
        calls.decoder_tokens.append(int(ids.shape[1]) if ids is not None else -1)

    handles = [model.get_encoder().register_forward_pre_hook(on_encoder, with_kwargs=True),
               model.get_decoder().register_forward_pre_hook(on_decoder, with_kwargs=True)]
    try:
        yield calls
    finally:
        for handle in handles:
            handle.remove()


@contextlib.contextmanager
def forced_tokens(model: Any, script: dict[int, int]) -> Iterator[None]:
    """Inside the block, lm_head call number n (from 0) strongly prefers token script[n]."""
    calls = {"n": 0}

    def hook(module: Any, args: Any, output: torch.Tensor) -> torch.Tensor:
        token = script.get(calls["n"])
        calls["n"] += 1
        if token is None:
            return output
        output = output.clone()
        output[..., token] += 1e3
        return output

    handle = model.lm_head.register_forward_hook(hook)
    try:
        yield
    finally:
        handle.remove()


@contextlib.contextmanager
def count_function_calls(**functions: Any) -> Iterator[dict[str, int]]:
    """Count calls of each named Python function, however it was imported or bound (by its code)."""
    codes = {inspect.unwrap(fn).__code__: name for name, fn in functions.items()}
    counts = {name: 0 for name in functions}
    previous = sys.getprofile()

    def profiler(frame: Any, event: str, arg: Any) -> None:
        if event == "call" and frame.f_code in codes:
            counts[codes[frame.f_code]] += 1

    sys.setprofile(profiler)
    try:
        yield counts
    finally:
        sys.setprofile(previous)
