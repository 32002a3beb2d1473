"""Start-up cost: the CLI and the data package leave scikit-learn and Pillow unimported until a dataset needs
them (importing scikit-learn takes about a second; bench/startup.py times the CLI's start-up)."""

import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]

# A fresh process: this one may have imported scikit-learn already.
SCRIPT = """
import json, sys
import vae_core.__main__, vae_core.data
imported = [m for m in ("sklearn", "PIL") if m in sys.modules]
digits, moons = vae_core.data.load_dataset("digits"), vae_core.data.load_dataset("moons")
print(json.dumps({"imported": imported, "digits": [len(digits.train), len(digits.val), len(digits.test)],
                  "digits_shape": digits.sample_shape, "moons": len(moons.train),
                  "sklearn_after": "sklearn" in sys.modules}))
"""


def test_importing_the_cli_and_data_leaves_sklearn_and_pillow_out_and_datasets_still_load():
    proc = subprocess.run([sys.executable, "-c", SCRIPT], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    out = json.loads(proc.stdout.splitlines()[-1])
    assert out["imported"] == []
    assert sum(out["digits"]) == 1797 and min(out["digits"]) > 0 and out["digits_shape"] == [1, 8, 8]
    assert out["moons"] == 3000 and out["sklearn_after"]
