"""Whisper's encoder on each item's real frames instead of whole 30 s windows.

Hugging Face's ``WhisperEncoder.forward`` insists on 3,000 mel frames (one window): a 5 s clip
pays for 30 s, about 83% of it silence. The encoder itself has no such limit: two
convolutions, a table of 1,500 positional embeddings and pre-norm transformer blocks. Here
each item is cut into windows (long audio keeps Whisper's 30 s context), the last one only as
long as its real frames, and the positional table is sliced to the length run (as Ultravox
does)::

    item 0 (42 s): [ window 0: 3000 ][ 1200 ]     segments, longest first, grouped so a
    item 1 (5 s):  [ 500 ]                        group's padding stays under ~25%
                       │
                       ▼  per group: conv1, conv2 -> + positions[:T] -> blocks (padded keys masked)
    (layers, B, T_out, D): each item's segments' outputs back to back, zeros after

A segment's frame count is rounded up to the convolutions' stride product (2) and the padding
after it is zero, so every real output frame equals that segment encoded alone (tested).
"""

from __future__ import annotations

import torch
from torch import nn
from transformers.models.whisper.modeling_whisper import WhisperEncoder

GROUP_SLACK = 1.25
"""A group's padded frames may exceed its real frames by this factor before a new one starts:
one more forward pass costs less than attending over much padding."""


def segments(audio_lengths: list[int], window: int, multiple: int) -> list[tuple[int, int, int]]:
    """``(item, start, frames)`` per encoder pass: whole windows, then the rest rounded up to
    ``multiple`` (at most a window)."""
    out = []
    for item, n in enumerate(audio_lengths):
        for start in range(0, max(n, 1), window):
            frames = min(window, max(n, 1) - start)
            out.append((item, start, min(window, -(-frames // multiple) * multiple)))
    return out


def length_groups(lengths: list[int], slack: float = GROUP_SLACK) -> list[list[int]]:
    """Indices of ``lengths`` in groups (longest first) whose padded size
    ``max x count`` stays within ``slack`` of their summed lengths."""
    order = sorted(range(len(lengths)), key=lambda i: -lengths[i])
    groups: list[list[int]] = []
    total = 0
    for i in order:
        if groups and lengths[groups[-1][0]] * (len(groups[-1]) + 1) <= slack * (
            total + lengths[i]
        ):
            groups[-1].append(i)
            total += lengths[i]
        else:
            groups.append([i])
            total = lengths[i]
    return groups


def encode_real_length(
    model: WhisperEncoder, audio: torch.Tensor, audio_lengths: torch.Tensor, multiple: int
) -> tuple[torch.Tensor, ...]:
    """Every hidden state ``(B, T_out, D)`` of ``model`` over each item's real frames.

    Args:
        model: Hugging Face's ``WhisperEncoder`` (its layers are called directly).
        audio: ``(B, n_mels, frames)`` log-mel, padded with anything past each item's length.
        audio_lengths: ``(B,)`` real mel frames per item.
        multiple: the convolutions' stride product (frames per output frame).
    """
    window = model.config.max_source_positions * multiple
    pieces = segments(audio_lengths.tolist(), window, multiple)
    groups = length_groups([frames for _, _, frames in pieces])
    per_piece: list[tuple[torch.Tensor, int]] = [None] * len(pieces)  # type: ignore[list-item]
    for group in groups:
        width = pieces[group[0]][2]
        batch = audio.new_zeros(len(group), audio.shape[1], width)
        for row, p in enumerate(group):
            item, start, frames = pieces[p]
            chunk = audio[item, :, start : start + frames]
            batch[row, :, : chunk.shape[-1]] = chunk
        frames = torch.tensor([pieces[p][2] for p in group], device=audio.device)
        hidden = _hidden_states(model, batch, frames // multiple)
        for row, p in enumerate(group):
            per_piece[p] = (hidden[:, row], pieces[p][2] // multiple)
    n_items = audio.shape[0]
    out_lengths = [0] * n_items
    for (item, _, _), (_, n_out) in zip(pieces, per_piece, strict=True):
        out_lengths[item] += n_out
    first = per_piece[0][0]
    stitched = first.new_zeros(first.shape[0], n_items, max(out_lengths), first.shape[-1])
    filled = [0] * n_items
    for (item, _, _), (hidden, n_out) in zip(pieces, per_piece, strict=True):
        stitched[:, item, filled[item] : filled[item] + n_out] = hidden[:, :n_out]
        filled[item] += n_out
    return tuple(stitched)


def _hidden_states(
    model: WhisperEncoder, features: torch.Tensor, out_lengths: torch.Tensor
) -> torch.Tensor:
    """``WhisperEncoder.forward`` without its 3,000-frame check: ``(layers + 1, G, T, D)``,
    the embeddings first and the last state after the final layer norm, as Hugging Face's
    ``output_hidden_states`` returns them; keys past ``out_lengths`` are masked."""
    embeds = nn.functional.gelu(model.conv2(nn.functional.gelu(model.conv1(features))))
    hidden = embeds.permute(0, 2, 1)
    width = hidden.shape[1]
    hidden = hidden + model.embed_positions.weight[:width]
    mask = None
    if bool((out_lengths < width).any()):
        padded = torch.arange(width, device=hidden.device)[None, :] >= out_lengths[:, None]
        mask = hidden.new_zeros(padded.shape).masked_fill(padded, torch.finfo(hidden.dtype).min)
        mask = mask[:, None, None, :]
    states = [hidden]
    for layer in model.layers:
        states.append(layer(states[-1], mask))
    states[-1] = model.layer_norm(states[-1])
    return torch.stack(states)
