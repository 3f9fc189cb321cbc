"""An offline, seeded multitask speech benchmark synthesised with eSpeak NG.

``generate(SynthConfig(out="data/synth", n_train=5000))`` writes ``train``, ``dev``, ``test``
and ``test_heldout_instructions`` manifests, FLAC audio and a dataset card; the
``speechllm-synth`` CLI does the same from ``conf/synth.yaml``.
"""

from speechllm.synth.espeak import Engine, Prosody
from speechllm.synth.generate import SynthConfig, SynthReport, generate, plan
from speechllm.synth.grammar import Sentence, content_words, sample_sentence
from speechllm.synth.nonspeech import add_noise, nonspeech
from speechllm.synth.voices import ACCENTS, STYLES, Voice, split_variants

__all__ = [
    "ACCENTS",
    "STYLES",
    "Engine",
    "Prosody",
    "Sentence",
    "SynthConfig",
    "SynthReport",
    "Voice",
    "add_noise",
    "content_words",
    "generate",
    "nonspeech",
    "plan",
    "sample_sentence",
    "split_variants",
]
