"""Every ``mia-*`` command in README.md and docs/ composes its config, as the command would.

The test collects each command line from the fenced code blocks of README.md and
docs/**/*.md (docs/drafts/ aside), joins backslash continuations, drops a leading ``$``
prompt, environment variables and wrappers (``OMP_NUM_THREADS=1``, ``taskset -c 0``,
``/usr/bin/time -v``), reads ``python -m mia.cli.<command>`` as ``mia-<command>``, and composes
``conf/<command>.yaml`` with the line's overrides through Hydra's compose API, then checks the
settings as the command does first. Nothing is trained, prepared or written.

- A multirun (``-m``) composes each of its jobs (the first 16).
- A placeholder ``<...>`` inside an argument becomes a plain word; an argument that is only a
  placeholder (``<overrides>``) is left out.
- ``EXPECTED`` below, keyed by the command's text (its words as the shell reads them, comments
  left out): ``error`` (the guide shows a mistake: it must be refused) or ``skip`` with the
  reason (it cannot compose here). The guides themselves carry no test markers, and no paths
  of a development machine: a test greps for both. (A ``# docs-test: skip|error`` comment on
  the line is still read, for guides not yet moved to ``EXPECTED``.)
- Checks that depend on this machine (a visible GPU, a C++ compiler) are not applied.
"""

from __future__ import annotations

import gzip
import itertools
import json
import os
import re
import shlex
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
from synthetic_text import make_play_text

from mia.conf import compose

REPO = Path(__file__).resolve().parents[1]
COMMANDS = {
    "mia-train": "train",
    "mia-eval": "eval",
    "mia-generate": "generate",
    "mia-export": "export",
    "mia-prepare": "prepare",
}
MODULES = {f"mia.cli.{name}": name for name in COMMANDS.values()}
WRAPPERS = {"time": 0, "/usr/bin/time": 0, "nice": 0, "taskset": 0, "env": 0, "srun": 0}
HYDRA_FLAGS_WITH_VALUE = {"--cfg", "-c", "--package", "-p", "--config-name", "-cn"}
SHELL_ENDS = {"|", "||", "&&", ";", ">", ">>", "2>", "2>&1", "&"}
FENCE = re.compile(r"^\s*(```|~~~)")
MARK = re.compile(r"#\s*docs-test:\s*(skip|error)\b\s*(.*)$")
# Problems that depend on the machine the test runs on, not on the docs.
MACHINE_DEPENDENT = ("no CUDA GPU is visible", "C++ compiler")
# What a command in the guides is expected to do, keyed by its text (`command_text`).
EXPECTED: dict[str, tuple[str, str]] = {
    # docs/searches.md
    "mia-train hparams_search=speedrun hydra.searchpath=[file://$PWD/my_conf]": (
        "skip",
        "needs your own my_conf/ folder",
    ),
    # docs/cluster.md
    "srun mia-train trainer=ddp trainer.accelerator=cpu trainer.devices=2 trainer.num_nodes=1 $@": (
        "skip",
        "its overrides come from sbatch",
    ),
    "srun mia-train trainer=ddp trainer.accelerator=cpu trainer.devices=1 trainer.num_nodes=2 $@": (
        "skip",
        "its overrides come from sbatch",
    ),
    "$ mia-train -m hydra/launcher=submitit_slurm ...": (
        "skip",
        "the guide leaves the overrides out (it shows SLURM's refusals)",
    ),
    # docs/planning.md
    "mia-train experiment=isoflop model.dim=32 budget_flops=1e11 optimizer.lr=$lr": (
        "skip",
        "a shell loop gives $lr",
    ),
    # docs/training.md: mistakes, shown with the one line that refuses them
    "$ mia-train optimizer.lr=-1e-3": ("error", ""),
    "$ mia-train +model.dimm=3": ("error", ""),
    "$ mia-train model=lama": ("error", ""),
    "$ mia-generate": ("error", ""),
    "$ mia-train data.block_size=1000000": ("error", ""),
}
# Development paths and test machinery that a user's copy of the guides must not hold.
NOT_IN_GUIDES = ("../shared", "/tmp/", "/work/", "docs-test")


@dataclass(frozen=True)
class DocCommand:
    where: str  # file:line
    config: str  # conf/<config>.yaml
    overrides: tuple[str, ...]
    mark: str = ""  # "", "skip" or "error"
    reason: str = ""
    text: str = ""  # command_text of its line
    multirun: bool = False  # -m / --multirun


def doc_files(root: Path = REPO) -> list[Path]:
    """README.md and every guide under docs/, drafts aside."""
    docs = [p for p in sorted((root / "docs").rglob("*.md")) if "drafts" not in p.parts]
    return [root / "README.md", *docs]


def code_lines(text: str) -> list[tuple[int, str]]:
    """(line number, line) of every line inside a fenced code block, continuations joined."""
    out: list[tuple[int, str]] = []
    fenced, pending, start = False, "", 0
    for number, line in enumerate(text.splitlines(), 1):
        if FENCE.match(line):
            fenced, pending = not fenced, ""
            continue
        if not fenced:
            continue
        if not pending:
            start = number
        stripped = line.rstrip()
        if stripped.endswith("\\") and not MARK.search(stripped):
            pending += stripped[:-1] + " "
            continue
        out.append((start, pending + stripped))
        pending = ""
    return out


def _placeholder(arg: str) -> str | None:
    """An argument with its ``<...>`` placeholders filled; None for a bare placeholder."""
    if re.fullmatch(r"<[^<>]*>", arg):
        return None
    return re.sub(r"<[^<>]*>", "placeholder", arg)


def command_text(line: str) -> str:
    """A shell line's words as the shell reads them, comments and test markers left out:
    the key of `EXPECTED`."""
    mark = MARK.search(line)
    body = (line[: mark.start()] if mark else line).strip()
    try:
        return shlex.join(shlex.split(body, comments=True)).replace("'", "")
    except ValueError:
        return body


def parse_command(line: str, where: str) -> DocCommand | None:
    """The mia command on a shell line, or None if the line runs none."""
    mark = MARK.search(line)
    body = line[: mark.start()] if mark else line
    body = body.strip().removeprefix("$ ").strip()
    body = re.sub(r"<[^<>]*>", lambda m: m.group(0).replace(" ", "_"), body)  # one word each
    try:
        words = shlex.split(body, comments=True)
    except ValueError:
        return None
    config, rest = None, []
    for i, word in enumerate(words):
        if word in COMMANDS:
            config, rest = COMMANDS[word], words[i + 1 :]
            break
        if word == "-m" and i + 1 < len(words) and words[i + 1] in MODULES:
            config, rest = MODULES[words[i + 1]], words[i + 2 :]
            break
        is_env = re.fullmatch(r"[A-Z_][A-Z0-9_]*=\S*", word)
        is_python = re.fullmatch(r"(python\d*(\.\d+)?|\S*/python\d*)", word)
        if not (is_env or is_python or word in WRAPPERS or word[:1] == "-" or word[:1].isdigit()):
            return None  # another program's line
    if config is None:
        return None
    args: list[str] = []
    words_left = iter(rest)
    for word in words_left:
        if word in SHELL_ENDS or word.startswith((">", "2>")):
            break
        if word in HYDRA_FLAGS_WITH_VALUE:
            next(words_left, None)
            continue
        if word.startswith("-"):  # -m, --multirun, --info, --resolve: Hydra's own flags
            continue
        if (filled := _placeholder(word)) is not None:
            args.append(filled)
    kind, reason = (mark.group(1), mark.group(2).strip()) if mark else ("", "")
    kind, reason = EXPECTED.get(command_text(line), (kind, reason))
    multirun = any(word in ("-m", "--multirun") for word in rest)
    return DocCommand(where, config, tuple(args), kind, reason, command_text(line), multirun)


def collect(root: Path = REPO) -> list[DocCommand]:
    commands = []
    for path in doc_files(root):
        for number, line in code_lines(path.read_text(encoding="utf-8")):
            where = f"{path.relative_to(root)}:{number}"
            if (command := parse_command(line, where)) is not None:
                commands.append(command)
    return commands


def jobs(overrides: tuple[str, ...], most: int = 16) -> list[list[str]]:
    """The jobs of a multirun (``a=1,2 b=3,4``: four), the first ``most`` of them."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    parsed = OverridesParser.create().parse_overrides(list(overrides))
    choices = []
    for text, override in zip(overrides, parsed, strict=True):
        if override.is_sweep_override():
            key = override.get_key_element()
            choices.append([f"{key}={value}" for value in override.sweep_string_iterator()])
        else:
            choices.append([text])
    return [list(job) for job in itertools.islice(itertools.product(*choices), most)]


def problems(command: DocCommand) -> list[str]:
    """What is wrong with the command's config: a composition error, or its settings."""
    from hydra.errors import HydraException
    from omegaconf.errors import OmegaConfBaseException

    from mia.settings import problems as setting_problems

    found: list[str] = []
    try:
        for job in jobs(command.overrides):
            cfg = compose(command.config, job)
            found += setting_problems(cfg, command.config)
    except (HydraException, OmegaConfBaseException) as err:
        return [f"{type(err).__name__}: {err}".splitlines()[0]]
    return [p for p in found if not any(m in p for m in MACHINE_DEPENDENT)]


DOC_COMMANDS = collect()


@pytest.mark.parametrize(
    "command", DOC_COMMANDS, ids=[f"{c.where} {c.config}" for c in DOC_COMMANDS]
)
def test_doc_command_composes(command: DocCommand) -> None:
    if command.mark == "skip":
        pytest.skip(command.reason or "marked skip without a reason")
    found = problems(command)
    if command.mark == "error":
        assert found, f"{command.where}: shown as a mistake, but it composes and checks clean"
    else:
        assert not found, f"{command.where}: mia-{command.config} " + "; ".join(found)


def test_skips_give_a_reason() -> None:
    assert all(c.reason for c in DOC_COMMANDS if c.mark == "skip")


def test_every_expectation_is_a_command_of_the_guides() -> None:
    """An entry of EXPECTED whose command left the guides (or changed) is stale."""
    texts = {c.text for c in DOC_COMMANDS}
    assert not [key for key in EXPECTED if key not in texts]


def development_paths(path: Path, root: Path = REPO) -> list[str]:
    """file:line: text of each line of a guide that names a development path or a test marker."""
    found = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if any(word in line for word in NOT_IN_GUIDES):
            found.append(f"{path.relative_to(root)}:{number}: {line.strip()}")
    return found


@pytest.mark.parametrize("guide", doc_files(), ids=lambda p: str(p.relative_to(REPO)))
def test_guides_name_no_development_paths_or_test_markers(guide: Path) -> None:
    found = development_paths(guide)
    assert not found, "a user has none of these:\n" + "\n".join(found)


def test_the_path_check_names_file_and_line(tmp_path: Path) -> None:
    guide = tmp_path / "docs" / "g.md"
    guide.parent.mkdir()
    guide.write_text("ok\nmia-train data.path=../shared/x.txt\nsee /tmp/w26/run\n")
    assert [f.split(": ")[0] for f in development_paths(guide, tmp_path)] == [
        "docs/g.md:2",
        "docs/g.md:3",
    ]


LINK = re.compile(r"\]\(([^)\s]+)\)")
HEADING = re.compile(r"^#{1,6}\s+(.*)$")


def anchors(text: str) -> set[str]:
    """The anchors GitHub gives a page's headings: lower case, punctuation dropped, spaces
    to hyphens, a repeated one numbered."""
    seen: dict[str, int] = {}
    found = set()
    fenced = False
    for line in text.splitlines():
        if FENCE.match(line):
            fenced = not fenced
        if fenced or not (heading := HEADING.match(line)):
            continue
        slug = re.sub(r"[^\w\- ]", "", heading.group(1).strip().lower()).replace(" ", "-")
        count = seen.get(slug, 0)
        seen[slug] = count + 1
        found.add(slug if count == 0 else f"{slug}-{count}")
    return found


def broken_links(path: Path, root: Path = REPO) -> list[str]:
    """file:line: link for each relative link of a page whose file or heading is missing."""
    found = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        for target in LINK.findall(line):
            if re.match(r"[a-z]+:", target):
                continue  # http(s):, mailto:
            file, _, anchor = target.partition("#")
            dest = (path.parent / file).resolve() if file else path
            ok = dest.exists()
            if ok and anchor and dest.suffix == ".md":
                ok = anchor in anchors(dest.read_text(encoding="utf-8"))
            if not ok:
                found.append(f"{path.relative_to(root)}:{number}: {target}")
    return found


def test_relative_links_resolve() -> None:
    pages = [*doc_files(), REPO / "CHANGELOG.md"]
    found = [link for page in pages for link in broken_links(page)]
    assert not found, "links to no file or heading:\n" + "\n".join(found)


def test_the_link_check_reads_files_and_headings(tmp_path: Path) -> None:
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "a.md").write_text("# A\n\n## From a run: `best_of=<study>`\n")
    page = tmp_path / "README.md"
    page.write_text(
        "[ok](docs/a.md#from-a-run-best_ofstudy) [gone](docs/b.md) [no](docs/a.md#nope)\n"
        "[web](https://example.com/x#y)\n"
    )
    assert broken_links(page, tmp_path) == [
        "README.md:1: docs/b.md",
        "README.md:1: docs/a.md#nope",
    ]


def test_every_guide_and_the_readme_have_commands() -> None:
    places = {c.where.split(":")[0] for c in DOC_COMMANDS}
    for path in doc_files():
        assert str(path.relative_to(REPO)) in places, f"{path} has no mia-* command"


def test_the_collector_reads_shell_lines(tmp_path: Path) -> None:
    (tmp_path / "docs").mkdir()
    (tmp_path / "README.md").write_text(
        "Prose `mia-train x=1` is not a block.\n\n"
        "```bash\n"
        "OMP_NUM_THREADS=1 taskset -c 0 mia-train -m model.dim=64,128 \\\n"
        "    optimizer.lr=1e-3 hydra.run.dir=outputs/runs/train/<time>\n"
        "$ python -m mia.cli.eval ckpt_path=<file> split=val > eval.log\n"
        "mia-generate ckpt_path=x <more overrides>   # docs-test: skip needs a checkpoint\n"
        "python scripts/bench_train.py --steps 5\n"
        "tensorboard --logdir outputs\n"
        "```\n"
    )
    found = collect(tmp_path)
    assert [(c.where, c.config, c.overrides, c.mark) for c in found] == [
        (
            "README.md:4",
            "train",
            (
                "model.dim=64,128",
                "optimizer.lr=1e-3",
                "hydra.run.dir=outputs/runs/train/placeholder",
            ),
            "",
        ),
        ("README.md:6", "eval", ("ckpt_path=placeholder", "split=val"), ""),
        ("README.md:7", "generate", ("ckpt_path=x",), "skip"),
    ]
    assert [job[0] for job in jobs(found[0].overrides)] == ["model.dim=64", "model.dim=128"]


@pytest.mark.parametrize(
    "line",
    [
        "mia-train model.dimm=3",  # a key that does not exist
        "mia-train model=lama",  # a config option that is not there
        "mia-train optimizer.lr=-1e-3",  # a value out of range
        "mia-eval ckpt_path=x split=train",
        "mia-prepare data=text tokenizer=wordpiece",
    ],
)
def test_a_broken_command_fails(line: str) -> None:
    command = parse_command(line, "example")
    assert command is not None and problems(command)


# Running every command for real, as a user would, with small settings the test adds
# (MIA_DOCS_RUN=1; minutes, so not in the default run: see test_every_command_runs).
RUN_FOR_REAL = os.environ.get("MIA_DOCS_RUN") == "1"
# MIA_DOCS_RUN_ONLY=README.md,docs/searches.md: those pages' commands only.
RUN_ONLY = tuple(os.environ.get("MIA_DOCS_RUN_ONLY", "").split(","))
# Commands on Tiny Shakespeare read it from here (MIA_TINY_SHAKESPEARE, else the data folder
# beside the repository's); without it they are not run.
TINY_SHAKESPEARE = Path(
    os.environ.get("MIA_TINY_SHAKESPEARE")
    or REPO.parent / "shared" / "data" / "tinyshakespeare" / "input.txt"
)
# What a command needs that a CPU test machine lacks, by a piece of its text.
CANNOT_RUN_HERE = (
    ("trainer=gpu", "needs a CUDA GPU"),
    ("shakespeare_gpu", "needs a CUDA GPU"),
    ("trainer=fsdp", "needs several GPUs"),
    ("trainer.devices=4", "needs four devices"),
    ("submitit_slurm", "needs SLURM (pytest -m services runs the cluster's tests)"),
    ("postgresql://", "needs a PostgreSQL server"),
    ("roneneldan/", "downloads a Hugging Face Hub dataset"),
    ("/data/corpus-1G.txt", "needs a 1 GB corpus of yours"),
)
# Small settings, by command; a key the command gives itself is replaced, not repeated.
SMALL = {
    "train": [
        "debug=fast",
        "trainer.max_steps=2",
        "trainer.val_check_interval=1",
        "trainer.limit_val_batches=1",
        "trainer.limit_test_batches=1",
        "model.compile=false",
    ],
    "eval": ["trainer.limit_test_batches=2"],
    "generate": ["max_new_tokens=8", "num_samples=1"],
    "export": [],
    "prepare": [],
}
PLACEHOLDER_RUN = "outputs/runs/train/placeholder"


def small_overrides(command: DocCommand) -> list[str]:
    """The command's overrides with the test's small settings in place of its own."""
    small = list(SMALL[command.config])
    if command.config == "train" and any(
        o.startswith("hparams_search=") for o in command.overrides
    ):
        small.append("hydra.sweeper.n_trials=2")
    if command.config == "generate" and not any(
        o.startswith("prompt=[") for o in command.overrides
    ):
        small.remove("num_samples=1")
    keys = {o.split("=", 1)[0].lstrip("+~") for o in small}
    kept = [o for o in command.overrides if o.split("=", 1)[0].lstrip("+~") not in keys]
    if any(o in ("debug=fast",) for o in kept):
        small.remove("debug=fast")
    return [*kept, *small]


def uses_tiny_shakespeare(command: DocCommand) -> bool:
    """Whether the command's config reads Tiny Shakespeare (which has data.path)."""
    from hydra.errors import HydraException
    from omegaconf.errors import OmegaConfBaseException

    try:
        cfg = compose(command.config, jobs(command.overrides, most=1)[0])
    except (HydraException, OmegaConfBaseException):  # a mistake the guide shows
        return False
    return cfg.get("data", {}).get("corpus") == "tiny_shakespeare"


def scratch_folder(root: Path) -> None:
    """The files the guides' commands name, in the folder they run from: your text files,
    a run with a checkpoint, an exported Llama folder, a dataset folder."""
    text = make_play_text(2000)
    for name in ("notes/a.txt", "notes/b.txt", "book.txt", "my/a.txt", "plays.txt"):
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text, encoding="utf-8")
    records = [{"body": chunk, "text": chunk} for chunk in text.split("\n\n") if chunk]
    (root / "docs").mkdir(exist_ok=True)
    with gzip.open(root / "docs" / "a.jsonl.gz", "wt", encoding="utf-8") as out:
        out.writelines(json.dumps(r) + "\n" for r in records)
    (root / "my" / "a.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    folder = root / "path" / "to" / "folder"
    folder.mkdir(parents=True)
    (folder / "train.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records[:-50]))
    (folder / "validation.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records[-50:]))
    for args in (
        ["mia.cli.train", *SMALL["train"], f"hydra.run.dir={PLACEHOLDER_RUN}"],
        ["mia.cli.export", f"ckpt_path={PLACEHOLDER_RUN}/checkpoints/last.ckpt", "out_dir=tok"],
    ):
        subprocess.run([sys.executable, "-m", *args], cwd=root, check=True, capture_output=True)
    (root / "tok" / "tokenizer.model").rename(root / "path" / "to" / "tokenizer.model")


def run_command(command: DocCommand, root: Path) -> str:
    """Run the command as a user would, with small settings; what went wrong, or ''."""
    overrides = small_overrides(command)
    if TINY_SHAKESPEARE.is_file() and uses_tiny_shakespeare(command):
        overrides.append(f"data.path={TINY_SHAKESPEARE}")
    args = [
        sys.executable,
        "-m",
        f"mia.cli.{command.config}",
        *(["-m"] if command.multirun else []),
    ]
    result = subprocess.run(
        [*args, *overrides],
        cwd=root,
        capture_output=True,
        text=True,
        timeout=900,
        env={**os.environ, "PYTHONWARNINGS": "ignore"},
    )
    output = result.stdout + result.stderr
    errors = [line for line in output.splitlines() if line.startswith("error:")]
    shown = f"{command.where}: {' '.join(overrides)}"
    if "Traceback" in output:
        return f"{shown}: a traceback: {output[output.index('Traceback') :][-600:]}"
    if command.mark == "error":
        return "" if result.returncode == 2 and errors else f"{shown}: shown as a mistake, but ran"
    if result.returncode != 0 or errors:
        return f"{shown}: exit {result.returncode}: {' '.join(errors)[:400] or output[-400:]}"
    return ""


@pytest.mark.skipif(not RUN_FOR_REAL, reason="runs every command for real: MIA_DOCS_RUN=1")
def test_every_command_runs(tmp_path: Path) -> None:
    """Every command of the guides runs, in the guides' order (a search before the best_of
    that reads its study), without a traceback or an error the guide does not show."""
    scratch_folder(tmp_path)
    failures, skipped = [], []
    for command in DOC_COMMANDS:
        if not command.where.startswith(RUN_ONLY):
            continue
        need = next((why for text, why in CANNOT_RUN_HERE if text in command.text), "")
        if command.mark == "skip" or need:
            skipped.append(f"{command.where}: {need or command.reason}")
            continue
        if "data=tiny_shakespeare" in command.text and not TINY_SHAKESPEARE.is_file():
            skipped.append(f"{command.where}: needs Tiny Shakespeare's input.txt")
            continue
        if problem := run_command(command, tmp_path):
            failures.append(problem)
    print("\nnot run here:\n" + "\n".join(skipped))
    assert not failures, "\n".join(failures)
