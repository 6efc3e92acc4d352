"""The Hydra config tree: every experiment composes and instantiates, the command line prints configs,
and a misspelt experiment, option or key fails with one message that lists the valid choices."""

from __future__ import annotations

import subprocess
import sys

import pytest
from hydra.utils import instantiate

from lightning_distill.config import ConfigError, check_overrides, check_world, compose, group_options
from lightning_distill.models.base_model import BaseModelSpec
from lightning_distill.models.pool import Pool
from lightning_distill.stages.chain import ChainError, plan_chain

EXPERIMENTS = group_options("experiment")


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "lightning_distill", *args], capture_output=True, text=True, timeout=120
    )


def test_the_four_step_counts_exist():
    assert {"1step", "2step", "4step", "8step"} <= set(EXPERIMENTS)


@pytest.mark.parametrize("experiment", EXPERIMENTS)
def test_every_experiment_composes_and_instantiates(experiment, tmp_path):
    cfg = compose([f"+experiment={experiment}", f"paths.output={tmp_path}"])
    if cfg.get("toy_teacher"):
        assert cfg.toy_teacher.output and not cfg.stages  # trains the teacher, not a distillation chain
    else:
        plans = plan_chain(cfg.stages)
        assert plans[0].teacher_steps > plans[-1].student_steps
    pool = instantiate(cfg.pool)
    assert isinstance(pool, Pool) and pool.members
    assert all(isinstance(spec, BaseModelSpec) for spec in pool.members.values())
    assert abs(sum(pool.shares().values()) - 1.0) < 1e-9
    datamodule = instantiate(cfg.data)
    assert datamodule.__class__.__name__ == "VideoDataModule"
    logger = instantiate(cfg.logger)
    assert str(tmp_path) in str(logger.save_dir)
    trainer_kwargs = {k: v for k, v in cfg.trainer.items() if k != "_target_"}
    assert trainer_kwargs["accelerator"] == "cpu"


@pytest.mark.parametrize(
    ("experiment", "chain"),
    [
        ("1step", [128, 32, 8, 4, 2, 1]),
        ("2step", [128, 32, 8, 4, 2]),
        ("4step", [128, 32, 8, 4]),
        ("4step_full", [128, 32, 8, 4]),
        ("8step", [128, 32, 8]),
    ],
)
def test_chains_follow_the_paper(experiment, chain):
    plans = plan_chain(compose([f"+experiment={experiment}"]).stages)
    assert [plans[0].teacher_steps] + [p.student_steps for p in plans] == chain
    assert [p.objective for p in plans] == ["mse"] + ["adversarial"] * (len(chain) - 2)


def test_4step_full_is_the_4step_chain_with_three_times_its_updates():
    short, full = compose(["+experiment=4step"]), compose(["+experiment=4step_full"])
    assert full.experiment == "4step_full"
    assert full.recipe.mse.iterations == 3 * short.recipe.mse.iterations
    # Its own rate, in smaller steps than the default's over three times the updates: the conf says why.
    assert full.recipe.mse.lr == pytest.approx(3.0e-4) and full.recipe.mse.lr < short.recipe.mse.lr
    assert full.latents.clips_per_member == 2 * short.latents.clips_per_member
    for phase in ("conditional_steps", "unconditional_steps"):
        assert full.recipe.adversarial[phase] == 3 * short.recipe.adversarial[phase]
        assert full.stages.adversarial_8_to_4.module[phase] == full.recipe.adversarial[phase]


@pytest.mark.parametrize(("world", "guidance"), [("paper", 7.5), ("toy", 3.0)])
def test_the_mse_stage_takes_its_teachers_guidance_from_the_worlds_recipe(world, guidance):
    # The paper's 7.5 on real checkpoints; the toy recipe's own scale (conf/recipe/toy.yaml says why).
    cfg = compose(["+experiment=4step", f"world={world}"])
    assert cfg.stages.mse_128_to_32.module.guidance_scale == guidance
    override = compose(["+experiment=4step", f"world={world}", "recipe.mse.guidance_scale=6"])
    assert override.stages.mse_128_to_32.module.guidance_scale == 6


@pytest.mark.parametrize("world", ["paper", "toy"])
def test_every_adversarial_stage_takes_its_loss_from_the_recipe(world):
    # The papers' non-saturating loss by default in both worlds; one override switches every stage.
    def losses(*overrides):
        cfg = compose(["+experiment=1step", f"world={world}", *overrides])
        return [s.module.loss for s in cfg.stages.values() if s.objective == "adversarial"]

    assert losses() == ["non_saturating"] * 4
    assert losses("recipe.adversarial.loss=relativistic") == ["relativistic"] * 4


def test_an_experiment_sized_for_the_toy_world_refuses_the_paper_world():
    assert check_world(compose(["+experiment=4step_full"])).world == "toy"
    assert compose(["+experiment=4step", "world=paper"]).world == "paper"
    with pytest.raises(ConfigError, match=r"\+experiment=4step_full is sized for world=toy, not world=paper"):
        check_overrides(["+experiment=4step_full", "world=paper"])
    from lightning_distill.train import train

    with pytest.raises(ConfigError, match="world=paper"):  # before anything is built or resolved
        train(compose(["+experiment=4step_full", "world=paper", "dry_run=true"]))


def test_paper_pool_has_the_papers_shares():
    pool = instantiate(compose(["pool=paper"]).pool)
    shares = pool.shares()
    assert shares["sd15"] == pytest.approx(2 / 8) and shares["toonyou_beta6"] == pytest.approx(2 / 8)
    assert sum(shares[n] for n in ("realistic_vision_v51", "epicrealism")) == pytest.approx(2 / 8)
    assert sum(shares[n] for n in ("toonyou_beta6", "imp_v10", "counterfeit_v30")) == pytest.approx(4 / 8)
    assert set(pool.held_out) == {"dreamshaper_v8", "dynavision_v2"}
    assert [r[0] for r in pool.assign_ranks(8)] == [
        "sd15", "sd15", "realistic_vision_v51", "epicrealism",
        "toonyou_beta6", "toonyou_beta6", "imp_v10", "counterfeit_v30",
    ]  # fmt: skip


def test_pool_membership_is_composed_on_the_command_line():
    pool = instantiate(
        compose(
            ["~pool.members.toy_flat", "+base_model@pool.members.mine=toy_flat", "pool.members.mine.share=3"]
        ).pool
    )
    assert "toy_flat" not in pool.members
    assert pool.members["mine"].name == "mine" and pool.members["mine"].style == "flat"
    assert pool.shares()["mine"] == pytest.approx(3 / 7)


def test_toy_pool_holds_one_style_out():
    pool = instantiate(compose([]).pool)
    assert len(pool.held_out) == 1
    assert not set(pool.held_out) & set(pool.members)


def test_cfg_job_prints_the_composed_config():
    result = run_cli("+experiment=4step", "--cfg", "job")
    assert result.returncode == 0, result.stderr
    assert "experiment: 4step" in result.stdout and "adversarial_8_to_4" in result.stdout


@pytest.mark.parametrize(
    ("override", "must_name"),
    [
        ("+experiment=nope", ["1step", "2step", "4step", "8step"]),
        ("+experiment=4stp", ["Did you mean '4step'"]),
        ("data=nope", ["toy"]),
        ("trainer.devicez=2", ["devices", "Did you mean 'trainer.devices'"]),
        ("experiment=4step", ["+experiment=4step"]),
        ("pool.members.toy_flatt.share=2", ["toy_flat"]),
    ],
)
def test_bad_overrides_name_the_valid_choices(override, must_name):
    with pytest.raises(ConfigError) as error:
        check_overrides([override])
    for text in must_name:
        assert text in str(error.value)


def test_bad_experiment_fails_on_the_command_line_with_one_message():
    result = run_cli("+experiment=nope", "--cfg", "job")
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert "Valid choices for experiment: 1step, 2step, 4step, 4step_full, 8step" in result.stderr


def test_contradictory_chain_fails_on_the_command_line_with_one_message(tmp_path):
    result = run_cli(
        "+experiment=4step",
        "stages.mse_128_to_32.module.loss_space=sigma",
        "dry_run=true",
        f"paths.output={tmp_path}",
    )
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert "lightning_distill: stages.mse_128_to_32.module.loss_space is 'sigma'" in result.stderr


@pytest.mark.parametrize(
    ("stages", "rule"),
    [
        ({}, "+experiment=4step"),
        ({"a": {"objective": "gan", "teacher_steps": 8, "student_steps": 4}}, "valid: mse, adversarial"),
        ({"a": {"objective": "mse", "teacher_steps": 8, "student_steps": 3}}, "larger multiple"),
        (
            {
                "a": {
                    "objective": "mse",
                    "teacher_steps": 128,
                    "student_steps": 32,
                    "module": {"loss_space": "sigma"},
                }
            },
            "stages.a.module.loss_space is 'sigma'; valid: destination, eps, x0, v",
        ),
        (
            {
                "a": {"objective": "mse", "teacher_steps": 128, "student_steps": 32},
                "b": {"objective": "adversarial", "teacher_steps": 16, "student_steps": 8},
            },
            "previous stage",
        ),
    ],
)
def test_contradictory_chains_are_named(stages, rule):
    with pytest.raises(ChainError, match=rule.replace("+", r"\+")):
        plan_chain(stages)


def test_dry_run_validates_and_instantiates(tmp_path):
    from lightning_distill.train import train

    summary = train(compose(["+experiment=4step", "dry_run=true", f"paths.output={tmp_path}"]))
    assert summary["stages"] == 3 and summary["dry_run"]
