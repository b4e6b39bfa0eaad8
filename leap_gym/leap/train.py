"""One training phase of the LEAP loop through TRL: SFT (or DPO) with LoRA; 4-bit QLoRA on CUDA.

**Device plan.** On CUDA the base loads in 4-bit NF4 with double quantisation and bf16 compute (QLoRA),
``prepare_model_for_kbit_training`` with non-reentrant gradient checkpointing, and the paged 8-bit AdamW. On
CPU nothing is quantised: bitsandbytes' CPU 4-bit path repacks weights into an inference layout after any
``generate`` and from then on silently passes no gradient through the base linears, and LEAP alternates
rollouts and training every iteration. CPU training is plain fp32 LoRA (optionally bf16 autocast), without
gradient checkpointing (it only costs time for small models).

**Continuing across iterations.** Every iteration starts from the previous iteration's weights:

- ``continue_mode="merge"`` (default): a fresh LoRA adapter is trained on the previous *merged* model, then
  merged into it and saved as a full checkpoint (``model/``); the adapter alone is kept in ``adapter/``. This
  is what the LEAP authors did (train, merge, push; the next iteration starts from the merged model). Under
  QLoRA the adapter is merged into a bf16 reload of the base, never into the 4-bit weights.
- ``continue_mode="stack"``: the base stays untouched on disk and the same adapter keeps training from
  iteration to iteration (``adapter/`` holds the latest); cheaper on disk for large bases.

A base the library built from a config (randomly initialised) cannot be steered by LoRA alone (its frozen
random embeddings and head stall the loss): ``lora_config_for`` then also trains ``embed_tokens`` and
``lm_head`` (``modules_to_save``), which ``merge`` folds back into the checkpoint.

Outputs are written to ``<output_dir>.partial`` and renamed into place when complete, so a killed run never
leaves a half-written model where a finished one is expected. Trainer checkpoints are saved there every
``checkpoint_steps``; training the same inputs again resumes from the last complete one
(``resume_from_checkpoint``), as with any ``Trainer``.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from leap_gym.agents.conversation import TRUNK, encode_tree, tree_attention_mask
from leap_gym.leap.config import TrainingConfig
from leap_gym.leap.layout import TrainOutput
from leap_gym.leap.logs import quiet_trainer
from leap_gym.leap.trackers import trainer_report_to
from leap_gym.memory import release_freed_memory
from leap_gym.models import is_from_scratch, lora_config_for

# torch, transformers, peft, trl and datasets (the train extra) are imported inside the functions that use
# them, so importing the LEAP loop (and ``leap-gym envs``) stays light.

CPU_QLORA_NOTICE = ("leap-gym: QLoRA (4-bit) needs CUDA; training plain LoRA in full precision on CPU "
                    "(bitsandbytes' CPU 4-bit path breaks LoRA gradients after generation).")


@dataclass
class QuantPlan:
    """How a training phase loads and optimises the model on a device; built without touching the device."""

    device: str
    quantize: bool
    bnb: dict[str, Any] = field(default_factory=dict)  # BitsAndBytesConfig kwargs (dtype given by name)
    prepare: dict[str, Any] = field(default_factory=dict)  # prepare_model_for_kbit_training kwargs
    trainer: dict[str, Any] = field(default_factory=dict)  # SFTConfig/DPOConfig device-related kwargs
    load_dtype: str = "float32"
    notice: str | None = None


# Under quantize=auto, a base smaller than this (bf16 bytes) trains as bf16 LoRA on CUDA: on an H200 4-bit
# made SmolLM2-135M's steps 1.3-2.1x slower and saved no memory (BENCHMARKS.md, "GPU: SmolLM2-135M shape").
QLORA_MIN_BYTES = 2 << 30


def quantization_plan(device: str, cfg: TrainingConfig, weight_bytes: int | None = None) -> QuantPlan:
    """The QLoRA plan on CUDA, plain LoRA on CPU (see the module doc for why CPU never quantises).
    ``weight_bytes``: the base's size in bf16 when known; ``auto`` quantises only bases of ``QLORA_MIN_BYTES``
    or more (small ones are faster in bf16 and 4-bit saves them nothing)."""
    cuda = device.startswith("cuda")
    lora = cfg.finetune == "lora"
    if cfg.quantize == "always" and not cuda:
        raise RuntimeError("training.quantize=always needs CUDA: bitsandbytes' 4-bit path on CPU silently "
                           "breaks LoRA gradients; use quantize=auto or never")
    small = weight_bytes is not None and weight_bytes < QLORA_MIN_BYTES
    if cuda and lora and (cfg.quantize == "always" or (cfg.quantize == "auto" and not small)):
        return QuantPlan(
            device=device, quantize=True,
            bnb={"load_in_4bit": True, "bnb_4bit_quant_type": "nf4", "bnb_4bit_use_double_quant": True,
                 "bnb_4bit_compute_dtype": "bfloat16"},
            prepare={"use_gradient_checkpointing": True,
                     "gradient_checkpointing_kwargs": {"use_reentrant": False}},
            trainer={"bf16": True, "use_cpu": False, "optim": "paged_adamw_8bit",
                     "gradient_checkpointing": True,
                     "gradient_checkpointing_kwargs": {"use_reentrant": False}},
            load_dtype="bfloat16")
    if cuda:
        return QuantPlan(device=device, quantize=False,
                         trainer={"bf16": True, "use_cpu": False, "optim": "adamw_torch_fused",
                                  "gradient_checkpointing": True,
                                  "gradient_checkpointing_kwargs": {"use_reentrant": False}},
                         load_dtype="bfloat16")
    notice = CPU_QLORA_NOTICE if lora and cfg.quantize == "auto" else None
    # bf16 on CPU: LoRA keeps the frozen base in bf16 (autocast would recast every fp32 weight at every step;
    # the adapters stay fp32); full fine-tuning keeps fp32 master weights under autocast
    bf16 = bool(cfg.bf16) and native_bf16()
    return QuantPlan(device="cpu", quantize=False,
                     trainer={"bf16": bf16, "use_cpu": True, "optim": "adamw_torch",
                              "gradient_checkpointing": False},
                     load_dtype="bfloat16" if bf16 and lora else "float32", notice=notice)


def bnb_config(plan: QuantPlan):
    """The ``BitsAndBytesConfig`` of a quantising plan (None otherwise)."""
    if not plan.quantize:
        return None
    import torch
    from transformers import BitsAndBytesConfig

    kwargs = dict(plan.bnb)
    kwargs["bnb_4bit_compute_dtype"] = getattr(torch, kwargs["bnb_4bit_compute_dtype"])
    return BitsAndBytesConfig(**kwargs)


def trainer_kwargs(plan: QuantPlan, cfg: TrainingConfig, method: str, output_dir: str, max_steps: int,
                   progress: bool = True) -> dict[str, Any]:
    """Keyword arguments for ``SFTConfig``/``DPOConfig``: TRL's CPU-breaking defaults (bf16, gradient
    checkpointing, fused AdamW) replaced by the plan's, and the tiny-model learning rates."""
    kw: dict[str, Any] = {
        "output_dir": output_dir,
        "per_device_train_batch_size": cfg.batch_size,
        "gradient_accumulation_steps": cfg.grad_accum,
        "learning_rate": cfg.dpo_learning_rate if method == "dpo" else cfg.learning_rate,
        "lr_scheduler_type": "constant_with_warmup",
        "warmup_steps": cfg.warmup_steps,
        "max_length": cfg.max_length,
        "logging_steps": 10,
        "save_strategy": "no",
        "report_to": trainer_report_to(cfg.report_to),  # a tracker that is not installed is skipped
        "seed": cfg.seed,
        "data_seed": cfg.seed,
        "dataloader_num_workers": 0,
        "disable_tqdm": not progress,
        **plan.trainer,
    }
    if max_steps > 0:
        kw["max_steps"] = max_steps
    else:
        kw["num_train_epochs"] = cfg.epochs
    if method == "sft":
        kw["completion_only_loss"] = not cfg.train_on_prompt
    else:
        kw["beta"] = cfg.dpo_beta
        kw["precompute_ref_log_probs"] = True  # one reference pass instead of one per step
    return kw


@dataclass
class TrainResult:
    model_dir: str  # full checkpoint to act with (merge / full) or the untouched base (stack)
    adapter_dir: str | None  # LoRA adapter (stack: act with base + adapter)
    metrics: dict[str, Any]


def _device() -> str:
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def bf16_weight_bytes(model_dir: str | os.PathLike) -> int | None:
    """The size of a local checkpoint's weights in bf16 (from its safetensors files and their dtype), or
    ``None`` when ``model_dir`` is not a local folder of safetensors (a hub id)."""
    files = list(Path(model_dir).glob("*.safetensors")) if Path(model_dir).is_dir() else []
    if not files:
        return None
    try:
        config = json.loads((Path(model_dir) / "config.json").read_text())
        dtype = config.get("dtype") or config.get("torch_dtype") or "float32"
    except (OSError, ValueError):
        dtype = "float32"
    size = sum(f.stat().st_size for f in files)
    return size // 2 if "32" in str(dtype) else size


def native_bf16() -> bool:
    """Whether bf16 math is native here: CUDA with bf16, or a CPU with AVX512-BF16 or AMX (there a bf16 matmul
    ran ~3x faster than fp32 on 2 cores; without them bf16 is emulated and slower than fp32)."""
    import torch

    if torch.cuda.is_available():
        return torch.cuda.is_bf16_supported()
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return any(f in flags for f in (" avx512_bf16", " amx_bf16"))


def set_threads(n: int, tiny: bool = False) -> None:
    """``n`` torch threads; 0 = automatic: 1 for the tiny built models (their ops are too small to split, and
    a second thread only spins on a shared machine), else ``min(2, cpu count)``."""
    import torch

    if n <= 0:
        n = 1 if tiny else max(1, min(2, os.cpu_count() or 1))
    torch.set_num_threads(n)


def _load(model_dir: str, plan: QuantPlan):
    import torch
    from transformers import AutoModelForCausalLM

    kwargs: dict[str, Any] = {"dtype": getattr(torch, plan.load_dtype)}
    if plan.quantize:
        kwargs["quantization_config"] = bnb_config(plan)
        kwargs["device_map"] = {"": 0}
    model = AutoModelForCausalLM.from_pretrained(model_dir, **kwargs)
    if plan.quantize:
        from peft import prepare_model_for_kbit_training

        model = prepare_model_for_kbit_training(model, **plan.prepare)
    return model


def answer_only_loss(model: Any, inputs: dict[str, Any], num_items_in_batch: Any = None):
    """Next-token cross-entropy computed from the output layer at the trained positions only, or ``None`` when
    the model is not a plain decoder + output layer (then TRL's own loss runs).

    TRL's loss runs the output layer (49k x 576 for SmolLM2) over every position and back through it, although
    only answer tokens carry a label: a fifth to a third of a demonstration's tokens, a few percent of a
    corrected step's. Selecting the labelled positions first gives the same loss for a fraction of the
    cost."""
    import torch

    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    decoder = getattr(base, getattr(base, "base_model_prefix", "model"), None)
    head = base.get_output_embeddings() if hasattr(base, "get_output_embeddings") else None
    config = base.config.get_text_config(decoder=True)
    if decoder is None or head is None or getattr(config, "final_logit_softcapping", None):
        return None
    labels = inputs["labels"]
    hidden = decoder(input_ids=inputs["input_ids"], attention_mask=inputs.get("attention_mask"),
                     position_ids=inputs.get("position_ids"), use_cache=False).last_hidden_state
    target = labels[:, 1:]
    keep = target != -100
    logits = head(hidden[:, :-1][keep]).float()
    count = num_items_in_batch if num_items_in_batch is not None else keep.sum()
    return torch.nn.functional.cross_entropy(logits, target[keep], reduction="sum") / \
        torch.as_tensor(count, device=logits.device).clamp(min=1)


def sft_trainer_class():
    """TRL's ``SFTTrainer`` with ``answer_only_loss`` (TRL's own loss where that does not apply)."""
    from trl import SFTTrainer

    class AnswerLossSFTTrainer(SFTTrainer):
        def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
            if not return_outputs and "labels" in inputs:
                loss = answer_only_loss(model, inputs, num_items_in_batch)
                if loss is not None:
                    return loss
            return super().compute_loss(model, inputs, return_outputs, num_items_in_batch)

    return AnswerLossSFTTrainer


def top_layers(model: Any, n: int) -> dict[str, Any]:
    """``LoraConfig`` arguments that adapt only the top ``n`` transformer layers (none for ``n`` <= 0 or more
    than the model has)."""
    total = getattr(model.config.get_text_config(decoder=True), "num_hidden_layers", 0)
    if n <= 0 or not total or n >= total:
        return {}
    linear = sorted({name.rsplit(".", 1)[-1] for name, module in model.named_modules()
                     if ".layers." in name and type(module).__name__ == "Linear"})
    return {"layers_to_transform": list(range(total - n, total)), "layers_pattern": "layers",
            "target_modules": linear}


def _rows_to_dataset(rows: list[dict[str, Any]], method: str, tokenizer: Any = None,
                     train_on_prompt: bool = False):
    """SFT rows tokenized here, turn by turn, exactly as ``HFStudent`` tokenizes what it acts on
    (``leap_gym.agents.conversation.encode_turns``): loss on every assistant turn of the completion (one for a
    corrected step, all of them for a demonstration in the episode format), or on every token with
    ``train_on_prompt``. A packed row (``branches``, ``leap_gym.leap.dataset.packed_row``) also gets the
    ``position_ids`` and ``fork`` its tree attention mask is built from (``TreeCollator``). DPO rows stay
    conversational for TRL."""
    from datasets import Dataset

    if method != "sft":
        return Dataset.from_list([{k: r[k] for k in ("prompt", "chosen", "rejected")} for r in rows])
    packed = any(r.get("branches") for r in rows)
    data = []
    for r in rows:
        messages = list(r["prompt"]) + list(r["completion"])
        trained = [len(r["prompt"]) + j for j, m in enumerate(r["completion"]) if m["role"] == "assistant"]
        branches = [(b["at"], b["content"]) for b in r.get("branches", ())]
        ids, labels, positions, fork = encode_tree(tokenizer, messages, branches, trained)
        if train_on_prompt:  # every token of the chat itself; branches keep their answer-only labels
            trunk = fork.count(TRUNK)
            labels = ids[:trunk] + labels[trunk:]
        item = {"input_ids": ids, "labels": labels}
        if packed:
            item.update(position_ids=positions, fork=fork)
        data.append(item)
    return Dataset.from_list(data)


class TreeCollator:
    """Pads packed SFT rows (``_rows_to_dataset``) into a batch with their tree attention mask: the corrected
    answers of one chat window each see only the chat before them (``tree_attention_mask``)."""

    def __init__(self, pad_token_id: int):
        self.pad_token_id = pad_token_id

    def __call__(self, items: list[dict[str, Any]]) -> dict[str, Any]:
        import torch

        length = max(len(x["input_ids"]) for x in items)

        def padded(key: str, fill: int) -> torch.Tensor:
            return torch.tensor([list(x[key]) + [fill] * (length - len(x[key])) for x in items])

        positions, fork = padded("position_ids", 0), padded("fork", -2)
        return {"input_ids": padded("input_ids", self.pad_token_id), "labels": padded("labels", -100),
                "position_ids": positions, "attention_mask": tree_attention_mask(positions, fork)}


def resume_checkpoint(partial: Path, inputs: dict[str, Any]) -> str | None:
    """The last complete trainer checkpoint that an interrupted training of the same ``inputs`` left in
    ``partial``; otherwise ``partial`` is emptied for a fresh start (and ``None`` returned).

    A checkpoint is complete once its ``trainer_state.json`` (the last file ``Trainer`` writes) parses; a
    newer, half-written one (killed mid-save) is removed.
    """
    digest = hashlib.sha256(json.dumps(inputs, sort_keys=True, default=str).encode()).hexdigest()
    staged = TrainOutput(partial)
    stamp = staged.inputs_digest
    complete = []
    if stamp.exists() and stamp.read_text() == digest:
        for step, ckpt in staged.checkpoints():
            try:
                json.loads(staged.checkpoint_state(ckpt).read_text())
                complete.append((step, ckpt))
            except (OSError, ValueError):
                shutil.rmtree(ckpt, ignore_errors=True)
    if complete:
        return str(max(complete)[1])
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(parents=True)
    stamp.write_text(digest)
    return None


def _release_memory_callback() -> Any:
    """A ``TrainerCallback`` handing freed memory back after every row's backward pass, each gradient
    accumulation substep included (``leap_gym.memory``): rows of varying lengths leave freed activation blocks
    that glibc would keep. Trimming only after the optimizer step let a step's substeps pile them up: the
    demo's BC rows (<= 1,081 tokens, 10 steps x 4) peaked at 4.7 GB that way and at 3.8 GB trimmed every
    substep, in the same time."""
    from transformers import TrainerCallback

    class ReleaseFreedMemory(TrainerCallback):
        def on_substep_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            release_freed_memory()

        def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            release_freed_memory()

    return ReleaseFreedMemory()


def train(rows: list[dict[str, Any]], model_dir: str | os.PathLike, output_dir: str | os.PathLike,
          cfg: TrainingConfig, *, from_scratch: bool | None = None, method: str | None = None,
          adapter_dir: str | os.PathLike | None = None, max_steps: int | None = None,
          progress: bool = True, callbacks: list[Any] | None = None) -> TrainResult:
    """Train on ``rows`` (from ``build_dataset``) starting from ``model_dir`` (+ ``adapter_dir`` in stack
    mode).

    Writes ``output_dir/{model,adapter}`` (see the module doc), ``train_log.json`` with the trainer's log
    history. ``from_scratch`` marks a randomly initialised base (adds ``modules_to_save`` for LoRA); ``None``
    reads the marker ``build_model`` saves in the checkpoint's config, so a user's own tiny checkpoint (e.g.
    one pretrained further) still gets its embeddings and head trained. ``callbacks``
    (``transformers.TrainerCallback``) see every step of the trainer: measurements such as the GPU benchmark's
    step timer (``benchmarks/gpu_qlora.py``) then time exactly the path users train with.
    """
    method = method or cfg.method
    if not rows:
        raise ValueError("no training rows: nothing to train on (did every episode succeed or get dropped?)")
    import torch

    out = TrainOutput(Path(output_dir))
    staged = out.partial
    plan = quantization_plan(_device(), cfg, bf16_weight_bytes(model_dir))
    if plan.notice:
        logging.getLogger(__name__).debug(plan.notice)  # the run's log file
    steps = cfg.max_steps if max_steps is None else max_steps
    inputs = {"rows": rows, "model_dir": str(model_dir), "adapter_dir": str(adapter_dir), "method": method,
              "max_steps": steps, "cfg": {k: v for k, v in asdict(cfg).items() if k != "checkpoint_steps"}}
    resume = resume_checkpoint(staged.path, inputs)
    torch.manual_seed(cfg.seed)
    if not progress:
        import datasets
        import transformers

        datasets.disable_progress_bars()
        transformers.utils.logging.disable_progress_bar()

    model = _load(str(model_dir), plan)
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(model_dir))
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    if from_scratch is None:
        from_scratch = is_from_scratch(model)
    peft_config = None
    if cfg.finetune == "lora":
        if cfg.continue_mode == "stack" and adapter_dir is not None:
            from peft import PeftModel

            model = PeftModel.from_pretrained(model, str(adapter_dir), is_trainable=True)
        else:
            peft_config = lora_config_for(model, from_scratch, r=cfg.lora_r, alpha=cfg.lora_alpha,
                                          dropout=cfg.lora_dropout, **top_layers(model, cfg.lora_layers))
    data = _rows_to_dataset(rows, method, tokenizer, cfg.train_on_prompt)
    callbacks = [*(callbacks or []), _release_memory_callback()]
    kw = trainer_kwargs(plan, cfg, method, str(staged.trainer), steps, progress)
    # rows were fitted by build_dataset (history cut, never the target): let TRL keep the longest one whole
    longest = max(len(ids) for ids in data["input_ids"]) if method == "sft" else 0
    kw["max_length"] = max([cfg.max_length, longest + 1] + [int(r.get("meta", {}).get("tokens", 0)) + 1
                                                             for r in rows])
    if cfg.checkpoint_steps > 0:  # two kept: a kill mid-save still leaves the previous one complete
        kw.update(save_strategy="steps", save_steps=cfg.checkpoint_steps, save_total_limit=2)
    if method == "sft":
        from trl import SFTConfig

        collator = None
        if "fork" in data.column_names:  # packed rows: their own mask, and the trainer keeps their columns
            collator = TreeCollator(tokenizer.pad_token_id)
            kw["remove_unused_columns"] = False
        trainer = sft_trainer_class()(model=model, args=SFTConfig(**kw), train_dataset=data,
                                      processing_class=tokenizer, peft_config=peft_config,
                                      data_collator=collator, callbacks=callbacks)
    else:
        from trl import DPOConfig, DPOTrainer

        trainer = DPOTrainer(model=model, args=DPOConfig(**kw), train_dataset=data,
                             processing_class=tokenizer, peft_config=peft_config, callbacks=callbacks)
    quiet_trainer(trainer, enabled=progress)  # one progress display; the per-step log dicts to the log file
    if resume:
        logging.getLogger(__name__).warning(f"resuming training from {resume}")
    result = trainer.train(resume_from_checkpoint=resume)
    trained = trainer.model
    shutil.rmtree(staged.trainer, ignore_errors=True)

    out_adapter = None
    if cfg.finetune == "full":
        trained.save_pretrained(staged.model)
        tokenizer.save_pretrained(staged.model)
        final_model = out.model
    else:
        trained.save_pretrained(staged.adapter)
        tokenizer.save_pretrained(staged.adapter)
        out_adapter = str(out.adapter)
        if cfg.continue_mode == "merge":
            _merged(trained, plan, str(model_dir), staged.adapter).save_pretrained(staged.model)
            tokenizer.save_pretrained(staged.model)
            final_model = out.model
        else:
            final_model = Path(model_dir)
    metrics = {"method": method, "rows": len(rows), "train_loss": float(result.training_loss),
               "global_steps": int(result.global_step),
               "train_runtime_s": float(result.metrics["train_runtime"]), "quantized": plan.quantize,
               "device": plan.device, "from_scratch": from_scratch,
               "learning_rate": kw["learning_rate"]}
    staged.log.write_text(json.dumps({"metrics": metrics, "plan": asdict(plan),
                                      "log_history": trainer.state.log_history}, indent=1))
    del trainer, trained, model
    if out.path.exists():
        shutil.rmtree(out.path)
    os.replace(staged.path, out.path)
    return TrainResult(model_dir=str(final_model), adapter_dir=out_adapter, metrics=metrics)


def _merged(trained, plan: QuantPlan, base_dir: str, adapter_dir: Path):
    """The adapter folded into the weights; under QLoRA into a bf16 reload of the base (not the 4-bit one)."""
    if not plan.quantize:
        return trained.merge_and_unload()
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    base = AutoModelForCausalLM.from_pretrained(base_dir, dtype=torch.bfloat16)
    return PeftModel.from_pretrained(base, str(adapter_dir)).merge_and_unload()
