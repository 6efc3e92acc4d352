"""lightning_distill: progressive adversarial diffusion distillation of AnimateDiff across a pool of
SD1.5 base models (AnimateDiff-Lightning, arXiv 2403.12706).

Importing the package switches the Hugging Face libraries offline before anything imports them: the
project loads every weight from local files and must never reach for the network (huggingface_hub reads
HF_HUB_OFFLINE once, at its own import). A user who wants the hub back sets the variables to 0 first.
"""

import os

for _switch in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_DATASETS_OFFLINE", "DIFFUSERS_OFFLINE"):
    os.environ.setdefault(_switch, "1")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")

__version__ = "0.1.0"
