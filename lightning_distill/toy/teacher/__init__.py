"""The toy teacher: a tiny AnimateDiff trained from scratch on the toy world, in the order the real one
was made (a VAE, a CLIP text encoder, an "SD1.5" image UNet, style fine-tunes as community base models,
then the motion module with the image UNets frozen). `run.py` runs the stages; the result ships in
`lightning_distill/toy/teacher_weights/` and is what the distillation experiments distil.
"""
