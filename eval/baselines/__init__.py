"""Baselines the students are compared with: the released AnimateLCM run through diffusers (paper world).

Submodules stay unimported here (``from eval.baselines.animatelcm import load_animatelcm``): they pull in
diffusers and peft, which ``import eval.baselines`` should not pay for.
"""
