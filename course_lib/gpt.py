"""A character-level GPT, read top to bottom (after nanoGPT's model.py and the lecture's gpt.py).

    model = GPT(GPTConfig(vocab_size=65, block_size=64, n_layer=4, n_head=4, n_embd=128), block=Block)
    logits, loss = model(idx, targets)          # idx, targets: (B, T) token ids
    text_ids = model.generate(idx, 500)         # the context is cropped to block_size

The model around the transformer blocks: token and position embeddings, `config.n_layer` blocks of the
caller's class, a last LayerNorm, the output layer tied to the token embedding, GPT-2's initialisation.

What changed since GPT-2 (after the nanoGPT speedrun, github.com/KellerJordan/modded-nanogpt): each change is
one option of GPTConfig, off by default, so the default model is GPT-2's (nanoGPT's). RECIPES["speedrun"] in
course_lib.lm_train switches them all on, with the Muon optimizer and a warmup-stable-decay schedule.
`rotary`, `qk_norm` and `activation` act inside the blocks (course_lib.reference.gpt's blocks read them, with
`rotate` and `rotary_tables` from here); `tied_head` and `zero_init_proj` act here, on any block.
Lab 4 writes the blocks (one head, multi-head attention, feed-forward, block) and plugs its own in:
`GPT(config, block=Block)`. The reference blocks, which the benchmark uses, are lab 4's answers: they live
in course_lib.reference.gpt, which students get once lab 4's window has closed.
"""
import math
from dataclasses import dataclass

import torch
import torch.nn as nn
from torch.nn import functional as F


@dataclass
class GPTConfig:
    vocab_size: int = 65
    block_size: int = 64    # the longest context the model sees
    n_layer: int = 4
    n_head: int = 4
    n_embd: int = 128
    dropout: float = 0.0
    bias: bool = False      # biases in Linear and LayerNorm (nanoGPT's shakespeare config: none)
    # the attention of course_lib.reference.gpt: "fused": F.scaled_dot_product_attention; "explicit": the
    # three operations the lab writes by hand; "auto": fused on GPUs, explicit on CPUs, where PyTorch's
    # fused kernel is the slower one at these sizes (its backward took 2.8 ms per layer at T=64 on our 2-core
    # CPU, 45% of a training step).
    attention: str = "auto"
    # what changed since GPT-2 (all off: GPT-2, bit for bit)
    rotary: bool = False          # rotary position embeddings (RoFormer): attention sees relative positions, no table
    qk_norm: bool = False         # RMS-normalise queries and keys: bounded attention scores tolerate larger steps
    activation: str = "gelu"      # "relu2": ReLU squared (Primer), cheaper than GELU and faster to train
    tied_head: bool = True        # False: the output layer gets weights of its own, zero at the start
    zero_init_proj: bool = False  # the layers writing into the residual stream start at zero: each block starts as identity


def rotary_tables(block_size: int, head_size: int, base: float = 10000.0):
    """cos and sin of the rotation angles, (block_size, head_size // 2): position t turns channel pair i by
    t * base^(-2i / head_size), fast pairs for nearby tokens, slow ones for far ones."""
    frequencies = base ** (-torch.arange(0, head_size, 2, dtype=torch.float32) / head_size)
    angles = torch.outer(torch.arange(block_size, dtype=torch.float32), frequencies)
    return angles.cos(), angles.sin()


def rotate(x, cos, sin):
    """Rotary embedding of x (..., T, head_size): each pair of channels (first half, second half) turned by its
    position's angle. A rotation by t_q of q dotted with a rotation by t_k of k depends on t_q - t_k only."""
    T = x.shape[-2]
    cos, sin = cos[:T], sin[:T]
    x1, x2 = x.chunk(2, dim=-1)
    return torch.cat((x1 * cos - x2 * sin, x1 * sin + x2 * cos), dim=-1)


class GPT(nn.Module):
    """block: the class of the transformer blocks, built as block(config); (B, T, n_embd) in and out."""

    def __init__(self, config: GPTConfig, block):
        super().__init__()
        self.config = config
        self.token_embedding = nn.Embedding(config.vocab_size, config.n_embd)
        # with rotary embeddings the attention itself knows where tokens are: no position table
        self.position_embedding = None if config.rotary else nn.Embedding(config.block_size, config.n_embd)
        self.drop = nn.Dropout(config.dropout)
        self.blocks = nn.ModuleList([block(config) for _ in range(config.n_layer)])
        self.ln_f = nn.LayerNorm(config.n_embd, bias=config.bias)
        self.lm_head = nn.Linear(config.n_embd, config.vocab_size, bias=False)
        if config.tied_head:
            self.lm_head.weight = self.token_embedding.weight  # weight tying: one table to read and write tokens
        self.apply(self._init_weights)
        # GPT-2: scale the layers that write into the residual stream by 1/sqrt(2 * n_layer); or start them at zero
        for name, p in self.named_parameters():
            if name.endswith("proj.weight"):
                if config.zero_init_proj:
                    nn.init.zeros_(p)
                else:
                    nn.init.normal_(p, mean=0.0, std=0.02 / math.sqrt(2 * config.n_layer))
        if not config.tied_head:
            nn.init.zeros_(self.lm_head.weight)  # uniform predictions at the start: loss ln(vocab_size)

    @staticmethod
    def _init_weights(module):
        if isinstance(module, (nn.Linear, nn.Embedding)):
            nn.init.normal_(module.weight, mean=0.0, std=0.02)
        if isinstance(module, nn.Linear) and module.bias is not None:
            nn.init.zeros_(module.bias)

    def num_params(self, non_embedding=True) -> int:
        """Parameters, without the position table by default (the token table is the output layer too)."""
        n = sum(p.numel() for p in self.parameters())
        if non_embedding and self.position_embedding is not None:
            n -= self.position_embedding.weight.numel()
        return n

    def forward(self, idx, targets=None):
        T = idx.shape[1]
        if T > self.config.block_size:
            raise ValueError(f"a context of {T} tokens is longer than block_size={self.config.block_size}")
        x = self.token_embedding(idx)
        if self.position_embedding is not None:
            positions = torch.arange(T, device=idx.device)  # on idx's device: the same code runs on cpu and cuda
            x = x + self.position_embedding(positions)
        x = self.drop(x)
        for block in self.blocks:
            x = block(x)
        x = self.ln_f(x)
        with torch.autocast(x.device.type, enabled=False):  # 65 outputs: cheap in fp32, and the loss stays exact
            logits = self.lm_head(x.float())
        if targets is None:
            return logits, None
        loss = F.cross_entropy(logits.flatten(0, 1), targets.flatten())  # over all B * T positions
        return logits, loss

    @torch.no_grad()
    def generate(self, idx, max_new_tokens, temperature=1.0, top_k=None, generator=None):
        """Append max_new_tokens sampled tokens to idx (B, T); the model sees the last block_size only."""
        for _ in range(max_new_tokens):
            context = idx[:, -self.config.block_size:]
            logits, _ = self(context)
            logits = logits[:, -1, :] / temperature
            if top_k is not None:
                kth = torch.topk(logits, min(top_k, logits.size(-1))).values[:, [-1]]
                logits[logits < kth] = -float("inf")
            next_id = torch.multinomial(F.softmax(logits, dim=-1), num_samples=1, generator=generator)
            idx = torch.cat((idx, next_id), dim=1)
        return idx

    def estimate_flops_per_token(self) -> float:
        """Forward + backward FLOPs per token (PaLM appendix B: 6N + 12 L H Q T), for FLOPs utilisation."""
        c = self.config
        return 6 * self.num_params() + 12 * c.n_layer * c.n_embd * c.block_size
