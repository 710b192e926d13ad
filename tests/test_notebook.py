"""Execute notebooks/render.ipynb for real (nbclient, a real kernel) on a tiny trained agent."""

import nbformat
from nbclient import NotebookClient

from conftest import REPO
from helpers import train_tiny_controller


def test_render_notebook_runs_and_saves_a_gif(tree, monkeypatch, tmp_path):
    train_tiny_controller(tree)
    monkeypatch.setenv("WM_EPISODE_LENGTH", "12")
    monkeypatch.setenv("WM_GENERATION", "0")
    notebook = nbformat.read(REPO / "notebooks" / "render.ipynb", as_version=4)
    NotebookClient(notebook, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}).execute()
    outputs = [output for cell in notebook.cells if cell.cell_type == "code" for output in cell.get("outputs", [])]
    assert not [output for output in outputs if output.output_type == "error"]
    text = "".join(output.get("text", "") for output in outputs)
    assert "generation 0, track seed" in text and "12 steps" in text
    gifs = list((tree.control / "renders").glob("generation_0_seed_*.gif"))
    assert len(gifs) == 1 and gifs[0].stat().st_size > 1000
    images = [output for output in outputs if output.output_type == "display_data"]
    assert any("image/gif" in output.data for output in images)  # the animation, inline
    assert sum("image/png" in output.data for output in images) >= 2  # frames figure and reward plot
