"""What an installed paperfeed carries: the library's own data files."""

from __future__ import annotations

import subprocess
import sys
import zipfile

from recommender import mail

from .conftest import REPO


def test_the_email_templates_belong_to_the_library_and_ship_in_the_wheel(tmp_path):
    assert mail.TEMPLATES == REPO / "recommender" / "templates"
    assert not (REPO / "web" / "templates" / "email").exists()  # the web does not own them
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", str(REPO), "--no-deps", "--no-build-isolation"]
        + ["-q", "-w", str(tmp_path)],
        check=True,
        capture_output=True,
        cwd=tmp_path,
    )
    (wheel,) = tmp_path.glob("paperfeed-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    templates = {n for n in names if n.startswith("recommender/templates/email/")}
    assert templates == {
        f"recommender/templates/email/{name}"
        for name in (
            "account_confirm.txt",
            "account_reset.txt",
            "account_signup_exists.txt",
            "digest.html",
            "digest.txt",
        )
    }
    assert "recommender/weights.json" in names  # the shipped blend weights
