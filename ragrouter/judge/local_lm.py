"""A local causal LM as the judge, through transformers (SmolLM2-135M-Instruct offline by default).

The prompt goes through the tokenizer's chat template; when `prime_verdict` is on, the reply
starts with the verdict's opening ("Rating: [[") so that a small model writes the verdict in a
few greedy tokens. The reply returned is that opening plus what the model wrote, read by the
same parser as an endpoint's reply.
"""

from __future__ import annotations

from typing import Any

import torch

from ragrouter.judge.cache import Reply
from ragrouter.judge.config import LocalLMConfig
from ragrouter.judge.prompts import JudgePrompt
from ragrouter.pretrained import pretrained_source

_CUT = "\n[...]\n"


class LocalLMJudge:
    """Greedy generation with a causal LM loaded once; one prompt at a time."""

    concurrency = 1

    def __init__(self, config: LocalLMConfig, model: Any | None = None, tokenizer: Any | None = None):
        """Loads `config.model` (a packaged GGUF, a folder or a hub id) unless a model and its
        tokenizer are given."""
        if model is None or tokenizer is None:
            from transformers import AutoModelForCausalLM, AutoTokenizer

            path, kwargs = pretrained_source(config.model)
            tokenizer = AutoTokenizer.from_pretrained(path, gguf_file=kwargs.get("gguf_file"))
            model = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32, **kwargs)
        self.config, self.model, self.tokenizer = config, model.to(config.device).eval(), tokenizer
        self.retries = 0

    @property
    def name(self) -> str:
        return f"local:{self.config.model}"

    @property
    def identity(self) -> str:
        c = self.config
        return f"{self.name} prime_verdict={c.prime_verdict} max_new_tokens={c.max_new_tokens} max_prompt_tokens={c.max_prompt_tokens}"

    def complete(self, prompt: JudgePrompt) -> Reply:
        prefix = prompt.verdict_prefix if self.config.prime_verdict else ""
        ids = self._encode(prompt, prefix)
        with torch.inference_mode():
            out = self.model.generate(
                ids.to(self.config.device),
                attention_mask=torch.ones_like(ids).to(self.config.device),
                max_new_tokens=self.config.max_new_tokens,
                do_sample=False,
                pad_token_id=self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else self.tokenizer.eos_token_id,
            )
        new = out[0, ids.shape[1] :]
        text = self.tokenizer.decode(new, skip_special_tokens=True)
        return Reply(prefix + text, int(ids.shape[1]), int(new.shape[0]))

    def _encode(self, prompt: JudgePrompt, prefix: str) -> torch.Tensor:
        user = self._fitted(prompt.user)
        messages = [{"role": "system", "content": prompt.system}, {"role": "user", "content": user}]
        if getattr(self.tokenizer, "chat_template", None):
            text = self.tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        else:
            text = f"{prompt.system}\n\n{user}\n\n"
        return torch.tensor([self.tokenizer(text + prefix, add_special_tokens=False)["input_ids"]])

    def _fitted(self, user: str) -> str:
        """The user message, its middle cut where it has more than max_prompt_tokens tokens."""
        ids = self.tokenizer(user, add_special_tokens=False)["input_ids"]
        budget = self.config.max_prompt_tokens
        if len(ids) <= budget:
            return user
        head, tail = budget // 2, budget - budget // 2
        return self.tokenizer.decode(ids[:head]) + _CUT + self.tokenizer.decode(ids[-tail:])
