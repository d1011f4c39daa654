"""Config mistakes Hydra finds while composing end in one line and exit status 2, before
any slow import; the command's own errors are reported as before."""

from __future__ import annotations

import os
import sys

import pytest

from mia.cli.command import hydra_command, one_line


def error_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.strip()]


@pytest.mark.parametrize(
    ("args", "line"),
    [
        (
            ["mia.cli.train", "model.dimm=3"],
            "error: Could not override 'model.dimm'. To append to your config use +model.dimm=3",
        ),
        (
            ["mia.cli.train", "model=lama"],
            "error: In 'train': Could not find 'model/lama'. "
            "Available options in 'model': gpt, llama",
        ),
        (["mia.cli.eval", "split=[val"], "error: split=[val: "),
        (["mia.cli.generate"], "error: ckpt_path: required; give a checkpoint, e.g. ckpt_path="),
        (["mia.cli.export", "ckpt_path=a.ckpt"], "error: out_dir: required; give a folder"),
        (["mia.cli.prepare", "data=nope"], "error: In 'prepare': Could not find 'data/nope'."),
    ],
)
def test_a_config_mistake_is_one_line_and_exit_status_2(run_module, args, line):
    result = run_module(args)
    assert result.returncode == 2, result.stderr
    lines = error_lines(result.stderr)
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(line)
    assert "HYDRA_FULL_ERROR" not in result.stderr


def test_a_user_who_asks_for_hydras_full_error_gets_it(run_module, monkeypatch):
    monkeypatch.setenv("HYDRA_FULL_ERROR", "1")
    result = run_module(["mia.cli.train", "model.dimm=3"])
    assert result.returncode != 0
    assert "Traceback" in result.stderr
    assert "ConfigCompositionException" in result.stderr


def test_the_commands_do_not_import_torch_before_the_config_is_composed():
    # A fresh interpreter: importing a command must leave torch and Lightning unloaded.
    import subprocess

    code = (
        "import sys\n"
        "import mia.cli.train, mia.cli.eval, mia.cli.generate, mia.cli.export, mia.cli.prepare\n"
        "print(sorted(m for m in ('torch', 'lightning') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_an_error_in_the_command_keeps_hydras_report_and_no_setting_leaks(
    tmp_path, monkeypatch, capsys
):
    """A bug raised by the command body is not taken for a config mistake: Hydra reports it
    with its trace (exit status 1), and HYDRA_FULL_ERROR is unset while the body runs."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("HYDRA_FULL_ERROR", raising=False)
    seen = {}

    def body(cfg):
        seen["env"] = os.environ.get("HYDRA_FULL_ERROR")
        raise RuntimeError("a bug in the command")

    main = hydra_command("generate")(body)
    monkeypatch.setattr(sys, "argv", ["mia-generate", "ckpt_path=x.ckpt"])
    with pytest.raises(SystemExit) as exit_info:
        main()
    assert exit_info.value.code == 1
    assert seen == {"env": None}
    assert "RuntimeError: a bug in the command" in capsys.readouterr().err
    assert "HYDRA_FULL_ERROR" not in os.environ


def test_one_line_joins_hydras_report():
    report = (
        "In 'train': Could not find 'optimizer/sgd'\n\n"
        "Available options in 'optimizer':\n\tadamw\n\tmuon\n"
        "Config search path:\n\tprovider=hydra, path=pkg://hydra.conf\n"
    )
    assert one_line(report) == (
        "In 'train': Could not find 'optimizer/sgd'. Available options in 'optimizer': adamw, muon"
    )
    assert one_line("One.\nTwo") == "One. Two"
