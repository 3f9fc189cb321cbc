"""The trainable bridge from encoder frames to LLM embeddings at a lower frame rate."""

from __future__ import annotations

import torch
from torch import nn


class ConvDownsampler(nn.Module):
    """A stack of strided ``Conv1d -> LayerNorm -> GELU`` blocks (SpeechVerse's downsampler).

    Frames past an item's length are zeroed before every convolution, so a padded item sees
    exactly the zeros the convolution's own padding would give it alone: padding never
    changes the outputs of the real frames, whatever else is in the batch.

    Args:
        input_size: encoder hidden size.
        output_size: LLM embedding size.
        strides: one block per stride; the frame rate drops by their product.
        kernel_size: kernel of every convolution (odd, so "same" padding is symmetric).
        hidden_size: channels between blocks (default: ``output_size``).
        final_activation: apply GELU after the last block too (off: the LLM's embedding space
            is not rectified).
        output_scale: gain the last LayerNorm starts at. A LayerNorm's output has RMS 1 while
            an LLM's token embeddings are often ~30x smaller; audio embeddings that loud swamp
            the residual stream at their positions, and the frozen LLM cannot read them as it
            reads text. None: 1, unless ``SpeechLLM`` builds this module, which starts it at
            the LLM's embedding RMS (see :meth:`scale_output`).
        summary_tokens: utterance embeddings appended after each item's frame embeddings: a
            linear map of the masked mean of the input frames, so properties of the whole
            utterance have positions of their own instead of being pooled out of every frame
            embedding (``SpeechLLM``'s ``{summary}`` slot can put them right before the answer,
            which took the CPU demo's gender from chance to 99 % dev UAR). 0: frame embeddings
            only.
    """

    def __init__(
        self,
        input_size: int,
        output_size: int,
        strides: list[int] | tuple[int, ...] = (2, 2),
        kernel_size: int = 3,
        hidden_size: int | None = None,
        final_activation: bool = False,
        output_scale: float | None = None,
        summary_tokens: int = 0,
    ) -> None:
        super().__init__()
        if not strides or any(s < 1 for s in strides):
            raise ValueError(f"strides must be a non-empty list of positive ints, got {strides}")
        if kernel_size < 1 or kernel_size % 2 == 0:
            raise ValueError(f"kernel_size must be a positive odd int, got {kernel_size}")
        hidden_size = hidden_size or output_size
        sizes = [input_size] + [hidden_size] * (len(strides) - 1) + [output_size]
        self.strides = tuple(strides)
        self.kernel_size = kernel_size
        self.convs = nn.ModuleList(
            nn.Conv1d(sizes[i], sizes[i + 1], kernel_size, stride=s, padding=kernel_size // 2)
            for i, s in enumerate(strides)
        )
        self.norms = nn.ModuleList(nn.LayerNorm(sizes[i + 1]) for i in range(len(strides)))
        self.final_activation = final_activation
        if summary_tokens < 0:
            raise ValueError(f"summary_tokens must be >= 0, got {summary_tokens}")
        self.summary_tokens = summary_tokens
        if summary_tokens:
            self.summary = nn.Linear(input_size, summary_tokens * output_size)
            self.summary_norm = nn.LayerNorm(output_size)
        self.output_scale = output_scale
        if output_scale is not None:
            self.scale_output(output_scale)

    @torch.no_grad()
    def scale_output(self, rms: float) -> None:
        """Start the outputs at RMS ``rms`` (the last LayerNorm's gain; its bias stays 0)."""
        if rms <= 0:
            raise ValueError(f"output scale must be > 0, got {rms}")
        self.norms[-1].weight.fill_(rms)
        if self.summary_tokens:
            self.summary_norm.weight.fill_(rms)

    def output_lengths(self, lengths: torch.Tensor) -> torch.Tensor:
        """Exact output embeddings for ``lengths`` input frames (summary tokens included)."""
        for stride in self.strides:
            lengths = self._block_lengths(lengths, stride)
        return lengths + self.summary_tokens

    def _block_lengths(self, lengths: torch.Tensor, stride: int) -> torch.Tensor:
        pad = self.kernel_size // 2
        return torch.div(lengths + 2 * pad - self.kernel_size, stride, rounding_mode="floor") + 1

    def forward(
        self, frames: torch.Tensor, mask: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Map ``(B, T, D_enc)`` frames with a ``(B, T)`` mask to ``(B, T', D_llm)`` and mask.

        Frames from a half-precision encoder are cast to the weights' (fp32 master) dtype.
        """
        lengths, in_mask = mask.sum(-1), mask
        frames = frames.to(self.convs[0].weight.dtype)
        x = frames
        last = len(self.convs) - 1
        for i, (conv, norm) in enumerate(zip(self.convs, self.norms, strict=True)):
            x = x * mask[..., None].to(x.dtype)
            x = norm(conv(x.transpose(1, 2)).transpose(1, 2))
            if i < last or self.final_activation:
                x = nn.functional.gelu(x)
            lengths = self._block_lengths(lengths, conv.stride[0])
            mask = torch.arange(x.shape[1], device=x.device)[None, :] < lengths[:, None]
        x = x * mask[..., None].to(x.dtype)
        if not self.summary_tokens:
            return x, mask
        return self._append_summary(x, lengths, frames, in_mask)

    def _append_summary(
        self, x: torch.Tensor, lengths: torch.Tensor, frames: torch.Tensor, frame_mask: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Write the summary embeddings right after each item's last frame embedding."""
        weights = frame_mask[..., None].to(frames.dtype)
        mean = (frames * weights).sum(1) / weights.sum(1).clamp_min(1.0)
        batch, k = x.shape[0], self.summary_tokens
        summary = self.summary_norm(self.summary(mean).view(batch, k, -1)).to(x.dtype)
        out = torch.cat([x, x.new_zeros(batch, k, x.shape[2])], dim=1)
        slots = lengths[:, None] + torch.arange(k, device=x.device)[None, :]
        out[torch.arange(batch, device=x.device)[:, None], slots] = summary
        lengths = lengths + k
        return out, torch.arange(out.shape[1], device=x.device)[None, :] < lengths[:, None]
