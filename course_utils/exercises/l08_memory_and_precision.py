"""Lesson 08 exercises: checkers for memory, dtypes, device maps and offloading, and the "will it fit?"
explorer.

The references are computed independently of the learner's method: weights from a GPT-2 built on the
meta device and sized by accelerate's `compute_module_sizes`, logit gaps from the models themselves.
The dtype question has a private probe (`_dtype_choices_made`) that notices the course's own
`course_utils.precision` answer being called.
"""

from __future__ import annotations

import contextlib
import copy
import functools
from typing import Any, Callable, Iterator, Mapping

import pandas as pd
import torch

from ..device_maps import place
from ..feedback import Feedback, expect_number, fail, guarded, right
from ..memory import GB, GIB, bytes_per_value, format_bytes, will_it_fit

# -------------------------------------------------------------------------------------------------
# Question 1: the weights of a GPT-2 config at a dtype, in GB


def gpt2_config(n_embd: int, n_layer: int, n_head: int, vocab_size: int = 50257,
                n_positions: int = 1024) -> Any:
    """A GPT-2 config with these dimensions (tied embeddings, MLP 4 x n_embd)."""
    from transformers import GPT2Config

    return GPT2Config(n_embd=n_embd, n_layer=n_layer, n_head=n_head, vocab_size=vocab_size,
                      n_positions=n_positions, bos_token_id=vocab_size - 1, eos_token_id=vocab_size - 1)


QUESTION_CONFIG = dict(n_embd=1024, n_layer=24, n_head=16)  # GPT-2 medium
OTHER_CONFIGS = [(dict(n_embd=768, n_layer=12, n_head=12), torch.float32),  # GPT-2 small
                 (dict(n_embd=256, n_layer=3, n_head=4, vocab_size=5000, n_positions=128), torch.int8)]


@functools.lru_cache(maxsize=16)
def _meta_sizes(n_embd: int, n_layer: int, n_head: int, vocab_size: int, n_positions: int,
                dtype_name: str) -> tuple[int, int]:
    """(bytes of the tied model, bytes of the lm_head counted again) from a meta-device GPT-2."""
    from accelerate import init_empty_weights
    from accelerate.utils import compute_module_sizes
    from transformers import AutoModelForCausalLM

    config = gpt2_config(n_embd, n_layer, n_head, vocab_size, n_positions)
    with init_empty_weights():
        model = AutoModelForCausalLM.from_config(config, trust_remote_code=False)
    model.tie_weights()
    dtype = getattr(torch, dtype_name)
    return compute_module_sizes(model, dtype=dtype)[""], vocab_size * n_embd * bytes_per_value(dtype)


def reference_gb(config: Any, dtype: torch.dtype) -> float:
    """GB (10**9 bytes) of a GPT-2 config's weights at `dtype`, from a meta model and accelerate."""
    total, _ = _meta_sizes(config.n_embd, config.n_layer, config.n_head, config.vocab_size,
                           config.n_positions, str(dtype).removeprefix("torch."))
    return total / GB


def _close(value: float, target: float, rel: float = 1e-4) -> bool:
    return abs(value - target) <= rel * abs(target)


def _diagnose_size(value: float, config: Any, dtype: torch.dtype, label: str) -> None:
    """Fail with the mistake `value` shows, when it is not the GB of `config` at `dtype`."""
    expected = reference_gb(config, dtype)
    if _close(value, expected):
        return
    name = str(dtype).removeprefix("torch.")
    _, lm_head = _meta_sizes(config.n_embd, config.n_layer, config.n_head, config.vocab_size,
                             config.n_positions, name)
    if _close(value, expected * 8):
        fail(f"{label}: {value:.4g} is 8 times too large: you counted bits, not bytes",
             f"one {name} value takes {bytes_per_value(dtype) * 8} bits = "
             f"{bytes_per_value(dtype)} byte(s)")
    if _close(value, expected * GB / GIB):
        fail(f"{label}: {value:.4g} is in GiB (2**30 bytes); the question asks for GB (10**9 bytes)",
             "divide the bytes by 1e9, not by 2**30 or 1024**3")
    if _close(value, expected * GB):
        fail(f"{label}: {value:.4g} looks like bytes; the question asks for GB", "divide by 1e9")
    if _close(value, expected + lm_head / GB):
        fail(f"{label}: {value:.4g} counts the embedding twice: GPT-2's lm_head IS its token "
             "embedding (tied weights)",
             "a model built from a config is not tied yet: call model.tie_weights() before "
             "counting, or count wte once by hand")
    if _close(value, expected * 4 / bytes_per_value(dtype)) and bytes_per_value(dtype) != 4:
        fail(f"{label}: {value:.4g} is the fp32 size; the dtype asked for is {name}",
             "multiply the parameters by the bytes per value of the dtype you are given")
    fail(f"{label}: {value:.4g} GB, expected {expected:.4g} GB",
         "parameters (tied embedding once) x bytes per value / 1e9; a meta-device model counts "
         "the parameters for you")


@guarded
def check_weights_gb(weights_gb: Callable[[Any, torch.dtype], Any]) -> Feedback:
    """`weights_gb(config, dtype)` must give the GB of any GPT-2 config's weights at any dtype."""
    if not callable(weights_gb):
        fail(f"weights_gb is {type(weights_gb).__name__}, expected a function",
             "define it with def weights_gb(config, dtype): ... and run the cell")
    cases = [(QUESTION_CONFIG, torch.bfloat16)] + OTHER_CONFIGS
    for dims, dtype in cases:
        config = gpt2_config(**dims)
        label = f"weights_gb(n_embd={config.n_embd}, n_layer={config.n_layer}, {dtype})"
        value = expect_number(weights_gb(config, dtype), label)
        _diagnose_size(value, config, dtype, label)
    return right(f"your function gives the weights of {len(cases)} GPT-2 configs at bf16, fp32 "
                 "and int8, tied embedding counted once")


# -------------------------------------------------------------------------------------------------
# Question 2: the dtype a device should use

DEVICE_CASES = [("cpu", None, torch.float32), ("cuda", (7, 5), torch.float16),
                ("cuda", (7, 0), torch.float16), ("cuda", (8, 0), torch.bfloat16),
                ("cuda", (8, 6), torch.bfloat16), ("cuda", (9, 0), torch.bfloat16),
                ("mps", None, torch.float16)]
DEVICE_NAMES = {(7, 5): "a T4", (7, 0): "a V100", (8, 0): "an A100", (8, 6): "an RTX 3090",
                (9, 0): "an H100"}


@contextlib.contextmanager
def _dtype_choices_made() -> Iterator[list]:
    """Record every DtypeChoice made (course_utils.precision.dtype_for / pick_dtype) while active."""
    from .. import precision

    calls: list = []
    original = precision.DtypeChoice.__init__

    def spy(self: Any, *args: Any, **kwargs: Any) -> None:
        calls.append(args)
        original(self, *args, **kwargs)

    precision.DtypeChoice.__init__ = spy
    try:
        yield calls
    finally:
        precision.DtypeChoice.__init__ = original


@guarded
def check_choose_dtype(choose_dtype: Callable[[str, Any], Any]) -> Feedback:
    """`choose_dtype(device_type, capability)` must return the dtype the lesson's rule gives."""
    if not callable(choose_dtype):
        fail(f"choose_dtype is {type(choose_dtype).__name__}, expected a function",
             "define it with def choose_dtype(device_type, capability): ... and run the cell")
    for device_type, capability, expected in DEVICE_CASES:
        what = DEVICE_NAMES.get(capability, device_type) if capability else device_type
        with _dtype_choices_made() as calls:
            answer = choose_dtype(device_type, capability)
        if calls:
            fail("your function calls course_utils.precision (dtype_for or pick_dtype)",
                 "write the rule yourself: it is three questions about the device")
        if not isinstance(answer, torch.dtype):
            fail(f"choose_dtype({device_type!r}, {capability}) returned {answer!r}, expected a "
                 "torch.dtype", "return torch.float32, torch.float16 or torch.bfloat16 itself")
        if answer == expected:
            continue
        if capability and capability < (8, 0) and answer == torch.bfloat16:
            fail(f"{what} (compute capability {capability}) has no native bf16",
                 "torch.cuda.is_bf16_supported() says True there only because it can emulate "
                 "bf16 (including_emulation=True); native bf16 starts at compute capability 8.0")
        if capability and capability >= (8, 0) and answer == torch.float16:
            fail(f"{what} (compute capability {capability}) runs bf16 natively",
                 "bf16 keeps fp32's range (no overflow) at the same 2 bytes as fp16")
        if device_type == "cpu" and answer == torch.float16:
            fail("on the CPU, fp16 ran about 3 times slower than fp32 in the lesson's measurement",
                 "the lesson's rule for a CPU is fp32: exact, and not slower")
        if device_type == "cpu":
            fail(f"for the CPU you chose {answer}; the lesson's rule is fp32",
                 "half precision halves the memory but is not faster on most CPUs")
        fail(f"choose_dtype({device_type!r}, {capability}) returned {answer}, expected {expected}")
    return right(f"right dtype for all {len(DEVICE_CASES)} devices: CPU, T4, V100, A100, RTX 3090, "
                 "H100 and an Apple GPU")


# -------------------------------------------------------------------------------------------------
# Question 3: reading a device map


def offloaded_part(device_map: Mapping[str, Any], sizes: Mapping[str, int],
                   main: str) -> tuple[list[str], int]:
    """(module names, bytes) of the modules a device map puts off the `main` place ("cpu" or "gpu")."""
    names = [n for n, d in device_map.items() if place(d) != main]
    return names, int(sum(sizes.get(n, 0) for n in names))


@guarded
def check_device_map_reading(offloaded_modules: Any, offloaded_bytes: Any,
                             device_map: Mapping[str, Any], sizes: Mapping[str, int],
                             main: str) -> Feedback:
    """The modules off the main device, and their bytes, read from `device_map` and `sizes`."""
    names, expected = offloaded_part(device_map, sizes, main)
    if not isinstance(offloaded_modules, (list, tuple, set)):
        fail(f"offloaded_modules is {type(offloaded_modules).__name__}, expected a list of names")
    if set(offloaded_modules) != set(names):
        if set(offloaded_modules) == set(device_map) - set(names):
            fail("offloaded_modules lists the modules ON the main device",
                 f"keep the names whose device is not the main one ({main})")
        fail(f"offloaded_modules is {sorted(offloaded_modules)}, expected {len(names)} names "
             "from hf_device_map", "keep the names whose device is 'disk' (CPU path) or 'cpu' "
             "(GPU path)")
    value = expect_number(offloaded_bytes, "offloaded_bytes")
    total = int(sizes[""])
    if value == expected:
        return right(f"{len(names)} modules, {format_bytes(expected)}, live off the main device")
    if expected and value == 8 * expected:
        fail("offloaded_bytes is 8 times too large: bits, not bytes",
             "compute_module_sizes already gives bytes")
    if expected and (_close(value * GB, expected) or _close(value * GIB, expected)):
        fail("offloaded_bytes looks like GB or GiB; the question asks for bytes",
             "sum the sizes of those modules as they are")
    if value == total - expected:
        fail("offloaded_bytes counts the part on the main device", "sum only the offloaded modules")
    if value == total:
        fail("offloaded_bytes is the whole model's size", "sum only the offloaded modules")
    fail(f"offloaded_bytes is {value:,.0f}, expected {expected:,}",
         "sum sizes[name] over the names in offloaded_modules")


# -------------------------------------------------------------------------------------------------
# Question 4: the offloaded model's logits against the in-memory model's


def _logits(model: torch.nn.Module, inputs: Mapping[str, torch.Tensor]) -> torch.Tensor:
    first = next(model.parameters())
    target = first.device if first.device.type != "meta" else torch.device("cpu")
    with torch.no_grad():
        return model(**{k: v.to(target) for k, v in inputs.items()}).logits.float().cpu()


def logit_gap(model_a: torch.nn.Module, model_b: torch.nn.Module,
              inputs: Mapping[str, torch.Tensor]) -> float:
    """Largest absolute difference between two models' logits on `inputs`, over every position."""
    return float((_logits(model_a, inputs) - _logits(model_b, inputs)).abs().max())


def perturbed(model: torch.nn.Module, scale: float = 1.5) -> torch.nn.Module:
    """A copy of an in-memory GPT-2 whose final layer norm's weight is multiplied by `scale`."""
    other = copy.deepcopy(model)
    with torch.no_grad():
        other.transformer.ln_f.weight.mul_(scale)  # GPT-2's final layer norm
    return other


@guarded
def check_logit_gap(gap_fn: Callable[..., Any], offloaded: torch.nn.Module,
                    in_memory: torch.nn.Module, inputs: Mapping[str, torch.Tensor]) -> Feedback:
    """`gap_fn(a, b, inputs)`: the largest |logit difference| of two models, on any pair of models."""
    if not callable(gap_fn):
        fail(f"logit_gap is {type(gap_fn).__name__}, expected a function",
             "define it with def my_logit_gap(model_a, model_b, inputs): ... and run the cell")
    same = expect_number(gap_fn(offloaded, in_memory, inputs), "my_logit_gap(offloaded, in_memory)")
    if same < 0:
        fail(f"the gap is {same:.3g}, negative", "take the absolute value of the difference")
    if same > 1e-4:
        fail(f"your gap between the offloaded and the in-memory model is {same:.3g}; they compute "
             "the same logits", "run both models on the same inputs, without sampling")
    changed = perturbed(in_memory)
    expected = logit_gap(changed, in_memory, inputs)
    value = expect_number(gap_fn(changed, in_memory, inputs), "my_logit_gap(changed, in_memory)")
    if _close(value, expected, 1e-3):
        return right(f"0 between offloaded and in-memory, and {expected:.3g} for a model whose last "
                     "layer norm was changed: your function measures what it should")
    a, b = _logits(changed, inputs), _logits(in_memory, inputs)
    if _close(value, float((a.softmax(-1) - b.softmax(-1)).abs().max()), 1e-3):
        fail("you compared probabilities; the question asks for logits",
             "probabilities squash most differences towards 0: compare .logits directly")
    if _close(value, float((a[:, -1] - b[:, -1]).abs().max()), 1e-3):
        fail("you compared only the last position", "take the maximum over every position")
    if _close(value, float((a - b).max()), 1e-3) or _close(value, float((b - a).max()), 1e-3):
        fail("you took the largest signed difference", "use .abs() before .max()")
    fail(f"for a model whose last layer norm was scaled by 1.5, your gap is {value:.4g}, expected "
         f"{expected:.4g}", "(logits_a - logits_b).abs().max() over the whole logits tensor")


# -------------------------------------------------------------------------------------------------
# The "will it fit?" explorer

EXPLORER_DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16,
                   "int8": torch.int8}


def fit_breakdown(billions: float, dtype: str, device_gib: float) -> pd.DataFrame:
    """Will a model of `billions` parameters at `dtype` fit `device_gib` GiB? One row per use."""
    if dtype not in EXPLORER_DTYPES:
        raise ValueError(f"dtype is one of {list(EXPLORER_DTYPES)}, not {dtype!r}")
    if billions <= 0 or device_gib <= 0:
        raise ValueError("the model size and the device memory must be positive")
    n_params = round(billions * 1e9)
    available = round(device_gib * GIB)
    rows = []
    for purpose, label in [("inference", "inference (weights + 20%)"),
                           ("training", "training with Adam (4 x weights, + activations)")]:
        report = will_it_fit(n_params, EXPLORER_DTYPES[dtype], available, purpose)
        rows.append({"use": label, "needs (GiB)": round(report.needed / GIB, 2),
                     "device (GiB)": round(available / GIB, 2),
                     "fits": "yes" if report.fits else "NO",
                     "headroom (GiB)": round((available - report.needed) / GIB, 2)})
    weights = will_it_fit(n_params, EXPLORER_DTYPES[dtype], available).weights
    rows.insert(0, {"use": f"weights alone ({dtype})", "needs (GiB)": round(weights / GIB, 2),
                    "device (GiB)": round(available / GIB, 2),
                    "fits": "yes" if weights <= available else "NO",
                    "headroom (GiB)": round((available - weights) / GIB, 2)})
    return pd.DataFrame(rows)


def plot_fit(table: pd.DataFrame) -> Any:
    """Bars of what each use needs against a line at the device's memory (GiB)."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 2.6))
    colours = ["#009E73" if f == "yes" else "#D55E00" for f in table["fits"]]
    ax.barh(table["use"], table["needs (GiB)"], color=colours)
    ax.axvline(float(table["device (GiB)"].iloc[0]), color="black", linestyle="--",
               label="device memory")
    ax.set_xlabel("memory (GiB)")
    ax.set_ylabel("use")
    ax.invert_yaxis()
    ax.legend(fontsize=8)
    ax.set_title("green fits, orange does not")
    fig.tight_layout()
    return fig
