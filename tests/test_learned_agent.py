"""`PPOAgent` loading and checking the committed policies in ``policies/``.

No training here: the policies are the ones in the repository, and the bad
ones are made from them (metadata rewritten, zip entries dropped or broken).
What is checked is that loading is all or nothing, that every `bind` checks
the policy against the env's task, and that bad arguments and bad files are
TypeError/ValueError saying what is allowed.
"""

from __future__ import annotations

import zipfile
from pathlib import Path

import pytest

pytest.importorskip("sb3_contrib", reason="the [train] extra is not installed")

import torch

from adaptive_alert_triage.agents.learned import PPOAgent, policy_path
from adaptive_alert_triage.env import AdaptiveAlertTriageEnv
from adaptive_alert_triage.models import Action

POLICIES = Path(__file__).resolve().parents[1] / "policies"
EASY = POLICIES / "ppo_easy.zip"


@pytest.fixture(autouse=True)
def committed_policies(monkeypatch):
    """The built-in lookup reads the repository's ``policies/``."""
    monkeypatch.delenv("ALERT_TRIAGE_POLICIES", raising=False)


@pytest.fixture(scope="module")
def rewrite(tmp_path_factory):
    """``rewrite(name, **triage)``: the easy policy saved again with its triage
    metadata updated by ``triage``."""
    from sb3_contrib import MaskablePPO

    folder = tmp_path_factory.mktemp("policies")

    def make(name: str, **triage) -> Path:
        model = MaskablePPO.load(EASY, device="cpu")
        model.triage = {**model.triage, **triage}
        path = folder / f"{name}.zip"
        model.save(path, include=["triage"])
        return path

    return make


def observation_of(env: AdaptiveAlertTriageEnv, seed: int = 0):
    return env.reset(seed=seed)


def assert_unloaded(agent: PPOAgent) -> None:
    assert agent.model is None and agent.path is None and agent.config is None
    assert agent.meta == {}


# ---------------------------------------------------------------------- atomic loading
def test_a_policy_rejected_by_bind_is_never_kept():
    agent = PPOAgent(EASY)
    hard = AdaptiveAlertTriageEnv("hard")
    for _ in range(2):  # the second bind used to find the rejected model and skip the check
        with pytest.raises(ValueError, match=r"shape \(109,\), but task 'hard' gives \(171,\)"):
            agent.bind(hard)
        assert_unloaded(agent)
    easy = AdaptiveAlertTriageEnv("easy")
    agent.bind(easy)
    assert agent.config is easy.config and agent.path == EASY
    assert all(isinstance(a, Action) for a in agent.act(observation_of(easy)))


def test_rebinding_to_another_task_checks_the_policy_and_keeps_the_old_binding():
    easy, hard = AdaptiveAlertTriageEnv("easy"), AdaptiveAlertTriageEnv("hard")
    agent = PPOAgent(EASY)
    agent.bind(easy)
    model = agent.model
    obs = observation_of(easy, seed=5)
    before = agent.act(obs)
    with pytest.raises(ValueError, match="it was trained on task 'easy'"):
        agent.bind(hard)
    assert agent.model is model and agent.config is easy.config and agent.path == EASY
    assert agent.act(obs) == before


def test_a_policy_of_another_format_is_never_used(rewrite):
    path = rewrite("format2", format=2)
    env = AdaptiveAlertTriageEnv("easy")
    bound = PPOAgent(path)
    for _ in range(2):
        with pytest.raises(ValueError, match="has format 2, this package reads format 1"):
            bound.bind(env)
        assert_unloaded(bound)
    unbound = PPOAgent(path)
    obs = observation_of(env)
    for _ in range(2):  # without bind, act() loads; the second used to be an AttributeError
        with pytest.raises(ValueError, match="has format 2"):
            unbound.act(obs)
        assert_unloaded(unbound)


@pytest.mark.parametrize(
    ("triage", "told"),
    [
        ({"action_mode": "member"}, r"in 'member' mode takes MultiDiscrete\(\[33, 33, 33\]\)"),
        ({"action_mode": "team"}, "has action_mode 'team'"),
    ],
)
def test_the_action_space_is_checked_too(rewrite, triage, told):
    agent = PPOAgent(rewrite(f"mode-{triage['action_mode']}", **triage))
    with pytest.raises(ValueError, match=told):
        agent.bind(AdaptiveAlertTriageEnv("easy"))
    assert_unloaded(agent)


def test_without_bind_the_policy_plays_the_task_it_was_trained_on():
    env = AdaptiveAlertTriageEnv("easy")
    agent = PPOAgent(EASY)
    obs = observation_of(env, seed=2)
    actions = agent.act(obs)
    assert agent.config.task_id == "easy" and agent.meta["task"] == "easy"
    bound = PPOAgent(EASY)
    bound.bind(env)
    assert actions == bound.act(obs)


def test_the_builtin_agent_loads_the_policy_of_each_bound_task():
    agent = PPOAgent()
    for task in ("easy", "medium"):
        env = AdaptiveAlertTriageEnv(task)
        agent.bind(env)
        assert agent.path == policy_path(task) and agent.config is env.config
        obs = observation_of(env, seed=1)
        for _ in range(3):
            obs, _, done, _ = env.step(agent.act(obs))  # legal, or the env raises
            assert not done


# ---------------------------------------------------------------------- bad files
def _copy_zip(src: Path, dest: Path, drop: tuple[str, ...] = (), replace=None) -> Path:
    replace = replace or {}
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dest, "w") as zout:
        for name in zin.namelist():
            if name not in drop:
                zout.writestr(name, replace.get(name, zin.read(name)))
    return dest


@pytest.mark.parametrize("kind", ["no-model", "not-a-zip", "bad-data", "bad-weights"])
def test_a_file_that_is_not_a_policy_is_a_value_error_naming_it(tmp_path, kind):
    path = tmp_path / f"{kind}.zip"
    if kind == "no-model":  # used to be AssertionError("No data found in the saved file")
        with zipfile.ZipFile(path, "w") as z:
            z.writestr("notes.txt", "no model in here")
    elif kind == "not-a-zip":
        path.write_text("not a zip")
    elif kind == "bad-data":
        _copy_zip(EASY, path, replace={"data": b"{not json"})
    else:
        _copy_zip(EASY, path, replace={"policy.pth": b"garbage"})
    agent = PPOAgent(path)
    with pytest.raises(ValueError, match="is not a MaskablePPO policy") as raised:
        agent.bind(AdaptiveAlertTriageEnv("easy"))
    assert str(path) in str(raised.value)
    assert_unloaded(agent)


# ---------------------------------------------------------------------- arguments
@pytest.mark.parametrize(
    ("device", "error"),
    [
        ("tpu", ValueError),
        ("", ValueError),
        ("cuda:x", ValueError),
        ("CPU", ValueError),
        (5, TypeError),
        (True, TypeError),
        (None, TypeError),
        (torch.device("meta"), ValueError),
    ],
)
def test_a_bad_device_is_rejected_at_construction(device, error):
    with pytest.raises(error, match=r"device must be 'cpu', 'cuda', .*'auto' or a torch\.device"):
        PPOAgent(EASY, device=device)


@pytest.mark.parametrize("device", ["cpu", "cuda", "cuda:0", "auto", torch.device("cpu")])
def test_good_devices_are_accepted(device):
    assert PPOAgent(EASY, device=device).device == device


def test_auto_device_loads_where_it_can():
    agent = PPOAgent(EASY, device="auto")
    agent.bind(AdaptiveAlertTriageEnv("easy"))
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert agent.model.device.type == expected


@pytest.mark.parametrize("source", [123, True, 1.5, b"policies/ppo_easy.zip", ["easy"]])
def test_path_or_task_must_be_a_path_a_task_or_none(source):
    allowed = r"a policy \.zip \(str or os\.PathLike\) or None"
    with pytest.raises(TypeError, match=allowed) as raised:
        PPOAgent(source)
    assert repr(source) in str(raised.value)


def test_a_missing_file_is_a_value_error_at_bind(tmp_path):
    agent = PPOAgent(tmp_path / "missing.zip")
    with pytest.raises(ValueError, match="does not exist"):
        agent.bind(AdaptiveAlertTriageEnv("easy"))
    assert_unloaded(agent)
