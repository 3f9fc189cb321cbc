"""The frozen audio encoder and the learnable mix of its hidden layers."""

from __future__ import annotations

from importlib import import_module
from pathlib import Path
from typing import Any

import torch
from torch import nn
from transformers import AutoConfig, AutoFeatureExtractor, AutoModel, PreTrainedModel
from transformers.feature_extraction_utils import FeatureExtractionMixin

from speechllm.models.precision import own_precision
from speechllm.models.whisper_real_length import encode_real_length


class LayerWeights(nn.Module):
    """SpeechVerse's AE(x) = sum_l softmax(w)_l h_l over all hidden states.

    Different tasks want different depths (speaker and emotion live low, words high), so the
    mix is learned. With ``last_only`` the top layer is used and there is nothing to learn.
    """

    def __init__(self, num_layers: int, last_only: bool = False) -> None:
        super().__init__()
        self.last_only = last_only
        self.logits = None if last_only else nn.Parameter(torch.zeros(num_layers))

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        """Mix ``(layers, B, T, D)`` hidden states into ``(B, T, D)``."""
        if self.logits is None:
            return hidden_states[-1]
        if len(hidden_states) != self.logits.numel():
            raise ValueError(
                f"LayerWeights holds {self.logits.numel()} weights but the encoder returned "
                f"{len(hidden_states)} hidden states"
            )
        weights = self.logits.softmax(0).to(hidden_states.dtype)
        return torch.einsum("l,lbtd->btd", weights, hidden_states)


class AudioEncoder(nn.Module):
    """A frozen Hugging Face audio encoder that returns mixed frames and their mask.

    The wrapped model never trains: its parameters do not require grad, it runs under
    ``torch.no_grad`` and stays in eval mode whatever ``train()`` is called with, so dropout
    never perturbs the features the downsampler learns from. Whisper-style encoders see a
    fixed window; longer inputs are cut into windows that are encoded independently and
    concatenated, so nothing is truncated and no item sees another item's padding.

    Args:
        model: the encoder (for an encoder-decoder such as Whisper, pass the full model or
            its encoder; the encoder is kept).
        feature_extractor: the model's Hugging Face feature extractor (the data side uses it).
        last_layer_only: use the top hidden state instead of the learned layer mix.
        cache_hidden_states: keep every item's hidden states (float16, CPU) by utterance id
            and reuse them: the encoder is frozen and deterministic, so after one pass over the
            data the training steps skip it. For tiny runs only (the demo, tests): it lives in
            this process's memory, ``layers x frames x hidden x 2`` bytes per utterance (about
            6 MB per second of audio for Whisper-large-v3), is not shared between data-parallel
            ranks or kept across runs, and is wrong under audio augmentation. Evaluation does
            not need it: :meth:`SpeechLLM.encode` runs once per item and scoring and
            generation reuse its embeddings.
        real_length: Whisper-family encoders run on each item's real frames (rounded up to the
            convolutions' stride, positional embeddings sliced) instead of whole 30 s windows
            padded with silence; long audio still goes window by window. Ignored by other
            encoders. Why this is the default: ``docs/encoder.md``.
    """

    def __init__(
        self,
        model: PreTrainedModel,
        feature_extractor: FeatureExtractionMixin,
        last_layer_only: bool = False,
        cache_hidden_states: bool = False,
        real_length: bool = True,
    ) -> None:
        super().__init__()
        if getattr(model.config, "is_encoder_decoder", False):
            model = model.get_encoder()
        self.model = model.eval().requires_grad_(False)
        self.feature_extractor = feature_extractor
        self.is_windowed = hasattr(model.config, "max_source_positions") and hasattr(model, "conv1")
        num_layers = model.config.num_hidden_layers + 1  # embeddings + every block
        self.layer_weights = LayerWeights(num_layers, last_only=last_layer_only)
        self.cache_hidden_states = cache_hidden_states
        self.real_length = real_length and self.is_windowed
        self._cache: dict[str, torch.Tensor] = {}

    @classmethod
    def from_pretrained(
        cls,
        name_or_path: str,
        last_layer_only: bool = False,
        cache_hidden_states: bool = False,
        real_length: bool = True,
        **model_kwargs: Any,
    ) -> AudioEncoder:
        """Load any HF audio model (Whisper, WavLM, HuBERT, wav2vec2) by hub id or local path.

        A saved encoder-only model (``WhisperEncoder``) loads as itself; anything else through
        ``AutoModel`` (for Whisper that is the full model, whose encoder is kept).
        """
        config = AutoConfig.from_pretrained(name_or_path)
        arch = (config.architectures or [""])[0]
        loader = AutoModel
        if arch.endswith("Encoder"):
            kind = config.model_type
            loader = getattr(import_module(f"transformers.models.{kind}.modeling_{kind}"), arch)
        model = loader.from_pretrained(name_or_path, **model_kwargs)
        extractor = AutoFeatureExtractor.from_pretrained(name_or_path)
        return cls(model, extractor, last_layer_only, cache_hidden_states, real_length)

    def save_pretrained(self, path: str | Path) -> None:
        """The frozen model and its feature extractor, loadable by :meth:`from_pretrained`."""
        self.model.save_pretrained(path)
        self.feature_extractor.save_pretrained(path)

    @property
    def hidden_size(self) -> int:
        return self.model.config.hidden_size

    @property
    def dtype(self) -> torch.dtype:
        """The frozen model's dtype: what it was loaded in (a hub checkpoint's stored dtype,
        e.g. fp16 for Whisper-large-v3) or what the config asked for."""
        return next(self.model.parameters()).dtype

    @property
    def sampling_rate(self) -> int:
        return int(self.feature_extractor.sampling_rate)

    @property
    def masks_padding(self) -> bool:
        """Whether a padded batch encodes each item as if it were alone.

        Not for wav2vec2-style models with ``feat_extract_norm="group"`` (wav2vec2-base,
        hubert-base, wavlm-base): their first convolution's GroupNorm normalises over the
        whole padded time axis, which no attention mask reaches, so the padding would change
        every real frame and the features would depend on the batch. Those are encoded one
        item at a time.
        """
        return getattr(self.model.config, "feat_extract_norm", "layer") != "group"

    @property
    def window_frames(self) -> int | None:
        """Input frames per encoder window (Whisper), or None for unwindowed encoders."""
        if not self.is_windowed:
            return None
        cfg = self.model.config
        return cfg.max_source_positions * self.frame_multiple

    @property
    def frame_multiple(self) -> int:
        """Input frames per output frame (Whisper's conv strides, 1 x 2): an item's real frames
        are rounded up to a multiple of this, so its last output frame sees only its own input,
        exactly as when it is encoded alone."""
        return self.model.conv1.stride[0] * self.model.conv2.stride[0] if self.is_windowed else 1

    def train(self, mode: bool = True) -> AudioEncoder:
        super().train(mode)
        self.model.eval()
        return self

    @property
    def min_input_length(self) -> int:
        """Fewest input units (samples, or mel frames for Whisper) that give one encoder frame:
        a waveform encoder's convolutions need their receptive field (400 samples, 25 ms, for
        wav2vec2-style bases); less crashes alone and gives an item of no frames in a batch."""
        lengths = self.output_lengths(torch.arange(1, 1 << 16))
        return int((lengths >= 1).nonzero()[0, 0]) + 1

    @property
    def min_samples(self) -> int:
        """:attr:`min_input_length` in audio samples at :attr:`sampling_rate`."""
        hop = self.feature_extractor.hop_length if self.is_windowed else 1
        return self.min_input_length * hop

    def check_lengths(self, audio_lengths: torch.Tensor) -> None:
        """Refuse items too short for one encoder frame, the same way alone or in a batch.

        Raises:
            ValueError: naming the items and the shortest length the encoder accepts.
        """
        short = (self.output_lengths(audio_lengths) < 1).nonzero().flatten().tolist()
        if short:
            units = "mel frames" if self.is_windowed else "samples"
            got = [int(audio_lengths[i]) for i in short]
            raise ValueError(
                f"audio item(s) {short} ({got} {units}) are shorter than one encoder frame, "
                f"which needs >= {self.min_input_length} {units} "
                f"({self.min_samples / self.sampling_rate * 1000:g} ms)"
            )

    def seconds(self, input_lengths: torch.Tensor) -> torch.Tensor:
        """Audio duration of ``input_lengths`` input units (samples, or mel frames for Whisper)."""
        hop = self.feature_extractor.hop_length if self.is_windowed else 1
        return input_lengths.double() * hop / self.sampling_rate

    def output_lengths(self, input_lengths: torch.Tensor) -> torch.Tensor:
        """Encoder frames produced by ``input_lengths`` input units (samples or mel frames)."""
        if self.is_windowed:
            lengths = input_lengths
            for conv in (self.model.conv1, self.model.conv2):
                pad, kernel, stride = conv.padding[0], conv.kernel_size[0], conv.stride[0]
                lengths = (lengths + 2 * pad - kernel) // stride + 1
            return lengths
        return self.model._get_feat_extract_output_lengths(input_lengths).long()

    def forward(
        self, audio: torch.Tensor, audio_lengths: torch.Tensor, keys: list[str] | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Encode a padded batch; ``keys`` (utterance ids) enable the hidden-state cache.

        The input is cast to the frozen model's dtype here, at its boundary, so features
        computed in fp32 feed an fp16 or bf16 checkpoint with or without autocast.

        Returns:
            frames ``(B, T, D)`` (the layer mix, zero on padding) and mask ``(B, T)`` (bool).

        Raises:
            ValueError: An item is shorter than one encoder frame (:meth:`check_lengths`).
        """
        self.check_lengths(audio_lengths)
        lengths = self.output_lengths(audio_lengths)
        use_cache = self.cache_hidden_states and keys is not None
        with torch.no_grad():
            if use_cache and all(k in self._cache for k in keys):
                hidden = self._from_cache(keys, lengths, audio.device)
            else:
                with own_precision(self.model):
                    hidden = torch.stack(self.hidden_states(audio.to(self.dtype), audio_lengths))
                if use_cache:
                    for b, key in enumerate(keys):
                        self._cache[key] = hidden[:, b, : lengths[b]].to("cpu", torch.float16)
        frames = self.layer_weights(hidden)
        lengths = lengths.clamp(max=frames.shape[1])
        mask = torch.arange(frames.shape[1], device=frames.device)[None, :] < lengths[:, None]
        return frames * mask[..., None].to(frames.dtype), mask

    def hidden_states(
        self, audio: torch.Tensor, audio_lengths: torch.Tensor
    ) -> tuple[torch.Tensor, ...]:
        """Every hidden state of the wrapped model (embeddings, then each block), each
        ``(B, T, D)``, Whisper windows stitched per item (real frames only with
        ``real_length``; what lies past an item's :meth:`output_lengths` is padding).

        :meth:`forward` runs this frozen, under ``no_grad``; a script that pretrains the encoder
        itself (the demo's bootstrap) calls it with autograd on.
        """
        if self.real_length:
            return encode_real_length(self.model, audio, audio_lengths, self.frame_multiple)
        if self.is_windowed:
            return self._encode_windows(audio, audio_lengths)
        return self._encode_waveform(audio, audio_lengths)

    def _from_cache(
        self, keys: list[str], lengths: torch.Tensor, device: torch.device
    ) -> torch.Tensor:
        items = [self._cache[k] for k in keys]
        layers, _, dim = items[0].shape
        hidden = torch.zeros(layers, len(keys), int(lengths.max()), dim, device=device)
        for b, item in enumerate(items):
            hidden[:, b, : item.shape[1]] = item.to(device, hidden.dtype)
        return hidden

    def _encode_waveform(
        self, audio: torch.Tensor, audio_lengths: torch.Tensor
    ) -> tuple[torch.Tensor, ...]:
        if not self.masks_padding:
            return self._encode_one_by_one(audio, audio_lengths)
        attention_mask = (
            torch.arange(audio.shape[1], device=audio.device)[None, :] < audio_lengths[:, None]
        ).long()
        out = self.model(audio, attention_mask=attention_mask, output_hidden_states=True)
        return out.hidden_states

    def _encode_one_by_one(
        self, audio: torch.Tensor, audio_lengths: torch.Tensor
    ) -> tuple[torch.Tensor, ...]:
        """Each item at its own length, zero-padded afterwards (see :attr:`masks_padding`)."""
        items = [
            torch.stack(self.model(audio[b : b + 1, :n], output_hidden_states=True).hidden_states)
            for b, n in enumerate(audio_lengths.tolist())
        ]
        layers, _, _, dim = items[0].shape
        frames = max(item.shape[2] for item in items)
        hidden = items[0].new_zeros(layers, len(items), frames, dim)
        for b, item in enumerate(items):
            hidden[:, b, : item.shape[2]] = item[:, 0]
        return tuple(hidden)

    def _encode_windows(
        self, audio: torch.Tensor, audio_lengths: torch.Tensor
    ) -> tuple[torch.Tensor, ...]:
        """Encode only the windows that hold real frames, then stitch them back per item.

        ::

            item 0: [win0][win1]        ─┐  (windows with real frames)      ┌─► (B, n_win*F, D)
            item 1: [win0]              ─┼─► (N, mels, W) ─► encoder ─► ────┤
                                                                            └─  zeros elsewhere
        """
        window = self.window_frames
        batch, mels, total = audio.shape
        n_win = -(-total // window)
        if n_win * window != total:
            audio = nn.functional.pad(audio, (0, n_win * window - total))
        windows = audio.reshape(batch, mels, n_win, window).permute(0, 2, 1, 3)
        used = torch.arange(n_win, device=audio.device)[None, :] * window < audio_lengths[:, None]
        out = self.model(windows[used], output_hidden_states=True)
        per_window = out.hidden_states[0].shape[1]
        stitched = []
        for h in out.hidden_states:
            full = h.new_zeros(batch, n_win, per_window, h.shape[-1])
            full[used] = h
            stitched.append(full.reshape(batch, n_win * per_window, h.shape[-1]))
        return tuple(stitched)
