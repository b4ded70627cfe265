"""Lab 4's answers in their fast form: multi-head causal self-attention, the feed-forward layer, the
pre-norm transformer block, and the batches of windows (after nanoGPT's model.py and train.py).

    model = GPT(GPTConfig(vocab_size=65), block=Block)      # course_lib.gpt.GPT with these blocks
    history = train_lm(model, train_ids, val_ids, TrainConfig(), get_batch=get_batch)

The benchmark and course_lib's tests use them; lab 4 writes its own (one matrix product per head)
and passes them in. Attention runs through F.scaled_dot_product_attention on GPUs.

The options of course_lib.gpt.GPTConfig that act inside a block are read here: `rotary` (queries and keys
turned by their position), `qk_norm` (queries and keys RMS-normalised per head) and `activation` ("relu2").
"""
import math

import torch
import torch.nn as nn
from torch.nn import functional as F

from ..gpt import GPTConfig, rotary_tables, rotate

ANSWERS_OF = "04_gpt"  # `course bundle` packs this module only once lab 4's window has closed


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
        self.qk_norm = config.qk_norm
        self.rotary = config.rotary
        if config.rotary:
            cos, sin = rotary_tables(config.block_size, config.n_embd // config.n_head)
            self.register_buffer("cos", cos, persistent=False)
            self.register_buffer("sin", sin, persistent=False)

    def forward(self, x):
        B, T, C = x.shape
        q, k, v = self.qkv(x).split(C, dim=2)
        # (B, T, C) -> (B, n_head, T, head_size): the heads become a batch dimension
        q, k, v = (t.view(B, T, self.n_head, C // self.n_head).transpose(1, 2) for t in (q, k, v))
        if self.qk_norm:
            q, k = F.rms_norm(q, (q.size(-1),)), F.rms_norm(k, (k.size(-1),))
        if self.rotary:
            q, k = rotate(q, self.cos, self.sin), rotate(k, self.cos, self.sin)
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
    """Per position: widen 4x, GELU (or ReLU squared), project back. Where each token thinks about what it gathered."""

    def __init__(self, config: GPTConfig):
        super().__init__()
        self.up = nn.Linear(config.n_embd, 4 * config.n_embd, bias=config.bias)
        self.proj = nn.Linear(4 * config.n_embd, config.n_embd, bias=config.bias)
        self.dropout = nn.Dropout(config.dropout)
        self.activation = config.activation
        if config.activation not in ("gelu", "relu2"):
            raise ValueError(f"activation must be 'gelu' or 'relu2', not {config.activation!r}")

    def forward(self, x):
        h = self.up(x)
        h = F.relu(h).square() if self.activation == "relu2" else F.gelu(h)
        return self.dropout(self.proj(h))


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


def get_batch(data: torch.Tensor, block_size: int, batch_size: int, generator=None):
    """batch_size random windows of data: inputs x and targets y, y shifted one token to the right."""
    starts = torch.randint(len(data) - block_size, (batch_size,), generator=generator)
    windows = data[starts[:, None] + torch.arange(block_size + 1)]  # every window in one indexing operation
    # contiguous so that a student's targets.view(-1) works as in nanoGPT
    return windows[:, :-1].contiguous(), windows[:, 1:].contiguous()
