"""Unattended use: pre-commit hooks in a real git repository, the workflow `init-ci` writes, `--split`."""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from note2anki.cli import cli
from tests.anki_collection import AnkiCollection
from tests.conftest import ROOT

NOTE = "---\n⭕과목: AWS\n⭕교재: Cloud Basics\n---\n### 단서 질문\n\n- What is {q}?\n    - {a}.\n"
HAS_GIT = shutil.which("git") is not None


def git(repo: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "GIT_AUTHOR_NAME": "t",
        "GIT_AUTHOR_EMAIL": "t@example.invalid",
        "GIT_COMMITTER_NAME": "t",
        "GIT_COMMITTER_EMAIL": "t@example.invalid",
    }
    return subprocess.run(["git", *args], cwd=repo, capture_output=True, text=True, env=env, check=False)


def note2anki_command(line: str) -> list[str]:
    """A workflow `run:` line, run with this interpreter's note2anki."""
    words = [os.path.expandvars(w) for w in shlex.split(line)]
    assert words[0] == "note2anki"
    return [sys.executable, "-m", "note2anki", *words[1:]]


#: (repository files besides the notes, where the notes go, what the student runs to build locally)
LAYOUTS = {
    "vault-at-root": ({}, ".", ["build", "."]),
    "vault-at-root-with-toml": ({"note2anki.toml": "cloze = false\n"}, ".", ["build"]),
    "vault-in-subfolder": (
        {"note2anki.toml": 'vault = "notes"\ncloze = false\nexclude = ["Algorithms/**"]\n'},
        "notes",
        ["build"],
    ),
}


@pytest.mark.skipif(not HAS_GIT, reason="needs git")
@pytest.mark.parametrize("layout", LAYOUTS)
def test_init_ci_workflow_runs_in_a_fresh_clone(layout: str, tmp_path: Path) -> None:
    files, notes, local_build = LAYOUTS[layout]
    repo = tmp_path / "vault-repo"
    shutil.copytree(ROOT / "samples", repo / notes, ignore=shutil.ignore_patterns("note2anki.lock"))
    for rel, text in files.items():
        (repo / rel).write_text(text, encoding="utf-8")
    assert git(repo, "init", "-q").returncode == 0
    here = {"cwd": repo, "capture_output": True, "text": True}
    local = subprocess.run(
        [sys.executable, "-m", "note2anki", *local_build, "-o", str(tmp_path / "local.apkg")], **here
    )
    assert local.returncode == 0, local.stderr
    assert (repo / notes / "note2anki.lock").is_file()
    made = subprocess.run([sys.executable, "-m", "note2anki", "init-ci"], **here)
    assert made.returncode == 0, made.stderr
    again = subprocess.run([sys.executable, "-m", "note2anki", "init-ci"], **here)
    assert again.returncode == 1
    assert ".github/workflows/anki.yml already exists; pass --force to overwrite it" in again.stderr
    git(repo, "add", "-A")
    assert git(repo, "commit", "-qm", "notes").returncode == 0
    clone = tmp_path / "clone"
    assert git(tmp_path, "clone", "-q", str(repo), str(clone)).returncode == 0

    flow = yaml.safe_load((clone / ".github/workflows/anki.yml").read_text(encoding="utf-8"))
    steps = {s.get("name", s.get("uses")): s for s in flow["jobs"]["deck"]["steps"]}
    install = steps["Install note2anki"]
    assert install["run"] == 'python -m pip install "$NOTE2ANKI_INSTALL"'
    assert install["env"]["NOTE2ANKI_INSTALL"].startswith("${{ vars.NOTE2ANKI_INSTALL || 'note2anki")
    cache = steps["Restore the note2anki cache"]
    assert cache["uses"] == "actions/cache@v4"
    assert cache["with"]["path"] == (".note2anki" if notes == "." else f"{notes}/.note2anki")
    assert steps["Upload deck"]["with"]["path"] == "${{ runner.temp }}/anki-deck.apkg"
    assert "startsWith(github.ref, 'refs/tags/')" in steps["Attach deck to the release"]["if"]

    # the workflow's note2anki steps, exactly as written, in the fresh clone (this note2anki on PATH)
    env = {
        **os.environ,
        "RUNNER_TEMP": str(tmp_path / "runner"),
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
    }
    (tmp_path / "runner").mkdir()
    runs = {}
    for name in ("Check notes", "Build deck"):
        line = steps[name]["run"]
        assert line.startswith("note2anki ")
        runs[name] = subprocess.run(["bash", "-c", line], cwd=clone, env=env, capture_output=True, text=True)
        assert runs[name].returncode == 0, f"{line}: {runs[name].stderr}"
    assert (
        runs["Check notes"]
        .stdout.splitlines()[0]
        .startswith(
            f"::warning file={'' if notes == '.' else notes + '/'}AWS/IAM 권한.md,line=25,title=N2A201::"
        )
    )
    assert runs["Build deck"].stdout == ""
    assert git(clone, "status", "--porcelain").stdout == ""  # nothing changed: the lock agreed
    counts = []
    for deck in (tmp_path / "local.apkg", tmp_path / "runner" / "anki-deck.apkg"):
        col = AnkiCollection(tmp_path / f"anki-{deck.stem}")
        try:
            counts.append(col.import_deck(deck).new)
            kinds = {n.note_type for n in col.notes()}
        finally:
            col.close()
        assert ("note2anki Cloze" in kinds) == (layout == "vault-at-root")
    assert counts[0] == counts[1] == (42 if layout == "vault-at-root" else 37 if notes == "." else 22)


def test_init_ci_refuses_a_vault_that_disagrees_with_the_settings(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "notes").mkdir()
    (tmp_path / "note2anki.toml").write_text('vault = "notes"\n', encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(cli, ["init-ci", "--vault", "other"])
    assert result.exit_code == 2
    assert (
        "note2anki.toml says vault = 'notes', but --vault says 'other'; the workflow uses note2anki.toml as "
        "your own builds do, so drop --vault (or change the file)" in result.stderr
    )
    ok = CliRunner().invoke(cli, ["init-ci", "--install", "git+https://example.invalid/n2a.git@v1"])
    assert ok.exit_code == 0, ok.stderr
    text = (tmp_path / ".github/workflows/anki.yml").read_text(encoding="utf-8")
    assert "vars.NOTE2ANKI_INSTALL || 'git+https://example.invalid/n2a.git@v1'" in text
    assert "run: note2anki build --frozen -o" in text


def test_split_by_subject(tmp_path: Path) -> None:
    vault = tmp_path / "samples"
    shutil.copytree(ROOT / "samples", vault)
    result = CliRunner().invoke(
        cli, ["build", str(vault), "-o", str(tmp_path / "out" / "study.apkg"), "--split", "subject"]
    )
    assert result.exit_code == 0, result.stderr
    decks = sorted(p.name for p in (tmp_path / "out").iterdir())
    assert decks == ["study-AWS.apkg", "study-Algorithms.apkg", "study-Networking.apkg"]
    counts = {}
    for name in decks:
        col = AnkiCollection(tmp_path / name)
        try:
            col.import_deck(tmp_path / "out" / name)
            counts[name] = (len(col.notes()), {d for n in col.notes() for d in n.decks})
        finally:
            col.close()
    assert counts["study-AWS.apkg"] == (15, {"AWS::클라우드 입문 노트", "AWS::Practical Cloud Networking"})
    assert counts["study-Networking.apkg"][0] == 9 and counts["study-Algorithms.apkg"][0] == 18


def test_exit_codes_and_clean_stdout(write_vault, tmp_path: Path) -> None:
    vault = write_vault({"a.md": NOTE.format(q="S3", a="Object storage")})
    ok = CliRunner().invoke(cli, ["build", str(vault), "-o", str(tmp_path / "o.apkg")])
    assert (ok.exit_code, ok.stdout) == (0, "")
    assert "1 added, 0 changed, 0 re-keyed, 0 removed (note2anki.lock updated) -> " in ok.stderr
    same = CliRunner().invoke(cli, ["build", str(vault), "-o", str(tmp_path / "o.apkg")])
    assert "0 added, 0 changed, 0 re-keyed, 0 removed -> " in same.stderr
    quiet = CliRunner().invoke(cli, ["build", str(vault), "-o", str(tmp_path / "o.apkg"), "-q"])
    assert (quiet.exit_code, quiet.stdout, quiet.stderr) == (0, "", "")
    bad_option = CliRunner().invoke(cli, ["build", str(vault), "--split", "textbook"])
    assert bad_option.exit_code == 2 and "Invalid value for '--split'" in bad_option.stderr
    (vault / "b.md").write_text("---\nx: [\n---\n", encoding="utf-8")
    failed = CliRunner().invoke(cli, ["build", str(vault), "-o", str(tmp_path / "o.apkg"), "-q"])
    assert failed.exit_code == 1 and failed.stdout == ""
    assert failed.stderr.startswith("b.md:2: error N2A003:")


@pytest.mark.skipif(
    not HAS_GIT or shutil.which("pre-commit", path=str(Path(sys.executable).parent)) is None,
    reason="needs git and pre-commit",
)
def test_pre_commit_hooks_in_a_real_repository(tmp_path: Path) -> None:
    # This project as a git repository at its current working tree, so the hooks under test are these.
    project = tmp_path / "note2anki"
    shutil.copytree(
        ROOT,
        project,
        ignore=lambda folder, names: [
            *shutil.ignore_patterns(".git", ".venv", "*.apkg", "__pycache__", "*.egg-info", ".*_cache")(
                folder, names
            ),
            *(["build"] if Path(folder) == ROOT else []),  # setuptools' output, not note2anki/build
        ],
    )
    assert git(project, "init", "-q").returncode == 0
    git(project, "add", "-A")
    assert git(project, "commit", "-qm", "snapshot").returncode == 0
    rev = git(project, "rev-parse", "HEAD").stdout.strip()

    repo = tmp_path / "vault"
    repo.mkdir()
    git(repo, "init", "-q")
    (repo / "notes").mkdir()
    (repo / "notes/s3.md").write_text(NOTE.format(q="S3", a="Object storage"), encoding="utf-8")
    (repo / "note2anki.toml").write_text('vault = "notes"\noutput = "build/deck.apkg"\n', encoding="utf-8")
    (repo / ".gitignore").write_text("build/\n", encoding="utf-8")
    (repo / ".pre-commit-config.yaml").write_text(
        f"repos:\n  - repo: {project}\n    rev: {rev}\n"
        "    hooks:\n      - id: note2anki-check\n      - id: note2anki-build\n",
        encoding="utf-8",
    )
    pre_commit = str(Path(sys.executable).parent / "pre-commit")
    env = {**os.environ, "PRE_COMMIT_HOME": str(tmp_path / "pre-commit-home")}
    assert subprocess.run([pre_commit, "install"], cwd=repo, env=env, capture_output=True).returncode == 0

    def commit(message: str) -> subprocess.CompletedProcess[str]:
        git(repo, "add", "-A")
        done = subprocess.run(
            ["git", "commit", "-m", message],
            cwd=repo,
            env={
                **env,
                "GIT_AUTHOR_NAME": "t",
                "GIT_AUTHOR_EMAIL": "t@example.invalid",
                "GIT_COMMITTER_NAME": "t",
                "GIT_COMMITTER_EMAIL": "t@example.invalid",
            },
            capture_output=True,
            text=True,
        )
        return done

    # First commit: the build hook writes the deck and a new lock file, then refuses until it is staged.
    first = commit("notes")
    assert first.returncode == 1, first.stdout + first.stderr
    assert "note2anki: notes/note2anki.lock was updated; stage it (git add notes/note2anki.lock)" in (
        first.stdout + first.stderr
    )
    assert (repo / "build/deck.apkg").exists() and (repo / "notes/note2anki.lock").exists()
    again = commit("notes")
    assert again.returncode == 0, again.stdout + again.stderr

    # A note with broken frontmatter: the check hook refuses the commit and names the file and line.
    (repo / "notes/broken.md").write_text("---\n⭕과목: [AWS\n---\n", encoding="utf-8")
    refused = commit("broken")
    assert refused.returncode == 1
    assert "broken.md:2: error N2A003: the frontmatter is not valid YAML" in refused.stdout + refused.stderr
    (repo / "notes/broken.md").unlink()

    # A good change: the deck and the lock are rebuilt; once the lock is staged the commit goes through.
    before = (repo / "build/deck.apkg").read_bytes()
    (repo / "notes/s3.md").write_text(
        NOTE.format(q="S3", a="Object storage with versioning"), encoding="utf-8"
    )
    assert commit("edit").returncode == 1
    assert commit("edit").returncode == 0

    assert (repo / "build/deck.apkg").read_bytes() != before
    assert git(repo, "status", "--porcelain").stdout == ""
    col = AnkiCollection(tmp_path / "anki")
    try:
        col.import_deck(repo / "build/deck.apkg")
        assert [n.fields["Answer"] for n in col.notes()] == [
            "<ul>\n<li>Object storage with versioning.</li>\n</ul>"
        ]
    finally:
        col.close()

    # A note with a warning: the commit passes, and the warning is shown (pre-commit hides the output of a
    # passing hook unless it is verbose).
    (repo / "notes/template.md").write_text(
        NOTE.format(q="S3", a="Objects") + "- 질문1\n    - 답\n", encoding="utf-8"
    )
    commit("placeholder")
    shown = commit("placeholder")
    assert shown.returncode == 0, shown.stdout + shown.stderr
    assert (
        "template.md:9: warning N2A202: template placeholder “질문1” left in" in shown.stdout + shown.stderr
    )


class _Terminal:
    """A stand-in stderr that says it is a terminal and records what is written."""

    def __init__(self, tty: bool) -> None:
        self.tty, self.text = tty, ""

    def isatty(self) -> bool:
        return self.tty

    def write(self, text: str) -> int:
        self.text += text
        return len(text)

    def flush(self) -> None:
        pass


@pytest.mark.parametrize(
    ("tty", "quiet", "notes", "drawn"),
    [
        (True, False, 400, True),
        (True, False, 10, False),
        (False, False, 400, False),
        (True, True, 400, False),
    ],
)
def test_progress_bar_only_on_a_terminal_for_big_vaults(
    monkeypatch: pytest.MonkeyPatch, tty: bool, quiet: bool, notes: int, drawn: bool
) -> None:
    from note2anki import summary

    fake = _Terminal(tty)
    monkeypatch.setattr(sys, "stderr", fake)
    with summary.progress(quiet) as progress:
        for done in range(1, notes + 1):
            if progress is not None:
                progress(done, notes)
    assert ("note2anki" in fake.text) is drawn


@pytest.mark.skipif(not HAS_GIT, reason="needs git")
def test_a_fresh_clone_with_a_restored_cache_builds_warm_with_the_same_bytes(tmp_path: Path) -> None:
    """What the workflow's actions/cache step gives a CI run: a new checkout (every file's time is new) with
    `.note2anki/` restored from the last run. Every note comes from the cache; the deck has the same bytes."""
    repo = tmp_path / "repo"
    shutil.copytree(ROOT / "samples", repo, ignore=shutil.ignore_patterns(".note2anki"))
    git(repo, "init", "-q")
    git(repo, "add", "-A")
    assert git(repo, "commit", "-qm", "notes").returncode == 0
    runs = []
    for n, restored in enumerate((None, "first")):
        clone = tmp_path / "ci" / "repo"  # each run checks out afresh, at the same path (as on a runner)
        shutil.rmtree(clone, ignore_errors=True)
        assert git(tmp_path, "clone", "-q", str(repo), str(clone)).returncode == 0
        if restored:
            shutil.copytree(tmp_path / "cache", clone / ".note2anki")
        env = {**os.environ, "SOURCE_DATE_EPOCH": "1767000000"}
        done = subprocess.run(
            [sys.executable, "-m", "note2anki", "build", ".", "--frozen", "-o", str(tmp_path / f"{n}.apkg")],
            cwd=clone, env=env, capture_output=True, text=True,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
        runs.append(done.stderr)
        shutil.copytree(clone / ".note2anki", tmp_path / "cache", dirs_exist_ok=True)  # saved by the step
    assert (tmp_path / "0.apkg").read_bytes() == (tmp_path / "1.apkg").read_bytes()
    # the warm run read no note again: their warnings are the unchanged notes' one-line summary
    assert "warning N2A" not in runs[1] and "4 warnings in 4 unchanged notes not shown again" in runs[1]
