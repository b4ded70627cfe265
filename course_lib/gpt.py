"""A character-level GPT, read top to bottom (after nanoGPT's model.py and the lecture's gpt.py).

    model = GPT(GPTConfig(vocab_size=65, block_size=64, n_layer=4, n_head=4, n_embd=128))
    logits, loss = model(idx, targets)          # idx, targets: (B, T) token ids
    text_ids = model.generate(idx, 500)         # the context is cropped to block_size

Lab 4 builds the same pieces by hand (one head, multi-head attention, feed-forward, block) and
plugs its own block in: `GPT(config, block=MyBlock)`. This file is the reference the lab's
numbers and the benchmark use: attention through F.scaled_dot_product_attention, pre-norm blocks,
the output layer tied to the token embedding, GPT-2's initialisation.
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
    # "fused": F.scaled_dot_product_attention; "explicit": the three operations the lab writes by hand;
    # "auto": fused on GPUs, explicit on CPUs, where PyTorch's fused kernel is the slower one at these
    # sizes (its backward took 2.8 ms per layer at T=64 on our 2-core CPU, 45% of a training step).
    attention: str = "auto"


class CausalSelfAttention(nn.Module):
    """n_head heads in one matrix product; each position attends to itself and the past only."""

    def __init__(self, config: GPTConfig):
        super().__init__()
        assert config.n_embd % config.n_head == 0, "n_embd must split evenly into heads"
        self.n_head = config.n_head
        self.attention = config.attention
        self.qkv = nn.Linear(config.n_embd, 3 * config.n_embd, bias=config.bias)
        self.proj = nn.Linear(config.n_embd, config.n_embd, bias=config.bias)
        self.dropout = config.dropout
        self.attn_dropout = nn.Dropout(config.dropout)
        self.resid_dropout = nn.Dropout(config.dropout)
        future = torch.ones(config.block_size, config.block_size, dtype=torch.bool).triu(1)
        self.register_buffer("future", future, persistent=False)  # True above the diagonal

    def forward(self, x):
        B, T, C = x.shape
        q, k, v = self.qkv(x).split(C, dim=2)
        # (B, T, C) -> (B, n_head, T, head_size): the heads become a batch dimension
        q, k, v = (t.view(B, T, self.n_head, C // self.n_head).transpose(1, 2) for t in (q, k, v))
        if self.attention == "fused" or (self.attention == "auto" and x.device.type != "cpu"):
            # softmax(q k^T / sqrt(head_size)) v with the future masked out, in one fused kernel
            y = F.scaled_dot_product_attention(q, k, v, is_causal=True,
                                               dropout_p=self.dropout if self.training else 0.0)
        else:
            # the same, step by step; scores and softmax in fp32 even under bf16 autocast
            scores = (q @ k.transpose(-2, -1)).float() * (1.0 / math.sqrt(k.size(-1)))
            scores = scores.masked_fill(self.future[:T, :T], float("-inf"))
            weights = self.attn_dropout(F.softmax(scores, dim=-1))
            y = weights.to(v.dtype) @ v
        y = y.transpose(1, 2).contiguous().view(B, T, C)
        return self.resid_dropout(self.proj(y))


class FeedForward(nn.Module):
    """Per position: widen 4x, GELU, project back. Where each token thinks about what it gathered."""

    def __init__(self, config: GPTConfig):
        super().__init__()
        self.up = nn.Linear(config.n_embd, 4 * config.n_embd, bias=config.bias)
        self.proj = nn.Linear(4 * config.n_embd, config.n_embd, bias=config.bias)
        self.dropout = nn.Dropout(config.dropout)

    def forward(self, x):
        return self.dropout(self.proj(F.gelu(self.up(x))))


class Block(nn.Module):
    """Communication (attention) then computation (feed-forward), each as a pre-norm residual."""

    def __init__(self, config: GPTConfig):
        super().__init__()
        self.ln1 = nn.LayerNorm(config.n_embd, bias=config.bias)
        self.attn = CausalSelfAttention(config)
        self.ln2 = nn.LayerNorm(config.n_embd, bias=config.bias)
        self.ffwd = FeedForward(config)

    def forward(self, x):
        x = x + self.attn(self.ln1(x))
        x = x + self.ffwd(self.ln2(x))
        return x


class GPT(nn.Module):

    def __init__(self, config: GPTConfig, block=Block):
        super().__init__()
        self.config = config
        self.token_embedding = nn.Embedding(config.vocab_size, config.n_embd)
        self.position_embedding = nn.Embedding(config.block_size, config.n_embd)
        self.drop = nn.Dropout(config.dropout)
        self.blocks = nn.ModuleList([block(config) for _ in range(config.n_layer)])
        self.ln_f = nn.LayerNorm(config.n_embd, bias=config.bias)
        self.lm_head = nn.Linear(config.n_embd, config.vocab_size, bias=False)
        self.lm_head.weight = self.token_embedding.weight  # weight tying: one table to read and write tokens
        self.apply(self._init_weights)
        # GPT-2: scale the layers that write into the residual stream by 1/sqrt(2 * n_layer)
        for name, p in self.named_parameters():
            if name.endswith("proj.weight"):
                nn.init.normal_(p, mean=0.0, std=0.02 / math.sqrt(2 * config.n_layer))

    @staticmethod
    def _init_weights(module):
        if isinstance(module, (nn.Linear, nn.Embedding)):
            nn.init.normal_(module.weight, mean=0.0, std=0.02)
        if isinstance(module, nn.Linear) and module.bias is not None:
            nn.init.zeros_(module.bias)

    def num_params(self, non_embedding=True) -> int:
        """Parameters, without the position table by default (the token table is the output layer too)."""
        n = sum(p.numel() for p in self.parameters())
        return n - self.position_embedding.weight.numel() if non_embedding else n

    def forward(self, idx, targets=None):
        B, T = idx.shape
        if T > self.config.block_size:
            raise ValueError(f"a context of {T} tokens is longer than block_size={self.config.block_size}")
        positions = torch.arange(T, device=idx.device)  # on idx's device: the same code runs on cpu and cuda
        x = self.drop(self.token_embedding(idx) + self.position_embedding(positions))
        for block in self.blocks:
            x = block(x)
        x = self.ln_f(x)
        with torch.autocast(x.device.type, enabled=False):  # 65 outputs: cheap in fp32, and the loss stays exact
            logits = self.lm_head(x.float())
        if targets is None:
            return logits, None
        loss = F.cross_entropy(logits.view(B * T, -1), targets.reshape(B * T))
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
