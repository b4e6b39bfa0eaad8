"""Write a small Llama as a GGUF file the way llama.cpp lays one out, so conversion tests need no download.

The layout follows llama.cpp's documented conventions (ggml-org/llama.cpp, ``gguf-py`` and
``convert_hf_to_gguf.py``): tensors under llama.cpp's names, F32 here, and the rows of ``attn_q``/``attn_k``
reordered per head from HF's "first half / second half" rotary layout into llama.cpp's interleaved pairs,
which transformers' GGUF loader undoes. The tokenizer is a byte-level BPE stored as metadata
(``tokenizer.ggml.*``).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

# HF parameter name inside a Llama decoder layer -> llama.cpp's tensor name inside ``blk.N``
_LAYER_NAMES = {
    "self_attn.q_proj.weight": "attn_q.weight",
    "self_attn.k_proj.weight": "attn_k.weight",
    "self_attn.v_proj.weight": "attn_v.weight",
    "self_attn.o_proj.weight": "attn_output.weight",
    "mlp.gate_proj.weight": "ffn_gate.weight",
    "mlp.up_proj.weight": "ffn_up.weight",
    "mlp.down_proj.weight": "ffn_down.weight",
    "input_layernorm.weight": "attn_norm.weight",
    "post_attention_layernorm.weight": "ffn_norm.weight",
}
_TOP_NAMES = {"model.embed_tokens.weight": "token_embd.weight", "model.norm.weight": "output_norm.weight",
              "lm_head.weight": "output.weight"}


def interleave_rotary_rows(weight: np.ndarray, n_heads: int) -> np.ndarray:
    """Per head, rows ``[x_0..x_{d/2-1}, y_0..y_{d/2-1}]`` become ``[x_0, y_0, x_1, y_1, ...]``."""
    rows = weight.shape[0]
    per_half = rows // n_heads // 2
    return weight.reshape(n_heads, 2, per_half, *weight.shape[1:]).swapaxes(1, 2).reshape(weight.shape)


def gguf_tensor_name(hf_name: str) -> str:
    if hf_name in _TOP_NAMES:
        return _TOP_NAMES[hf_name]
    prefix, layer, rest = hf_name.split(".", 3)[1:]  # "model.layers.N.<rest>"
    if prefix != "layers" or rest not in _LAYER_NAMES:
        raise KeyError(f"no llama.cpp name for {hf_name}")
    return f"blk.{layer}.{_LAYER_NAMES[rest]}"


def write_llama_gguf(model: Any, tokenizer: Any, path: str | Path, name: str = "tiny-test-llama") -> Path:
    """Write ``model`` (a ``LlamaForCausalLM``) and ``tokenizer`` (a byte-level BPE fast tokenizer with a
    chat template) to ``path`` as an F32 GGUF with architecture ``llama``."""
    import gguf

    cfg = model.config
    head_dim = cfg.hidden_size // cfg.num_attention_heads
    rope_theta = (getattr(cfg, "rope_parameters", None) or {}).get("rope_theta") or cfg.rope_theta
    path = Path(path)
    writer = gguf.GGUFWriter(str(path), "llama")
    writer.add_name(name)
    writer.add_vocab_size(cfg.vocab_size)
    writer.add_context_length(cfg.max_position_embeddings)
    writer.add_embedding_length(cfg.hidden_size)
    writer.add_block_count(cfg.num_hidden_layers)
    writer.add_feed_forward_length(cfg.intermediate_size)
    writer.add_head_count(cfg.num_attention_heads)
    writer.add_head_count_kv(cfg.num_key_value_heads)
    writer.add_layer_norm_rms_eps(cfg.rms_norm_eps)
    writer.add_rope_dimension_count(head_dim)
    writer.add_rope_freq_base(float(rope_theta))

    spec = json.loads(tokenizer.backend_tokenizer.to_str())
    vocab = spec["model"]["vocab"]
    tokens = sorted(vocab, key=vocab.get)
    if [vocab[t] for t in tokens] != list(range(len(tokens))):
        raise ValueError("tokenizer ids are not contiguous")
    special = set(tokenizer.all_special_tokens)
    merges = [m if isinstance(m, str) else " ".join(m) for m in spec["model"]["merges"]]
    writer.add_tokenizer_model("gpt2")
    writer.add_token_list(tokens)
    writer.add_token_types([gguf.TokenType.CONTROL if t in special else gguf.TokenType.NORMAL
                            for t in tokens])
    writer.add_token_merges(merges)
    writer.add_bos_token_id(tokenizer.bos_token_id)
    writer.add_eos_token_id(tokenizer.eos_token_id)
    writer.add_pad_token_id(tokenizer.pad_token_id)
    writer.add_chat_template(tokenizer.chat_template)

    for hf_name, tensor in model.state_dict().items():
        if hf_name == "lm_head.weight" and cfg.tie_word_embeddings:
            continue  # tied: llama.cpp stores no output.weight, and the loader ties the head to token_embd
        weight = tensor.detach().to("cpu").float().numpy()
        if hf_name.endswith("q_proj.weight"):
            weight = interleave_rotary_rows(weight, cfg.num_attention_heads)
        elif hf_name.endswith("k_proj.weight"):
            weight = interleave_rotary_rows(weight, cfg.num_key_value_heads)
        writer.add_tensor(gguf_tensor_name(hf_name), np.ascontiguousarray(weight, dtype=np.float32))

    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path


def convert_when_released(barrier: Any, gguf_path: str, out_dir: str, results: Any) -> None:
    """A forked worker: wait until every worker is ready, convert, report ``(pid, inode, mtime_ns)`` of the
    weights it ended with (all equal when the conversion ran once and the others reused it)."""
    import os

    import torch

    from leap_gym.models.pretrained import convert_gguf

    # as torch's DataLoader workers do: a forked child must not use the parent's OpenMP pool
    torch.set_num_threads(1)
    barrier.wait(timeout=120)
    weights = convert_gguf(gguf_path, out_dir) / "model.safetensors"
    st = weights.stat()
    results.put((os.getpid(), st.st_ino, st.st_mtime_ns))
