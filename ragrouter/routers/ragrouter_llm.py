"""RAGRouter-LLM: a causal LM fine-tuned with LoRA (QLoRA where configured) on routing prompts
that carry the k most similar past queries and their routing labels.

The prompt is the label LM's (ragrouter.routers.label_lm: label tokens added to the vocabulary,
loss and score on the label position only, P(strong) = softmax over the label tokens), as in the
causal_llm router, plus a context block:
each retrieved neighbour's text (its first `neighbour_tokens` tokens) and whether it needed the
large model, in words. Neighbours come from a FAISS index of the training queries' sentence
embeddings; training queries are retrieved leave-one-out. Every training query is indexed,
also when `max_train_queries` limits what the LM fine-tunes on (retrieval costs little; LoRA
steps on CPU a lot). `k: 0` drops the context (the RAG ablation).

Training: peft LoRA adapters injected into the attention projections, the label tokens' output
rows trained beside them, everything else frozen. `load_in_4bit` loads the base in
bitsandbytes NF4 with double quantization and `compute_dtype` compute (QLoRA), with gradient
checkpointing (use_reentrant=False) when `gradient_checkpointing` is set. Each epoch ends with
the loss and APGR on a validation split (`history_`). Saved: the LoRA adapter and label rows
(safetensors), the tokenizer, and the base model's name and revision; loading rebuilds the base
from that name, so the adapter stays small.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Self, Sequence

import faiss
import numpy as np
import torch
from safetensors.torch import load_file, save_file

from ragrouter.evaluation.metrics import apgr_of_gains
from ragrouter.encoder import EncoderConfig
from ragrouter.features.query_features import FeatureConfig
from ragrouter.labels import strong_needed
from ragrouter.pretrained import PACKAGED_MODELS
from ragrouter.retrieval import load_index, save_index, search
from ragrouter.routers.base import Queries, Router, TrainingSet
from ragrouter.routers.fine_tuning import compute_dtype_on, run_epochs, training_rows
from ragrouter.routers.label_lm import LABEL_TOKENS, STRONG_LABEL, LabelLM, LabelLMConfig, label_targets, load_pretrained
from ragrouter.routers.registry import register_router

CONTEXT_HEADER = "Similar past questions and which assistant they needed:\n"
NEIGHBOUR_LABELS = {True: " -> large needed\n", False: " -> small suffices\n"}


@dataclass
class RAGRouterLLMConfig(LabelLMConfig):
    encoder: EncoderConfig = field(default_factory=EncoderConfig)  # sentence vectors for retrieval
    k: int = 3  # neighbours in the prompt; 0 = no retrieved context
    neighbour_tokens: int = 48  # each neighbour's text is cut to this many tokens
    max_tokens: int = 512
    train_last_layers: int | None = 0  # top layers trained in full beside LoRA (0: LoRA alone)
    lora_r: int = 16
    lora_alpha: int = 32
    lora_dropout: float = 0.05
    target_modules: tuple[str, ...] = ("q_proj", "k_proj", "v_proj", "o_proj")
    # adapters in the top `lora_layers` decoder layers only (None: all): backpropagation then
    # stops below them, which is what makes CPU training affordable
    lora_layers: int | None = None
    load_in_4bit: bool = False  # QLoRA: bitsandbytes NF4 + double quantization (compute in compute_dtype)
    gradient_checkpointing: bool = False
    revision: str | None = None  # of the base model on a hub; recorded with the adapter
    validation_fraction: float = 0.1
    learning_rate: float = 2e-4

    def __post_init__(self) -> None:
        super().__post_init__()
        self.target_modules = tuple(self.target_modules)
        if self.k < 0:
            raise ValueError(f"k must be >= 0, got {self.k}")
        if self.lora_layers is not None and self.lora_layers < 1:
            raise ValueError(f"lora_layers must be >= 1 or null (all layers), got {self.lora_layers}")
        if self.load_in_4bit and self.train_last_layers != 0:
            raise ValueError("train_last_layers must be 0 with load_in_4bit: 4-bit layers train through LoRA only")

    def features(self) -> FeatureConfig:
        return FeatureConfig(self.encoder)

    @property
    def retrieves(self) -> bool:
        return self.k > 0


@register_router("ragrouter_llm")
class RAGRouterLLM(Router):
    config_class = RAGRouterLLMConfig
    config: RAGRouterLLMConfig
    lm_: LabelLM
    index_: faiss.Index
    full_layers_: list[str]  # parameters trained in full beside LoRA (train_last_layers)
    neighbour_ids_: list[list[int]]  # token ids of each training query, cut to neighbour_tokens
    strong_: np.ndarray  # each training query's label
    history_: list[dict[str, float]]

    def fit(self, train: TrainingSet) -> Self:
        cfg = self.config
        rows, optimizer = self._prepare_model()
        gain = np.asarray(train.gain)
        # Every training query is retrievable; the LM fine-tunes on at most max_train_queries.
        self.strong_ = strong_needed(gain, train.label_threshold)
        self.neighbour_ids_ = self._cut(train.queries.prompts)
        vectors = train.queries.vectors(cfg.encoder)
        self.index_ = train.retrieval_index(cfg.encoder)
        tuned = training_rows(len(gain), cfg.max_train_queries, cfg.seed)
        contexts = self._contexts(vectors[tuned], own_rows=tuned)
        inputs = self.lm_.encode([train.queries.prompts[i] for i in tuned], contexts)
        tuned_gain = gain[tuned]
        targets = torch.from_numpy(label_targets(tuned_gain, train.label_threshold, cfg.label_scheme))
        order = np.random.default_rng(cfg.seed).permutation(len(inputs))
        n_val = int(round(cfg.validation_fraction * len(inputs)))
        val, fit = np.sort(order[:n_val]), order[n_val:]
        self.history_ = []
        for epoch in range(cfg.epochs):
            self.lm_.model.train()
            losses: list[float] = []
            run_epochs(
                len(fit),
                1,
                cfg.batch_size,
                cfg.seed + epoch,
                optimizer,
                lambda batch: self._logged(losses, self.lm_.loss([inputs[i] for i in fit[batch]], targets[fit[batch]], rows)),
                f"ragrouter_llm epoch {epoch + 1}",
                cfg.max_grad_norm,
            )
            record = {"epoch": epoch + 1, "train_loss": float(np.mean(losses))}
            # bitsandbytes repacks 4-bit weights for CPU inference on the first forward in eval
            # mode, and they cannot train after that: on CPU, 4-bit runs validate at the end only.
            last = epoch == cfg.epochs - 1
            if n_val and (last or not (cfg.load_in_4bit and cfg.device == "cpu")):
                record.update(self._validate([inputs[i] for i in val], targets[val], tuned_gain[val], rows))
            self.history_.append(record)
        self.lm_.store_label_rows(rows)
        return self

    @staticmethod
    def _logged(losses: list[float], loss: torch.Tensor) -> torch.Tensor:
        losses.append(loss.item())
        return loss

    def _prepare_model(self) -> tuple[torch.nn.Parameter, torch.optim.Optimizer]:
        """Load the base with new label tokens and LoRA adapters; the label rows and the optimizer."""
        self.lm_ = LabelLM.from_base(self._load_base, self.config)
        self._set_trainable()
        return self.lm_.optimizer()

    def _validate(self, inputs: list[list[int]], targets: torch.Tensor, gain: np.ndarray, rows: torch.Tensor) -> dict[str, float]:
        self.lm_.model.eval()
        with torch.inference_mode():
            logits = torch.cat([self.lm_.label_logits(inputs[s : s + self.config.batch_size], rows) for s in range(0, len(inputs), self.config.batch_size)])
        loss = torch.nn.functional.cross_entropy(logits, targets.to(logits.device)).item()
        p_strong = torch.softmax(logits.double(), dim=-1)[:, STRONG_LABEL].cpu().numpy()
        return {"val_loss": loss, "val_apgr": apgr_of_gains(p_strong, gain)}

    def _load_base(self) -> tuple[Any, Any]:
        """The base model by name and revision; in 4-bit NF4 for QLoRA."""
        from transformers import BitsAndBytesConfig

        cfg = self.config
        if not cfg.load_in_4bit:
            return load_pretrained(cfg.model, cfg.revision)
        if cfg.model in PACKAGED_MODELS:
            raise ValueError(f"{cfg.model!r} is a GGUF file: 4-bit loading needs a transformers checkpoint (e.g. Qwen/Qwen2.5-7B-Instruct)")
        compute = compute_dtype_on(cfg.compute_dtype, cfg.device)
        quantization = BitsAndBytesConfig(
            load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_use_double_quant=True, bnb_4bit_compute_dtype=compute
        )
        return load_pretrained(cfg.model, cfg.revision, quantization_config=quantization, dtype=compute, device_map={"": cfg.device})

    def _set_trainable(self) -> None:
        """Freeze the base, inject LoRA adapters in place (the model keeps its own class) and
        unfreeze the top `train_last_layers`."""
        from peft import LoraConfig, inject_adapter_in_model
        from peft.tuners.tuners_utils import cast_adapter_dtype

        cfg, lm = self.config, self.lm_
        lm.model.requires_grad_(False)
        if cfg.load_in_4bit:
            from peft import prepare_model_for_kbit_training

            lm.model = prepare_model_for_kbit_training(lm.model, use_gradient_checkpointing=False)
        if cfg.gradient_checkpointing:
            lm.model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
            lm.model.enable_input_require_grads()
        inject_adapter_in_model(self._lora_config(LoraConfig), lm.model)
        # On a 4-bit base peft makes the adapters in the bf16 compute dtype, where AdamW's small
        # steps are lost; they train in float32 under bf16 autocast, as get_peft_model does.
        cast_adapter_dtype(lm.model, adapter_name="default")
        lm.unfreeze_top_layers()
        self.full_layers_ = [name for name, p in lm.model.named_parameters() if p.requires_grad and "lora_" not in name]

    def _lora_config(self, lora_config_class: Any) -> Any:
        cfg = self.config
        n_layers = len(self.lm_.model.base_model.layers)
        top = None if cfg.lora_layers is None else list(range(max(n_layers - cfg.lora_layers, 0), n_layers))
        return lora_config_class(
            r=cfg.lora_r,
            lora_alpha=cfg.lora_alpha,
            lora_dropout=cfg.lora_dropout,
            target_modules=list(cfg.target_modules),
            layers_to_transform=top,
        )

    def _cut(self, prompts: Sequence[str]) -> list[list[int]]:
        return [row[: self.config.neighbour_tokens] for row in self.lm_.query_ids(prompts)]

    def _contexts(self, vectors: np.ndarray, exclude_self: bool = False, own_rows: np.ndarray | None = None) -> list[list[int]] | None:
        """Each query's context token ids: header, then per neighbour its text and label
        (leave-one-out as `search`)."""
        if self.config.k == 0 or not len(vectors):
            return None
        _, positions = search(self.index_, vectors, self.config.k, exclude_self=exclude_self, own_rows=own_rows)
        tokenizer = self.lm_.tokenizer
        header = tokenizer(CONTEXT_HEADER, add_special_tokens=False)["input_ids"]
        labels = {flag: tokenizer(text, add_special_tokens=False)["input_ids"] for flag, text in NEIGHBOUR_LABELS.items()}
        contexts = []
        for row in positions:
            context = list(header)
            for position in row[row >= 0]:
                context += self.neighbour_ids_[position] + labels[bool(self.strong_[position])]
            contexts.append(context + tokenizer("\n", add_special_tokens=False)["input_ids"])
        return contexts

    def score(self, queries: Queries) -> np.ndarray:
        return self.lm_.score(queries.prompts, self._contexts(queries.vectors(self.config.encoder)))

    @property
    def knowledge_size(self) -> int:
        """How many training queries it retrieves from. It does not `remember` more: a
        neighbour's label is its gain thresholded at the training run's t, which it does not keep."""
        return int(self.index_.ntotal) if self.config.k else 0

    def score_training(self, train: TrainingSet) -> np.ndarray:
        """Leave-one-out context: no training query sees its own label."""
        return self.lm_.score(train.queries.prompts, self._contexts(train.queries.vectors(self.config.encoder), exclude_self=True))

    def state_arrays(self) -> dict[str, np.ndarray]:
        return {"strong": self.strong_.astype(np.int8)}

    def save_extra(self, directory: Path) -> None:
        from peft import get_peft_model_state_dict

        adapter = directory / "adapter"
        adapter.mkdir(parents=True, exist_ok=True)
        model = self.lm_.model
        weights = {k: v.detach().cpu().contiguous() for k, v in get_peft_model_state_dict(model).items()}
        parameters = dict(model.named_parameters())
        weights |= {f"full.{name}": parameters[name].detach().cpu().contiguous() for name in self.full_layers_}
        weights["label_rows"] = self.lm_.label_rows().detach().cpu().float().contiguous()
        save_file(weights, str(adapter / "adapter.safetensors"))
        self.lm_.tokenizer.save_pretrained(adapter)
        base = {"model": self.config.model, "revision": self.config.revision, "label_tokens": list(LABEL_TOKENS[self.config.label_scheme])}
        state = {"base": base, "neighbour_ids": self.neighbour_ids_, "history": self.history_}
        (directory / "ragrouter_llm.json").write_text(json.dumps(state))
        save_index(self.index_, directory / "index.faiss")

    def load_state(self, arrays: dict[str, np.ndarray], directory: Path) -> None:
        from peft import set_peft_model_state_dict
        from transformers import AutoTokenizer

        state = json.loads((directory / "ragrouter_llm.json").read_text())
        model, _ = self._load_base()
        self.lm_ = LabelLM(model, AutoTokenizer.from_pretrained(directory / "adapter"), self.config)
        self._set_trainable()
        weights = load_file(str(directory / "adapter" / "adapter.safetensors"))
        rows = weights.pop("label_rows")
        full = {name[len("full.") :]: weights.pop(name) for name in list(weights) if name.startswith("full.")}
        unexpected = self.lm_.model.load_state_dict(full, strict=False).unexpected_keys
        if unexpected:
            raise ValueError(f"{directory / 'adapter' / 'adapter.safetensors'}: weights {unexpected[:3]} match no parameter of {self.config.model!r}")
        set_peft_model_state_dict(self.lm_.model, weights)
        output = self.lm_.model.get_output_embeddings().weight
        self.lm_.store_label_rows(torch.nn.Parameter(rows.to(device=output.device, dtype=output.dtype)))
        self.strong_ = arrays["strong"].astype(bool)
        self.neighbour_ids_, self.history_ = state["neighbour_ids"], state["history"]
        self.index_ = load_index(directory / "index.faiss")
